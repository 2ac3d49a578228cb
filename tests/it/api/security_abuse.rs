//! Security review, part 2: abuse and robustness. Unauthenticated load (session lookups,
//! readiness probes, metric labels, IPv6 clients, per-org limits), a pin deleted while it
//! is still being fetched, event sockets after revocation, proxy headers, origin
//! addresses, bad input and leaked details, and the database role. Each test is one
//! finding of the review; see docs/security.md.

use std::{
    process::Stdio,
    time::{Duration, Instant},
};

use anchorage::{auth::Role, placements::reconciler::reconcile};
use futures_util::{SinkExt, StreamExt};
use reqwest::Method;
use serde_json::{json, Value};
use tokio::io::AsyncBufReadExt;
use tokio_tungstenite::tungstenite::{client::IntoClientRequest, http::Request, Message};

use crate::{
    auth::security_signin::{person, token_for},
    auth::signin::post_session,
    harness::{
        counting_proxy::CountingProxy,
        fixtures::{cid, PEER},
        kubo::random_bytes,
        send,
        sql::{db_count, Param},
        KuboNode, TestApp, TestDb,
    },
    kubo::pinning::{
        app_on, canonical, eventually, kubo_pins, org_token, post_pin, start_nodes, wait_status,
    },
};

const DELEGATE: &str =
    "/ip4/198.51.99.7/tcp/4001/p2p/12D3KooWGRUVh1S3jiwVmGzeoWfxFcNn7MWzL9VXpdKrUZyWH8Qd";

/// An API-only app (no pin workers) with a delegate configured, plus `extra`.
async fn api_app(db: &TestDb, extra: Vec<(&str, Value)>) -> TestApp {
    let mut overrides: Vec<(String, Value)> = vec![("ipfs.delegates".into(), json!([DELEGATE]))];
    overrides.extend(extra.into_iter().map(|(k, v)| (k.to_string(), v)));
    TestApp::spawn_api_only(db, "http://127.0.0.1:9", overrides).await
}

/// Scans of the `sessions` table so far, as Postgres counts them. A backend reports its
/// counts when it has been idle a while, so this waits for them to settle.
async fn session_scans(app: &TestApp) -> i64 {
    tokio::time::sleep(Duration::from_millis(11_500)).await;
    db_count(
        app,
        "SELECT (seq_scan + coalesce(idx_scan, 0))::bigint AS n FROM pg_stat_user_tables WHERE relname = 'sessions'", &[],
    )
    .await
}

// --- 6. Unauthenticated denial of service ---------------------------------------------

#[tokio::test]
async fn random_session_cookies_cost_no_more_lookups_than_the_anonymous_limit() {
    let db = TestDb::migrated().await;
    let app = api_app(
        &db,
        vec![("server.rateLimit.anonymousPerMinute", json!(20))],
    )
    .await;
    let before = session_scans(&app).await;
    let mut limited = 0;
    for _ in 0..200 {
        let secret: String = random_bytes(32)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let res = app
            .http
            .get(app.url("/v1/pins"))
            .header("Cookie", format!("anchorage_session={secret}"))
            .send()
            .await
            .unwrap();
        match res.status().as_u16() {
            401 => {}
            429 => limited += 1,
            other => panic!("unexpected {other}"),
        }
    }
    let lookups = session_scans(&app).await - before;
    println!("200 random session cookies: {lookups} session lookups, {limited} answered 429");
    assert!(limited >= 150, "only {limited} of 200 were limited");
    assert!(
        lookups <= 25,
        "{lookups} session lookups for 200 random cookies under a limit of 20 a minute"
    );
}

#[tokio::test]
async fn a_burst_of_readiness_probes_asks_the_ipfs_node_at_most_twice() {
    let db = TestDb::migrated().await;
    let kubo = tokio::task::spawn_blocking(KuboNode::start).await.unwrap();
    let proxy = CountingProxy::start(kubo.api());
    let app = TestApp::spawn_api_only(
        &db,
        &proxy.url,
        vec![
            ("cluster.heartbeat".into(), json!("20s")),
            ("cluster.leaseTTL".into(), json!("30s")),
            ("cluster.nodeTTL".into(), json!("60s")),
        ],
    )
    .await;
    let (status, body) = app.get_json("/v1/ready").await;
    assert_eq!(status, 200, "{body}");
    // A new second starts: the burst must not ride on the first probe's answer alone.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let before = proxy.calls("/api/v0/id");
    let started = Instant::now();
    let probes = (0..100).map(|_| app.get_json("/v1/ready"));
    for (status, body) in futures_util::future::join_all(probes).await {
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["checks"]["kubo"], "ok", "{body}");
    }
    let took = started.elapsed();
    let asked = proxy.calls("/api/v0/id") - before;
    println!("100 readiness probes in {took:?}: {asked} Kubo id calls");
    // About one call a second, however the burst is spread.
    let allowed = 2.max(took.as_secs() as usize + 2);
    assert!(
        asked <= allowed,
        "{asked} Kubo id calls for 100 probes in {took:?}"
    );
}

/// The series in a scrape (sample lines).
fn series(scrape: &str) -> Vec<&str> {
    scrape
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| l.rsplit_once(' ').map_or(l, |(name, _)| name))
        .collect()
}

async fn scrape(app: &TestApp) -> String {
    let res = app.http.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    res.text().await.unwrap()
}

#[tokio::test]
async fn made_up_http_methods_add_no_metric_series() {
    let db = TestDb::migrated().await;
    let app = api_app(&db, vec![("server.rateLimit.anonymousPerMinute", json!(0))]).await;
    let made_up = |n: usize| Method::from_bytes(format!("ZZ{n:04}").as_bytes()).unwrap();
    // The first odd method may create the series every odd method shares.
    let res = app
        .http
        .request(made_up(9999), app.url("/v1/pins"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 405);
    // So does the first scrape (its own request is counted after it is answered).
    scrape(&app).await;
    let first = scrape(&app).await;
    let before = series(&first).len();
    for n in 0..1000 {
        app.http
            .request(made_up(n), app.url("/v1/pins"))
            .send()
            .await
            .unwrap();
    }
    let after_text = scrape(&app).await;
    let after = series(&after_text);
    println!(
        "after 1,000 made-up methods: {} series, {} bytes (before: {before} series, {} bytes)",
        after.len(),
        after_text.len(),
        first.len()
    );
    assert!(
        !after_text.contains("method=\"ZZ"),
        "a made-up method became a label value"
    );
    assert_eq!(after.len(), before, "the series count changed");
}

/// An anonymous `GET /v1/pins` from `client`, as a trusted proxy on loopback says.
async fn anonymous_from(app: &TestApp, client: &str) -> u16 {
    app.http
        .get(app.url("/v1/pins"))
        .header("X-Forwarded-For", client)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn ipv6_clients_are_limited_per_64_prefix() {
    let db = TestDb::migrated().await;
    let app = api_app(
        &db,
        vec![
            ("server.rateLimit.anonymousPerMinute", json!(5)),
            ("server.trustedProxies", json!(["127.0.0.0/8"])),
        ],
    )
    .await;
    // One client rotating through its /64: five addresses use up one allowance.
    for n in 1..=5 {
        assert_eq!(
            anonymous_from(&app, &format!("2001:db8:1:2::{n}")).await,
            401
        );
    }
    assert_eq!(
        anonymous_from(&app, "2001:db8:1:2:ffff:ffff:ffff:ffff").await,
        429,
        "a new address in the same /64 got a fresh allowance"
    );
    // The neighbouring /64 is someone else.
    assert_eq!(anonymous_from(&app, "2001:db8:1:3::1").await, 401);
}

#[tokio::test]
async fn an_org_over_its_per_minute_limit_gets_429_and_other_orgs_do_not() {
    let db = TestDb::migrated().await;
    let app = api_app(&db, vec![("server.rateLimit.orgPerMinute", json!(3))]).await;
    let (a, b) = (app.create_org("a").await, app.create_org("b").await);
    // Two tokens of org a, from two clients: the limit is the org's.
    let (a1, a2) = (
        app.token(Some(a), Role::Member, None),
        app.token(Some(a), Role::Orgadmin, None),
    );
    for token in [&a1, &a2, &a1] {
        let (status, body) = send(app.req(Method::GET, "/v1/pins", token)).await;
        assert_eq!(status, 200, "{body}");
    }
    let res = app
        .req(Method::GET, "/v1/pins", &a2)
        .header("X-Forwarded-For", "203.0.113.77")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 429);
    let retry_after: u64 = res.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"]["reason"], "TOO_MANY_REQUESTS", "{body}");
    let b1 = app.token(Some(b), Role::Member, None);
    let (status, body) = send(app.req(Method::GET, "/v1/pins", &b1)).await;
    assert_eq!(status, 200, "org b is not limited by org a: {body}");
}

#[tokio::test]
async fn every_authenticated_operation_documents_429() {
    let db = TestDb::migrated().await;
    let app = api_app(&db, vec![]).await;
    let (status, doc) = app.get_json("/v1/openapi.json").await;
    assert_eq!(status, 200);
    let root_security = doc["security"].clone();
    let mut missing = Vec::new();
    let mut checked = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let security = op.get("security").unwrap_or(&root_security);
            if security.as_array().is_none_or(|s| s.is_empty()) {
                continue;
            }
            checked += 1;
            if op["responses"].get("429").is_none() {
                missing.push(format!("{method} {path}"));
            }
        }
    }
    assert!(checked >= 20, "only {checked} authenticated operations");
    assert!(missing.is_empty(), "no 429 documented on: {missing:?}");
}

// --- 7. A pin deleted mid-fetch ---------------------------------------------------------

/// The CID `bytes` would get, without the node storing them (the content does not exist
/// anywhere yet).
async fn cid_of(node: &KuboNode, bytes: Vec<u8>) -> String {
    let part = reqwest::multipart::Part::bytes(bytes).file_name("data.bin");
    let form = reqwest::multipart::Form::new().part("file", part);
    let body: Value = node
        .http
        .post(format!("{}/api/v0/add?only-hash=true", node.api()))
        .multipart(form)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    body["Hash"].as_str().unwrap().to_string()
}

/// Deletes pin request `id` and waits until the unpin job has removed `key`'s placements.
async fn delete_and_wait_for_unpin(app: &TestApp, token: &str, id: &str, key: &str) {
    let (status, body) = send(app.req(Method::DELETE, &format!("/v1/pins/{id}"), token)).await;
    assert_eq!(status, 202, "{body}");
    eventually("the unpin ran", Duration::from_secs(20), || async {
        db_count(
            app,
            "SELECT count(*) AS n FROM placements WHERE cid = $1",
            &[key.into()],
        )
        .await
            == 0
    })
    .await;
}

#[tokio::test]
async fn a_pin_deleted_while_its_content_is_still_arriving_does_not_stay_on_kubo() {
    let db = TestDb::migrated().await;
    let mut nodes = start_nodes(2).await;
    let (origin, ours) = (nodes.remove(0), nodes.remove(0));
    let bytes = random_bytes(256 * 1024);
    // The origin is slow: it will have the content only after the delete.
    let cid = cid_of(&origin, bytes.clone()).await;
    let app = app_on(
        &db,
        ours.api(),
        vec![("ipfs.orphanGracePeriod", json!("1s"))],
    )
    .await;
    let (_, token) = org_token(&app, "acme").await;
    let id = post_pin(
        &app,
        &token,
        json!({"cid": cid, "origins": [origin.swarm_addr()]}),
    )
    .await;
    let key = canonical(&cid);
    let owned = "SELECT count(*) AS n FROM owned_pins WHERE cid = $1";
    let of_key = [Param::from(&key)];
    eventually("the fetch starts", Duration::from_secs(20), || async {
        db_count(
            &app,
            "SELECT count(*) AS n FROM placements WHERE state = 'pinning'",
            &[],
        )
        .await
            == 1
            && db_count(&app, owned, &of_key).await == 1
    })
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;

    delete_and_wait_for_unpin(&app, &token, &id, &key).await;
    assert!(!kubo_pins(&ours).await.contains(&key), "not pinned yet");

    // The content turns up; the fetch that was still running completes on Kubo.
    assert_eq!(origin.add(bytes).await, cid);
    let _ = ours
        .rpc("swarm/connect", &[("arg", origin.swarm_addr())])
        .await;
    eventually("the late fetch lands", Duration::from_secs(60), || async {
        kubo_pins(&ours).await.contains(&key)
    })
    .await;

    // The reconciler knows the pin is anchorage's and nobody wants it: it goes.
    let deadline = Instant::now() + Duration::from_secs(20);
    while kubo_pins(&ours).await.contains(&key) {
        assert!(
            Instant::now() < deadline,
            "the pin leaked: Kubo still holds {key}; owned_pins rows: {}",
            db_count(&app, owned, &of_key).await
        );
        reconcile(&app.state).await.unwrap();
        tokio::time::sleep(Duration::from_millis(600)).await;
    }
    assert_eq!(
        db_count(&app, owned, &of_key).await,
        0,
        "the ledger row is gone too"
    );
    // A new request for the CID is not mistaken for the operator's pin.
    let again = post_pin(
        &app,
        &token,
        json!({"cid": cid, "origins": [origin.swarm_addr()]}),
    )
    .await;
    wait_status(&app, &token, &again, "pinned", Duration::from_secs(60)).await;
    assert_eq!(
        db_count(
            &app,
            "SELECT count(*) AS n FROM placements WHERE cid = $1 AND NOT preexisting",
            &[key.into()]
        )
        .await,
        1
    );
}

#[tokio::test]
async fn the_ledger_row_of_a_deleted_pin_whose_fetch_never_lands_is_forgotten() {
    let db = TestDb::migrated().await;
    let mut nodes = start_nodes(2).await;
    let (elsewhere, ours) = (nodes.remove(0), nodes.remove(0));
    // Content nobody will ever serve: the fetch stalls and ends.
    let cid = cid_of(&elsewhere, random_bytes(64 * 1024)).await;
    drop(elsewhere);
    let app = app_on(
        &db,
        ours.api(),
        vec![
            ("ipfs.pinStallTimeout", json!("6s")),
            ("ipfs.maxAttempts", json!(1)),
        ],
    )
    .await;
    let (_, token) = org_token(&app, "acme").await;
    let id = post_pin(&app, &token, json!({"cid": cid})).await;
    let key = canonical(&cid);
    let owned = "SELECT count(*) AS n FROM owned_pins WHERE cid = $1";
    let of_key = [Param::from(&key)];
    eventually("the fetch starts", Duration::from_secs(20), || async {
        db_count(&app, owned, &of_key).await == 1
    })
    .await;
    delete_and_wait_for_unpin(&app, &token, &id, &key).await;
    // While the fetch may still land, the row stays.
    reconcile(&app.state).await.unwrap();
    assert_eq!(
        db_count(&app, owned, &of_key).await,
        1,
        "forgotten mid-fetch"
    );
    // Once the fetch has given up, there is nothing to remove: the row goes.
    let deadline = Instant::now() + Duration::from_secs(30);
    while db_count(&app, owned, &of_key).await > 0 {
        assert!(
            Instant::now() < deadline,
            "the orphaned row was never forgotten"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
        reconcile(&app.state).await.unwrap();
    }
    assert!(!kubo_pins(&ours).await.contains(&key));
}

// --- 8. Event sockets after revocation --------------------------------------------------

fn socket_request(app: &TestApp, auth: &str) -> Request<()> {
    let url = format!("{}/v1/events", app.base.replace("http://", "ws://"));
    let mut req = url.into_client_request().unwrap();
    let headers = req.headers_mut();
    match auth.strip_prefix("cookie:") {
        Some(cookie) => {
            headers.insert("Cookie", cookie.parse().unwrap());
            headers.insert("Origin", app.base.parse().unwrap());
        }
        None => {
            headers.insert("Authorization", format!("Bearer {auth}").parse().unwrap());
        }
    }
    req
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn open(app: &TestApp, auth: &str) -> Socket {
    let (ws, response) = tokio_tungstenite::connect_async(socket_request(app, auth))
        .await
        .unwrap();
    assert_eq!(response.status(), 101);
    ws
}

/// The close code the server ends `ws` with within `within`; `None` while it stays open.
async fn closed_with(ws: &mut Socket, within: Duration) -> Option<u16> {
    let deadline = Instant::now() + within;
    loop {
        let left = deadline.checked_duration_since(Instant::now())?;
        match tokio::time::timeout(left, ws.next()).await.ok()? {
            Some(Ok(Message::Close(frame))) => return Some(frame.map_or(1005, |f| f.code.into())),
            Some(Ok(Message::Ping(p))) => {
                let _ = ws.send(Message::Pong(p)).await;
            }
            Some(Ok(_)) => {}
            None | Some(Err(_)) => return Some(1006),
        }
    }
}

#[tokio::test]
async fn event_sockets_close_with_1008_when_their_credentials_go() {
    let db = TestDb::migrated().await;
    let app = api_app(&db, vec![]).await;
    let acme = app.create_org("acme").await;
    let sysadmin = app.token(None, Role::Sysadmin, None);

    // A revoked token.
    let (status, created) = send(
        app.req(
            Method::POST,
            "/v1/tokens",
            &app.token(Some(acme), Role::Orgadmin, None),
        )
        .json(&json!({"label": "watcher", "role": "member"})),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let watcher = created["token"].as_str().unwrap().to_string();
    let mut by_token = open(&app, &watcher).await;
    // A member's session that logs out.
    let erin = person(&app, "erin@example.com", acme, Role::Member, false).await;
    let (erin_token, _) = token_for(
        &app,
        erin,
        Some(acme),
        Role::Member,
        None,
        Duration::from_secs(3600),
    );
    let session = post_session(&app, json!({"token": erin_token}), None).await;
    let cookie = session
        .cookie
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let mut by_cookie = open(&app, &format!("cookie:{cookie}")).await;
    // A member who is removed.
    let dana = person(&app, "dana@example.com", acme, Role::Member, false).await;
    let (dana_token, _) = token_for(
        &app,
        dana,
        Some(acme),
        Role::Member,
        None,
        Duration::from_secs(3600),
    );
    let mut by_member = open(&app, &dana_token).await;
    // Someone who keeps their access.
    let mut bystander = open(&app, &app.token(Some(acme), Role::Member, None)).await;

    let (status, body) = send(
        app.req(
            Method::DELETE,
            &format!("/v1/tokens/{}", created["jti"].as_str().unwrap()),
            &sysadmin,
        )
        .header("X-Anchorage-Org", acme.to_string()),
    )
    .await;
    assert_eq!(status, 204, "{body}");
    assert_eq!(
        closed_with(&mut by_token, Duration::from_secs(5)).await,
        Some(1008),
        "revoked token"
    );

    let res = app
        .http
        .post(app.url("/v1/auth/logout"))
        .header("Cookie", &cookie)
        .header("Origin", &app.base)
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success(), "logout: {}", res.status());
    assert_eq!(
        closed_with(&mut by_cookie, Duration::from_secs(5)).await,
        Some(1008),
        "logged out"
    );

    let members = format!("/v1/orgs/{acme}/members");
    let (_, list) = send(
        app.req(Method::GET, &members, &sysadmin)
            .header("X-Anchorage-Org", acme.to_string()),
    )
    .await;
    let membership = list["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["email"] == "dana@example.com")
        .unwrap_or_else(|| panic!("dana in {list}"))["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (status, body) = send(
        app.req(
            Method::DELETE,
            &format!("{members}/{membership}"),
            &sysadmin,
        )
        .header("X-Anchorage-Org", acme.to_string()),
    )
    .await;
    assert_eq!(status, 204, "{body}");
    assert_eq!(
        closed_with(&mut by_member, Duration::from_secs(5)).await,
        Some(1008),
        "removed member"
    );

    assert_eq!(
        closed_with(&mut bystander, Duration::from_millis(500)).await,
        None,
        "the bystander stays"
    );
}

#[tokio::test]
async fn an_event_socket_closes_with_1008_when_its_token_expires() {
    let db = TestDb::migrated().await;
    let app = api_app(&db, vec![]).await;
    let acme = app.create_org("acme").await;
    let gil = person(&app, "gil@example.com", acme, Role::Member, false).await;
    let (short, _) = token_for(
        &app,
        gil,
        Some(acme),
        Role::Member,
        None,
        Duration::from_secs(3),
    );
    let mut ws = open(&app, &short).await;
    assert_eq!(
        closed_with(&mut ws, Duration::from_secs(8)).await,
        Some(1008),
        "the socket outlived its token"
    );
}

#[tokio::test]
async fn a_caller_may_hold_only_so_many_event_sockets() {
    let db = TestDb::migrated().await;
    let app = api_app(&db, vec![("server.maxEventSocketsPerCaller", json!(2))]).await;
    let acme = app.create_org("acme").await;
    let token = app.token(Some(acme), Role::Member, None);
    let _first = open(&app, &token).await;
    let mut second = open(&app, &token).await;
    match tokio_tungstenite::connect_async(socket_request(&app, &token)).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(res)) => {
            assert_eq!(res.status(), 429);
            let body: Value =
                serde_json::from_slice(res.body().as_deref().unwrap_or_default()).unwrap();
            assert_eq!(body["error"]["reason"], "TOO_MANY_REQUESTS", "{body}");
        }
        other => panic!("a third socket: {:?}", other.map(|(_, r)| r.status())),
    }
    // Someone else is not affected; a closed socket frees its place.
    let fay = person(&app, "fay@example.com", acme, Role::Member, false).await;
    let (fay_token, _) = token_for(
        &app,
        fay,
        Some(acme),
        Role::Member,
        None,
        Duration::from_secs(3600),
    );
    let _other = open(&app, &fay_token).await;
    second.close(None).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match tokio_tungstenite::connect_async(socket_request(&app, &token)).await {
            Ok(_) => break,
            Err(e) => assert!(Instant::now() < deadline, "no place freed: {e}"),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

// --- 9. Proxy trust -------------------------------------------------------------------------

#[tokio::test]
async fn forwarded_host_and_proto_count_only_from_trusted_proxies() {
    for (trusted, expected) in [(json!([]), 403), (json!(["127.0.0.0/8"]), 201)] {
        let db = TestDb::migrated().await;
        let app = api_app(&db, vec![("server.trustedProxies", trusted.clone())]).await;
        let org = app.create_org(&format!("o{expected}")).await;
        let admin = person(&app, "olga@example.com", org, Role::Orgadmin, false).await;
        let (token, _) = token_for(
            &app,
            admin,
            Some(org),
            Role::Orgadmin,
            None,
            Duration::from_secs(3600),
        );
        let cookie = post_session(&app, json!({"token": token}), None)
            .await
            .cookie
            .unwrap();
        let cookie = cookie.split(';').next().unwrap().to_string();
        let res = app
            .http
            .post(app.url("/v1/tokens"))
            .header("Cookie", &cookie)
            .header("Origin", "https://pins.example.com")
            .header("X-Forwarded-Host", "pins.example.com")
            .header("X-Forwarded-Proto", "https")
            .json(&json!({"label": "ci", "role": "member"}))
            .send()
            .await
            .unwrap();
        let status = res.status().as_u16();
        let body: Value = res.json().await.unwrap_or(Value::Null);
        assert_eq!(status, expected, "trustedProxies {trusted}: {body}");
        if expected == 403 {
            assert!(
                body["error"]["details"]
                    .as_str()
                    .unwrap()
                    .contains("Origin"),
                "{body}"
            );
        }
    }
}

#[tokio::test]
async fn behind_a_trusted_proxy_the_metrics_allowlist_sees_the_real_client() {
    let db = TestDb::migrated().await;
    let app = api_app(&db, vec![("server.trustedProxies", json!(["127.0.0.0/8"]))]).await;
    for (client, expected) in [("203.0.113.5", 403), ("10.1.2.3", 200)] {
        let res = app
            .http
            .get(app.url("/metrics"))
            .header("X-Forwarded-For", client)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status().as_u16(), expected, "{client}");
    }
}

/// Runs `anchorage serve` on `dsn` with `args` until it logs that it is serving (then
/// stops it) or exits; returns whether it served, and everything it logged.
async fn serve(db: &TestDb, dsn: &str, args: &[&str], env: &[(&str, &str)]) -> (bool, String) {
    let keys = tempfile::TempDir::new().unwrap();
    let key = keys.path().join("k1");
    anchorage::auth::keys::write_new_key_file(&key).unwrap();
    let _ = db;
    let mut cmd = tokio::process::Command::from(crate::harness::bin::anchorage());
    cmd.arg("serve")
        .args(args)
        .env("ANCHORAGE_POSTGRES__DSN", dsn)
        .env("ANCHORAGE_IPFS__RPC", "http://127.0.0.1:9")
        .env("ANCHORAGE_SERVER__LISTEN", "127.0.0.1:0")
        .env(
            "ANCHORAGE_AUTH__API_TOKEN__SIGNING_KEYS",
            json!([{ "id": "k1", "path": key, "primary": true }]).to_string(),
        )
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    let mut lines = tokio::io::BufReader::new(child.stderr.take().unwrap()).lines();
    let mut log = String::new();
    let served = tokio::time::timeout(Duration::from_secs(30), async {
        while let Ok(Some(line)) = lines.next_line().await {
            log.push_str(&line);
            log.push('\n');
            if line.contains("anchorage is serving") {
                return true;
            }
        }
        false
    })
    .await
    .unwrap_or_else(|_| panic!("serve neither served nor exited:\n{log}"));
    let _ = child.start_kill();
    let _ = child.wait().await;
    (served, log)
}

#[tokio::test]
async fn serve_warns_when_metrics_are_open_to_a_private_network_without_trusted_proxies() {
    let db = TestDb::migrated().await;
    let (served, log) = serve(&db, &db.app_dsn(), &[], &[]).await;
    assert!(served, "{log}");
    let warning = "and server.trustedProxies is empty";
    assert!(
        log.contains(warning) && log.contains("WARN"),
        "no warning about the default metrics allowlist:\n{log}"
    );
    let (served, log) = serve(
        &db,
        &db.app_dsn(),
        &[],
        &[("ANCHORAGE_SERVER__TRUSTED_PROXIES", "[\"10.0.0.0/8\"]")],
    )
    .await;
    assert!(served, "{log}");
    assert!(
        !log.contains(warning),
        "warned behind trusted proxies:\n{log}"
    );
}

// --- 10. Origins --------------------------------------------------------------------------

#[test]
fn only_internet_routable_addresses_are_public() {
    use anchorage::addresses::is_public_ip;
    let table: &[(&str, bool)] = &[
        ("8.8.8.8", true),
        ("198.51.99.7", true),
        ("2606:4700::1111", true),
        ("127.0.0.1", false),
        ("10.1.2.3", false),
        ("172.16.0.1", false),
        ("192.168.1.1", false),
        ("169.254.1.1", false),
        ("100.64.0.1", false),
        ("0.1.2.3", false),
        ("0.0.0.0", false),
        ("240.0.0.1", false),
        ("255.255.255.255", false),
        ("224.0.0.1", false),
        ("239.255.255.250", false),
        ("198.18.0.1", false),
        ("198.19.255.254", false),
        ("192.0.2.1", false),
        ("198.51.100.1", false),
        ("203.0.113.1", false),
        ("::1", false),
        ("::", false),
        ("fe80::1", false),
        ("fc00::1", false),
        ("fd12:3456::1", false),
        ("ff02::1", false),
        ("ff0e::1", false),
        ("::ffff:127.0.0.1", false),
        ("::ffff:10.0.0.1", false),
        ("::ffff:8.8.8.8", true),
        ("::127.0.0.1", false),
        ("::10.0.0.1", false),
        ("64:ff9b::7f00:1", false),
        ("64:ff9b::a00:1", false),
        ("64:ff9b::808:808", true),
        ("2002:7f00:1::1", false),
        ("2002:a00:1::1", false),
        ("2002:808:808::1", true),
        ("2001:db8::1", false),
    ];
    let wrong: Vec<String> = table
        .iter()
        .filter(|(ip, public)| is_public_ip(ip.parse().unwrap()) != *public)
        .map(|(ip, public)| {
            format!(
                "{ip} should be {}",
                if *public { "public" } else { "refused" }
            )
        })
        .collect();
    assert!(wrong.is_empty(), "{wrong:#?}");
}

#[tokio::test]
async fn origins_and_delegates_refuse_the_same_addresses() {
    use anchorage::{cluster::delegates::from_announced, placements::origins::vet};
    for addr in [
        "/ip4/198.18.0.1/tcp/4001",
        "/ip6/::ffff:127.0.0.1/tcp/4001",
        "/ip6/64:ff9b::a00:1/tcp/4001",
        "/ip4/240.0.0.1/tcp/4001",
    ] {
        let full = format!("{addr}/p2p/{PEER}");
        assert_eq!(vet(&full, false).await, None, "origin {full}");
        assert!(
            from_announced(PEER, &[addr.to_string()], true).is_empty(),
            "delegate {addr}"
        );
    }
    // Only a peer id: nothing to vet, so refused unless private origins are allowed.
    let bare = format!("/p2p/{PEER}");
    assert_eq!(vet(&bare, false).await, None, "a bare /p2p origin");
    assert_eq!(vet(&bare, true).await.as_deref(), Some(bare.as_str()));
}

// --- 11. Bad input and leaks -------------------------------------------------------------

#[tokio::test]
async fn control_characters_in_names_and_meta_are_refused_with_400() {
    let db = TestDb::migrated().await;
    let app = api_app(&db, vec![]).await;
    let org = app.create_org("acme").await;
    let token = app.token(Some(org), Role::Member, None);
    for query in [
        "name=%00",
        "name=a%07b",
        "name=%1B%5B31m",
        "meta=%7B%22k%22%3A%22%01%22%7D",
        "meta=%7B%22k%22%3A%22a%0Db%22%7D",
    ] {
        let (status, body) = send(app.req(Method::GET, &format!("/v1/pins?{query}"), &token)).await;
        assert_eq!(status, 400, "GET /v1/pins?{query}: {body}");
        assert_eq!(body["error"]["reason"], "BAD_REQUEST", "{body}");
    }
    for pin in [
        json!({"cid": cid(1), "name": "bell\u{7}"}),
        json!({"cid": cid(2), "name": "esc\u{1b}[2J"}),
        json!({"cid": cid(3), "meta": {"k": "nul\u{0}"}}),
        json!({"cid": cid(4), "meta": {"k": "del\u{7f}"}}),
    ] {
        let (status, body) = send(app.req(Method::POST, "/v1/pins", &token).json(&pin)).await;
        assert_eq!(status, 400, "{pin}: {body}");
    }
    assert_eq!(
        db_count(&app, "SELECT count(*) AS n FROM pins", &[]).await,
        0,
        "nothing half-written"
    );
}

#[tokio::test]
async fn status_details_tell_tenants_what_happened_without_the_rpc_url() {
    let db = TestDb::migrated().await;
    let app = app_on(
        &db,
        "http://127.0.0.1:9",
        vec![("ipfs.delegates", json!([DELEGATE]))],
    )
    .await;
    let (_, token) = org_token(&app, "acme").await;
    let id = post_pin(&app, &token, json!({"cid": cid(7)})).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    let details = loop {
        let (_, pin) = send(app.req(Method::GET, &format!("/v1/pins/{id}"), &token)).await;
        // While an attempt is in flight the details report its progress; wait for the
        // attempt's outcome.
        match pin["info"]["status_details"].as_str() {
            Some(d) if !d.starts_with("pinning:") => break d.to_string(),
            _ => {}
        }
        assert!(
            Instant::now() < deadline,
            "no failure in status_details: {pin}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(
        !details.contains("127.0.0.1") && !details.contains("http") && !details.contains("/api/v0"),
        "the RPC address leaked to the tenant: {details}"
    );
    assert!(details.contains("IPFS node unavailable"), "{details}");
}

// --- 12. Owner role -------------------------------------------------------------------------

#[tokio::test]
async fn serve_refuses_a_role_that_owns_the_tables_unless_allowed() {
    let db = TestDb::migrated().await;
    let (served, log) = serve(&db, &db.owner_dsn(), &[], &[]).await;
    assert!(!served, "served as the table owner:\n{log}");
    assert!(
        log.contains("postgres.migrationDSN") && log.contains("--allow-owner-role"),
        "the refusal does not name the fix:\n{log}"
    );
    let (served, log) = serve(&db, &db.owner_dsn(), &["--allow-owner-role"], &[]).await;
    assert!(served, "--allow-owner-role did not start:\n{log}");
    // The server's own role starts without the flag.
    let (served, log) = serve(&db, &db.app_dsn(), &[], &[]).await;
    assert!(served, "{log}");
}
