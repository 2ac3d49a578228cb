//! The leader lease in-process, against the real Postgres as the server's role: one
//! holder at a time, a takeover of an expired lease bumps the fence and ends the stale
//! holder's lock session, and every fenced write of the deposed holder is refused.

use std::time::Duration;

use anchorage::{
    cluster::leader::{fenced_tx, LeaderLease, PgLease},
    ids::NodeId,
    Error,
};
use diesel::sql_types::BigInt;
use diesel_async::RunQueryDsl;
use futures_util::FutureExt;

use crate::harness::TestDb;

#[derive(diesel::QueryableByName)]
struct Fence {
    #[diesel(sql_type = BigInt)]
    fence: i64,
}

#[tokio::test]
async fn a_takeover_bumps_the_fence_and_the_deposed_leader_cannot_write() {
    let db = TestDb::migrated().await;
    let pool = db.app_pool();
    let (a, b) = (NodeId::new(), NodeId::new());
    for (node, name) in [(a, "a"), (b, "b")] {
        db.superuser_exec_with(
            "INSERT INTO nodes (id, name) VALUES ($1::text::uuid, $2)",
            &[&node.uuid().to_string(), &name],
        )
        .await;
    }
    let ttl = Duration::from_secs(30);
    let mut lease_a = PgLease::new(&db.app_dsn(), pool.clone(), a, ttl);
    let mut lease_b = PgLease::new(&db.app_dsn(), pool.clone(), b, ttl);

    let fence_a = lease_a.round().await.unwrap().expect("a is elected");
    assert_eq!(lease_b.round().await.unwrap(), None, "one leader at a time");
    assert_eq!(lease_a.round().await.unwrap(), Some(fence_a), "a renews");

    let write = |node: NodeId, fence: i64| {
        let pool = pool.clone();
        async move {
            fenced_tx(&pool, node, fence, |conn| {
                async move {
                    Ok(diesel::sql_query(
                        "UPDATE cluster_state SET maintenance_reason = 'fenced write' RETURNING 0::bigint AS fence",
                    )
                    .get_result::<Fence>(conn)
                    .await?
                    .fence)
                }
                .boxed()
            })
            .await
        }
    };
    write(a, fence_a).await.expect("the leader writes");

    // a freezes: its lease runs out while its lock session stays open.
    db.superuser_exec("UPDATE leases SET expires_at = now() - interval '1 second'")
        .await;
    let fence_b = lease_b
        .round()
        .await
        .unwrap()
        .expect("b takes the expired lease");
    assert!(fence_b > fence_a, "{fence_b} > {fence_a}");
    write(b, fence_b).await.expect("the new leader writes");

    // a wakes up: its writes are refused and its next round steps it down.
    match write(a, fence_a).await {
        Err(Error::Conflict(msg)) => assert!(msg.contains("superseded"), "{msg}"),
        other => panic!("the deposed leader wrote: {other:?}"),
    }
    // Its lock session was terminated, so its renewal fails (or finds the lease gone),
    // and from then on it is a follower.
    assert!(
        !matches!(lease_a.round().await, Ok(Some(_))),
        "a stepped down"
    );
    assert_eq!(lease_a.round().await.unwrap(), None);
    let holder: Fence = {
        let mut conn = anchorage::db::pool::get(&pool).await.unwrap();
        diesel::sql_query("SELECT fence FROM leases WHERE name = 'leader'")
            .get_result(&mut conn)
            .await
            .unwrap()
    };
    assert_eq!(holder.fence, fence_b, "the lease stays with b");
    assert_eq!(lease_b.round().await.unwrap(), Some(fence_b));
}
