//! The NATS leader lease: the key `leader` in the JetStream KV bucket `<prefix>_LEADER`,
//! with a per-key TTL (nats-server 2.11+), taken with create-if-absent and renewed with
//! an update conditioned on the revision this node last wrote.
//!
//! NATS decides who *may* lead; Postgres still decides whose writes count. On takeover
//! the new leader bumps `leases.fence` in Postgres (recording the KV revision beside
//! it), and [`super::leader::fenced_tx`] checks holder and fence in the writer's own
//! transaction. A KV revision restarts when NATS loses its store, so it is recorded
//! only for the audit: the fence is Postgres's and only ever increases.

use std::time::Duration;

use async_nats::{
    jetstream::kv::{self, CreateErrorKind, Store},
    HeaderMap,
};
use diesel::sql_types::{BigInt, Double, Text, Uuid as SqlUuid};
use diesel_async::RunQueryDsl;
use futures_util::{future::BoxFuture, FutureExt};

use super::leader::{self, LeaderLease, LEADER_LEASE};
use crate::{
    db::{system_tx, DbPool},
    error::{Error, Result},
    ids::NodeId,
    nats::Nats,
};

/// The key every node competes for.
const KEY: &str = "leader";

/// What this node holds while it leads.
struct Held {
    revision: u64,
    fence: i64,
}

/// The KV lease of one node.
pub struct KvLease {
    nats: Nats,
    store: Option<Store>,
    db: DbPool,
    node: NodeId,
    ttl: Duration,
    held: Option<Held>,
}

impl KvLease {
    pub fn new(nats: Nats, db: DbPool, node: NodeId, ttl: Duration) -> Self {
        Self {
            nats,
            store: None,
            db,
            node,
            ttl,
            held: None,
        }
    }

    /// The bucket, created on first use (history 1, TTL markers on).
    async fn store(&mut self) -> Result<Store> {
        if let Some(store) = &self.store {
            return Ok(store.clone());
        }
        let bucket = self.nats.names.leader_bucket();
        let store = match self.nats.jetstream.get_key_value(&bucket).await {
            Ok(store) => store,
            Err(_) => self
                .nats
                .jetstream
                .create_key_value(kv::Config {
                    bucket: bucket.clone(),
                    history: 1,
                    num_replicas: self.nats.replicas,
                    limit_markers: Some(self.ttl),
                    ..Default::default()
                })
                .await
                .map_err(|e| Error::nats(format!("creating bucket {bucket}"), e))?,
        };
        self.store = Some(store.clone());
        Ok(store)
    }

    async fn try_take(&mut self) -> Result<Option<i64>> {
        let store = self.store().await?;
        let me = self.node.uuid().to_string();
        let revision = match store.create_with_ttl(KEY, me.into(), self.ttl).await {
            Ok(revision) => revision,
            Err(e) if e.kind() == CreateErrorKind::AlreadyExists => return Ok(None),
            Err(e) => return Err(Error::nats("taking the leader lease", e)),
        };
        let fence = match take_fence(&self.db, self.node, revision, self.ttl).await {
            Ok(fence) => fence,
            Err(e) => {
                // Give the key back rather than hold it without a fence.
                let _ = store.delete_expect_revision(KEY, Some(revision)).await;
                return Err(e);
            }
        };
        tracing::info!(fence, kv_revision = revision, "took the leader lease");
        self.held = Some(Held { revision, fence });
        Ok(Some(fence))
    }

    async fn renew(&mut self) -> Result<Option<i64>> {
        let Some(held) = self.held.as_ref() else {
            return Ok(None);
        };
        let (last, fence) = (held.revision, held.fence);
        let store = self.store().await?;
        match self.update_with_ttl(last).await {
            Ok(revision) => {
                if !renew_fence(&self.db, self.node, fence, revision, self.ttl).await? {
                    tracing::warn!(fence, "the fence in Postgres moved on; stepping down");
                    self.held = None;
                    let _ = store.delete_expect_revision(KEY, Some(revision)).await;
                    return Ok(None);
                }
                self.held = Some(Held { revision, fence });
                Ok(Some(fence))
            }
            Err(e) => match store.entry(KEY).await {
                // Still ours as we left it: NATS was briefly unavailable. Not leading
                // this round; the next renewal may resume with the same fence.
                Ok(Some(entry))
                    if entry.revision == last
                        && entry.operation == kv::Operation::Put
                        && entry.value == self.node.uuid().to_string().as_bytes() =>
                {
                    Err(e)
                }
                Err(_) => Err(e),
                // Expired, taken, or the store was lost.
                Ok(_) => {
                    tracing::warn!(fence, "the leader lease was lost in NATS; stepping down");
                    self.held = None;
                    Ok(None)
                }
            },
        }
    }

    /// Writes the key again after revision `last`, with a fresh TTL.
    async fn update_with_ttl(&self, last: u64) -> Result<u64> {
        let mut headers = HeaderMap::new();
        headers.insert(
            "Nats-Expected-Last-Subject-Sequence",
            last.to_string().as_str(),
        );
        headers.insert("Nats-TTL", self.ttl.as_secs().to_string().as_str());
        let subject = format!("$KV.{}.{KEY}", self.nats.names.leader_bucket());
        let value = self.node.uuid().to_string();
        let ack = (self.nats.jetstream)
            .publish_with_headers(subject, headers, value.into())
            .await
            .map_err(|e| Error::nats("renewing the leader lease", e))?
            .await
            .map_err(|e| Error::nats("renewing the leader lease", e))?;
        Ok(ack.sequence)
    }
}

impl LeaderLease for KvLease {
    fn round(&mut self) -> BoxFuture<'_, Result<Option<i64>>> {
        async move {
            let outcome = match self.held {
                Some(_) => self.renew().await,
                None => self.try_take().await,
            };
            if outcome.is_err() {
                // NATS may have lost its store: find (or create) the bucket afresh.
                self.store = None;
            }
            outcome
        }
        .boxed()
    }

    fn resign(&mut self) -> BoxFuture<'_, ()> {
        async move {
            if let Some(held) = self.held.take() {
                if let Ok(store) = self.store().await {
                    let _ = store.delete_expect_revision(KEY, Some(held.revision)).await;
                }
                let _ = expire_fence(&self.db, self.node, held.fence).await;
                tracing::info!(fence = held.fence, "resigned the leader lease");
            }
        }
        .boxed()
    }
}

/// Takes the Postgres side of the lease after winning the key: fence + 1, this node as
/// holder, the KV revision beside it. A deposed leader frozen inside a fenced write
/// still share-locks the row; its transaction is ended and the next round retries.
async fn take_fence(db: &DbPool, node: NodeId, revision: u64, ttl: Duration) -> Result<i64> {
    leader::ensure_lease_row(db).await?;
    let taken = system_tx(db, move |tx| {
        async move {
            diesel::sql_query(format!(
                "SET LOCAL lock_timeout = '{}'",
                leader::ROW_LOCK_WAIT
            ))
            .execute(tx)
            .await?;
            leader::bump_fence(
                tx,
                node.uuid(),
                None,
                Some(revision as i64),
                ttl.as_secs_f64(),
            )
            .await
        }
        .boxed()
    })
    .await;
    match taken {
        Err(e) if leader::is_lock_timeout(&e) => {
            leader::terminate_row_blockers(db).await?;
            Err(e)
        }
        other => other,
    }
}

/// Extends the Postgres side while this node still holds `fence`; false if it moved on.
async fn renew_fence(
    db: &DbPool,
    node: NodeId,
    fence: i64,
    revision: u64,
    ttl: Duration,
) -> Result<bool> {
    let mut conn = crate::db::pool::get(db).await?;
    let n = diesel::sql_query(
        "UPDATE leases SET expires_at = now() + make_interval(secs => $1), kv_revision = $2 \
         WHERE name = $3 AND holder = $4 AND fence = $5",
    )
    .bind::<Double, _>(ttl.as_secs_f64())
    .bind::<BigInt, _>(revision as i64)
    .bind::<Text, _>(LEADER_LEASE)
    .bind::<SqlUuid, _>(node.uuid())
    .bind::<BigInt, _>(fence)
    .execute(&mut conn)
    .await?;
    Ok(n == 1)
}

/// Marks the Postgres side expired on resignation.
async fn expire_fence(db: &DbPool, node: NodeId, fence: i64) -> Result<()> {
    let mut conn = crate::db::pool::get(db).await?;
    diesel::sql_query(
        "UPDATE leases SET expires_at = now() WHERE name = $1 AND holder = $2 AND fence = $3",
    )
    .bind::<Text, _>(LEADER_LEASE)
    .bind::<SqlUuid, _>(node.uuid())
    .bind::<BigInt, _>(fence)
    .execute(&mut conn)
    .await?;
    Ok(())
}
