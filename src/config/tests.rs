//! Loader tests. None reads or changes the process environment: variables
//! are passed in [`ConfigSource::env`].

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{json, Value};

use super::load::layer;
use super::*;
use crate::error::Error;

pub(super) fn load_with(
    yaml: Option<&str>,
    env: &[(&str, &str)],
    overrides: &[(&str, Value)],
) -> Result<Loaded, Error> {
    let src = ConfigSource {
        file: None,
        env: env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        overrides: overrides
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect(),
    };
    layer(yaml.map(|text| (Path::new("test.yaml"), text)), &src)
}

pub(super) fn config(yaml: Option<&str>, env: &[(&str, &str)]) -> Config {
    load_with(yaml, env, &[]).expect("loads").config
}

fn error(yaml: Option<&str>, env: &[(&str, &str)]) -> String {
    load_with(yaml, env, &[]).expect_err("fails").to_string()
}

#[test]
fn precedence_is_default_file_env_flag() {
    let yaml = "server: {listen: '0.0.0.1:1', maxBodyBytes: 100}\ncluster: {nodeID: from-file}";
    let env = [
        ("ANCHORAGE_SERVER__LISTEN", "0.0.0.2:2"),
        ("ANCHORAGE_CLUSTER__NODE_ID", "from-env"),
    ];
    let flag = [("server.listen", json!("0.0.0.3:3"))];

    assert_eq!(config(None, &[]).server.listen, "127.0.0.1:8080");
    assert_eq!(config(Some(yaml), &[]).server.listen, "0.0.0.1:1");
    let c = config(Some(yaml), &env);
    assert_eq!(
        (c.server.listen.as_str(), c.cluster.node_id.as_str()),
        ("0.0.0.2:2", "from-env")
    );
    let c = load_with(Some(yaml), &env, &flag).unwrap().config;
    assert_eq!(c.server.listen, "0.0.0.3:3");
    // Keys no higher layer touches keep the lower layer's value.
    assert_eq!(
        (c.server.max_body_bytes, c.cluster.node_id.as_str()),
        (100, "from-env")
    );
    assert_eq!(c.ipfs.rpc, "http://127.0.0.1:5001");
}

#[test]
fn unknown_yaml_key_is_named() {
    assert_eq!(
        error(Some("server:\n  listn: 0.0.0.0:80"), &[])
            .split(", expected")
            .next()
            .unwrap(),
        "configuration: server.listn: unknown field `listn`"
    );
    assert!(error(Some("servr: {}"), &[]).starts_with("configuration: servr: unknown field"));
    let err = error(
        Some("auth: {apiToken: {signingKeys: [{id: k, path: /k, primary: true, x: 1}]}}"),
        &[],
    );
    assert!(
        err.starts_with("configuration: auth.apiToken.signingKeys[0].x: unknown field"),
        "{err}"
    );
}

#[test]
fn bad_yaml_value_names_key() {
    assert_eq!(
        error(Some("cluster: {minReplicas: x}"), &[]),
        r#"configuration: cluster.minReplicas: invalid type: string "x", expected u32"#
    );
    let err = error(Some("cluster: {backend: mysql}"), &[]);
    assert!(
        err.starts_with("configuration: cluster.backend: unknown variant `mysql`"),
        "{err}"
    );
    let err = error(Some("log: {format: xml}"), &[]);
    assert!(
        err.starts_with("configuration: log.format: unknown variant `xml`"),
        "{err}"
    );
    let err = error(Some("server: {metrics: {allowCIDRs: [10.0.0.0/33]}}"), &[]);
    assert!(
        err.starts_with("configuration: server.metrics.allowCIDRs[0]: "),
        "{err}"
    );
    let err = error(Some("server: 5"), &[]);
    assert!(
        err.starts_with("configuration: server: expected a mapping"),
        "{err}"
    );
}

#[test]
fn bad_env_value_names_key_and_variable() {
    assert_eq!(
        error(None, &[("ANCHORAGE_IPFS__ALLOW_PRIVATE_ORIGINS", "yes")]),
        "configuration: ipfs.allowPrivateOrigins: ANCHORAGE_IPFS__ALLOW_PRIVATE_ORIGINS: expected true or false, got \"yes\""
    );
    // Type errors found while deserializing still say which variable set the key.
    let err = error(None, &[("ANCHORAGE_CLUSTER__MIN_REPLICAS", "-1")]);
    assert!(
        err.starts_with("configuration: cluster.minReplicas: invalid value"),
        "{err}"
    );
    assert!(
        err.ends_with("(set by ANCHORAGE_CLUSTER__MIN_REPLICAS)"),
        "{err}"
    );
    let err = error(None, &[("ANCHORAGE_CLUSTER__HEARTBEAT", "often")]);
    assert!(
        err.contains("cluster.heartbeat: invalid duration")
            && err.contains("ANCHORAGE_CLUSTER__HEARTBEAT"),
        "{err}"
    );
}

#[test]
fn env_sets_camel_case_key() {
    assert!(
        config(None, &[("ANCHORAGE_IPFS__ALLOW_PRIVATE_ORIGINS", "true")])
            .ipfs
            .allow_private_origins
    );
}

#[test]
fn env_sets_acronym_key_from_comma_separated_list() {
    let c = config(
        None,
        &[(
            "ANCHORAGE_SERVER__METRICS__ALLOW_CIDRS",
            " 10.1.0.0/16, fd00::/8 ,",
        )],
    );
    let want: Vec<ipnet::IpNet> = vec!["10.1.0.0/16".parse().unwrap(), "fd00::/8".parse().unwrap()];
    assert_eq!(c.server.metrics.allow_cidrs, want);
    // An empty variable is an empty list, which disables /metrics.
    assert!(
        config(None, &[("ANCHORAGE_SERVER__METRICS__ALLOW_CIDRS", "")])
            .server
            .metrics
            .allow_cidrs
            .is_empty()
    );
}

#[test]
fn env_sets_signing_keys_as_json() {
    let json = r#"[{"id":"k0","path":"/keys/k0"},{"id":"k1","path":"/keys/k1","primary":true}]"#;
    let c = config(None, &[("ANCHORAGE_AUTH__API_TOKEN__SIGNING_KEYS", json)]);
    let keys = &c.auth.api_token.signing_keys;
    assert_eq!(keys.len(), 2);
    assert_eq!(
        keys[0],
        SigningKey {
            id: "k0".into(),
            path: "/keys/k0".into(),
            primary: false
        }
    );
    assert_eq!(
        c.auth.api_token.primary_key().map(|k| k.id.as_str()),
        Some("k1")
    );
}

#[test]
fn unknown_anchorage_env_is_a_warning() {
    let loaded = load_with(None, &[("ANCHORAGE_FOO", "1"), ("HOME", "/root")], &[]).unwrap();
    assert_eq!(loaded.warnings.len(), 1);
    assert!(
        loaded.warnings[0].starts_with("ANCHORAGE_FOO "),
        "{:?}",
        loaded.warnings
    );
}

#[test]
fn reserved_env_is_neither_read_nor_warned() {
    let env: Vec<(&str, &str)> = RESERVED_ENV.iter().map(|name| (*name, "x")).collect();
    let loaded = load_with(None, &env, &[]).unwrap();
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    assert_eq!(loaded.config, Config::default());
}

#[test]
fn durations_parse_from_yaml_and_env() {
    let c = config(
        Some("auth: {session: {ttl: 24h}}"),
        &[("ANCHORAGE_IPFS__REQUEST_TIMEOUT", "30s")],
    );
    assert_eq!(c.auth.session.ttl, Duration::from_secs(24 * 3600));
    assert_eq!(c.ipfs.request_timeout, Duration::from_secs(30));
    let yaml = serde_yaml_ng::to_string(&Config::default()).unwrap();
    assert!(
        yaml.contains("defaultTTL: 24h")
            && yaml.contains("maxTTL: 9480h")
            && yaml.contains("pinStallTimeout: 2m"),
        "{yaml}"
    );
}

#[test]
fn empty_sections_and_empty_env_keep_or_unset() {
    // A section whose keys are all commented out is null: keep the defaults.
    assert_eq!(
        config(Some("server:\n  # listen: x\nauth:\n"), &[]),
        Config::default()
    );
    let yaml = "server: {publicURL: https://pin.example.com}";
    assert_eq!(
        config(Some(yaml), &[]).server.public_url.as_deref(),
        Some("https://pin.example.com")
    );
    // An empty variable unsets an optional key.
    assert_eq!(
        config(Some(yaml), &[("ANCHORAGE_SERVER__PUBLIC_URL", "")])
            .server
            .public_url,
        None
    );
}

#[test]
fn debug_and_summary_never_show_the_dsn_password() {
    let c = config(
        None,
        &[
            (
                "ANCHORAGE_POSTGRES__DSN",
                "postgres://app:hunter2@db:5432/anchorage",
            ),
            (
                "ANCHORAGE_POSTGRES__MIGRATION_DSN",
                "postgres://owner:s3cret@db/anchorage",
            ),
            ("ANCHORAGE_CLUSTER__BACKEND", "nats"),
            ("ANCHORAGE_NATS__URL", "nats://n:natspw@nats:4222"),
        ],
    );
    assert_eq!(
        c.postgres.dsn.expose(),
        "postgres://app:hunter2@db:5432/anchorage"
    );
    let debug = format!("{c:?} {c:#?}");
    let summary = c.redacted_summary();
    for secret in ["hunter2", "s3cret"] {
        assert!(
            !debug.contains(secret) && !summary.contains(secret),
            "{secret} leaked"
        );
    }
    assert!(!summary.contains("natspw"));
    assert!(
        summary.contains("postgres.dsn=postgres://app:***@db:5432/anchorage"),
        "{summary}"
    );
}

#[test]
fn validate_failures_name_keys() {
    // The per-check cases are in validate.rs; here, through the loader.
    let err = error(Some("cluster: {minReplicas: 3, maxReplicas: 2}"), &[]);
    assert!(
        err.starts_with("configuration: cluster.minReplicas: must not exceed"),
        "{err}"
    );
    let err = error(None, &[("ANCHORAGE_CLUSTER__MIN_REPLICAS", "0")]);
    assert_eq!(
        err,
        "configuration: cluster.minReplicas: must be at least 1 (set by ANCHORAGE_CLUSTER__MIN_REPLICAS)"
    );
}

#[test]
fn token_claims_fall_back_to_authentik_then_anchorage() {
    assert_eq!(
        (
            Config::default().token_issuer(),
            Config::default().token_audience()
        ),
        ("anchorage", "anchorage")
    );
    let c = config(
        Some("auth: {authentik: {issuer: https://id.example.com/o/a/, audience: aud}}"),
        &[],
    );
    assert_eq!(
        (c.token_issuer(), c.token_audience()),
        ("https://id.example.com/o/a/", "aud")
    );
    let c = config(
        Some("auth: {authentik: {issuer: i}, apiToken: {issuer: mine}}"),
        &[],
    );
    assert_eq!(c.token_issuer(), "mine");
}

#[test]
fn missing_explicit_file_and_unknown_override_are_errors() {
    let src = ConfigSource {
        file: Some(PathBuf::from("/nonexistent/anchorage.yaml")),
        ..Default::default()
    };
    let err = load(&src).unwrap_err().to_string();
    assert!(
        err.starts_with("configuration: /nonexistent/anchorage.yaml: cannot read"),
        "{err}"
    );
    let err = load_with(None, &[], &[("server.listn", json!("x"))])
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("configuration: server.listn: unknown"),
        "{err}"
    );
}
