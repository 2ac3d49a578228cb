//! Keeps `packaging/anchorage.yaml.example` from drifting: it must
//! load to exactly the defaults, name every key and every variable, and its
//! commented-out snippets must work.

use std::path::Path;

use serde_json::Value;

use super::env::leaves;
use super::tests::config;
use super::*;

const EXAMPLE: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/packaging/anchorage.yaml.example"
));

#[test]
fn example_file_loads_to_the_defaults() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("packaging/anchorage.yaml.example");
    let loaded = load(&ConfigSource {
        file: Some(path),
        ..Default::default()
    })
    .unwrap();
    assert_eq!(loaded.config, Config::default());
    assert!(loaded.warnings.is_empty());
}

#[test]
fn example_file_lists_every_key_and_env_name() {
    let example: Value = serde_yaml_ng::from_str(EXAMPLE).unwrap();
    let defaults = serde_json::to_value(Config::default()).unwrap();
    for (key, _) in leaves(&defaults) {
        let present = key
            .split('.')
            .try_fold(&example, |node, seg| node.get(seg))
            .is_some();
        assert!(present, "{key} is missing from anchorage.yaml.example");
        let name = env_name(&key);
        assert!(
            EXAMPLE.contains(&format!(" {name}\n")),
            "{name} is missing from anchorage.yaml.example"
        );
    }
}

#[test]
fn example_signing_keys_snippets_load() {
    let line = EXAMPLE.lines().find_map(|l| {
        l.trim()
            .strip_prefix("#   ANCHORAGE_AUTH__API_TOKEN__SIGNING_KEYS=")
    });
    let json = line.expect("env example present").trim_matches('\'');
    let from_env = config(None, &[("ANCHORAGE_AUTH__API_TOKEN__SIGNING_KEYS", json)]);
    let item = EXAMPLE
        .lines()
        .find_map(|l| l.trim().strip_prefix("#   - "))
        .expect("YAML example present");
    let from_yaml = config(
        Some(&format!("auth: {{apiToken: {{signingKeys: [{item}]}}}}")),
        &[],
    );
    let want = SigningKey {
        id: "k1".into(),
        path: "/etc/anchorage/keys/k1".into(),
        primary: true,
    };
    assert_eq!(
        from_env.auth.api_token.signing_keys,
        from_yaml.auth.api_token.signing_keys
    );
    assert_eq!(from_yaml.auth.api_token.signing_keys, [want]);
}
