//! Pin requests as the Pinning Services API describes them, validated at the edge.

use std::collections::BTreeMap;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize, Serializer};

use super::cid::Cid;
use crate::{
    error::{Error, Result},
    ids::RequestId,
};

/// Longest pin name, in characters.
pub const MAX_NAME_CHARS: usize = 255;
/// Most origins a request may carry.
pub const MAX_ORIGINS: usize = 20;
/// Most meta entries a request may carry.
pub const MAX_META_ENTRIES: usize = 1000;
/// Longest meta key or value we keep, in characters (the spec sets no limit; a cap keeps
/// one request from storing megabytes).
pub const MAX_META_TEXT_CHARS: usize = 2048;

crate::text_enum! {
    /// The four statuses the spec allows; nothing else ever leaves the API.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
    #[serde(rename_all = "lowercase")]
    pub enum PinState ("status") {
        Queued = "queued",
        Pinning = "pinning",
        Pinned = "pinned",
        Failed = "failed",
    }
}

/// The `Pin` object as a client sends it.
#[derive(Debug, Deserialize)]
pub struct PinBody {
    pub cid: Option<serde_json::Value>,
    pub name: Option<serde_json::Value>,
    pub origins: Option<serde_json::Value>,
    pub meta: Option<serde_json::Value>,
}

/// A validated pin request.
#[derive(Debug, Clone)]
pub struct PinSpec {
    pub cid: Cid,
    pub name: Option<String>,
    pub origins: Vec<String>,
    pub meta: BTreeMap<String, String>,
}

impl PinSpec {
    /// Validates a request body. Every problem is a 400 naming the field.
    pub fn from_body(body: PinBody) -> Result<Self> {
        let cid = match body.cid {
            Some(serde_json::Value::String(s)) => Cid::parse(&s)?,
            Some(serde_json::Value::Null) | None => {
                return Err(Error::BadRequest("pin.cid is required".into()))
            }
            Some(_) => return Err(Error::BadRequest("pin.cid must be a string".into())),
        };
        let name = match body.name {
            None | Some(serde_json::Value::Null) => None,
            Some(serde_json::Value::String(s)) => Some(validate_name(s)?),
            Some(_) => return Err(Error::BadRequest("pin.name must be a string".into())),
        };
        let origins = match body.origins {
            None | Some(serde_json::Value::Null) => Vec::new(),
            Some(serde_json::Value::Array(items)) => validate_origins(items)?,
            Some(_) => {
                return Err(Error::BadRequest(
                    "pin.origins must be an array of multiaddrs".into(),
                ))
            }
        };
        let meta = match body.meta {
            None | Some(serde_json::Value::Null) => BTreeMap::new(),
            Some(value) => parse_meta(value, "pin.meta")?,
        };
        Ok(Self {
            cid,
            name,
            origins,
            meta,
        })
    }
}

fn validate_name(name: String) -> Result<String> {
    let chars = name.chars().count();
    if chars > MAX_NAME_CHARS {
        return Err(Error::BadRequest(format!(
            "pin.name is {chars} characters; at most {MAX_NAME_CHARS} are allowed"
        )));
    }
    refuse_control_chars("pin.name", &name)?;
    Ok(name)
}

/// Refuses text with a control character (NUL, escapes, line breaks, DEL, C1): Postgres
/// rejects NUL outright, and the rest would reach terminals and logs of whoever lists
/// the pin.
pub fn refuse_control_chars(field: &str, text: &str) -> Result<()> {
    match text.chars().find(|c| c.is_control()) {
        Some(c) => Err(Error::BadRequest(format!(
            "{field} must not contain control characters (found U+{:04X})",
            c as u32
        ))),
        None => Ok(()),
    }
}

fn validate_origins(items: Vec<serde_json::Value>) -> Result<Vec<String>> {
    if items.len() > MAX_ORIGINS {
        return Err(Error::BadRequest(format!(
            "pin.origins has {} entries; at most {MAX_ORIGINS} are allowed",
            items.len()
        )));
    }
    let mut out: Vec<String> = Vec::with_capacity(items.len());
    for item in items {
        let serde_json::Value::String(text) = item else {
            return Err(Error::BadRequest(
                "pin.origins must contain only strings".into(),
            ));
        };
        let addr: multiaddr::Multiaddr = text.parse().map_err(|e| {
            Error::BadRequest(format!(
                "pin.origins: '{text}' is not a valid multiaddr: {e}"
            ))
        })?;
        let normalised = addr.to_string();
        if out.contains(&normalised) {
            return Err(Error::BadRequest(format!(
                "pin.origins lists '{text}' twice"
            )));
        }
        out.push(normalised);
    }
    Ok(out)
}

/// Parses a `meta` object: string keys to string values, at most 1000 entries.
pub fn parse_meta(value: serde_json::Value, field: &str) -> Result<BTreeMap<String, String>> {
    let serde_json::Value::Object(map) = value else {
        return Err(Error::BadRequest(format!(
            "{field} must be a JSON object of strings"
        )));
    };
    if map.len() > MAX_META_ENTRIES {
        return Err(Error::BadRequest(format!(
            "{field} has {} entries; at most {MAX_META_ENTRIES} are allowed",
            map.len()
        )));
    }
    let mut out = BTreeMap::new();
    for (k, v) in map {
        let serde_json::Value::String(v) = v else {
            return Err(Error::BadRequest(format!("{field}.{k} must be a string")));
        };
        if k.chars().count() > MAX_META_TEXT_CHARS || v.chars().count() > MAX_META_TEXT_CHARS {
            return Err(Error::BadRequest(format!(
                "{field}.{k}: keys and values are limited to {MAX_META_TEXT_CHARS} characters"
            )));
        }
        refuse_control_chars(&format!("{field} keys"), &k)?;
        refuse_control_chars(&format!("{field}.{k}"), &v)?;
        out.insert(k, v);
    }
    Ok(out)
}

/// A stored pin request.
#[derive(Debug, Clone)]
pub struct PinRecord {
    pub id: RequestId,
    pub cid: Cid,
    pub name: Option<String>,
    pub origins: Vec<String>,
    pub meta: BTreeMap<String, String>,
    pub status: PinState,
    pub info: BTreeMap<String, String>,
    pub created: DateTime<Utc>,
    /// Nodes that hold or will hold the CID (its wanted placements), for delegates.
    pub holders: Vec<uuid::Uuid>,
}

/// `PinStatus` as the API returns it.
#[derive(Debug, Clone, Serialize)]
pub struct PinStatusView {
    pub requestid: RequestId,
    pub status: PinState,
    #[serde(serialize_with = "millis")]
    pub created: DateTime<Utc>,
    pub pin: PinView,
    pub delegates: Vec<String>,
    pub info: BTreeMap<String, String>,
}

/// `Pin` as the API returns it.
#[derive(Debug, Clone, Serialize)]
pub struct PinView {
    pub cid: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub origins: Vec<String>,
    pub meta: BTreeMap<String, String>,
}

impl PinStatusView {
    /// The response for `record` with `delegates`.
    pub fn new(record: PinRecord, delegates: Vec<String>) -> Self {
        Self {
            requestid: record.id,
            status: record.status,
            created: record.created,
            pin: PinView {
                cid: record.cid.given().to_string(),
                name: record.name,
                origins: record.origins,
                meta: record.meta,
            },
            delegates,
            info: record.info,
        }
    }
}

/// `PinResults`.
#[derive(Debug, Serialize)]
pub struct PinResults {
    pub count: i64,
    pub results: Vec<PinStatusView>,
}

/// RFC 3339 with exactly millisecond precision and `Z`, as stored.
pub fn format_created(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn millis<S: Serializer>(t: &DateTime<Utc>, s: S) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_str(&format_created(t))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn body(v: serde_json::Value) -> PinBody {
        serde_json::from_value(v).unwrap()
    }

    const CID: &str = "bafybeierhgbz4zp2x2u67urqrgfnrnlukciupzenpqpipiz5nwtq7uxpx4";

    #[test]
    fn a_full_valid_pin() {
        let spec = PinSpec::from_body(body(json!({
            "cid": CID, "name": "n", "origins": ["/ip4/1.2.3.4/tcp/4001/p2p/12D3KooWGRUVh1S3jiwVmGzeoWfxFcNn7MWzL9VXpdKrUZyWH8Qd"],
            "meta": {"app": "x"}
        })))
        .unwrap();
        assert_eq!(spec.name.as_deref(), Some("n"));
        assert_eq!(spec.origins.len(), 1);
        assert_eq!(spec.meta["app"], "x");
    }

    #[test]
    fn limits_and_types_are_enforced() {
        let cases = [
            json!({}),
            json!({"cid": 5}),
            json!({"cid": "nope"}),
            json!({"cid": CID, "name": "x".repeat(256)}),
            json!({"cid": CID, "name": 3}),
            json!({"cid": CID, "origins": "one"}),
            json!({"cid": CID, "origins": ["not a multiaddr"]}),
            json!({"cid": CID, "origins": vec!["/ip4/1.2.3.4/tcp/1"; 21]}),
            json!({"cid": CID, "origins": ["/ip4/1.2.3.4/tcp/1", "/ip4/1.2.3.4/tcp/1"]}),
            json!({"cid": CID, "meta": ["a"]}),
            json!({"cid": CID, "meta": {"a": 1}}),
        ];
        for case in cases {
            let err = PinSpec::from_body(body(case.clone())).unwrap_err();
            assert!(matches!(err, Error::BadRequest(_)), "{case}: {err}");
        }
        // 255 characters (not bytes) is fine.
        PinSpec::from_body(body(json!({"cid": CID, "name": "é".repeat(255)}))).unwrap();
        let many: serde_json::Map<String, serde_json::Value> =
            (0..1001).map(|i| (format!("k{i}"), json!("v"))).collect();
        assert!(PinSpec::from_body(body(json!({"cid": CID, "meta": many}))).is_err());
    }

    #[test]
    fn created_has_millisecond_precision() {
        let t = DateTime::parse_from_rfc3339("2020-07-27T17:32:28.276123Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(format_created(&t), "2020-07-27T17:32:28.276Z");
        let t = DateTime::parse_from_rfc3339("2020-07-27T17:32:28Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(format_created(&t), "2020-07-27T17:32:28.000Z");
    }
}
