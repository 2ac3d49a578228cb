//! Mapping between dotted configuration keys and `ANCHORAGE_*` variables,
//! and typing of environment strings.
//!
//! `server.metrics.allowCIDRs` is `ANCHORAGE_SERVER__METRICS__ALLOW_CIDRS`:
//! segments are joined with `__` (a single `_` already separates words), and
//! a camelCase segment is split only where a lowercase letter or digit meets
//! an uppercase one, so acronyms stay whole (`clientID` → `CLIENT_ID`).

use serde_json::Value;

/// Prefix of every configuration variable.
pub const ENV_PREFIX: &str = "ANCHORAGE_";

/// Variables with the prefix that belong to client tooling (a `dev.env`
/// file) or to `anchorage dev` (where its IPFS shim is), not to the server: never
/// read as configuration, never warned about.
pub const RESERVED_ENV: [&str; 5] = [
    "ANCHORAGE_URL",
    "ANCHORAGE_ORG",
    "ANCHORAGE_TOKEN",
    "ANCHORAGE_ADMIN_TOKEN",
    "ANCHORAGE_DEV_SHIM",
];

/// The environment variable for a dotted key:
/// `"server.metrics.allowCIDRs"` → `"ANCHORAGE_SERVER__METRICS__ALLOW_CIDRS"`.
pub fn env_name(dotted_key: &str) -> String {
    let mut name = String::from(ENV_PREFIX);
    for (i, segment) in dotted_key.split('.').enumerate() {
        if i > 0 {
            name.push_str("__");
        }
        let mut prev: Option<char> = None;
        for c in segment.chars() {
            if c.is_ascii_uppercase()
                && prev.is_some_and(|p| p.is_ascii_lowercase() || p.is_ascii_digit())
            {
                name.push('_');
            }
            name.push(c.to_ascii_uppercase());
            prev = Some(c);
        }
    }
    name
}

/// Every leaf of a tree with its dotted key, in document order. A leaf is
/// anything but an object: lists (even lists of objects, like
/// `signingKeys`) are set whole.
pub fn leaves(tree: &Value) -> Vec<(String, &Value)> {
    fn walk<'a>(prefix: &str, node: &'a Value, out: &mut Vec<(String, &'a Value)>) {
        match node {
            Value::Object(map) => {
                for (key, child) in map {
                    let path = if prefix.is_empty() {
                        key.clone()
                    } else {
                        format!("{prefix}.{key}")
                    };
                    walk(&path, child, out);
                }
            }
            leaf => out.push((prefix.to_owned(), leaf)),
        }
    }
    let mut out = Vec::new();
    walk("", tree, &mut out);
    out
}

/// Types an environment string after the default value of its key.
///
/// - string or `null` (an optional value): the text as is; empty unsets an
///   optional value;
/// - number: a JSON number;
/// - bool: `true` or `false`;
/// - list: JSON when it starts with `[` (needed for lists of objects),
///   otherwise comma-separated items, trimmed, empties dropped (so an empty
///   variable is an empty list).
///
/// The error text says what was expected; the caller adds key and variable.
pub fn typed_value(raw: &str, default: &Value) -> Result<Value, String> {
    let trimmed = raw.trim();
    match default {
        Value::Null if trimmed.is_empty() => Ok(Value::Null),
        Value::Null | Value::String(_) => Ok(Value::String(raw.to_owned())),
        Value::Bool(_) => match trimmed {
            "true" => Ok(Value::Bool(true)),
            "false" => Ok(Value::Bool(false)),
            _ => Err(format!("expected true or false, got {raw:?}")),
        },
        Value::Number(_) => serde_json::from_str::<serde_json::Number>(trimmed)
            .map(Value::Number)
            .map_err(|_| format!("expected a number, got {raw:?}")),
        Value::Array(_) if trimmed.starts_with('[') => {
            serde_json::from_str(trimmed).map_err(|err| format!("invalid JSON list: {err}"))
        }
        Value::Array(_) => Ok(Value::Array(
            trimmed
                .split(',')
                .map(str::trim)
                .filter(|item| !item.is_empty())
                .map(|item| Value::String(item.to_owned()))
                .collect(),
        )),
        Value::Object(_) => {
            serde_json::from_str(trimmed).map_err(|err| format!("invalid JSON object: {err}"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use serde_json::json;

    #[test]
    fn env_name_keeps_acronyms_whole() {
        let cases = [
            (
                "server.metrics.allowCIDRs",
                "ANCHORAGE_SERVER__METRICS__ALLOW_CIDRS",
            ),
            (
                "auth.authentik.clientID",
                "ANCHORAGE_AUTH__AUTHENTIK__CLIENT_ID",
            ),
            ("postgres.migrationDSN", "ANCHORAGE_POSTGRES__MIGRATION_DSN"),
            (
                "auth.apiToken.defaultTTL",
                "ANCHORAGE_AUTH__API_TOKEN__DEFAULT_TTL",
            ),
            ("cluster.nodeID", "ANCHORAGE_CLUSTER__NODE_ID"),
            (
                "ipfs.publicDelegatesOnly",
                "ANCHORAGE_IPFS__PUBLIC_DELEGATES_ONLY",
            ),
            (
                "ipfs.allowPrivateOrigins",
                "ANCHORAGE_IPFS__ALLOW_PRIVATE_ORIGINS",
            ),
            ("server.publicURL", "ANCHORAGE_SERVER__PUBLIC_URL"),
        ];
        for (key, want) in cases {
            assert_eq!(env_name(key), want, "{key}");
        }
    }

    #[test]
    fn every_key_has_a_distinct_unambiguous_env_name() {
        let defaults = serde_json::to_value(Config::default()).unwrap();
        let mut seen = std::collections::HashSet::new();
        for (key, _) in leaves(&defaults) {
            let name = env_name(&key);
            assert!(seen.insert(name.clone()), "{key}: {name} is taken twice");
            assert!(
                !RESERVED_ENV.contains(&name.as_str()),
                "{key}: {name} is reserved"
            );
            // An acronym followed by a word ("CIDRList") would map to
            // "CIDRLIST"; only a plural "s" may follow an acronym.
            for segment in key.split('.') {
                let chars: Vec<char> = segment.chars().collect();
                for (i, w) in chars.windows(3).enumerate() {
                    let plural_s = w[2] == 's' && i + 3 == chars.len();
                    assert!(
                        !(w[0].is_ascii_uppercase()
                            && w[1].is_ascii_uppercase()
                            && w[2].is_ascii_lowercase())
                            || plural_s,
                        "{key}: acronym followed by a word in {segment:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn env_values_take_the_default_type() {
        assert_eq!(typed_value("x", &json!("d")).unwrap(), json!("x"));
        assert_eq!(typed_value("x", &Value::Null).unwrap(), json!("x"));
        assert_eq!(typed_value("", &Value::Null).unwrap(), Value::Null);
        assert_eq!(typed_value(" 16 ", &json!(1)).unwrap(), json!(16));
        assert_eq!(typed_value("true", &json!(false)).unwrap(), json!(true));
        assert!(typed_value("yes", &json!(false)).is_err());
        assert!(typed_value("ten", &json!(1)).is_err());
        assert_eq!(
            typed_value(" a, b ,,", &json!([])).unwrap(),
            json!(["a", "b"])
        );
        assert_eq!(typed_value("", &json!(["x"])).unwrap(), json!([]));
        assert_eq!(
            typed_value(r#"[{"id":"k"}]"#, &json!([])).unwrap(),
            json!([{"id": "k"}])
        );
    }
}
