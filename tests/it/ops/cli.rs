//! The `anchorage` binary's offline and database admin commands, run as a user would.

use std::{path::Path, process::Output};

use anchorage::auth::{
    keys::{KeySet, SigningKey},
    Role, Scope, TokenService,
};
use serde_json::json;
use tempfile::TempDir;

use crate::harness::TestDb;

/// Runs the binary with a clean ANCHORAGE_* environment plus `env`.
fn anchorage(args: &[&str], env: &[(&str, String)]) -> Output {
    let mut cmd = crate::harness::bin::anchorage();
    cmd.env("RUST_LOG", "warn");
    cmd.args(args)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())));
    cmd.output().expect("running anchorage")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn keys_env(path: &Path, kid: &str) -> (&'static str, String) {
    (
        "ANCHORAGE_AUTH__API_TOKEN__SIGNING_KEYS",
        json!([{ "id": kid, "path": path, "primary": true }]).to_string(),
    )
}

fn service(kid: &str, path: &Path) -> TokenService {
    let key = SigningKey::load(kid, path).unwrap();
    TokenService::new(
        KeySet::new(vec![key], Some(kid)).unwrap(),
        "anchorage",
        "anchorage",
    )
}

#[tokio::test]
async fn rotate_then_mint_verifies_with_the_products_verifier() {
    let dir = TempDir::new().unwrap();
    let key = dir.path().join("k1");
    let out = anchorage(
        &[
            "admin",
            "rotate-signing-key",
            "--id",
            "k1",
            "--out",
            key.to_str().unwrap(),
        ],
        &[],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("- id: \"k1\""), "{}", stdout(&out));
    assert!(stdout(&out).contains(&format!("path: {}", key.display())));
    // The printed entry is valid config, and verify-only (step 1 of a rotation).
    let entry: serde_yaml_ng::Value = serde_yaml_ng::from_str(&stdout(&out)).unwrap();
    assert_eq!(entry[0]["id"], serde_yaml_ng::Value::from("k1"));
    assert!(entry[0].get("primary").is_none(), "{}", stdout(&out));
    let again = anchorage(
        &[
            "admin",
            "rotate-signing-key",
            "--id",
            "k1",
            "--out",
            key.to_str().unwrap(),
        ],
        &[],
    );
    assert!(
        !again.status.success(),
        "an existing key file is never overwritten"
    );

    let org = anchorage::ids::OrgId::new();
    let out = anchorage(
        &[
            "admin",
            "mint-token",
            "--role",
            "member",
            "--org",
            &org.to_string(),
            "--user",
            "ci-bot",
            "--scope",
            "pin:read",
            "--ttl",
            "2h",
            "-v",
        ],
        &[
            keys_env(&key, "k1"),
            (
                "ANCHORAGE_POSTGRES__DSN",
                "postgres://nobody@127.0.0.1:9/none".into(),
            ),
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let jwt = stdout(&out).trim().to_string();
    assert_eq!(
        stdout(&out).lines().count(),
        1,
        "stdout holds the token alone"
    );
    assert_eq!(jwt.split('.').count(), 3);
    assert!(
        stderr(&out).contains("jti=tok_"),
        "-v prints metadata: {}",
        stderr(&out)
    );
    assert!(stderr(&out).contains("kid=k1"));

    let claims = service("k1", &key)
        .verify(&jwt)
        .expect("the product's verifier accepts it");
    assert_eq!(claims.org, Some(org));
    assert_eq!(claims.role, Role::Member);
    assert_eq!(claims.sub, "ci-bot");
    assert_eq!(claims.scopes, Some(vec![Scope::PinRead]));
    let ttl = claims.exp - claims.iat;
    assert_eq!(ttl, 7200);

    // Another key under the same kid: signature fails.
    let other = dir.path().join("other");
    anchorage::auth::keys::write_new_key_file(&other).unwrap();
    assert!(service("k1", &other).verify(&jwt).is_err());
    // A verifier that does not know the kid: fails.
    assert!(service("k2", &key).verify(&jwt).is_err());
}

#[tokio::test]
async fn mint_token_refuses_what_it_cannot_sign() {
    let dir = TempDir::new().unwrap();
    let key = dir.path().join("k1");
    anchorage::auth::keys::write_new_key_file(&key).unwrap();
    let env = [keys_env(&key, "k1")];

    let out = anchorage(&["admin", "mint-token", "--role", "member"], &env);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("needs an org"), "{}", stderr(&out));
    assert!(stdout(&out).is_empty(), "nothing on stdout on failure");

    let out = anchorage(
        &[
            "admin",
            "mint-token",
            "--role",
            "sysadmin",
            "--ttl",
            "100000h",
        ],
        &env,
    );
    assert!(!out.status.success());
    assert!(stderr(&out).contains("maxTTL"), "{}", stderr(&out));

    let out = anchorage(
        &[
            "admin",
            "mint-token",
            "--role",
            "sysadmin",
            "--scope",
            "pin:everything",
        ],
        &env,
    );
    assert!(!out.status.success());
    assert!(stderr(&out).contains("unknown scope"), "{}", stderr(&out));

    let out = anchorage(&["admin", "mint-token", "--role", "sysadmin"], &[]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("auth.apiToken.signingKeys"),
        "{}",
        stderr(&out)
    );

    // --signing-key works without any configured keys.
    let out = anchorage(
        &[
            "admin",
            "mint-token",
            "--role",
            "sysadmin",
            "--signing-key",
            key.to_str().unwrap(),
            "--kid",
            "k1",
        ],
        &[],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let claims = service("k1", &key).verify(stdout(&out).trim()).unwrap();
    assert_eq!(claims.role, Role::Sysadmin);
    assert_eq!(claims.org, None);
}

/// The seed's defaults: a sysadmin break-glass token for 395 days, with a warning; the
/// kid of `--signing-key` comes from the config entry with that path; `--label` shows
/// with `-v`.
#[tokio::test]
async fn mint_token_defaults_and_kid_follow_the_seed() {
    let dir = TempDir::new().unwrap();
    let key = dir.path().join("jwt.key");
    anchorage::auth::keys::write_new_key_file(&key).unwrap();
    let env = [keys_env(&key, "2026-04")];
    let out = anchorage(
        &[
            "admin",
            "mint-token",
            "--signing-key",
            key.to_str().unwrap(),
            "--label",
            "break-glass",
            "-v",
        ],
        &env,
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let claims = service("2026-04", &key)
        .verify(stdout(&out).trim())
        .expect("kid taken from the config entry of the key file");
    assert_eq!(claims.role, Role::Sysadmin);
    assert_eq!(claims.exp - claims.iat, 9480 * 3600);
    let err = stderr(&out);
    assert!(
        err.contains("warning: this is a sysadmin break-glass token"),
        "{err}"
    );
    assert!(
        err.contains("kid=2026-04") && err.contains("label=break-glass"),
        "{err}"
    );

    // A shorter or narrower token is not warned about.
    let out = anchorage(&["admin", "mint-token", "--ttl", "8h"], &env);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!stderr(&out).contains("warning"), "{}", stderr(&out));

    // A key file in no config entry, without --kid: an error naming both fixes.
    let stray = dir.path().join("stray.key");
    anchorage::auth::keys::write_new_key_file(&stray).unwrap();
    let out = anchorage(
        &[
            "admin",
            "mint-token",
            "--signing-key",
            stray.to_str().unwrap(),
        ],
        &env,
    );
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("--kid") && err.contains("auth.apiToken.signingKeys"),
        "{err}"
    );
    assert!(stdout(&out).is_empty());
}

#[tokio::test]
async fn org_create_and_list_against_the_database_with_audit() {
    let db = TestDb::migrated().await;
    let env = [("ANCHORAGE_POSTGRES__DSN", db.app_dsn())];

    let out = anchorage(&["admin", "org", "create", "acme"], &env);
    assert!(out.status.success(), "{}", stderr(&out));
    let id = stdout(&out).trim().to_string();
    assert!(id.starts_with("org_"), "{id}");

    let dup = anchorage(&["admin", "org", "create", "acme"], &env);
    assert!(!dup.status.success());
    assert!(stderr(&dup).contains("already exists"), "{}", stderr(&dup));

    let bad = anchorage(&["admin", "org", "create", "Not Valid"], &env);
    assert!(!bad.status.success());
    assert!(
        stderr(&bad).contains("invalid org name"),
        "{}",
        stderr(&bad)
    );

    let list = anchorage(&["admin", "org", "list"], &env);
    assert!(list.status.success(), "{}", stderr(&list));
    let text = stdout(&list);
    let rows: Vec<&str> = text.lines().collect();
    assert_eq!(rows.len(), 1);
    assert!(rows[0].starts_with(&format!("{id}\tacme\t")), "{}", rows[0]);

    // A mint by org name resolves it and is audited against that org.
    let dir = TempDir::new().unwrap();
    let key = dir.path().join("k1");
    anchorage::auth::keys::write_new_key_file(&key).unwrap();
    let mut env_keys = env.to_vec();
    env_keys.push(keys_env(&key, "k1"));
    let out = anchorage(&["admin", "mint-token", "--org", "acme"], &env_keys);
    assert!(out.status.success(), "{}", stderr(&out));
    let claims = service("k1", &key).verify(stdout(&out).trim()).unwrap();
    assert_eq!(claims.org.unwrap().to_string(), id);

    let pool = db.app_pool();
    let org: anchorage::ids::OrgId = id.parse().unwrap();
    let entries = anchorage::db::org_tx(&pool, org, |conn| {
        use futures_util::FutureExt;
        anchorage::audit::recent(conn, 10).boxed()
    })
    .await
    .unwrap();
    let actions: Vec<&str> = entries.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(actions, ["token.mint", "org.create"]);
    assert_eq!(entries[0].target, claims.jti.to_string());
    assert!(entries[0].actor.starts_with("cli:"));
    assert!(
        !entries[0].details.to_string().contains(stdout(&out).trim()),
        "never the JWT"
    );
}

#[test]
fn config_errors_name_the_key_and_exit_2() {
    let dir = TempDir::new().unwrap();
    let file = dir.path().join("anchorage.yaml");
    std::fs::write(&file, "server:\n  listn: 0.0.0.0:1\n").unwrap();
    let out = anchorage(
        &["--config", file.to_str().unwrap(), "migrate", "status"],
        &[],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("server.listn"), "{}", stderr(&out));

    std::fs::write(&file, "cluster:\n  minReplicas: lots\n").unwrap();
    let out = anchorage(
        &["--config", file.to_str().unwrap(), "migrate", "status"],
        &[],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("cluster.minReplicas"),
        "{}",
        stderr(&out)
    );

    let out = anchorage(
        &["migrate", "status"],
        &[("ANCHORAGE_IPFS__ALLOW_PRIVATE_ORIGINS", "maybe".into())],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("ANCHORAGE_IPFS__ALLOW_PRIVATE_ORIGINS"),
        "{}",
        stderr(&out)
    );

    let out = anchorage(
        &[
            "--config",
            "/nonexistent/anchorage.yaml",
            "migrate",
            "status",
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("/nonexistent/anchorage.yaml"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn every_subcommand_has_help() {
    for args in [
        vec!["--help"],
        vec!["serve", "--help"],
        vec!["dev", "--help"],
        vec!["migrate", "--help"],
        vec!["admin", "--help"],
        vec!["admin", "org", "--help"],
        vec!["admin", "mint-token", "--help"],
        vec!["admin", "rotate-signing-key", "--help"],
        vec!["admin", "rotate-key", "--help"],
        vec!["healthcheck", "--help"],
        vec!["admin", "cluster-presences", "--help"],
        vec!["admin", "cache-stats", "--help"],
    ] {
        let out = anchorage(&args, &[]);
        assert!(out.status.success(), "{args:?}");
        assert!(stdout(&out).contains("Usage:"), "{args:?}");
    }
}

/// `cluster-presences` and `cache-stats` read a running node's row: live, leading, its
/// Kubo peer id, its placements per state and its heartbeat's cache counters.
#[tokio::test]
async fn cluster_presences_and_cache_stats_show_a_running_node() {
    use std::time::{Duration, Instant};
    let db = TestDb::migrated().await;
    let kubo = tokio::task::spawn_blocking(crate::harness::KuboNode::start)
        .await
        .unwrap();
    let app = crate::harness::TestApp::spawn_with(
        &db,
        kubo.api(),
        vec![("cluster.heartbeat".into(), json!("200ms"))],
    )
    .await;
    let org = app.create_org("acme").await;
    let token = app.token(Some(org), Role::Member, None);
    let cid = kubo.add(crate::harness::kubo::random_bytes(64)).await;
    let (code, body) = crate::harness::send(
        app.req(reqwest::Method::POST, "/v1/pins", &token)
            .json(&json!({ "cid": cid })),
    )
    .await;
    assert_eq!(code, 202, "{body}");

    let env = [("ANCHORAGE_POSTGRES__DSN", db.app_dsn())];
    let deadline = Instant::now() + Duration::from_secs(20);
    let node = loop {
        let out = anchorage(&["admin", "cluster-presences", "--json"], &env);
        assert!(out.status.success(), "{}", stderr(&out));
        let nodes: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
        let node = nodes[0].clone();
        if node["leader"] == true && node["placements"]["pinned"] == 1 {
            break node;
        }
        assert!(Instant::now() < deadline, "{nodes}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(node["nodeID"], "anchor-1");
    assert_eq!(node["id"], app.state.node.to_string());
    assert_eq!(node["live"], true);
    assert_eq!(node["state"], "active");
    assert!(
        node["kuboPeerId"]
            .as_str()
            .is_some_and(|p| p.starts_with("12D3")),
        "{node}"
    );

    let table = stdout(&anchorage(&["admin", "cluster-presences"], &env));
    assert!(
        table.contains("anchor-1")
            && table.contains("live")
            && table.contains("leader")
            && table.contains("pinned=1"),
        "{table}"
    );

    // The counters arrive with the next heartbeat, which runs on this test's runtime:
    // yield between reads rather than reading once.
    let deadline = Instant::now() + Duration::from_secs(10);
    let stats = loop {
        let out = anchorage(&["admin", "cache-stats", "--json"], &env);
        assert!(out.status.success(), "{}", stderr(&out));
        let stats: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
        if stats["anchor-1"]["denylist"]["misses"].as_u64() >= Some(1) || Instant::now() > deadline
        {
            break stats;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    for cache in ["denylist", "live_nodes", "orgs"] {
        assert!(stats["anchor-1"][cache]["misses"].is_u64(), "{stats}");
    }
    assert!(
        stats["anchor-1"]["denylist"]["misses"].as_u64().unwrap() >= 1,
        "{stats}"
    );
}

/// `admin member add|list|remove` and `admin grant-sysadmin` against the database.
#[tokio::test]
async fn members_and_sysadmins_from_the_command_line() {
    let db = TestDb::migrated().await;
    let env = [("ANCHORAGE_POSTGRES__DSN", db.app_dsn())];
    let out = anchorage(&["admin", "org", "create", "acme"], &env);
    assert!(out.status.success(), "{}", stderr(&out));

    let out = anchorage(
        &[
            "admin",
            "member",
            "add",
            "acme",
            "ann@example.com",
            "--role",
            "orgadmin",
        ],
        &env,
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("invited"), "{}", stdout(&out));
    let list = stdout(&anchorage(&["admin", "member", "list", "acme"], &env));
    assert!(
        list.contains("ann@example.com\torgadmin\tpending"),
        "{list}"
    );
    let out = anchorage(&["admin", "member", "add", "acme", "ann@example.com"], &env);
    assert!(!out.status.success(), "a second invitation is refused");
    let out = anchorage(
        &["admin", "member", "remove", "acme", "ann@example.com"],
        &env,
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        stdout(&anchorage(&["admin", "member", "list", "acme"], &env)),
        ""
    );

    let out = anchorage(&["admin", "grant-sysadmin", "nobody@example.com"], &env);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("sign in once first"),
        "{}",
        stderr(&out)
    );
}

/// The deploy guide drains `nod_anchor_2`: the seed's spelling of a node works; an
/// unknown one lists the nodes there are.
#[tokio::test]
async fn nodes_are_named_as_the_seed_writes_them() {
    let db = TestDb::migrated().await;
    let _app = crate::harness::TestApp::spawn_api_only(
        &db,
        "http://127.0.0.1:9",
        vec![("cluster.nodeID".into(), json!("anchor-2"))],
    )
    .await;
    let env = [("ANCHORAGE_POSTGRES__DSN", db.app_dsn())];
    for (verb, state) in [("drain", "draining"), ("uncordon", "active")] {
        let out = anchorage(&["admin", verb, "nod_anchor_2"], &env);
        assert!(out.status.success(), "{verb}: {}", stderr(&out));
        assert!(
            stdout(&out).contains("anchor-2") && stdout(&out).contains(state),
            "{}",
            stdout(&out)
        );
    }
    let out = anchorage(&["admin", "drain", "nod_anchor_9"], &env);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("known nodes: anchor-2"),
        "{}",
        stderr(&out)
    );
}

/// `cluster.backend: nats` with no NATS server answering: `serve` keeps trying for
/// `nats.connectTimeout`, then exits with an error naming the servers and the timeout.
#[tokio::test]
async fn serve_gives_up_on_an_unreachable_nats_after_the_connect_timeout() {
    let db = TestDb::migrated().await;
    let port = anchorage::devstack::postgres::free_port().unwrap();
    let url = format!("nats://127.0.0.1:{port}");
    let dsn = db.app_dsn();
    let started = std::time::Instant::now();
    let out = tokio::task::spawn_blocking(move || {
        anchorage(
            &["serve"],
            &[
                ("ANCHORAGE_CLUSTER__BACKEND", "nats".into()),
                ("ANCHORAGE_NATS__URL", url),
                ("ANCHORAGE_NATS__CONNECT_TIMEOUT", "2s".into()),
                ("ANCHORAGE_POSTGRES__DSN", dsn),
                ("ANCHORAGE_IPFS__RPC", "http://127.0.0.1:9".into()),
                ("ANCHORAGE_SERVER__LISTEN", "127.0.0.1:0".into()),
            ],
        )
    })
    .await
    .unwrap();
    let took = started.elapsed();
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains(&format!(
            "nats.url: no NATS server answered at nats://127.0.0.1:{port} within nats.connectTimeout (2s)"
        )),
        "{err}"
    );
    assert!(
        took >= std::time::Duration::from_secs(2) && took < std::time::Duration::from_secs(20),
        "gave up after {took:?}"
    );
}

#[test]
fn version_names_the_release_and_the_commit() {
    let out = anchorage(&["--version"], &[]);
    assert!(out.status.success());
    let text = stdout(&out);
    assert!(text.contains(env!("CARGO_PKG_VERSION")), "{text}");
    let commit = text
        .split("(commit ")
        .nth(1)
        .and_then(|rest| rest.split(')').next())
        .unwrap_or_else(|| panic!("no commit in {text}"));
    assert!(
        commit == "unknown"
            || (commit.len() == 12 && commit.chars().all(|c| c.is_ascii_hexdigit())),
        "{text}"
    );
}

/// The image's HEALTHCHECK: exit 0 only when the server answers /v1/health.
#[tokio::test]
async fn healthcheck_exits_zero_only_for_a_healthy_server() {
    let db = TestDb::migrated().await;
    let app = crate::harness::TestApp::spawn_api_only(&db, "http://127.0.0.1:9", vec![]).await;
    // The in-process server needs this runtime's thread while the CLI waits.
    let base = app.base.clone();
    let out = tokio::task::spawn_blocking(move || anchorage(&["healthcheck", "--url", &base], &[]))
        .await
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("healthy"), "{}", stdout(&out));
    let closed = format!(
        "http://127.0.0.1:{}",
        anchorage::devstack::postgres::free_port().unwrap()
    );
    let out = anchorage(&["healthcheck", "--url", &closed, "--timeout", "1s"], &[]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("/v1/health"), "{}", stderr(&out));
}
