//! Posted console forms: the [`CsrfForm`] extractor, and [`text`], how a form's text
//! field is read.

use std::fmt;

use actix_web::{dev::Payload, web, FromRequest, HttpRequest};
use futures_util::{future::LocalBoxFuture, FutureExt};
use serde::{
    de::{self, DeserializeOwned, IgnoredAny, SeqAccess, Visitor},
    Deserialize, Deserializer,
};

use super::{respond::PageError, viewer::Viewer};
use crate::error::Error;

/// A form posted by a signed-in person, with its viewer. Extracting it reads the
/// urlencoded body (within the app's `PayloadConfig` limit, as `web::Bytes` does),
/// resolves the [`Viewer`] — so a handler that takes a `CsrfForm` takes no `Viewer` of
/// its own — and checks the form's `csrf` field against the session's token; a missing
/// or wrong token is `403 Refused`. The fields are then parsed into `T` with
/// `serde_html_form` (repeated keys, like scope checkboxes, go into a `Vec`).
///
/// The viewer comes with the form, rather than as a second extractor, so that there is
/// one resolution per request and the order stays body, viewer, CSRF.
pub struct CsrfForm<T = NoFields> {
    pub viewer: Viewer,
    pub fields: T,
}

/// A form with nothing but its CSRF token (a button).
#[derive(Debug, Deserialize)]
pub struct NoFields {}

/// The one field every console form has.
#[derive(Deserialize)]
struct Csrf {
    #[serde(default, deserialize_with = "text")]
    csrf: Option<String>,
}

impl<T: DeserializeOwned + 'static> FromRequest for CsrfForm<T> {
    type Error = actix_web::Error;
    type Future = LocalBoxFuture<'static, Result<Self, actix_web::Error>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let body = web::Bytes::from_request(req, payload);
        let viewer = Viewer::from_request(req, &mut Payload::None);
        async move {
            let body = body.await?;
            let viewer = viewer.await?;
            let posted = serde_html_form::from_bytes::<Csrf>(&body)
                .ok()
                .and_then(|c| c.csrf);
            if !posted.is_some_and(|t| csrf_matches(&t, &viewer.csrf)) {
                return Err(PageError::Refused.into());
            }
            let fields = serde_html_form::from_bytes::<T>(&body).map_err(|e| {
                PageError::Failed(Error::BadRequest(format!(
                    "the form could not be read: {e}"
                )))
            })?;
            Ok(CsrfForm { viewer, fields })
        }
        .boxed_local()
    }
}

/// Compares a posted CSRF token with the session's in constant time, so response
/// timing tells an attacker nothing about how much of a guess was right.
fn csrf_matches(posted: &str, expected: &str) -> bool {
    use subtle::ConstantTimeEq;
    posted.len() == expected.len() && bool::from(posted.as_bytes().ct_eq(expected.as_bytes()))
}

/// A text field as the console reads it: the first value when the key repeats, trimmed,
/// and absent when empty. Use as
/// `#[serde(default, deserialize_with = "form::text")] field: Option<String>`.
pub fn text<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    struct Text;

    impl<'de> Visitor<'de> for Text {
        type Value = Option<String>;

        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a text field")
        }

        fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
            Ok(trimmed(v))
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let first: Option<String> = seq.next_element()?;
            while seq.next_element::<IgnoredAny>()?.is_some() {}
            Ok(first.as_deref().and_then(trimmed))
        }
    }

    fn trimmed(v: &str) -> Option<String> {
        let v = v.trim();
        (!v.is_empty()).then(|| v.to_string())
    }

    d.deserialize_any(Text)
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;
    use serde_html_form::de::Error;

    use super::{csrf_matches, text};
    use crate::console::viewer::csrf_for;

    #[test]
    fn csrf_tokens_match_exactly() {
        let token = csrf_for("secret");
        assert!(csrf_matches(&token, &token));
        assert!(!csrf_matches(&token[..10], &token));
        assert!(!csrf_matches("", &token));
        let first = if token.starts_with('0') { "1" } else { "0" };
        let other = format!("{first}{}", &token[1..]);
        assert!(!csrf_matches(&other, &token));
    }

    #[derive(Debug, PartialEq, Deserialize)]
    struct Fields {
        #[serde(default, deserialize_with = "text")]
        name: Option<String>,
        #[serde(default)]
        scope: Vec<String>,
    }

    fn parse(body: &str) -> Result<Fields, Error> {
        serde_html_form::from_str(body)
    }

    #[test]
    fn text_fields_are_trimmed_first_values_and_empty_is_absent() -> Result<(), Error> {
        assert_eq!(parse("")?.name, None);
        assert_eq!(parse("name=")?.name, None);
        assert_eq!(parse("name=+%20")?.name, None);
        assert_eq!(parse("name=+a+b+")?.name.as_deref(), Some("a b"));
        assert_eq!(parse("name=a&name=b")?.name.as_deref(), Some("a"));
        assert_eq!(parse("name=&name=b")?.name, None);
        assert_eq!(parse("other=1&csrf=x")?.name, None);
        Ok(())
    }

    #[test]
    fn repeated_keys_are_all_kept_untrimmed() -> Result<(), Error> {
        assert_eq!(parse("")?.scope, Vec::<String>::new());
        assert_eq!(parse("scope=pin%3Aread")?.scope, ["pin:read"]);
        assert_eq!(parse("scope=a&name=x&scope=+b")?.scope, ["a", " b"]);
        Ok(())
    }
}
