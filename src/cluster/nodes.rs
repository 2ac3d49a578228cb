//! This node's row in `nodes`: claimed by its operator-given name at start, then kept
//! fresh by the heartbeat.
//!
//! A node name belongs to one running process at a time. The claim takes a session
//! advisory lock keyed by the name on a connection the process keeps open for its whole
//! life (its *presence*): a second process with the same `cluster.nodeID` cannot take it
//! and refuses to start, while a crashed process releases it the moment its socket closes.

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use diesel::{
    prelude::*,
    sql_types::{Bool, Integer, Text},
};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use futures_util::FutureExt;

use super::invalidation::{Invalidation, InvalidationBus};
use crate::{
    cache::CacheStats,
    db::{schema::nodes, system_tx, DbPool},
    error::{Error, Result},
    ids::NodeId,
};

/// Advisory lock namespace of node-name claims.
const CLAIM_NAMESPACE: i32 = crate::db::locks::NODE_CLAIMS;

/// The connection that holds this process's claim on its node name.
pub struct Presence {
    dsn: String,
    name: String,
    conn: Option<AsyncPgConnection>,
}

#[derive(QueryableByName)]
struct Flag {
    #[diesel(sql_type = Bool)]
    ok: bool,
}

impl Presence {
    /// Claims `name` for this process, or explains who holds it.
    pub async fn claim(dsn: &str, name: &str) -> Result<Self> {
        let mut presence = Self {
            dsn: dsn.to_string(),
            name: name.to_string(),
            conn: None,
        };
        if !presence.try_claim().await? {
            return Err(Error::Conflict(format!(
                "cluster.nodeID '{name}' is in use by another running anchorage process; \
                 stop that process or give this node another cluster.nodeID"
            )));
        }
        Ok(presence)
    }

    async fn try_claim(&mut self) -> Result<bool> {
        let mut conn = crate::db::connect::establish(&self.dsn).await?;
        let got: Flag = diesel::sql_query("SELECT pg_try_advisory_lock($1, hashtext($2)) AS ok")
            .bind::<Integer, _>(CLAIM_NAMESPACE)
            .bind::<Text, _>(&self.name)
            .get_result(&mut conn)
            .await?;
        if got.ok {
            self.conn = Some(conn);
        }
        Ok(got.ok)
    }

    /// Checks the claim is still held (its connection alive), re-claiming after a lost
    /// connection. Returns false while another process holds the name.
    pub async fn keep(&mut self) -> Result<bool> {
        if let Some(conn) = self.conn.as_mut() {
            if diesel::sql_query("SELECT 1").execute(conn).await.is_ok() {
                return Ok(true);
            }
            self.conn = None;
            tracing::warn!("lost the connection holding this node's name; re-claiming it");
        }
        self.try_claim().await
    }
}

/// Registers the node named `name` (upsert by name) with what its Kubo announces, and
/// returns its id. Call after [`Presence::claim`].
pub async fn register(
    db: &DbPool,
    bus: Arc<dyn InvalidationBus>,
    backend: &'static str,
    name: &str,
    peer_id: Option<&str>,
    addrs: &[String],
) -> Result<NodeId> {
    let name = name.to_string();
    let peer_id = peer_id.map(str::to_string);
    let addrs = addrs.to_vec();
    system_tx(db, |conn| {
        async move {
            let id = upsert(conn, &name, peer_id.as_deref(), &addrs).await?;
            diesel::update(nodes::table.filter(nodes::id.eq(id.uuid())))
                .set(nodes::backend.eq(backend))
                .execute(conn)
                .await?;
            // Other nodes re-read the live set: this one may be new or back.
            bus.announce(conn, Invalidation::Nodes).await?;
            Ok(id)
        }
        .boxed()
    })
    .await
}

async fn upsert(
    conn: &mut AsyncPgConnection,
    name: &str,
    peer_id: Option<&str>,
    addrs: &[String],
) -> Result<NodeId> {
    let id: uuid::Uuid = diesel::insert_into(nodes::table)
        .values((
            nodes::id.eq(NodeId::new().uuid()),
            nodes::name.eq(name),
            nodes::kubo_peer_id.eq(peer_id),
            nodes::multiaddrs.eq(addrs),
            nodes::kubo_healthy.eq(peer_id.is_some()),
            nodes::started_at.eq(diesel::dsl::now),
            nodes::last_seen.eq(diesel::dsl::now),
        ))
        .on_conflict(nodes::name)
        .do_update()
        .set((
            nodes::kubo_peer_id.eq(diesel::dsl::sql::<
                diesel::sql_types::Nullable<diesel::sql_types::Text>,
            >(
                "COALESCE(EXCLUDED.kubo_peer_id, nodes.kubo_peer_id)"
            )),
            nodes::multiaddrs.eq(diesel::dsl::sql::<
                diesel::sql_types::Array<diesel::sql_types::Text>,
            >(
                "CASE WHEN cardinality(EXCLUDED.multiaddrs) > 0 \
                 THEN EXCLUDED.multiaddrs ELSE nodes.multiaddrs END",
            )),
            nodes::kubo_healthy.eq(peer_id.is_some()),
            nodes::started_at.eq(diesel::dsl::now),
            nodes::last_seen.eq(diesel::dsl::now),
        ))
        .returning(nodes::id)
        .get_result(conn)
        .await?;
    Ok(NodeId::from_uuid(id))
}

/// What a heartbeat reports.
#[derive(Debug, Clone, Default)]
pub struct Beat {
    /// Kubo answered `id` just now; its peer id and addresses.
    pub kubo: Option<(String, Vec<String>)>,
    /// Per cache: hits, misses, entries.
    pub cache_stats: BTreeMap<String, CacheStats>,
    /// `cluster.backend`, so a node configured otherwise refuses to join.
    pub backend: &'static str,
}

/// Records that `node` is alive, with its Kubo's health and its cache counters.
pub async fn heartbeat(db: &DbPool, node: NodeId, beat: Beat) -> Result<()> {
    let stats = serde_json::to_value(&beat.cache_stats)
        .map_err(|e| Error::Internal(format!("cache stats: {e}")))?;
    system_tx(db, move |conn| {
        async move {
            let healthy = beat.kubo.is_some();
            let target = nodes::table.filter(nodes::id.eq(node.uuid()));
            match beat.kubo {
                Some((peer, addrs)) => {
                    diesel::update(target)
                        .set((
                            nodes::last_seen.eq(diesel::dsl::now),
                            nodes::backend.eq(beat.backend),
                            nodes::kubo_healthy.eq(healthy),
                            nodes::kubo_peer_id.eq(peer),
                            nodes::multiaddrs.eq(addrs),
                            nodes::cache_stats.eq(stats),
                        ))
                        .execute(conn)
                        .await?
                }
                None => {
                    diesel::update(target)
                        .set((
                            nodes::last_seen.eq(diesel::dsl::now),
                            nodes::backend.eq(beat.backend),
                            nodes::kubo_healthy.eq(false),
                            nodes::cache_stats.eq(stats),
                        ))
                        .execute(conn)
                        .await?
                }
            };
            Ok(())
        }
        .boxed()
    })
    .await
}

/// How long a heartbeat may take before the node reports itself unhealthy.
pub const HEARTBEAT_KUBO_TIMEOUT: Duration = Duration::from_secs(5);

/// `node`'s placements per state (for the `anchorage_placements_by_status` gauge).
pub async fn placements_by_state(
    conn: &mut AsyncPgConnection,
    node: NodeId,
) -> Result<Vec<(String, i64)>> {
    #[derive(QueryableByName)]
    struct Row {
        #[diesel(sql_type = Text)]
        state: String,
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let rows: Vec<Row> = diesel::sql_query(
        "SELECT state, count(*) AS n FROM placements WHERE node_id = $1 GROUP BY state",
    )
    .bind::<diesel::sql_types::Uuid, _>(node.uuid())
    .load(conn)
    .await?;
    Ok(rows.into_iter().map(|r| (r.state, r.n)).collect())
}
