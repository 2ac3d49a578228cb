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

/// The same guarantees with the NATS lease: the KV key decides who may lead, the fence in
/// Postgres decides whose writes count.
mod nats {
    use std::time::Duration;

    use anchorage::{
        cluster::{
            kv_lease::KvLease,
            leader::{fenced_tx, LeaderLease},
        },
        config,
        ids::NodeId,
        nats::Nats,
        Error,
    };
    use diesel_async::RunQueryDsl;
    use futures_util::FutureExt;

    use super::Fence;
    use crate::harness::{nats::NatsServer, tcp_proxy::TcpProxy, TestDb};

    async fn connect(url: String) -> Nats {
        let config = config::Nats {
            url: vec![url],
            connect_timeout: Duration::from_secs(10),
            ..Default::default()
        };
        Nats::connect(&config, "test").await.unwrap()
    }

    async fn nodes(db: &TestDb) -> (NodeId, NodeId) {
        let (a, b) = (NodeId::new(), NodeId::new());
        for (node, name) in [(a, "a"), (b, "b")] {
            db.superuser_exec_with(
                "INSERT INTO nodes (id, name) VALUES ($1::text::uuid, $2)",
                &[&node.uuid().to_string(), &name],
            )
            .await;
        }
        (a, b)
    }

    async fn write(db: &TestDb, node: NodeId, fence: i64) -> anchorage::Result<i64> {
        fenced_tx(&db.app_pool(), node, fence, |conn| {
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

    async fn pg_lease(db: &TestDb) -> (i64, Option<i64>) {
        let row = db
            .superuser_query_one("SELECT fence, kv_revision FROM leases WHERE name = 'leader'")
            .await;
        (row.get(0), row.get(1))
    }

    #[tokio::test]
    async fn a_kv_takeover_bumps_the_fence_in_postgres_and_the_deposed_leader_cannot_write() {
        let db = TestDb::migrated().await;
        let server = tokio::task::spawn_blocking(NatsServer::start)
            .await
            .unwrap();
        let (a, b) = nodes(&db).await;
        let ttl = Duration::from_secs(2);
        let mut lease_a = KvLease::new(connect(server.url()).await, db.app_pool(), a, ttl);
        let mut lease_b = KvLease::new(connect(server.url()).await, db.app_pool(), b, ttl);

        let fence_a = lease_a.round().await.unwrap().expect("a is elected");
        assert_eq!(lease_b.round().await.unwrap(), None, "one leader at a time");
        assert_eq!(lease_a.round().await.unwrap(), Some(fence_a), "a renews");
        let (fence, revision) = pg_lease(&db).await;
        assert_eq!(fence, fence_a);
        assert_eq!(revision, Some(2), "the renewal's KV revision is recorded");
        write(&db, a, fence_a).await.expect("the leader writes");

        // a freezes: it stops renewing, and the key's TTL runs out in NATS.
        tokio::time::sleep(ttl + Duration::from_millis(1500)).await;
        let fence_b = lease_b
            .round()
            .await
            .unwrap()
            .expect("b takes the expired key");
        assert_eq!(
            fence_b,
            fence_a + 1,
            "the fence moves on by one in Postgres"
        );
        write(&db, b, fence_b).await.expect("the new leader writes");

        // a wakes up: its write is refused in Postgres and its renewal steps it down.
        match write(&db, a, fence_a).await {
            Err(Error::Conflict(msg)) => assert!(msg.contains("superseded"), "{msg}"),
            other => panic!("the deposed leader wrote: {other:?}"),
        }
        assert_eq!(lease_a.round().await.unwrap(), None, "a stepped down");
        assert_eq!(lease_a.round().await.unwrap(), None, "and stays a follower");
        assert_eq!(lease_b.round().await.unwrap(), Some(fence_b));

        // Resigning hands over at once, without waiting for the TTL.
        lease_b.resign().await;
        let fence_a2 = lease_a
            .round()
            .await
            .unwrap()
            .expect("a takes the resigned key");
        assert_eq!(fence_a2, fence_b + 1);
    }

    #[tokio::test]
    async fn losing_the_nats_store_never_moves_the_fence_back() {
        let db = TestDb::migrated().await;
        let server = tokio::task::spawn_blocking(NatsServer::start)
            .await
            .unwrap();
        let (a, b) = nodes(&db).await;
        let ttl = Duration::from_secs(2);
        let mut lease_a = KvLease::new(connect(server.url()).await, db.app_pool(), a, ttl);
        let mut lease_b = KvLease::new(connect(server.url()).await, db.app_pool(), b, ttl);
        let fence_a = lease_a.round().await.unwrap().expect("a is elected");
        for _ in 0..3 {
            lease_a.round().await.unwrap();
        }
        let (_, revision_before) = pg_lease(&db).await;
        assert_eq!(revision_before, Some(4));

        // NATS comes back with nothing: no bucket, no key, revisions from 1 again.
        server.restart_empty();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        let (fence, leader) = loop {
            assert!(
                tokio::time::Instant::now() < deadline,
                "no leader after NATS lost its store"
            );
            if let Ok(Some(f)) = lease_b.round().await {
                break (f, b);
            }
            if let Ok(Some(f)) = lease_a.round().await {
                if f != fence_a {
                    break (f, a);
                }
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        };
        assert!(
            fence > fence_a,
            "the fence only increases: {fence} > {fence_a}"
        );
        let (pg_fence, revision) = pg_lease(&db).await;
        assert_eq!(pg_fence, fence);
        assert!(
            revision < revision_before,
            "the KV revision restarted ({revision:?} after {revision_before:?}) and the fence did not"
        );
        write(&db, leader, fence)
            .await
            .expect("the new leader writes");
        match write(&db, a, fence_a).await {
            Err(Error::Conflict(_)) => {}
            other => panic!("the old fence still wrote: {other:?}"),
        }
    }

    /// A leader cut off from NATS loses the lease to another node, and its fenced writes
    /// fail in Postgres from then on, whatever it believes.
    #[tokio::test]
    async fn a_leader_cut_off_from_nats_is_replaced_and_cannot_write() {
        let db = TestDb::migrated().await;
        let server = tokio::task::spawn_blocking(NatsServer::start)
            .await
            .unwrap();
        let (link_a, link_b) = (
            TcpProxy::start(server.port()).await,
            TcpProxy::start(server.port()).await,
        );
        let (a, b) = nodes(&db).await;
        let ttl = Duration::from_secs(2);
        let mut lease_a = KvLease::new(connect(link_a.nats_url()).await, db.app_pool(), a, ttl);
        let mut lease_b = KvLease::new(connect(link_b.nats_url()).await, db.app_pool(), b, ttl);
        let fence_a = lease_a.round().await.unwrap().expect("a leads");
        assert_eq!(lease_b.round().await.unwrap(), None);

        link_a.cut();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        let fence_b = loop {
            if let Ok(Some(fence)) = lease_b.round().await {
                break fence;
            }
            assert!(tokio::time::Instant::now() < deadline, "b never took over");
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        assert!(fence_b > fence_a);

        // a still holds the fence it had; Postgres refuses it.
        match write(&db, a, fence_a).await {
            Err(Error::Conflict(msg)) => assert!(msg.contains("superseded"), "{msg}"),
            other => panic!("the cut-off leader wrote: {other:?}"),
        }
        write(&db, b, fence_b).await.expect("the new leader writes");

        // a's link heals: it finds the key taken and stays a follower.
        link_a.heal();
        let mut a_led = false;
        for _ in 0..10 {
            a_led |= matches!(lease_a.round().await, Ok(Some(_)));
            assert_eq!(lease_b.round().await.unwrap(), Some(fence_b));
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        assert!(!a_led, "two leaders after the link healed");
    }
}
