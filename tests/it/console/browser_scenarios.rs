//! The admin console in a real browser (headless Chromium driven by playwright-core,
//! scenarios in `tests/e2e/`): sign-in through a real OIDC provider, a pin turning
//! `pinned` live, tokens, the cluster page, what members may not do, and a screenshot of
//! every page (`<target>/e2e-screenshots/`). The console over plain HTTP is tested in
//! `http_pages.rs`.

use std::time::Duration;

use anchorage::{
    auth::Role,
    devstack::kubo::{KuboPorts, LocalKubo},
    ids::OrgId,
    server::Work,
};
use reqwest::Method;
use serde_json::{json, Value};
use tempfile::TempDir;

use crate::harness::{
    app::ReservedPort,
    browser::Scenario,
    cluster::{canonical, eventually, TestCluster},
    fixtures::{app, cid, PEER},
    kubo::random_bytes,
    oidc::{Account, OidcProvider},
    send,
    sql::db_count,
    KuboNode, TestApp, TestDb,
};

const CLIENT: &str = "anchorage";

/// A provider with `accounts` whose one client redirects to `<base>/` (the seed's).
fn provider(base: &str, accounts: &[Account]) -> OidcProvider {
    OidcProvider::start(&[(CLIENT, vec![format!("{base}/")])], accounts)
}

/// The config that signs people in through `idp`.
fn signs_in_with(idp: &OidcProvider) -> Vec<(String, Value)> {
    vec![
        ("auth.authentik.issuer".into(), json!(idp.issuer())),
        ("auth.authentik.clientID".into(), json!(CLIENT)),
    ]
}

/// An app on a fake Kubo (nothing gets pinned) that signs people in through `idp`,
/// serving on `port`.
async fn api_only_app(db: &TestDb, port: ReservedPort, idp: &OidcProvider) -> TestApp {
    let mut extra = signs_in_with(idp);
    extra.push((
        "ipfs.delegates".into(),
        json!([format!("/ip4/198.51.99.7/tcp/4001/p2p/{}", PEER)]),
    ));
    TestApp::spawn_at(port, db, "http://127.0.0.1:9", extra, Work::ApiOnly).await
}

/// Adds `email` to `org` with `role` through the API, as a sysadmin would, before they
/// ever signed in (a pending membership that binds when they do).
async fn invite(app: &TestApp, org: OrgId, email: &str, role: &str) {
    let sysadmin = app.token(None, Role::Sysadmin, None);
    let (status, body) = send(
        app.req(Method::POST, &format!("/v1/orgs/{org}/members"), &sysadmin)
            .json(&json!({ "email": email, "role": role })),
    )
    .await;
    assert_eq!(status, 201, "{body}");
}

/// Adds `bytes` to the Kubo whose RPC API is `api` without pinning them (with
/// `only_hash`, not even storing them) and returns the CID.
async fn kubo_add(api: &str, bytes: Vec<u8>, only_hash: bool) -> String {
    let part = reqwest::multipart::Part::bytes(bytes).file_name("data.bin");
    let form = reqwest::multipart::Form::new().part("file", part);
    let resp = reqwest::Client::new()
        .post(format!("{api}/api/v0/add"))
        .query(&[("pin", "false"), ("only-hash", &only_hash.to_string())])
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success(), "add: {}", resp.status());
    let body: Value = resp.json().await.unwrap();
    body["Hash"].as_str().unwrap().to_string()
}

/// An origin that is offline when the pin is added and comes up later, as the same peer
/// on the same address, to serve the content: so the pin cannot finish before the page
/// shows it. (Coming up, it connects to our node afresh, and our node asks it for what it
/// wants at once; an origin that had been connected all along and had answered "don't
/// have" would only be asked again at bitswap's next periodic search, ~30 s later.)
struct LateOrigin {
    _dir: TempDir,
    repo: std::path::PathBuf,
    ports: KuboPorts,
    /// Its swarm multiaddr (ends in `/p2p/<peer id>`).
    addr: String,
}

impl LateOrigin {
    /// Makes the node's repo and learns its address, then stops it.
    fn prepare() -> Self {
        let dir = TempDir::new().unwrap();
        let repo = dir.path().join("repo");
        let node = LocalKubo::start(&repo, KuboPorts::default())
            .unwrap_or_else(|e| panic!("starting a Kubo test node: {e}"));
        let port_after = |s: &str, proto: &str| -> u16 {
            let mut parts = s.split(['/', ':']).skip_while(|p| *p != proto);
            parts
                .nth(1)
                .and_then(|p| p.parse().ok())
                .unwrap_or_else(|| panic!("no {proto} port in {s}"))
        };
        let addr = node.ready.addrs[0].clone();
        let ports = KuboPorts {
            api: node
                .ready
                .api
                .rsplit(':')
                .next()
                .and_then(|p| p.trim_end_matches('/').parse().ok())
                .unwrap_or_else(|| panic!("no port in {}", node.ready.api)),
            swarm: port_after(&addr, "tcp"),
        };
        drop(node);
        Self {
            _dir: dir,
            repo,
            ports,
            addr,
        }
    }

    /// Starts it again (same peer id and ports); retries while the ports are not free yet.
    async fn come_up(&self) -> LocalKubo {
        let mut last = None;
        for _ in 0..20 {
            let (repo, ports) = (self.repo.clone(), self.ports);
            match tokio::task::spawn_blocking(move || LocalKubo::start(&repo, ports))
                .await
                .unwrap()
            {
                Ok(node) => {
                    assert_eq!(
                        node.ready.addrs[0], self.addr,
                        "the origin came back elsewhere"
                    );
                    return node;
                }
                Err(e) => last = Some(e),
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        panic!("restarting the origin: {last:?}");
    }
}

#[tokio::test]
async fn the_browser_driver_works() {
    let db = TestDb::migrated().await;
    let app = app(&db).await;
    let mut run = Scenario::new("driver_smoke", &app.base).start().await;
    let rendered = run.result().await;
    assert!(
        rendered["operations"].as_u64().unwrap() > 10,
        "Swagger UI lists the operations: {rendered}"
    );
    run.reply(json!({ "echo": rendered["title"] })).await;
    let out = run.finish().await;
    assert_eq!(out.get("viewport"), &json!({"width": 390, "height": 844}));
    assert_eq!(out.screenshots.len(), 2, "{:?}", out.screenshots);
    for shot in &out.screenshots {
        let png = std::fs::read(shot).unwrap();
        assert!(png.starts_with(b"\x89PNG"), "{} is a PNG", shot.display());
    }
    assert!(
        out.browser_up < Duration::from_secs(20),
        "the browser took {:?} to start",
        out.browser_up
    );
}

#[tokio::test]
async fn a_member_signs_in_pins_watches_it_turn_pinned_mints_and_revokes_a_token() {
    let db = TestDb::migrated().await;
    let (ours, origin) = tokio::task::spawn_blocking(|| {
        let origin = std::thread::spawn(LateOrigin::prepare);
        (KuboNode::start(), origin.join().unwrap())
    })
    .await
    .unwrap();
    let port = ReservedPort::new();
    let idp = provider(
        &port.base,
        &[Account::new("alice", "alice@example.com", &[]).verified()],
    );
    let mut extra = signs_in_with(&idp);
    extra.push(("ipfs.allowPrivateOrigins".into(), json!(true)));
    extra.push(("ipfs.retryBaseDelay".into(), json!("1s")));
    let app = TestApp::spawn_at(port, &db, ours.api(), extra, Work::All).await;
    let acme = app.create_org("acme").await;
    invite(&app, acme, "alice@example.com", "member").await;

    // The origin is offline and nobody has the content yet: the pin cannot finish before
    // the page shows it, so its status has to change on the open page (queued → pinning
    // → pinned).
    let bytes = random_bytes(256 * 1024);
    let cid = kubo_add(ours.api(), bytes.clone(), true).await;
    let name = format!("holiday photos {}", &cid[cid.len() - 6..]);
    let mut run = Scenario::new("console_member", &app.base)
        .env("OIDC_ISSUER", idp.issuer())
        .env("LOGIN_HINT", "alice")
        .env("PIN_CID", &cid)
        .env("PIN_NAME", &name)
        .env("PIN_ORIGIN", &origin.addr)
        .timeout(Duration::from_secs(180))
        .start()
        .await;

    let added = run.result().await;
    assert_eq!(added["stage"], "added", "{added}");
    let requestid = added["requestid"].as_str().unwrap().to_string();
    let reader = app.token(Some(acme), Role::Member, None);
    let pin_path = format!("/v1/pins/{requestid}");
    let (status, pin) = send(app.req(Method::GET, &pin_path, &reader)).await;
    assert_eq!(status, 200, "the page's pin is in acme: {pin}");
    assert_eq!(pin["pin"]["name"], name.as_str(), "{pin}");
    assert_eq!(
        canonical(pin["pin"]["cid"].as_str().unwrap()),
        canonical(&cid)
    );
    assert_eq!(pin["pin"]["origins"], json!([origin.addr]), "{pin}");
    assert_ne!(pin["status"], "pinned", "{pin}");
    // The node is trying (`pinning`): the open page has to come to say so too.
    eventually("the API says pinning", Duration::from_secs(20), || {
        let req = app.req(Method::GET, &pin_path, &reader);
        async move { (send(req).await.1["status"] == "pinning").then_some(()) }
    })
    .await;
    run.reply(json!({ "api_status": "pinning" })).await;
    let shown = run.result().await;
    assert_eq!(shown["stage"], "pinning", "{shown}");

    // Now the origin comes up with the content.
    let late = origin.come_up().await;
    assert_eq!(kubo_add(late.api(), bytes, false).await, cid);
    let connect = reqwest::Client::new()
        .post(format!("{}/api/v0/swarm/connect", late.api()))
        .query(&[("arg", ours.swarm_addr())])
        .send()
        .await
        .unwrap();
    assert!(connect.status().is_success(), "swarm/connect: {connect:?}");
    run.reply(json!({})).await;

    let pinned = run.result().await;
    assert_eq!(pinned["stage"], "pinned", "{pinned}");
    let (_, pin) = send(app.req(Method::GET, &pin_path, &reader)).await;
    assert_eq!(pin["status"], "pinned", "{pin}");

    let minted = run.result().await;
    assert_eq!(minted["stage"], "minted", "{minted}");
    let token = minted["token"].as_str().unwrap().to_string();
    assert_eq!(
        minted["service_add"],
        format!(
            "ipfs pin remote service add anchorage {}/v1 {token}",
            app.base
        )
    );
    let (status, list) = send(app.req(Method::GET, "/v1/pins", &token)).await;
    assert_eq!(status, 200, "{list}");
    assert_eq!(list["count"], 1, "the token sees acme's pin: {list}");
    let (status, body) = send(
        app.req(Method::POST, "/v1/pins", &token)
            .json(&json!({ "cid": cid })),
    )
    .await;
    assert_eq!(status, 403, "a pin:read token cannot add pins: {body}");
    run.reply(json!({})).await;

    let revoked = run.result().await;
    assert_eq!(revoked["stage"], "revoked", "{revoked}");
    eventually(
        "the revoked token is refused",
        Duration::from_secs(10),
        || {
            let req = app.req(Method::GET, "/v1/pins", &token);
            async move { (send(req).await.0 == 401).then_some(()) }
        },
    )
    .await;
    run.reply(json!({})).await;

    let out = run.finish().await;
    assert_eq!(out.get("stage"), "signed-out");
    println!("screenshots: {:?}", out.screenshots);
}

#[tokio::test]
async fn a_sysadmin_drains_and_uncordons_a_node_from_the_cluster_page() {
    use anchorage::devstack::postgres::free_port;
    let ports: Vec<u16> = (0..2).map(|_| free_port().unwrap()).collect();
    let base = format!("http://127.0.0.1:{}", ports[0]);
    let idp = provider(
        &base,
        &[Account::new("root", "root@example.com", &["anchorage-sysadmins"]).verified()],
    );
    let issuer = idp.issuer();
    let cluster = TestCluster::start_on_ports(
        TestDb::migrated().await,
        ports,
        (1, 1),
        &[
            ("ANCHORAGE_SERVER__PUBLIC_URL", &base),
            ("ANCHORAGE_AUTH__AUTHENTIK__ISSUER", &issuer),
            ("ANCHORAGE_AUTH__AUTHENTIK__CLIENT_ID", CLIENT),
        ],
    )
    .await;
    assert_eq!(cluster.url(0, ""), base);
    let state = |name: &'static str| {
        let sql = cluster.sql();
        async move {
            sql.query_one("SELECT state FROM nodes WHERE name = $1", &[&name])
                .await
                .unwrap()
                .get::<_, String>(0)
        }
    };
    eventually("both nodes registered", Duration::from_secs(20), || async {
        (cluster.count("SELECT count(*) AS n FROM nodes", &[]).await == 2).then_some(())
    })
    .await;
    assert_eq!(state("node-1").await, "active");

    let mut run = Scenario::new("console_cluster", &base)
        .env("OIDC_ISSUER", &issuer)
        .env("LOGIN_HINT", "root")
        .env("NODE", "node-1")
        .env("NODES", "node-0,node-1")
        .start()
        .await;
    for wanted in ["draining", "active", "cordoned", "active"] {
        let shown = run.result().await;
        assert_eq!(shown["stage"], wanted, "{shown}");
        assert_eq!(shown["node"], "node-1", "{shown}");
        assert_eq!(state("node-1").await, wanted, "nodes.state of node-1");
        assert_eq!(state("node-0").await, "active", "nodes.state of node-0");
        run.reply(json!({})).await;
    }
    run.finish().await;

    // Each change is audited, with a signed-in user as the actor.
    let audited = cluster
        .count(
            "SELECT count(*) AS n FROM audit_log WHERE action LIKE 'node.%' \
             AND details->>'nodeID' = 'node-1' AND actor LIKE 'usr_%'",
            &[],
        )
        .await;
    assert_eq!(audited, 4, "node-1's audit entries");
}

#[tokio::test]
async fn a_member_cannot_see_cluster_or_other_orgs_and_csrf_less_posts_are_refused() {
    let db = TestDb::migrated().await;
    let port = ReservedPort::new();
    let idp = provider(
        &port.base,
        &[Account::new("bob", "bob@example.com", &[]).verified()],
    );
    let app = api_only_app(&db, port, &idp).await;
    let acme = app.create_org("acme").await;
    let globex = app.create_org("globex").await;
    invite(&app, acme, "bob@example.com", "member").await;

    let out = Scenario::new("console_refusals", &app.base)
        .env("OIDC_ISSUER", idp.issuer())
        .env("LOGIN_HINT", "bob")
        .env("OWN_ORG", acme)
        .env("OTHER_ORG", globex)
        .run()
        .await;
    let refused = out.get("refused").as_array().unwrap();
    assert!(
        refused.iter().any(|r| r["action"] == "/console/tokens"),
        "{refused:?}"
    );
    assert!(
        refused
            .iter()
            .all(|r| r["status"] == 403 && r["h1"] == "Refused"),
        "{refused:?}"
    );
    // Nothing was made by the refused forms.
    for (table, sql) in [
        ("api_tokens", "SELECT count(*) AS n FROM api_tokens"),
        ("pins", "SELECT count(*) AS n FROM pins"),
    ] {
        let n = db_count(&app, sql, &[]).await;
        assert_eq!(n, 0, "rows in {table}");
    }
}

#[tokio::test]
async fn screenshots_of_every_console_page() {
    let db = TestDb::migrated().await;
    let port = ReservedPort::new();
    let idp = provider(
        &port.base,
        &[Account::new("root", "root@example.com", &["anchorage-sysadmins"]).verified()],
    );
    let app = api_only_app(&db, port, &idp).await;
    let acme = app.create_org("acme").await;
    app.create_org("globex").await;
    invite(&app, acme, "root@example.com", "orgadmin").await;
    invite(&app, acme, "carol@example.com", "member").await;
    // A few pins to show (no pin workers here: they stay queued).
    let token = app.token(Some(acme), Role::Member, None);
    for (i, name) in ["website", "dataset 2026-11", "podcast ep. 12"]
        .iter()
        .enumerate()
    {
        let (status, body) = send(
            app.req(Method::POST, "/v1/pins", &token)
                .json(&json!({ "cid": cid(i as u32 + 1), "name": name })),
        )
        .await;
        assert_eq!(status, 202, "{body}");
    }

    let out = Scenario::new("console_tour", &app.base)
        .env("OIDC_ISSUER", idp.issuer())
        .env("LOGIN_HINT", "root")
        .run()
        .await;
    let names: Vec<&str> = out
        .get("pages")
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "sign-in",
            "pins",
            "pins-narrow",
            "tokens",
            "orgs",
            "cluster",
            "audit"
        ]
    );
    for shot in &out.screenshots {
        assert!(shot.exists(), "{}", shot.display());
    }
    println!("screenshots: {:?}", out.screenshots);
}
