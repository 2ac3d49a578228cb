//! [`Secret`]: a value that must not leak into logs.
//!
//! `Debug` and `Display` print `***`, so deriving `Debug` on a struct that
//! holds secrets is safe. Serialization writes the real value, because
//! configuration files are written and layered as serialized trees.

use std::fmt;

use serde::{Deserialize, Serialize};

/// What a hidden value prints as.
const MASK: &str = "***";

/// A secret configuration value (a DSN with a password, a token).
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret<T = String>(T);

impl<T> Secret<T> {
    /// Wraps a value.
    pub fn new(value: T) -> Self {
        Self(value)
    }

    /// The real value; call it only where the value is used, never to log it.
    pub fn expose(&self) -> &T {
        &self.0
    }

    /// Unwraps the real value.
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl Secret<String> {
    /// A loggable form: for a URL-style DSN the password and any query are
    /// masked (`postgres://user:***@host/db`); anything else is `***`.
    pub fn redacted(&self) -> String {
        redact_url(&self.0)
    }
}

impl From<String> for Secret<String> {
    fn from(value: String) -> Self {
        Self(value)
    }
}

impl From<&str> for Secret<String> {
    fn from(value: &str) -> Self {
        Self(value.to_owned())
    }
}

impl<T> fmt::Debug for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(MASK)
    }
}

impl<T> fmt::Display for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(MASK)
    }
}

/// Masks the credentials of a `scheme://user:password@host/path?query` URL:
/// the password becomes `***` and a query or fragment becomes `?***` (they
/// can carry `password=` or `token=`). Text that is not URL-shaped, such as a
/// keyword/value DSN (`host=db password=x`), is masked whole.
pub fn redact_url(text: &str) -> String {
    let Some((scheme, rest)) = text.split_once("://") else {
        return MASK.to_owned();
    };
    let scheme_ok = !scheme.is_empty()
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    if !scheme_ok {
        return MASK.to_owned();
    }

    // The last '@' ends the userinfo even when a sloppy password holds a raw
    // '@', '/' or '?', so split there before looking for the path.
    let (userinfo, location) = match rest.rsplit_once('@') {
        Some((userinfo, location)) => {
            let user = userinfo.split(':').next().unwrap_or_default();
            if user.contains(['/', '?', '#']) {
                // The '@' sat in the path or query, not in a userinfo: the
                // shape is not understood, so hide everything.
                return MASK.to_owned();
            }
            let password = if userinfo.contains(':') { ":***" } else { "" };
            (format!("{user}{password}@"), location)
        }
        None => (String::new(), rest),
    };
    let location = match location.find(['?', '#']) {
        Some(at) => format!("{}?{MASK}", &location[..at]),
        None => location.to_owned(),
    };
    format!("{scheme}://{userinfo}{location}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_debug_and_display_are_masked() {
        let secret = Secret::from("postgres://u:hunter2@db/x");
        assert_eq!(format!("{secret:?}"), "***");
        assert_eq!(secret.to_string(), "***");
        assert_eq!(secret.expose(), "postgres://u:hunter2@db/x");
        assert_eq!(
            serde_json::to_string(&secret).unwrap(),
            "\"postgres://u:hunter2@db/x\"",
            "serialization writes the real value"
        );
    }

    #[test]
    fn redacted_masks_dsn_password_and_query() {
        let cases = [
            ("postgres://user:pw@host/db", "postgres://user:***@host/db"),
            (
                "postgres://anchorage@127.0.0.1:5432/anchorage",
                "postgres://anchorage@127.0.0.1:5432/anchorage",
            ),
            (
                "postgres://u:p@ss/w?rd@host:5432/db",
                "postgres://u:***@host:5432/db",
            ),
            (
                "postgres://u@host/db?password=pw",
                "postgres://u@host/db?***",
            ),
            ("postgres://host/db?user=a@b", "***"),
            ("host=db user=u password=pw", "***"),
            ("plain-token", "***"),
        ];
        for (dsn, want) in cases {
            assert_eq!(Secret::from(dsn).redacted(), want, "{dsn}");
        }
    }
}
