//! Cross-node cache invalidation: a revocation written without any announcement is not
//! seen while the verdict is cached, but losing the invalidation feed drops every cache,
//! so the next request reads the truth. (Revocation announced on one node and refused on
//! another is in `multi_node.rs`.)

use std::time::{Duration, Instant};

use anchorage::auth::Role;
use diesel_async::RunQueryDsl;
use reqwest::Method;

use crate::harness::{
    fixtures::app,
    send,
    sql::{self, db_count},
    TestDb,
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
    let jti = app.state.tokens.verify(&token).unwrap().jti;
    {
        let mut conn = anchorage::db::pool::get(&app.state.db).await.unwrap();
        sql::query(
            "INSERT INTO token_denylist (jti, expires_at) VALUES ($1, now() + interval '1 hour')",
            &[jti.uuid().into()],
        )
        .execute(&mut conn)
        .await
        .unwrap();
    }
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
