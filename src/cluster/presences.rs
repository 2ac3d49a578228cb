//! What the cluster looks like right now, per node: for `anchorage admin
//! cluster-presences` and `cache-stats` (and later the admin API).

use std::{collections::BTreeMap, time::Duration};

use chrono::{DateTime, Utc};
use diesel::{
    sql_types::{Bool, Double, Jsonb, Nullable, Text, Timestamptz, Uuid as SqlUuid},
    QueryableByName,
};
use diesel_async::RunQueryDsl;
use serde::Serialize;
use uuid::Uuid;

use super::store::NodeState;
use crate::cache::CacheStats;
use crate::{
    db::{pool, DbPool},
    error::Result,
    ids::NodeId,
};

/// One node as the cluster sees it.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Presence {
    #[serde(rename = "nodeID")]
    pub node_id: String,
    pub id: NodeId,
    pub state: NodeState,
    pub live: bool,
    pub leader: bool,
    pub last_seen: Option<DateTime<Utc>>,
    pub kubo_peer_id: Option<String>,
    pub kubo_healthy: bool,
    /// Placements per state.
    pub placements: BTreeMap<String, i64>,
    /// Per cache: hits, misses, entries (from the node's last heartbeat).
    pub caches: BTreeMap<String, CacheStats>,
}

#[derive(QueryableByName)]
struct Row {
    #[diesel(sql_type = SqlUuid)]
    id: Uuid,
    #[diesel(sql_type = Text)]
    name: String,
    #[diesel(sql_type = Text)]
    state: NodeState,
    #[diesel(sql_type = Bool)]
    live: bool,
    #[diesel(sql_type = Bool)]
    leader: bool,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    last_seen: Option<DateTime<Utc>>,
    #[diesel(sql_type = Nullable<Text>)]
    kubo_peer_id: Option<String>,
    #[diesel(sql_type = Bool)]
    kubo_healthy: bool,
    #[diesel(sql_type = Jsonb)]
    placements: serde_json::Value,
    #[diesel(sql_type = Jsonb)]
    cache_stats: serde_json::Value,
}

/// Every registered node, by name. `node_ttl` decides liveness.
pub async fn list(db: &DbPool, node_ttl: Duration) -> Result<Vec<Presence>> {
    let mut conn = pool::get(db).await?;
    let rows: Vec<Row> = diesel::sql_query(
        "SELECT n.id, n.name, n.state, \
                COALESCE(n.last_seen > now() - make_interval(secs => $1) AND n.kubo_healthy, false) AS live, \
                COALESCE((SELECT holder FROM leases WHERE name = 'leader' AND expires_at > now()) = n.id, false) AS leader, \
                n.last_seen, n.kubo_peer_id, n.kubo_healthy, \
                COALESCE((SELECT jsonb_object_agg(state, c) FROM \
                    (SELECT state, count(*) AS c FROM placements p WHERE p.node_id = n.id GROUP BY state) s), \
                    '{}'::jsonb) AS placements, \
                n.cache_stats \
         FROM nodes n ORDER BY n.name",
    )
    .bind::<Double, _>(node_ttl.as_secs_f64())
    .load(&mut conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| Presence {
            node_id: r.name,
            id: NodeId::from_uuid(r.id),
            state: r.state,
            live: r.live,
            leader: r.leader,
            last_seen: r.last_seen,
            kubo_peer_id: r.kubo_peer_id,
            kubo_healthy: r.kubo_healthy,
            placements: serde_json::from_value(r.placements).unwrap_or_default(),
            caches: serde_json::from_value(r.cache_stats).unwrap_or_default(),
        })
        .collect())
}
