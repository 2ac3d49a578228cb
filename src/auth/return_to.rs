//! Where a finished sign-in sends the browser: a place on this site, never elsewhere.
//!
//! The requested value is parsed the way a browser would read it (the `url` crate
//! follows the WHATWG URL standard) and joined to `server.publicURL`; it is accepted only
//! when the result stays on the same origin. Control characters and backslashes are
//! refused outright: browsers strip tabs and newlines and read `\` as `/`, which is how
//! `/%09/evil.example` used to become `//evil.example`.

use url::{Position, Url};

/// Where to land when the requested place is refused (or none was asked for).
pub const HOME: &str = "/";

/// `requested` as a path on this site (path, query and fragment), or [`HOME`].
pub fn safe_return_to(public_url: &str, requested: Option<&str>) -> String {
    requested
        .and_then(|r| on_this_site(public_url, r))
        .unwrap_or_else(|| HOME.to_string())
}

fn on_this_site(public_url: &str, requested: &str) -> Option<String> {
    if !requested.starts_with('/') || requested.chars().any(|c| c.is_control() || c == '\\') {
        return None;
    }
    let site = Url::parse(public_url).ok()?;
    let joined = site.join(requested).ok()?;
    if joined.origin() != site.origin() {
        return None;
    }
    let local = &joined[Position::BeforePath..];
    // A path that normalises to `//host` would be read as another site.
    (local.starts_with('/') && !local.starts_with("//")).then(|| local.to_string())
}

#[cfg(test)]
mod tests {
    use super::{safe_return_to, HOME};

    const SITE: &str = "https://pins.example.com";

    #[test]
    fn local_paths_are_kept() {
        for (requested, lands) in [
            ("/console/pins?org=x", "/console/pins?org=x"),
            ("/", "/"),
            ("/a/../b", "/b"),
            ("/%2F%2Fevil.example", "/%2F%2Fevil.example"),
            ("/pins#top", "/pins#top"),
        ] {
            assert_eq!(
                safe_return_to(SITE, Some(requested)),
                lands,
                "{requested:?}"
            );
        }
        assert_eq!(safe_return_to(SITE, None), HOME);
    }

    #[test]
    fn known_bypasses_land_home() {
        for evil in [
            "/\t/evil.example",
            "/\n/evil.example",
            "/\r\n/evil.example",
            "/\u{0}/evil.example",
            "/\u{7f}/evil.example",
            "/\u{85}/evil.example",
            "//evil.example",
            "///evil.example",
            "/\\evil.example",
            "\\\\evil.example",
            "/.//evil.example",
            "/./../..//evil.example",
            " //evil.example",
            "https://evil.example/",
            "http:evil.example",
            "https:/evil.example",
            "javascript:alert(1)",
            "data:text/html,x",
            "evil.example",
            "",
        ] {
            assert_eq!(safe_return_to(SITE, Some(evil)), HOME, "{evil:?}");
        }
    }

    #[test]
    fn an_unparsable_public_url_refuses_everything() {
        assert_eq!(safe_return_to("not a url", Some("/pins")), HOME);
    }
}
