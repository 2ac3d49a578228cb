//! Cross-node cache invalidation: a revocation written without any announcement is not
//! seen while the verdict is cached, but losing the invalidation feed (the LISTEN
//! connection, or the NATS link) drops every cache, so the next request reads the truth.
//! (Revocation announced on one node and refused on another is in `multi_node.rs`, on
//! both backends.)

use std::time::{Duration, Instant};

use anchorage::auth::Role;
use diesel_async::RunQueryDsl;
use reqwest::Method;
use serde_json::json;

use crate::harness::{
    cluster::{eventually, timed},
    fixtures::{app, PEER},
    nats::NatsServer,
    send,
    sql::{self, db_count},
    tcp_proxy::TcpProxy,
    TestApp, TestDb,
};

#[tokio::test]
async fn losing_the_invalidation_feed_drops_the_caches() {
    let db = TestDb::migrated().await;
    let app = app(&db).await;
    let org = app.create_org("acme").await;
    let token = app.token(Some(org), Role::Member, None);
    // The feed drops every cache when it starts listening: warm the cache only after.
    let listening = "SELECT count(*) AS n FROM pg_stat_activity \
                     WHERE query LIKE 'LISTEN anchorage_invalidate%'";
    let deadline = Instant::now() + Duration::from_secs(10);
    while db_count(&app, listening, &[]).await == 0 {
        assert!(
            Instant::now() < deadline,
            "the invalidation feed never listened"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (status, _) = send(app.req(Method::GET, "/v1/pins", &token)).await;
    assert_eq!(status, 200, "the token is now cached as valid");

    // Revoked behind the server's back: no NOTIFY, so the cached verdict stands.
    denylist_behind_the_servers_back(&app, &token).await;
    let (status, _) = send(app.req(Method::GET, "/v1/pins", &token)).await;
    assert_eq!(status, 200, "still cached");

    // The listening connection dies (a Postgres restart, a network cut).
    db.superuser_exec(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE query LIKE 'LISTEN anchorage_invalidate%' AND pid <> pg_backend_pid()",
    )
    .await;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (status, _) = send(app.req(Method::GET, "/v1/pins", &token)).await;
        if status == 401 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the cached verdict survived the lost feed"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The invalidation bus drops every cache when its NATS link drops: an invalidation
/// published in the gap would otherwise be missed.
#[tokio::test]
async fn losing_the_nats_link_drops_the_caches() {
    let db = TestDb::migrated().await;
    let server = tokio::task::spawn_blocking(NatsServer::start)
        .await
        .unwrap();
    let link = TcpProxy::start(server.port()).await;
    let app = TestApp::spawn_api_only(
        &db,
        "http://127.0.0.1:9",
        vec![
            ("cluster.backend".into(), json!("nats")),
            ("nats.url".into(), json!([link.nats_url()])),
            (
                "ipfs.delegates".into(),
                json!([format!("/ip4/198.51.99.7/tcp/4001/p2p/{PEER}")]),
            ),
        ],
    )
    .await;
    let org = app.create_org("acme").await;
    let token = app.token(Some(org), Role::Member, None);
    // The follower drops every cache once subscribed: warm the cache only after.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (status, _) = send(app.req(Method::GET, "/v1/pins", &token)).await;
    assert_eq!(status, 200, "the token is now cached as valid");

    // Revoked behind the server's back: nothing published, so the cached verdict stands.
    denylist_behind_the_servers_back(&app, &token).await;
    let (status, _) = send(app.req(Method::GET, "/v1/pins", &token)).await;
    assert_eq!(status, 200, "still cached");

    link.cut();
    let (status, _) = timed(
        "the cached verdict dropped",
        Duration::from_secs(10),
        || async {
            let (status, _) = send(app.req(Method::GET, "/v1/pins", &token)).await;
            (status == 401).then_some(status)
        },
    )
    .await;
    assert_eq!(status, 401);
    let (_, ready) = app.get_json("/v1/ready").await;
    assert_eq!(ready["checks"]["nats"], "down", "{ready}");
    link.heal();
    eventually("nats: ok again", Duration::from_secs(10), || async {
        let (_, ready) = app.get_json("/v1/ready").await;
        (ready["checks"]["nats"] == "ok").then_some(())
    })
    .await;
    assert_eq!(
        db_count(&app, "SELECT count(*) AS n FROM token_denylist", &[]).await,
        1
    );
}

/// Denylists `token` straight in the database: nothing announces it.
async fn denylist_behind_the_servers_back(app: &TestApp, token: &str) {
    let jti = app.state.tokens.verify(token).unwrap().jti;
    let mut conn = anchorage::db::pool::get(&app.state.db).await.unwrap();
    sql::query(
        "INSERT INTO token_denylist (jti, expires_at) VALUES ($1, now() + interval '1 hour')",
        &[jti.uuid().into()],
    )
    .execute(&mut conn)
    .await
    .unwrap();
}
