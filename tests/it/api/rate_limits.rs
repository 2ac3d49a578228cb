//! Per-client-IP rate limits on anonymous requests: the (N+1)th in a minute is 429 with
//! the error body and Retry-After; verified callers and probes are never limited; an
//! invalid token counts as anonymous; X-Forwarded-For only matters behind a trusted proxy.

use anchorage::auth::Role;
use reqwest::Method;
use serde_json::{json, Value};

use crate::harness::{fixtures::PEER, send, TestApp, TestDb};

const LIMIT: usize = 5;

async fn limited_app(db: &TestDb, trusted_proxies: Value) -> TestApp {
    TestApp::spawn_api_only(
        db,
        "http://127.0.0.1:9",
        vec![
            (
                "ipfs.delegates".into(),
                json!([format!("/ip4/198.51.99.7/tcp/4001/p2p/{PEER}")]),
            ),
            ("server.rateLimit.anonymousPerMinute".into(), json!(LIMIT)),
            ("server.trustedProxies".into(), trusted_proxies),
        ],
    )
    .await
}

/// An anonymous `GET /v1/pins`, optionally claiming to come from `xff`, with `auth`.
async fn anonymous(app: &TestApp, xff: Option<&str>, auth: Option<&str>) -> reqwest::Response {
    let mut req = app.http.get(app.url("/v1/pins"));
    if let Some(xff) = xff {
        req = req.header("X-Forwarded-For", xff);
    }
    if let Some(auth) = auth {
        req = req.header("Authorization", auth);
    }
    req.send().await.unwrap()
}

#[tokio::test]
async fn anonymous_requests_are_limited_per_client_and_verified_ones_never() {
    let db = TestDb::migrated().await;
    let app = limited_app(&db, json!(["127.0.0.0/8"])).await;
    let org = app.create_org("acme").await;
    let token = app.token(Some(org), Role::Member, None);

    for _ in 0..LIMIT {
        let res = anonymous(&app, Some("203.0.113.1"), None).await;
        assert_eq!(res.status(), 401);
    }
    let res = anonymous(&app, Some("203.0.113.1"), None).await;
    assert_eq!(res.status(), 429);
    let retry_after: u64 = res.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry_after <= 60, "{retry_after}");
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"]["reason"], "TOO_MANY_REQUESTS", "{body}");
    assert!(body["error"]["details"]
        .as_str()
        .unwrap()
        .contains("retry in"));

    // An invalid token is anonymous: limited too.
    let res = anonymous(&app, Some("203.0.113.1"), Some("Bearer not.a.token")).await;
    assert_eq!(res.status(), 429);
    // A verified caller from the same client is never limited.
    for _ in 0..(3 * LIMIT) {
        let (status, _) = send(
            app.req(Method::GET, "/v1/pins", &token)
                .header("X-Forwarded-For", "203.0.113.1"),
        )
        .await;
        assert_eq!(status, 200);
    }
    // Probes are exempt.
    let res = app
        .http
        .get(app.url("/v1/health"))
        .header("X-Forwarded-For", "203.0.113.1")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    // Another client behind the same (trusted) proxy has its own allowance.
    let res = anonymous(&app, Some("203.0.113.2"), None).await;
    assert_eq!(res.status(), 401);
}

#[tokio::test]
async fn a_spoofed_forwarded_for_from_an_untrusted_peer_does_not_change_the_key() {
    let db = TestDb::migrated().await;
    let app = limited_app(&db, json!([])).await;
    for i in 0..LIMIT {
        let res = anonymous(&app, Some(&format!("198.51.100.{i}")), None).await;
        assert_eq!(res.status(), 401);
    }
    let res = anonymous(&app, Some("198.51.100.200"), None).await;
    assert_eq!(
        res.status(),
        429,
        "a fresh X-Forwarded-For bought no new allowance"
    );
}
