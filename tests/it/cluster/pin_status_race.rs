//! Two nodes acking the same CID at once must both count: each ack's transaction
//! recomputes the pins' status from the placements, and without serialising that per
//! CID the later one read the other's placement as it was and wrote `pinned 1/2` for a
//! CID pinned on both nodes (seen on the deployed three-node Swarm stack).

use std::time::Duration;

use anchorage::{
    db::{system_tx, PoolOptions},
    placements::status,
};
use diesel_async::RunQueryDsl;
use futures_util::FutureExt;

use crate::harness::{
    sql::{self, count_in},
    TestDb,
};

const CID: &str = "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku";

/// Marks `node`'s placement of [`CID`] pinned and refreshes the status in one
/// transaction, holding it open for `hold` before committing.
async fn ack(pool: anchorage::db::DbPool, node: &'static str, hold: Duration) {
    let node: uuid::Uuid = node.parse().unwrap();
    let update = sql::query(
        "UPDATE placements SET state = 'pinned' WHERE cid = $1 AND node_id = $2",
        &[CID.into(), node.into()],
    );
    system_tx(&pool, move |conn| {
        async move {
            update.execute(conn).await?;
            status::refresh(conn, CID).await?;
            tokio::time::sleep(hold).await;
            Ok(())
        }
        .boxed()
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn two_simultaneous_acks_of_one_cid_both_count() {
    let db = TestDb::migrated().await;
    let (a, b) = (
        "00000000-0000-7000-8000-00000000000a",
        "00000000-0000-7000-8000-00000000000b",
    );
    db.superuser_exec(
        "INSERT INTO orgs (id, name) VALUES ('00000000-0000-7000-8000-000000000001', 'acme')",
    )
    .await;
    db.superuser_exec_with(
        "INSERT INTO nodes (id, name) \
         VALUES ($1::text::uuid, 'anchor-a'), ($2::text::uuid, 'anchor-b')",
        &[&a, &b],
    )
    .await;
    db.superuser_exec_with(
        "INSERT INTO pins (id, org_id, cid, requested_cid, origins, meta, status, info, created, updated_at) \
         VALUES ('00000000-0000-7000-8000-0000000000f1', '00000000-0000-7000-8000-000000000001', \
                 $1, $1, '{}', '{}', 'pinning', '{}', date_trunc('milliseconds', now()), now())",
        &[&CID],
    )
    .await;
    db.superuser_exec_with(
        "INSERT INTO placements (cid, node_id, state) \
         VALUES ($1, $2::text::uuid, 'pinning'), ($1, $3::text::uuid, 'pinning')",
        &[&CID, &a, &b],
    )
    .await;
    let pool = anchorage::db::build_pool(
        &db.app_dsn(),
        &PoolOptions {
            max_connections: 4,
            ..Default::default()
        },
    )
    .unwrap();

    // A's transaction has refreshed but not committed when B's starts.
    let first = tokio::spawn(ack(pool.clone(), a, Duration::from_millis(700)));
    tokio::time::sleep(Duration::from_millis(200)).await;
    ack(pool.clone(), b, Duration::ZERO).await;
    first.await.unwrap();

    let info = count_in(
        &pool,
        "SELECT count(*) AS n FROM pins WHERE cid = $1 AND status = 'pinned' AND info->>'replicas' = '2/2'",
        &[CID.into()],
    )
    .await;
    assert_eq!(info, 1, "the pin does not show both replicas pinned");
}
