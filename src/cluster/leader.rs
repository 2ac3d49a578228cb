//! Leader election: exactly one node runs the cluster-wide loops (re-placement, the
//! requeue sweeper, denylist pruning), and a deposed leader cannot write. The NATS
//! backend's lease is in `kv_lease.rs`; both end in the same fence in Postgres.
//!
//! The Postgres backend holds a two-integer advisory lock on a dedicated connection and
//! a `leases` row (holder, the lock session's backend pid, fence, expiry) that the holder
//! renews over that same connection. A frozen holder keeps its socket and so its lock;
//! the lease is what expires. A candidate that finds the lease expired terminates the
//! stale lock session, takes the lock and bumps the fence. Leader-only writes go through
//! [`fenced_tx`], which share-locks the lease row and checks holder and fence in the same
//! transaction, so a write from a deposed leader is refused even if it wakes mid-loop.

use std::time::Duration;

use diesel::{
    prelude::*,
    sql_types::{BigInt, Bool, Double, Integer, Nullable, Uuid as SqlUuid},
};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use futures_util::{future::BoxFuture, FutureExt};
use tokio::sync::watch;
use uuid::Uuid;

use crate::{
    db::{system_tx, DbPool},
    error::{Error, Result},
    ids::NodeId,
};

/// The lease every node competes for.
pub const LEADER_LEASE: &str = "leader";

/// Two-integer advisory lock key of the leader lease.
const LOCK_KEY: (i32, i32) = crate::db::locks::LEADER;

/// How long a candidate waits for the lease row while an expired leader's transaction
/// still holds it, before terminating that transaction.
pub(super) const ROW_LOCK_WAIT: &str = "2s";

/// One backend's election: the Postgres lease here; a NATS KV lease can implement it too.
pub trait LeaderLease: Send {
    /// One round: renews the lease if this node holds it, else tries to take it. Returns
    /// the fence while this node leads, `None` otherwise.
    fn round(&mut self) -> BoxFuture<'_, Result<Option<i64>>>;
    /// Gives the lease up (shutdown), so the next leader need not wait for it to expire.
    fn resign(&mut self) -> BoxFuture<'_, ()>;
}

/// Whether this node leads right now, and with which fence.
#[derive(Clone)]
pub struct Leadership {
    rx: watch::Receiver<Option<i64>>,
}

impl Leadership {
    /// A handle and the sender the election loop publishes through.
    pub fn new() -> (Self, watch::Sender<Option<i64>>) {
        let (tx, rx) = watch::channel(None);
        (Self { rx }, tx)
    }

    /// The fence this node leads with, if it leads.
    pub fn fence(&self) -> Option<i64> {
        *self.rx.borrow()
    }

    pub fn is_leader(&self) -> bool {
        self.fence().is_some()
    }

    /// Resolves when leadership changes.
    pub async fn changed(&mut self) -> bool {
        self.rx.changed().await.is_ok()
    }
}

/// Runs election rounds every `every` until aborted, publishing the outcome. An error
/// counts as not leading: better no leader for a round than two.
pub async fn election_loop(
    mut lease: Box<dyn LeaderLease>,
    every: Duration,
    publish: std::sync::Arc<watch::Sender<Option<i64>>>,
    elected: prometheus::IntGauge,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        let outcome = match lease.round().await {
            Ok(fence) => fence,
            Err(e) => {
                tracing::warn!(error = %e, "leader election round failed");
                None
            }
        };
        let before = *publish.borrow();
        if before != outcome {
            match outcome {
                Some(fence) => tracing::info!(fence, "this node is now the cluster leader"),
                None => tracing::warn!(
                    previous_fence = before,
                    "this node is no longer the cluster leader"
                ),
            }
            let _ = publish.send(outcome);
            elected.set(i64::from(outcome.is_some()));
        }
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = stop.changed() => {
                lease.resign().await;
                let _ = publish.send(None);
                elected.set(0);
                return;
            }
        }
    }
}

/// The Postgres lease.
pub struct PgLease {
    dsn: String,
    db: DbPool,
    node: NodeId,
    ttl: Duration,
    /// The lock session while this node leads.
    lock: Option<LockSession>,
}

struct LockSession {
    conn: AsyncPgConnection,
    fence: i64,
}

#[derive(QueryableByName, Debug)]
struct LeaseRow {
    #[diesel(sql_type = Nullable<SqlUuid>)]
    holder: Option<Uuid>,
    #[diesel(sql_type = Nullable<Integer>)]
    holder_pid: Option<i32>,
    #[diesel(sql_type = BigInt)]
    fence: i64,
    #[diesel(sql_type = Bool)]
    live: bool,
}

impl PgLease {
    pub fn new(dsn: &str, db: DbPool, node: NodeId, ttl: Duration) -> Self {
        Self {
            dsn: dsn.to_string(),
            db,
            node,
            ttl,
            lock: None,
        }
    }

    async fn renew(&mut self) -> Result<Option<i64>> {
        let Some(session) = self.lock.as_mut() else {
            return Ok(None);
        };
        // Over the lock session itself: if that session was terminated, this fails too.
        let renewed = diesel::sql_query(
            "UPDATE leases SET expires_at = now() + make_interval(secs => $1) \
             WHERE name = $2 AND holder = $3 AND fence = $4 AND holder_pid = pg_backend_pid()",
        )
        .bind::<Double, _>(self.ttl.as_secs_f64())
        .bind::<diesel::sql_types::Text, _>(LEADER_LEASE)
        .bind::<SqlUuid, _>(self.node.uuid())
        .bind::<BigInt, _>(session.fence)
        .execute(&mut session.conn)
        .await;
        match renewed {
            Ok(1) => Ok(Some(session.fence)),
            Ok(_) => {
                tracing::warn!(
                    fence = session.fence,
                    "the leader lease was taken over; stepping down"
                );
                self.lock = None;
                Ok(None)
            }
            Err(e) => {
                self.lock = None;
                Err(e.into())
            }
        }
    }

    async fn try_take(&mut self) -> Result<Option<i64>> {
        let lease = read_lease(&self.db).await?;
        if lease.live && lease.holder.is_some() {
            return Ok(None);
        }
        let mut conn = crate::db::connect::establish(&self.dsn).await?;
        let pid = backend_pid(&mut conn).await?;
        if !try_lock(&mut conn).await? {
            // The lock is still held: by a frozen or cut-off leader whose lease expired
            // (terminate its session) or by a candidate racing us (it wins this round).
            if let Some(stale) = lease.holder_pid.filter(|p| *p != pid) {
                terminate(&mut conn, stale).await?;
            }
            let mut got = false;
            for _ in 0..20 {
                tokio::time::sleep(Duration::from_millis(100)).await;
                if try_lock(&mut conn).await? {
                    got = true;
                    break;
                }
            }
            if !got {
                return Ok(None);
            }
        }
        let node = self.node.uuid();
        let ttl = self.ttl.as_secs_f64();
        let fence = system_tx(&self.db, move |tx| {
            async move {
                diesel::sql_query(format!("SET LOCAL lock_timeout = '{ROW_LOCK_WAIT}'"))
                    .execute(tx)
                    .await?;
                let lease = lock_lease_row(tx).await?;
                if lease.live && lease.holder.is_some() && lease.holder_pid != Some(pid) {
                    return Ok(None); // someone else took it first
                }
                Ok(Some(bump_fence(tx, node, Some(pid), None, ttl).await?))
            }
            .boxed()
        })
        .await;
        let fence = match fence {
            Ok(Some(fence)) => fence,
            Ok(None) => return Ok(None),
            Err(e) if is_lock_timeout(&e) => {
                // An expired leader froze inside a fenced write and still share-locks the
                // row: end those transactions; the next round takes over.
                terminate_row_blockers(&self.db).await?;
                return Ok(None);
            }
            Err(e) => return Err(e),
        };
        tracing::info!(fence, backend_pid = pid, "took the leader lease");
        self.lock = Some(LockSession { conn, fence });
        Ok(Some(fence))
    }
}

impl LeaderLease for PgLease {
    fn round(&mut self) -> BoxFuture<'_, Result<Option<i64>>> {
        async move {
            if self.lock.is_some() {
                return self.renew().await;
            }
            self.try_take().await
        }
        .boxed()
    }

    fn resign(&mut self) -> BoxFuture<'_, ()> {
        async move {
            if let Some(mut session) = self.lock.take() {
                let _ = diesel::sql_query(
                    "UPDATE leases SET expires_at = now() WHERE name = $1 AND holder_pid = pg_backend_pid() AND fence = $2",
                )
                .bind::<diesel::sql_types::Text, _>(LEADER_LEASE)
                .bind::<BigInt, _>(session.fence)
                .execute(&mut session.conn)
                .await;
                tracing::info!(fence = session.fence, "resigned the leader lease");
            }
        }
        .boxed()
    }
}

/// Creates the lease row on first use.
pub(super) async fn ensure_lease_row(db: &DbPool) -> Result<()> {
    let mut conn = crate::db::pool::get(db).await?;
    diesel::sql_query(
        "INSERT INTO leases (name, fence) VALUES ($1, 0) ON CONFLICT (name) DO NOTHING",
    )
    .bind::<diesel::sql_types::Text, _>(LEADER_LEASE)
    .execute(&mut conn)
    .await?;
    Ok(())
}

/// Makes `node` the holder with the next fence (both backends take over through this):
/// `holder_pid` is the Postgres lock session's, `kv_revision` the NATS key's.
pub(super) async fn bump_fence(
    tx: &mut AsyncPgConnection,
    node: Uuid,
    holder_pid: Option<i32>,
    kv_revision: Option<i64>,
    ttl_secs: f64,
) -> Result<i64> {
    #[derive(QueryableByName)]
    struct Fence {
        #[diesel(sql_type = BigInt)]
        fence: i64,
    }
    let row: Fence = diesel::sql_query(
        "UPDATE leases SET holder = $1, holder_pid = $2, kv_revision = $3, fence = fence + 1, \
         expires_at = now() + make_interval(secs => $4) WHERE name = $5 RETURNING fence",
    )
    .bind::<SqlUuid, _>(node)
    .bind::<Nullable<Integer>, _>(holder_pid)
    .bind::<Nullable<BigInt>, _>(kv_revision)
    .bind::<Double, _>(ttl_secs)
    .bind::<diesel::sql_types::Text, _>(LEADER_LEASE)
    .get_result(tx)
    .await?;
    Ok(row.fence)
}

/// The lease as it stands, without locking (and creating its row on first use).
async fn read_lease(db: &DbPool) -> Result<LeaseRow> {
    ensure_lease_row(db).await?;
    system_tx(db, |tx| {
        async move {
            Ok(diesel::sql_query(
                "SELECT holder, holder_pid, fence, COALESCE(expires_at > now(), false) AS live \
                 FROM leases WHERE name = $1",
            )
            .bind::<diesel::sql_types::Text, _>(LEADER_LEASE)
            .get_result(tx)
            .await?)
        }
        .boxed()
    })
    .await
}

async fn lock_lease_row(tx: &mut AsyncPgConnection) -> Result<LeaseRow> {
    Ok(diesel::sql_query(
        "SELECT holder, holder_pid, fence, COALESCE(expires_at > now(), false) AS live \
         FROM leases WHERE name = $1 FOR UPDATE",
    )
    .bind::<diesel::sql_types::Text, _>(LEADER_LEASE)
    .get_result(tx)
    .await?)
}

#[derive(QueryableByName)]
struct Flag {
    #[diesel(sql_type = Bool)]
    ok: bool,
}

async fn try_lock(conn: &mut AsyncPgConnection) -> Result<bool> {
    let row: Flag = diesel::sql_query("SELECT pg_try_advisory_lock($1, $2) AS ok")
        .bind::<Integer, _>(LOCK_KEY.0)
        .bind::<Integer, _>(LOCK_KEY.1)
        .get_result(conn)
        .await?;
    Ok(row.ok)
}

async fn backend_pid(conn: &mut AsyncPgConnection) -> Result<i32> {
    #[derive(QueryableByName)]
    struct Pid {
        #[diesel(sql_type = Integer)]
        pid: i32,
    }
    let row: Pid = diesel::sql_query("SELECT pg_backend_pid() AS pid")
        .get_result(conn)
        .await?;
    Ok(row.pid)
}

/// Ends the stale leader's lock session (its advisory lock goes with it).
async fn terminate(conn: &mut AsyncPgConnection, pid: i32) -> Result<()> {
    let row: Flag = diesel::sql_query("SELECT pg_terminate_backend($1) AS ok")
        .bind::<Integer, _>(pid)
        .get_result(conn)
        .await?;
    tracing::warn!(
        pid,
        terminated = row.ok,
        "terminated the expired leader's lock session"
    );
    Ok(())
}

/// Terminates the sessions whose transactions hold the lease row (an expired leader
/// frozen inside a fenced write).
pub(super) async fn terminate_row_blockers(db: &DbPool) -> Result<()> {
    let mut conn = crate::db::pool::get(db).await?;
    let n = diesel::sql_query(
        "SELECT pg_terminate_backend(l.pid) FROM pg_locks l \
         JOIN pg_class c ON c.oid = l.relation \
         WHERE c.relname = 'leases' AND l.granted AND l.mode = 'RowShareLock' \
           AND l.pid <> pg_backend_pid()",
    )
    .execute(&mut conn)
    .await?;
    tracing::warn!(
        sessions = n,
        "terminated transactions of an expired leader that held the lease"
    );
    Ok(())
}

pub(super) fn is_lock_timeout(e: &Error) -> bool {
    matches!(e, Error::Database(diesel::result::Error::DatabaseError(_, info))
        if info.message().contains("lock timeout"))
}

/// Runs `f` as the leader holding `fence`: in a system transaction that share-locks the
/// lease row and checks holder and fence first. A leader that has been replaced (even
/// one that froze and just woke up) gets [`Error::Conflict`] and writes nothing.
pub async fn fenced_tx<R, F>(db: &DbPool, node: NodeId, fence: i64, f: F) -> Result<R>
where
    F: for<'c> FnOnce(&'c mut AsyncPgConnection) -> BoxFuture<'c, Result<R>> + Send + 'static,
    R: Send,
{
    system_tx(db, move |tx| {
        async move {
            let row: Flag = diesel::sql_query(
                "SELECT EXISTS (SELECT 1 FROM leases WHERE name = $1 AND holder = $2 \
                 AND fence = $3 FOR SHARE) AS ok",
            )
            .bind::<diesel::sql_types::Text, _>(LEADER_LEASE)
            .bind::<SqlUuid, _>(node.uuid())
            .bind::<BigInt, _>(fence)
            .get_result(tx)
            .await?;
            if !row.ok {
                return Err(Error::Conflict(format!(
                    "not the cluster leader any more (fence {fence} was superseded)"
                )));
            }
            f(tx).await
        }
        .boxed()
    })
    .await
}

/// Who leads, as the lease row says (for presences and tests).
pub async fn current_leader(db: &DbPool) -> Result<Option<(NodeId, i64)>> {
    let lease = read_lease(db).await?;
    Ok(match lease.holder {
        Some(holder) if lease.live => Some((NodeId::from_uuid(holder), lease.fence)),
        _ => None,
    })
}
