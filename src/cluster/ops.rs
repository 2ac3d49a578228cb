//! Operator commands on the cluster: drain / cordon / uncordon a node, maintenance mode
//! (with a TTL), asking for a rebalance, and re-queueing placements. The leader carries
//! out drains and rebalances and enforces the TTL in its rounds ([`super::upkeep`]). Every action writes one audit
//! entry; node changes are announced so every node's live set follows at once.
//!
//! Moving a replica is always copy-then-remove: the new placement is created and the old
//! one marked *replaced*; the trim step removes a replaced copy only once every wanted
//! replica elsewhere is pinned, so no CID ever has fewer pinned replicas than before.

use std::{sync::Arc, time::Duration};

use chrono::{DateTime, Utc};
use diesel::{
    prelude::*,
    sql_types::{BigInt, Bool, Double, Text, Uuid as SqlUuid},
};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use futures_util::FutureExt;
use serde::Serialize;
use serde_json::json;
use uuid::Uuid;

use super::{
    invalidation::{Invalidation, InvalidationBus},
    plan::{self, Move, NodeView, Replica},
};
use crate::{
    audit::{self, AuditEntry},
    db::{
        schema::{cluster_state, nodes},
        system_tx, DbPool,
    },
    error::{Error, Result},
    ids::NodeId,
    jobs::{JobKind, JobTransport},
    placements::{status, store, PlacementState},
};

/// Most moves one rebalance round starts.
pub const MOVES_PER_ROUND: usize = 100;
crate::text_enum! {
    /// An operator-set node state.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum NodeState ("node state") {
        Active = "active",
        Draining = "draining",
        Cordoned = "cordoned",
    }
}

impl NodeState {
    fn action(self) -> &'static str {
        match self {
            Self::Active => "node.uncordon",
            Self::Draining => "node.drain",
            Self::Cordoned => "node.cordon",
        }
    }
}

/// A node named by its `cluster.nodeID`, its `nod_…` id, or — as the seed's runbook
/// writes it — `nod_` and the nodeID with `-` as `_` (`nod_anchor_2` for `anchor-2`).
#[derive(Debug, Clone, Serialize)]
pub struct NamedNode {
    pub id: NodeId,
    #[serde(rename = "nodeID")]
    pub name: String,
    pub state: String,
}

/// Whether `which` names the node `name` with id `id`.
fn names(which: &str, id: Uuid, name: &str) -> bool {
    if which == name || which.parse::<NodeId>().is_ok_and(|n| n.uuid() == id) {
        return true;
    }
    which
        .strip_prefix("nod_")
        .is_some_and(|rest| rest == name || rest.replace('_', "-") == name.replace('_', "-"))
}

async fn find_node(conn: &mut AsyncPgConnection, which: &str) -> Result<NamedNode> {
    let rows: Vec<(Uuid, String, String)> = nodes::table
        .select((nodes::id, nodes::name, nodes::state))
        .order(nodes::name)
        .load(conn)
        .await?;
    let known = || {
        rows.iter()
            .map(|(_, name, _)| name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let matches: Vec<&(Uuid, String, String)> = rows
        .iter()
        .filter(|(id, name, _)| names(which, *id, name))
        .collect();
    match matches.as_slice() {
        [(id, name, state)] => Ok(NamedNode {
            id: NodeId::from_uuid(*id),
            name: name.clone(),
            state: state.clone(),
        }),
        [] => Err(Error::NotFound(format!(
            "no node '{which}'; known nodes: {}",
            known()
        ))),
        several => Err(Error::BadRequest(format!(
            "'{which}' names more than one node ({}); use the node's name or its nod_… id",
            several
                .iter()
                .map(|(id, name, _)| format!("{name} = {}", NodeId::from_uuid(*id)))
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

#[cfg(test)]
mod naming_tests {
    use super::*;

    #[test]
    fn a_node_is_named_by_name_id_or_the_seeds_nod_form() {
        let id = Uuid::now_v7();
        let typeid = NodeId::from_uuid(id).to_string();
        for which in ["anchor-2", "nod_anchor_2", "nod_anchor-2", typeid.as_str()] {
            assert!(names(which, id, "anchor-2"), "{which}");
        }
        for which in ["anchor_2", "nod_anchor_3", "anchor", "nod_"] {
            assert!(!names(which, id, "anchor-2"), "{which}");
        }
    }
}

/// Sets `which` node's state (drain, cordon, uncordon), audited and announced.
pub async fn set_node_state(
    db: &DbPool,
    bus: Arc<dyn InvalidationBus>,
    which: &str,
    to: NodeState,
    actor: String,
    ip: Option<std::net::IpAddr>,
) -> Result<NamedNode> {
    let which = which.to_string();
    system_tx(db, move |conn| {
        async move {
            let node = find_node(conn, &which).await?;
            diesel::update(nodes::table.find(node.id.uuid()))
                .set(nodes::state.eq(to.as_str()))
                .execute(conn)
                .await?;
            bus.announce(conn, Invalidation::Nodes).await?;
            audit::record(
                conn,
                AuditEntry::new(actor, to.action(), node.id.to_string())
                    .source_ip(ip)
                    .details(json!({ "nodeID": node.name, "from": node.state })),
            )
            .await?;
            Ok(NamedNode {
                state: to.as_str().to_string(),
                ..node
            })
        }
        .boxed()
    })
    .await
}

/// The maintenance flag.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Maintenance {
    pub maintenance: bool,
    pub reason: Option<String>,
    pub expires_at: Option<DateTime<Utc>>,
    pub set_by: Option<String>,
}

/// The maintenance flag as it stands (an expired one reads as off).
pub async fn maintenance(conn: &mut AsyncPgConnection) -> Result<Maintenance> {
    let (on, reason, expires_at, set_by): (
        bool,
        Option<String>,
        Option<DateTime<Utc>>,
        Option<String>,
    ) = cluster_state::table
        .select((
            cluster_state::maintenance,
            cluster_state::maintenance_reason,
            cluster_state::maintenance_expires_at,
            cluster_state::maintenance_set_by,
        ))
        .first(conn)
        .await?;
    let on = on && expires_at.is_none_or(|t| t > Utc::now());
    Ok(Maintenance {
        maintenance: on,
        reason: on.then_some(reason).flatten(),
        expires_at: on.then_some(expires_at).flatten(),
        set_by: on.then_some(set_by).flatten(),
    })
}

/// Turns maintenance on for `ttl` (repair and rebalancing pause), audited.
pub async fn maintenance_on(
    db: &DbPool,
    reason: String,
    ttl: Duration,
    actor: String,
    ip: Option<std::net::IpAddr>,
) -> Result<Maintenance> {
    if reason.trim().is_empty() {
        return Err(Error::BadRequest("say why (--reason)".into()));
    }
    let expires = Utc::now() + chrono::Duration::from_std(ttl).unwrap_or_default();
    system_tx(db, move |conn| {
        async move {
            diesel::update(cluster_state::table)
                .set((
                    cluster_state::maintenance.eq(true),
                    cluster_state::maintenance_reason.eq(&reason),
                    cluster_state::maintenance_expires_at.eq(expires),
                    cluster_state::maintenance_set_by.eq(&actor),
                    cluster_state::updated_at.eq(diesel::dsl::now),
                ))
                .execute(conn)
                .await?;
            audit::record(
                conn,
                AuditEntry::new(actor, "maintenance.on", "cluster")
                    .source_ip(ip)
                    .details(json!({ "reason": reason, "expires_at": expires })),
            )
            .await?;
            maintenance(conn).await
        }
        .boxed()
    })
    .await
}

/// Turns maintenance off, audited (`action` says why: `maintenance.off` by an operator,
/// `maintenance.expire` by the watchdog).
pub(super) async fn clear_maintenance(
    conn: &mut AsyncPgConnection,
    actor: String,
    action: &str,
    ip: Option<std::net::IpAddr>,
) -> Result<()> {
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
    audit::record(
        conn,
        AuditEntry::new(actor, action, "cluster").source_ip(ip),
    )
    .await
}

/// Turns maintenance off, audited.
pub async fn maintenance_off(
    db: &DbPool,
    actor: String,
    ip: Option<std::net::IpAddr>,
) -> Result<Maintenance> {
    system_tx(db, move |conn| {
        async move {
            clear_maintenance(conn, actor, "maintenance.off", ip).await?;
            maintenance(conn).await
        }
        .boxed()
    })
    .await
}

/// Asks the leader to rebalance, audited.
pub async fn request_rebalance(
    db: &DbPool,
    actor: String,
    ip: Option<std::net::IpAddr>,
) -> Result<()> {
    system_tx(db, move |conn| {
        async move {
            diesel::update(cluster_state::table)
                .set((
                    cluster_state::rebalance_requested_at.eq(Some(Utc::now())),
                    cluster_state::rebalance_requested_by.eq(&actor),
                ))
                .execute(conn)
                .await?;
            audit::record(
                conn,
                AuditEntry::new(actor, "rebalance.apply", "cluster").source_ip(ip),
            )
            .await
        }
        .boxed()
    })
    .await
}

/// A planned move as operators see it (node ids as TypeIDs).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct MoveView {
    pub cid: String,
    pub from: NodeId,
    pub to: NodeId,
}

impl From<&Move> for MoveView {
    fn from(m: &Move) -> Self {
        Self {
            cid: m.cid.clone(),
            from: NodeId::from_uuid(m.from),
            to: NodeId::from_uuid(m.to),
        }
    }
}

/// Where a rebalance stands.
#[derive(Debug, Clone, Serialize)]
pub struct RebalanceStatus {
    /// The moves the leader would start now.
    pub moves: Vec<MoveView>,
    /// Replicas copied but whose originals are not removed yet.
    pub in_flight: i64,
    /// An apply is requested and not finished.
    pub requested: bool,
}

/// The plan for the cluster as it stands, plus progress.
pub async fn rebalance_status(
    conn: &mut AsyncPgConnection,
    node_ttl: Duration,
) -> Result<RebalanceStatus> {
    let moves = current_plan(conn, node_ttl)
        .await?
        .iter()
        .map(MoveView::from)
        .collect();
    #[derive(QueryableByName)]
    struct Count {
        #[diesel(sql_type = BigInt)]
        n: i64,
        #[diesel(sql_type = Bool)]
        requested: bool,
    }
    let c: Count = diesel::sql_query(
        "SELECT (SELECT count(*) FROM placements WHERE replaced_at IS NOT NULL AND state <> 'unpinning') \
                + (SELECT count(*) FROM placements WHERE replaced_at IS NOT NULL AND state = 'unpinning') AS n, \
                (SELECT rebalance_requested_at IS NOT NULL FROM cluster_state) AS requested",
    )
    .get_result(conn)
    .await?;
    Ok(RebalanceStatus {
        moves,
        in_flight: c.n,
        requested: c.requested,
    })
}

/// The planner's view of the cluster: live active nodes are schedulable; wanted
/// replicas only (not ones being removed or replaced).
pub(super) async fn current_plan(
    conn: &mut AsyncPgConnection,
    node_ttl: Duration,
) -> Result<Vec<Move>> {
    let nodes: Vec<(Uuid, bool)> = diesel::sql_query(
        "SELECT id, (state = 'active' AND kubo_healthy \
                     AND last_seen > now() - make_interval(secs => $1)) AS schedulable FROM nodes",
    )
    .bind::<Double, _>(node_ttl.as_secs_f64())
    .load::<NodeRow>(conn)
    .await?
    .into_iter()
    .map(|r| (r.id, r.schedulable))
    .collect();
    #[derive(QueryableByName)]
    struct ReplicaRow {
        #[diesel(sql_type = Text)]
        cid: String,
        #[diesel(sql_type = SqlUuid)]
        node_id: Uuid,
        #[diesel(sql_type = Bool)]
        pinned: bool,
    }
    let replicas: Vec<ReplicaRow> = diesel::sql_query(
        "SELECT cid, node_id, state = 'pinned' AS pinned FROM placements \
         WHERE state <> 'unpinning' AND replaced_at IS NULL",
    )
    .load(conn)
    .await?;
    let nodes: Vec<NodeView> = nodes
        .into_iter()
        .map(|(id, schedulable)| NodeView { id, schedulable })
        .collect();
    let replicas: Vec<Replica> = replicas
        .into_iter()
        .map(|r| Replica {
            cid: r.cid,
            node: r.node_id,
            pinned: r.pinned,
        })
        .collect();
    Ok(plan::plan(&nodes, &replicas, MOVES_PER_ROUND))
}

#[derive(QueryableByName)]
struct NodeRow {
    #[diesel(sql_type = SqlUuid)]
    id: Uuid,
    #[diesel(sql_type = Bool)]
    schedulable: bool,
}

/// Which placements to re-queue.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequeueFilter {
    pub cid: Option<String>,
    /// Node name or `nod_…` id.
    pub node: Option<String>,
    /// `failed` (default), `queued` or `pinning`.
    pub status: Option<String>,
}

/// Gives matching placements a fresh generation, attempts and job; audited. Returns how
/// many.
pub async fn requeue(
    db: &DbPool,
    jobs: &dyn JobTransport,
    filter: RequeueFilter,
    actor: String,
    ip: Option<std::net::IpAddr>,
) -> Result<usize> {
    let status = filter.status.clone().unwrap_or_else(|| "failed".into());
    if !["failed", "queued", "pinning"].contains(&status.as_str()) {
        return Err(Error::BadRequest(format!(
            "status must be failed, queued or pinning, not '{status}'"
        )));
    }
    let cid = match &filter.cid {
        Some(c) => Some(crate::pins::cid::Cid::parse(c)?.canonical().to_string()),
        None => None,
    };
    let node_arg = filter.node.clone();
    let queued = system_tx(db, move |conn| {
        async move {
            let node = match node_arg {
                Some(n) => Some(find_node(conn, &n).await?.id.uuid()),
                None => None,
            };
            #[derive(QueryableByName)]
            struct Key {
                #[diesel(sql_type = Text)]
                cid: String,
                #[diesel(sql_type = SqlUuid)]
                node_id: Uuid,
            }
            let keys: Vec<Key> = diesel::sql_query(
                "SELECT cid, node_id FROM placements WHERE state = $1 \
                 AND ($2::text IS NULL OR cid = $2) AND ($3::uuid IS NULL OR node_id = $3) \
                 ORDER BY cid LIMIT 10000",
            )
            .bind::<Text, _>(&status)
            .bind::<diesel::sql_types::Nullable<Text>, _>(cid.as_deref())
            .bind::<diesel::sql_types::Nullable<SqlUuid>, _>(node)
            .load(conn)
            .await?;
            let mut queued = Vec::new();
            for k in keys {
                store::lock_refcount(conn, &k.cid).await?;
                if let Some(p) = store::lock(conn, &k.cid, k.node_id).await? {
                    let p = store::transition(conn, &p, PlacementState::Queued, None, None, true)
                        .await?;
                    status::refresh(conn, &p.cid).await?;
                    queued.push(p.job(JobKind::Pin));
                }
            }
            audit::record(
                conn,
                AuditEntry::new(actor, "placements.requeue", "placements")
                    .source_ip(ip)
                    .details(json!({
                        "status": status, "cid": cid, "node": node, "requeued": queued.len()
                    })),
            )
            .await?;
            Ok(queued)
        }
        .boxed()
    })
    .await?;
    jobs.enqueue_all(&queued).await;
    Ok(queued.len())
}

/// Whether maintenance is on (for the leader loop).
pub async fn maintenance_active(db: &DbPool) -> Result<bool> {
    let mut conn = crate::db::pool::get(db).await?;
    Ok(maintenance(&mut conn).await?.maintenance)
}

/// This node's operator-set state.
pub async fn own_state(db: &DbPool, node: NodeId) -> Result<String> {
    let mut conn = crate::db::pool::get(db).await?;
    Ok(nodes::table
        .find(node.uuid())
        .select(nodes::state)
        .first(&mut conn)
        .await?)
}
