//! The SQL of the leader's rounds ([`super::upkeep`]) and the operator commands
//! ([`super::ops`]), on `nodes`, `placements` and `cluster_state`. Each function runs on
//! the connection it is given: writes inside the caller's transaction (a fenced one for
//! the leader), so what is decided, audited and logged stays with the caller.

use std::time::Duration;

use chrono::{DateTime, Utc};
use diesel::{
    prelude::*,
    sql_types::{Array, BigInt, Bool, Double, Nullable, Text, Uuid as SqlUuid},
};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use super::plan::{NodeView, Replica};
use crate::{
    db::schema::{cluster_state, nodes},
    error::Result,
    placements::PlacementState,
};

crate::text_enum! {
    /// An operator-set node state.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
    #[serde(rename_all = "lowercase")]
    pub enum NodeState ("node state") {
        Active = "active",
        Draining = "draining",
        Cordoned = "cordoned",
    }
}

/// One placement by its key: a CID on a node.
#[derive(QueryableByName, Debug)]
pub struct PlacementKey {
    #[diesel(sql_type = Text)]
    pub cid: String,
    #[diesel(sql_type = SqlUuid)]
    pub node_id: Uuid,
}

/// Ids of every node seen within `ttl` with a healthy Kubo, whatever its state.
pub async fn up_nodes(conn: &mut AsyncPgConnection, ttl: Duration) -> Result<Vec<Uuid>> {
    #[derive(QueryableByName)]
    struct Id {
        #[diesel(sql_type = SqlUuid)]
        id: Uuid,
    }
    let rows: Vec<Id> = diesel::sql_query(
        "SELECT id FROM nodes WHERE kubo_healthy AND last_seen > now() - make_interval(secs => $1)",
    )
    .bind::<Double, _>(ttl.as_secs_f64())
    .load(conn)
    .await?;
    Ok(rows.into_iter().map(|r| r.id).collect())
}

/// Up to `batch` wanted placements on nodes silent for `dead_for`, by CID.
pub async fn repair_candidates(
    conn: &mut AsyncPgConnection,
    dead_for: Duration,
    batch: i64,
) -> Result<Vec<PlacementKey>> {
    Ok(diesel::sql_query(
        "SELECT p.cid, p.node_id FROM placements p JOIN nodes n ON n.id = p.node_id \
         WHERE n.last_seen < now() - make_interval(secs => $1) \
           AND p.state <> 'unpinning' AND p.replaced_at IS NULL \
         ORDER BY p.cid LIMIT $2",
    )
    .bind::<Double, _>(dead_for.as_secs_f64())
    .bind::<BigInt, _>(batch)
    .load(conn)
    .await?)
}

/// Up to `batch` replaced placements (not yet unpinning) on the nodes `live`, by CID.
pub async fn trim_candidates(
    conn: &mut AsyncPgConnection,
    live: &[Uuid],
    batch: i64,
) -> Result<Vec<PlacementKey>> {
    Ok(diesel::sql_query(
        "SELECT cid, node_id FROM placements \
         WHERE replaced_at IS NOT NULL AND state <> 'unpinning' AND node_id = ANY($1) \
         ORDER BY cid LIMIT $2",
    )
    .bind::<Array<SqlUuid>, _>(live)
    .bind::<BigInt, _>(batch)
    .load(conn)
    .await?)
}

/// Up to `batch` wanted placements on draining nodes seen within `ttl`, by CID.
pub async fn draining_candidates(
    conn: &mut AsyncPgConnection,
    ttl: Duration,
    batch: i64,
) -> Result<Vec<PlacementKey>> {
    Ok(diesel::sql_query(
        "SELECT p.cid, p.node_id FROM placements p JOIN nodes n ON n.id = p.node_id \
         WHERE n.state = 'draining' AND n.last_seen > now() - make_interval(secs => $1) \
           AND p.state <> 'unpinning' AND p.replaced_at IS NULL \
         ORDER BY p.cid LIMIT $2",
    )
    .bind::<Double, _>(ttl.as_secs_f64())
    .bind::<BigInt, _>(batch)
    .load(conn)
    .await?)
}

/// Every node as `(id, name, state)`, by name.
pub async fn nodes_by_name(conn: &mut AsyncPgConnection) -> Result<Vec<(Uuid, String, NodeState)>> {
    Ok(nodes::table
        .select((nodes::id, nodes::name, nodes::state))
        .order(nodes::name)
        .load(conn)
        .await?)
}

/// Sets the operator-set state of the node `id`.
pub async fn set_node_state(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    state: NodeState,
) -> Result<()> {
    diesel::update(nodes::table.find(id))
        .set(nodes::state.eq(state))
        .execute(conn)
        .await?;
    Ok(())
}

/// The operator-set state of the node `id`.
pub async fn node_state(conn: &mut AsyncPgConnection, id: Uuid) -> Result<NodeState> {
    Ok(nodes::table
        .find(id)
        .select(nodes::state)
        .first(conn)
        .await?)
}

/// The maintenance columns of `cluster_state`, as stored (expired or not).
#[derive(Queryable, Debug)]
pub struct MaintenanceRow {
    pub on: bool,
    pub reason: Option<String>,
    pub expires_at: Option<DateTime<Utc>>,
    pub set_by: Option<String>,
}

/// The maintenance flag as stored.
pub async fn maintenance(conn: &mut AsyncPgConnection) -> Result<MaintenanceRow> {
    Ok(cluster_state::table
        .select((
            cluster_state::maintenance,
            cluster_state::maintenance_reason,
            cluster_state::maintenance_expires_at,
            cluster_state::maintenance_set_by,
        ))
        .first(conn)
        .await?)
}

/// Whether the maintenance flag is on past its expiry.
pub async fn maintenance_expired(conn: &mut AsyncPgConnection) -> Result<bool> {
    Ok(diesel::select(diesel::dsl::exists(
        cluster_state::table
            .filter(cluster_state::maintenance.eq(true))
            .filter(cluster_state::maintenance_expires_at.lt(Some(Utc::now()))),
    ))
    .get_result(conn)
    .await?)
}

/// Turns the maintenance flag on until `expires`, saying why and who.
pub async fn set_maintenance(
    conn: &mut AsyncPgConnection,
    reason: &str,
    expires: DateTime<Utc>,
    set_by: &str,
) -> Result<()> {
    diesel::update(cluster_state::table)
        .set((
            cluster_state::maintenance.eq(true),
            cluster_state::maintenance_reason.eq(reason),
            cluster_state::maintenance_expires_at.eq(expires),
            cluster_state::maintenance_set_by.eq(set_by),
            cluster_state::updated_at.eq(diesel::dsl::now),
        ))
        .execute(conn)
        .await?;
    Ok(())
}

/// Turns the maintenance flag off and clears its reason, expiry and author.
pub async fn clear_maintenance(conn: &mut AsyncPgConnection) -> Result<()> {
    diesel::update(cluster_state::table)
        .set((
            cluster_state::maintenance.eq(false),
            cluster_state::maintenance_reason.eq(None::<String>),
            cluster_state::maintenance_expires_at.eq(None::<DateTime<Utc>>),
            cluster_state::maintenance_set_by.eq(None::<String>),
            cluster_state::updated_at.eq(diesel::dsl::now),
        ))
        .execute(conn)
        .await?;
    Ok(())
}

/// Records a rebalance request by `by`, now.
pub async fn request_rebalance(conn: &mut AsyncPgConnection, by: &str) -> Result<()> {
    diesel::update(cluster_state::table)
        .set((
            cluster_state::rebalance_requested_at.eq(Some(Utc::now())),
            cluster_state::rebalance_requested_by.eq(by),
        ))
        .execute(conn)
        .await?;
    Ok(())
}

/// Clears the rebalance request (the rebalance is finished).
pub async fn clear_rebalance_request(conn: &mut AsyncPgConnection) -> Result<()> {
    diesel::update(cluster_state::table)
        .set((
            cluster_state::rebalance_requested_at.eq(None::<DateTime<Utc>>),
            cluster_state::rebalance_requested_by.eq(None::<String>),
        ))
        .execute(conn)
        .await?;
    Ok(())
}

/// How far a rebalance has got.
#[derive(QueryableByName, Debug)]
pub struct RebalanceProgress {
    /// Replaced placements not removed yet.
    #[diesel(sql_type = BigInt)]
    pub in_flight: i64,
    /// Whether a rebalance is requested.
    #[diesel(sql_type = Bool)]
    pub requested: bool,
}

/// Replaced placements still around, and whether a rebalance is requested.
pub async fn rebalance_progress(conn: &mut AsyncPgConnection) -> Result<RebalanceProgress> {
    Ok(diesel::sql_query(
        "SELECT (SELECT count(*) FROM placements WHERE replaced_at IS NOT NULL AND state <> 'unpinning') \
                + (SELECT count(*) FROM placements WHERE replaced_at IS NOT NULL AND state = 'unpinning') AS in_flight, \
                (SELECT rebalance_requested_at IS NOT NULL FROM cluster_state) AS requested",
    )
    .get_result(conn)
    .await?)
}

/// Every node for the planner: schedulable when active, healthy and seen within `ttl`.
pub async fn plan_nodes(conn: &mut AsyncPgConnection, ttl: Duration) -> Result<Vec<NodeView>> {
    #[derive(QueryableByName)]
    struct NodeRow {
        #[diesel(sql_type = SqlUuid)]
        id: Uuid,
        #[diesel(sql_type = Bool)]
        schedulable: bool,
    }
    let rows: Vec<NodeRow> = diesel::sql_query(
        "SELECT id, (state = 'active' AND kubo_healthy \
                     AND last_seen > now() - make_interval(secs => $1)) AS schedulable FROM nodes",
    )
    .bind::<Double, _>(ttl.as_secs_f64())
    .load(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| NodeView {
            id: r.id,
            schedulable: r.schedulable,
        })
        .collect())
}

/// Every wanted replica for the planner (none being removed or replaced).
pub async fn plan_replicas(conn: &mut AsyncPgConnection) -> Result<Vec<Replica>> {
    #[derive(QueryableByName)]
    struct ReplicaRow {
        #[diesel(sql_type = Text)]
        cid: String,
        #[diesel(sql_type = SqlUuid)]
        node_id: Uuid,
        #[diesel(sql_type = Bool)]
        pinned: bool,
    }
    let rows: Vec<ReplicaRow> = diesel::sql_query(
        "SELECT cid, node_id, state = 'pinned' AS pinned FROM placements \
         WHERE state <> 'unpinning' AND replaced_at IS NULL",
    )
    .load(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| Replica {
            cid: r.cid,
            node: r.node_id,
            pinned: r.pinned,
        })
        .collect())
}

/// Up to 10 000 placements in `state`, optionally only of `cid` and on `node`, by CID.
pub async fn placements_in_state(
    conn: &mut AsyncPgConnection,
    state: PlacementState,
    cid: Option<&str>,
    node: Option<Uuid>,
) -> Result<Vec<PlacementKey>> {
    Ok(diesel::sql_query(
        "SELECT cid, node_id FROM placements WHERE state = $1 \
         AND ($2::text IS NULL OR cid = $2) AND ($3::uuid IS NULL OR node_id = $3) \
         ORDER BY cid LIMIT 10000",
    )
    .bind::<Text, _>(state)
    .bind::<Nullable<Text>, _>(cid)
    .bind::<Nullable<SqlUuid>, _>(node)
    .load(conn)
    .await?)
}
