//! `GET /pins` query parameters, parsed strictly: every bad value is a 400 naming it.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use super::{
    cid::Cid,
    model::{parse_meta, refuse_control_chars, PinState, MAX_NAME_CHARS},
};
use crate::error::{Error, Result};

/// Default and largest page size.
pub const DEFAULT_LIMIT: i64 = 10;
pub const MAX_LIMIT: i64 = 1000;
/// Most CIDs one `cid` filter may list.
pub const MAX_CIDS: usize = 10;

/// How `name` is matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum NameMatch {
    #[default]
    Exact,
    Iexact,
    Partial,
    Ipartial,
}

/// A parsed listing request.
#[derive(Debug, Clone, PartialEq)]
pub struct ListQuery {
    /// Canonical CIDs.
    pub cids: Vec<String>,
    pub name: Option<String>,
    pub name_match: NameMatch,
    /// The statuses to include (never empty: the default is applied here).
    pub statuses: Vec<PinState>,
    pub before: Option<DateTime<Utc>>,
    pub after: Option<DateTime<Utc>>,
    pub limit: i64,
    pub meta: BTreeMap<String, String>,
}

impl ListQuery {
    /// Parses a raw query string (`a=1&b=2`, percent-encoded).
    ///
    /// When `status` is absent the spec says to default to `pinned`. We read that as the
    /// default for a bare listing; once a `cid`, `name` or `meta` filter is given the
    /// caller is looking for specific pins, so every status matches (a search by name
    /// finds a pin that is still queued). See docs/api.md.
    pub fn parse(raw: &str) -> Result<Self> {
        let pairs: Vec<(String, String)> = serde_urlencoded::from_str(raw)
            .map_err(|e| Error::BadRequest(format!("invalid query string: {e}")))?;
        let mut q = ListQuery {
            cids: Vec::new(),
            name: None,
            name_match: NameMatch::Exact,
            statuses: Vec::new(),
            before: None,
            after: None,
            limit: DEFAULT_LIMIT,
            meta: BTreeMap::new(),
        };
        let mut seen: Vec<&str> = Vec::new();
        let mut status_given = false;
        for (key, value) in &pairs {
            let key = key.as_str();
            if [
                "cid", "name", "match", "status", "before", "after", "limit", "meta",
            ]
            .contains(&key)
            {
                if seen.contains(&key) {
                    return Err(Error::BadRequest(format!(
                        "'{key}' is given more than once; use one comma-separated value"
                    )));
                }
                seen.push(key);
            }
            match key {
                "cid" => q.cids = parse_cids(value)?,
                "name" => {
                    if value.chars().count() > MAX_NAME_CHARS {
                        return Err(Error::BadRequest(format!(
                            "name is longer than {MAX_NAME_CHARS} characters"
                        )));
                    }
                    refuse_control_chars("name", value)?;
                    q.name = Some(value.clone());
                }
                "match" => {
                    q.name_match = match value.as_str() {
                        "exact" => NameMatch::Exact,
                        "iexact" => NameMatch::Iexact,
                        "partial" => NameMatch::Partial,
                        "ipartial" => NameMatch::Ipartial,
                        other => {
                            return Err(Error::BadRequest(format!(
                            "unknown match '{other}' (expected exact, iexact, partial or ipartial)"
                        )))
                        }
                    }
                }
                "status" => {
                    status_given = true;
                    q.statuses = parse_statuses(value)?;
                }
                "before" => q.before = Some(parse_time("before", value)?),
                "after" => q.after = Some(parse_time("after", value)?),
                "limit" => q.limit = parse_limit(value)?,
                "meta" => {
                    let json: serde_json::Value = serde_json::from_str(value).map_err(|e| {
                        Error::BadRequest(format!("meta must be a URL-encoded JSON object: {e}"))
                    })?;
                    q.meta = parse_meta(json, "meta")?;
                }
                // Unknown parameters are ignored, as HTTP APIs conventionally do, so that
                // clients sending vendor extensions keep working.
                _ => {}
            }
        }
        if !status_given {
            q.statuses = if q.cids.is_empty() && q.name.is_none() && q.meta.is_empty() {
                vec![PinState::Pinned]
            } else {
                PinState::ALL.to_vec()
            };
        }
        Ok(q)
    }
}

fn parse_cids(value: &str) -> Result<Vec<String>> {
    let parts: Vec<&str> = value.split(',').map(str::trim).collect();
    if parts.iter().any(|p| p.is_empty()) {
        return Err(Error::BadRequest(
            "cid must be a comma-separated list of CIDs".into(),
        ));
    }
    if parts.len() > MAX_CIDS {
        return Err(Error::BadRequest(format!(
            "cid lists {} CIDs; at most {MAX_CIDS} are allowed",
            parts.len()
        )));
    }
    let mut out: Vec<String> = Vec::new();
    for part in parts {
        let canonical = Cid::parse(part)?.canonical().to_string();
        if !out.contains(&canonical) {
            out.push(canonical);
        }
    }
    Ok(out)
}

fn parse_statuses(value: &str) -> Result<Vec<PinState>> {
    let mut out = Vec::new();
    for part in value.split(',') {
        let state: PinState = part.trim().parse()?;
        if !out.contains(&state) {
            out.push(state);
        }
    }
    Ok(out)
}

fn parse_time(key: &str, value: &str) -> Result<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(value)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| {
            Error::BadRequest(format!(
                "{key} must be an RFC 3339 timestamp such as 2020-07-27T17:32:28.276Z, not '{value}'"
            ))
        })
}

fn parse_limit(value: &str) -> Result<i64> {
    match value.parse::<i64>() {
        Ok(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
        _ => Err(Error::BadRequest(format!(
            "limit must be an integer from 1 to {MAX_LIMIT}, not '{value}'"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const V0: &str = "QmY7Yh4UquoXHLPFo2XbhXkhBvFoPwmQUSa92pxnxjQuPU";
    const V1: &str = "bafybeierhgbz4zp2x2u67urqrgfnrnlukciupzenpqpipiz5nwtq7uxpx4";

    #[test]
    fn defaults() {
        let q = ListQuery::parse("").unwrap();
        assert_eq!(q.limit, 10);
        assert_eq!(q.statuses, vec![PinState::Pinned]);
        assert_eq!(q.name_match, NameMatch::Exact);
    }

    #[test]
    fn status_defaults_to_all_when_searching() {
        for raw in [
            format!("cid={V1}"),
            "name=x".into(),
            "meta=%7B%22a%22%3A%22b%22%7D".into(),
        ] {
            assert_eq!(
                ListQuery::parse(&raw).unwrap().statuses,
                PinState::ALL.to_vec(),
                "{raw}"
            );
        }
        // before/after/limit are paging, not searching.
        let q = ListQuery::parse("limit=5&before=2020-07-27T17:32:28.276Z").unwrap();
        assert_eq!(q.statuses, vec![PinState::Pinned]);
        let q = ListQuery::parse("name=x&status=failed").unwrap();
        assert_eq!(q.statuses, vec![PinState::Failed]);
    }

    #[test]
    fn cids_are_normalised_and_bounded() {
        let q = ListQuery::parse(&format!("cid={V0},{V1}")).unwrap();
        assert_eq!(q.cids, vec![V1.to_string()], "same CID twice collapses");
        let eleven = [V1; 11].join(",");
        assert!(ListQuery::parse(&format!("cid={eleven}")).is_err());
        assert!(ListQuery::parse("cid=").is_err());
        assert!(ListQuery::parse("cid=nope").is_err());
        assert!(ListQuery::parse(&format!("cid={V1},")).is_err());
    }

    #[test]
    fn bad_values_are_rejected() {
        for raw in [
            "limit=0",
            "limit=1001",
            "limit=ten",
            "limit=-1",
            "status=done",
            "status=pinned,",
            "status=",
            "match=fuzzy",
            "before=yesterday",
            "after=2020-07-27",
            "meta=notjson",
            "meta=%5B%5D",
            "meta=%7B%22a%22%3A1%7D",
            "limit=1&limit=2",
        ] {
            assert!(
                matches!(ListQuery::parse(raw), Err(Error::BadRequest(_))),
                "{raw}"
            );
        }
        assert!(ListQuery::parse(&format!("name={}", "a".repeat(256))).is_err());
    }

    #[test]
    fn good_values_parse() {
        let q = ListQuery::parse(
            "name=Foo&match=ipartial&status=queued,pinning&after=2020-07-27T17:32:28.276Z&limit=1000&meta=%7B%22app%22%3A%22x%22%7D&unknown=1",
        )
        .unwrap();
        assert_eq!(q.name.as_deref(), Some("Foo"));
        assert_eq!(q.name_match, NameMatch::Ipartial);
        assert_eq!(q.statuses, vec![PinState::Queued, PinState::Pinning]);
        assert_eq!(q.limit, 1000);
        assert_eq!(q.meta["app"], "x");
        assert!(q.after.is_some());
    }
}
