//! The per-org, per-status pin count ledger (`pin_counts`): triggers append deltas; this
//! folds them so a count stays a sum over a handful of rows.

use std::time::Duration;

use diesel::{sql_types::BigInt, sql_types::Bool, QueryableByName};
use diesel_async::RunQueryDsl;
use futures_util::FutureExt;

use crate::{
    db::{system_tx, DbPool},
    error::Result,
};

/// Advisory lock key: one compactor at a time across the cluster.
const COMPACT_LOCK: (i32, i32) = crate::db::locks::PIN_COUNTS_COMPACT;

/// Folds every committed delta into one row per (org, status). Returns how many ledger
/// rows were folded (0 when another node is compacting right now).
pub async fn compact(db: &DbPool) -> Result<i64> {
    #[derive(QueryableByName)]
    struct Locked {
        #[diesel(sql_type = Bool)]
        locked: bool,
    }
    #[derive(QueryableByName)]
    struct Folded {
        #[diesel(sql_type = BigInt)]
        n: i64,
    }
    system_tx(db, |conn| {
        async move {
            let lock: Locked = diesel::sql_query("SELECT pg_try_advisory_xact_lock($1, $2) AS locked")
                .bind::<diesel::sql_types::Integer, _>(COMPACT_LOCK.0)
                .bind::<diesel::sql_types::Integer, _>(COMPACT_LOCK.1)
                .get_result(conn)
                .await?;
            if !lock.locked {
                return Ok(0);
            }
            // Rows committed after this statement's snapshot are not deleted and stay
            // as deltas, so nothing is lost or counted twice.
            let folded: Folded = diesel::sql_query(
                "WITH gone AS (DELETE FROM pin_counts RETURNING org_id, status, n), \
                 kept AS (INSERT INTO pin_counts (org_id, status, n) \
                          SELECT org_id, status, sum(n) FROM gone GROUP BY org_id, status HAVING sum(n) <> 0) \
                 SELECT count(*) AS n FROM gone",
            )
            .get_result(conn)
            .await?;
            Ok(folded.n)
        }
        .boxed()
    })
    .await
}

/// Compacts every `every` until aborted.
pub async fn compact_loop(db: DbPool, every: Duration) {
    loop {
        tokio::time::sleep(every).await;
        if let Err(e) = compact(&db).await {
            tracing::warn!(error = %e, "compacting pin counts failed; will retry");
        }
    }
}
