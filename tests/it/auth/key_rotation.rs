//! The deploy guide's key rotation, step by step, across two `serve` processes
//! restarted one after the other (as a rolling restart does): before step 3 every token
//! minted so far verifies on both nodes at every moment; after it, an old-key token is
//! refused naming its kid; and the compromise path revokes every token of a key.

use std::{
    path::{Path, PathBuf},
    process::{Child, Output, Stdio},
    time::{Duration, Instant},
};

use serde_json::{json, Value};
use tempfile::TempDir;

use crate::harness::TestDb;

/// A `serve` process; killed on drop.
struct Node {
    child: Child,
    base: String,
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The config every command of this test shares, as environment variables.
fn env(db: &TestDb, keys: &Value) -> Vec<(String, String)> {
    vec![
        ("ANCHORAGE_POSTGRES__DSN".into(), db.app_dsn()),
        (
            "ANCHORAGE_AUTH__API_TOKEN__SIGNING_KEYS".into(),
            keys.to_string(),
        ),
        (
            "ANCHORAGE_AUTH__AUTHENTIK__ISSUER".into(),
            "https://auth.example.com/application/o/anchorage/".into(),
        ),
        (
            "ANCHORAGE_AUTH__AUTHENTIK__CLIENT_ID".into(),
            "anchorage".into(),
        ),
        (
            "ANCHORAGE_AUTH__AUTHENTIK__AUDIENCE".into(),
            "anchorage".into(),
        ),
        ("ANCHORAGE_IPFS__RPC".into(), "http://127.0.0.1:9".into()),
        ("RUST_LOG".into(), "warn".into()),
    ]
}

async fn start(db: &TestDb, keys: &Value, name: &str, port: u16, log: &Path) -> Node {
    let child = crate::harness::bin::anchorage()
        .arg("serve")
        .envs(env(db, keys))
        .env("ANCHORAGE_CLUSTER__NODE_ID", name)
        .env("ANCHORAGE_SERVER__LISTEN", format!("127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::from(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(log)
                .unwrap(),
        ))
        .spawn()
        .unwrap();
    let node = Node {
        child,
        base: format!("http://127.0.0.1:{port}"),
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(res) = reqwest::get(format!("{}/v1/health", node.base)).await {
            if res.status().is_success() {
                return node;
            }
        }
        assert!(
            Instant::now() < deadline,
            "{name} did not start:\n{}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn cli(db: &TestDb, keys: &Value, args: &[&str]) -> Output {
    crate::harness::bin::anchorage()
        .args(args)
        .envs(env(db, keys))
        .output()
        .unwrap()
}

/// `anchorage admin mint-token` as the deploy guide writes it, with `keys` as config.
fn mint(db: &TestDb, keys: &Value) -> String {
    let out = cli(
        db,
        keys,
        &[
            "admin",
            "mint-token",
            "--issuer",
            "https://auth.example.com/application/o/anchorage/",
            "--audience",
            "anchorage",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// Status and error details of a sysadmin call with `token` on `node`.
async fn call(node: &Node, token: &str) -> (u16, String) {
    let res = reqwest::Client::new()
        .get(format!("{}/v1/admin/nodes", node.base))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    let body: Value = res.json().await.unwrap_or(Value::Null);
    (
        status,
        body["error"]["details"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
    )
}

async fn all_verify(nodes: &[&Node], tokens: &[String], moment: &str) {
    for node in nodes {
        for (i, token) in tokens.iter().enumerate() {
            let (status, details) = call(node, token).await;
            assert_eq!(
                status, 200,
                "{moment}: token {i} on {}: {details}",
                node.base
            );
        }
    }
}

fn entry(id: &str, path: &Path, primary: bool) -> Value {
    match primary {
        true => json!({"id": id, "path": path, "primary": true}),
        false => json!({"id": id, "path": path}),
    }
}

#[tokio::test]
async fn the_three_step_rotation_never_refuses_a_live_token_and_a_key_can_be_revoked() {
    let db = TestDb::migrated().await;
    let dir = TempDir::new().unwrap();
    let old: PathBuf = dir.path().join("jwt.key");
    crate::harness::app::seed_key_file(&old);
    let log = dir.path().join("serve.log");
    let (port_a, port_b) = (free_port(), free_port());
    let steady = json!([entry("2026-04", &old, true)]);
    let mut a = start(&db, &steady, "anchor-1", port_a, &log).await;
    let mut b = start(&db, &steady, "anchor-2", port_b, &log).await;
    let mut tokens = vec![mint(&db, &steady)];
    all_verify(&[&a, &b], &tokens, "steady state").await;

    // Step 1: a new key, verify-only, rolled out one node at a time.
    let new = dir.path().join("jwt.key.2026-10");
    let out = cli(
        &db,
        &steady,
        &[
            "admin",
            "rotate-signing-key",
            "--id",
            "2026-10",
            "--out",
            new.to_str().unwrap(),
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed: Value =
        serde_yaml_ng::from_str::<serde_json::Value>(&String::from_utf8_lossy(&out.stdout))
            .unwrap();
    assert_eq!(printed[0]["id"], "2026-10");
    assert!(
        printed[0].get("primary").is_none(),
        "step 1 adds a verify-only key: {printed}"
    );
    let staged = json!([entry("2026-04", &old, true), printed[0].clone()]);
    drop(a);
    a = start(&db, &staged, "anchor-1", port_a, &log).await;
    tokens.push(mint(&db, &staged));
    all_verify(&[&a, &b], &tokens, "step 1, one node restarted").await;
    drop(b);
    b = start(&db, &staged, "anchor-2", port_b, &log).await;
    all_verify(&[&a, &b], &tokens, "step 1 done").await;

    // Step 2: flip primary, one node at a time; new tokens carry the new kid.
    let flipped = json!([entry("2026-04", &old, false), entry("2026-10", &new, true)]);
    drop(a);
    a = start(&db, &flipped, "anchor-1", port_a, &log).await;
    tokens.push(mint(&db, &flipped));
    all_verify(&[&a, &b], &tokens, "step 2, one node restarted").await;
    drop(b);
    b = start(&db, &flipped, "anchor-2", port_b, &log).await;
    all_verify(&[&a, &b], &tokens, "step 2 done").await;

    // Step 3: drop the retired key; its stragglers are refused naming their kid.
    let retired = json!([entry("2026-10", &new, true)]);
    drop(a);
    a = start(&db, &retired, "anchor-1", port_a, &log).await;
    let (status, details) = call(&a, &tokens[0]).await;
    assert_eq!(status, 401);
    assert!(
        details.contains("token: unknown kid \"2026-04\""),
        "{details}"
    );
    all_verify(&[&a, &b], &tokens[2..], "step 3, new-key token").await;

    // Compromise: every token of the new key so far is refused, on both nodes.
    let out = cli(
        &db,
        &retired,
        &["admin", "revoke-token", "--kid", "2026-10"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for node in [&a, &b] {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let (status, details) = call(node, &tokens[2]).await;
            if status == 401 {
                assert!(details.contains("key \"2026-10\" was revoked"), "{details}");
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{} still accepts the revoked key's token",
                node.base
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    // A token minted after the cutoff works.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let fresh = mint(&db, &retired);
    all_verify(&[&a, &b], &[fresh], "after the cutoff").await;
}
