//! Operator commands on the cluster: drain / cordon / uncordon a node, maintenance mode
//! (with a TTL), asking for a rebalance, and re-queueing placements. The leader carries
//! out drains and rebalances and enforces the TTL in its rounds ([`super::upkeep`]).
//! Every action writes one audit entry; node changes are announced so every node's live
//! set follows at once. This file holds the rules, transactions and audit entries; the
//! SQL is in [`super::store`] (and [`crate::placements::store`] for locking placements).
//!
//! Moving a replica is always copy-then-remove: the new placement is created and the old
//! one marked *replaced*; the trim step removes a replaced copy only once every wanted
//! replica elsewhere is pinned, so no CID ever has fewer pinned replicas than before.

use std::{sync::Arc, time::Duration};

use chrono::{DateTime, Utc};
use diesel_async::AsyncPgConnection;
use futures_util::FutureExt;
use serde::Serialize;
use serde_json::json;
use uuid::Uuid;

use super::{
    invalidation::{Invalidation, InvalidationBus},
    plan::{self, Move},
    store,
};
use crate::{
    audit::{self, AuditEntry},
    auth::{Actor, Scope},
    db::{system_tx, DbPool},
    error::{Error, Result},
    ids::NodeId,
    jobs::{JobKind, JobTransport},
    placements::{status, store as placement_store, PlacementState},
    tenancy::access,
};

/// Most moves one rebalance round starts.
pub const MOVES_PER_ROUND: usize = 100;
pub use super::store::NodeState;

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
    pub state: NodeState,
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
    let rows = store::nodes_by_name(conn).await?;
    let known = || {
        rows.iter()
            .map(|(_, name, _)| name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let matches: Vec<&(Uuid, String, NodeState)> = rows
        .iter()
        .filter(|(id, name, _)| names(which, *id, name))
        .collect();
    match matches.as_slice() {
        [(id, name, state)] => Ok(NamedNode {
            id: NodeId::from_uuid(*id),
            name: name.clone(),
            state: *state,
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
    by: &Actor,
) -> Result<NamedNode> {
    access::administers_cluster(by, Scope::ClusterWrite)?;
    let (actor, ip) = (by.name(), by.ip);
    let which = which.to_string();
    system_tx(db, move |conn| {
        async move {
            let node = find_node(conn, &which).await?;
            store::set_node_state(conn, node.id.uuid(), to).await?;
            bus.announce(conn, Invalidation::Nodes).await?;
            audit::record(
                conn,
                AuditEntry::new(actor, to.action(), node.id.to_string())
                    .source_ip(ip)
                    .details(json!({ "nodeID": node.name, "from": node.state })),
            )
            .await?;
            Ok(NamedNode { state: to, ..node })
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
    let store::MaintenanceRow {
        on,
        reason,
        expires_at,
        set_by,
    } = store::maintenance(conn).await?;
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
    by: &Actor,
) -> Result<Maintenance> {
    access::administers_cluster(by, Scope::ClusterWrite)?;
    let (actor, ip) = (by.name(), by.ip);
    if reason.trim().is_empty() {
        return Err(Error::BadRequest("say why (--reason)".into()));
    }
    let expires = Utc::now() + chrono::Duration::from_std(ttl).unwrap_or_default();
    system_tx(db, move |conn| {
        async move {
            store::set_maintenance(conn, &reason, expires, &actor).await?;
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
    store::clear_maintenance(conn).await?;
    audit::record(
        conn,
        AuditEntry::new(actor, action, "cluster").source_ip(ip),
    )
    .await
}

/// Turns maintenance off, audited.
pub async fn maintenance_off(db: &DbPool, by: &Actor) -> Result<Maintenance> {
    access::administers_cluster(by, Scope::ClusterWrite)?;
    let (actor, ip) = (by.name(), by.ip);
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
pub async fn request_rebalance(db: &DbPool, by: &Actor) -> Result<()> {
    access::administers_cluster(by, Scope::ClusterWrite)?;
    let (actor, ip) = (by.name(), by.ip);
    system_tx(db, move |conn| {
        async move {
            store::request_rebalance(conn, &actor).await?;
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
    let progress = store::rebalance_progress(conn).await?;
    Ok(RebalanceStatus {
        moves,
        in_flight: progress.in_flight,
        requested: progress.requested,
    })
}

/// The planner's view of the cluster: live active nodes are schedulable; wanted
/// replicas only (not ones being removed or replaced).
pub(super) async fn current_plan(
    conn: &mut AsyncPgConnection,
    node_ttl: Duration,
) -> Result<Vec<Move>> {
    let nodes = store::plan_nodes(conn, node_ttl).await?;
    let replicas = store::plan_replicas(conn).await?;
    Ok(plan::plan(&nodes, &replicas, MOVES_PER_ROUND))
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
    by: &Actor,
) -> Result<usize> {
    access::administers_cluster(by, Scope::ClusterWrite)?;
    let (actor, ip) = (by.name(), by.ip);
    let status = match filter.status.as_deref() {
        None => PlacementState::Failed,
        Some(asked) => match asked.parse() {
            Ok(
                state @ (PlacementState::Failed | PlacementState::Queued | PlacementState::Pinning),
            ) => state,
            _ => {
                return Err(Error::BadRequest(format!(
                    "status must be failed, queued or pinning, not '{asked}'"
                )))
            }
        },
    };
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
            let keys = store::placements_in_state(conn, status, cid.as_deref(), node).await?;
            let mut queued = Vec::new();
            for k in keys {
                placement_store::lock_refcount(conn, &k.cid).await?;
                if let Some(p) = placement_store::lock(conn, &k.cid, k.node_id).await? {
                    let p = placement_store::transition(
                        conn,
                        &p,
                        PlacementState::Queued,
                        None,
                        None,
                        true,
                    )
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
                        "status": status.as_str(), "cid": cid, "node": node, "requeued": queued.len()
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
pub async fn own_state(db: &DbPool, node: NodeId) -> Result<NodeState> {
    let mut conn = crate::db::pool::get(db).await?;
    store::node_state(&mut conn, node.uuid()).await
}
