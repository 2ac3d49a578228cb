//! The leader's placement upkeep, one round per heartbeat interval:
//!
//! - **sweep** (every `ipfs.requeueAfter / 2`): re-enqueue abandoned placements on live
//!   nodes (see [`crate::placements::sweeper`]);
//! - **repair**: a placement on a node silent for `cluster.nodeTTL + cluster.repairDelay`
//!   is *replaced* — new replicas go on other live nodes until the CID has
//!   `cluster.maxReplicas` wanted replicas on live nodes again — and marked so;
//! - **trim**: a replaced placement whose node is live again is removed once every
//!   wanted replica elsewhere is pinned, so the count never dips below what is wanted.
//!
//! Every write goes through [`fenced_tx`]: a deposed leader changes nothing.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use diesel::{
    sql_types::{Double, Text, Uuid as SqlUuid},
    QueryableByName,
};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use futures_util::FutureExt;
use uuid::Uuid;

use super::{
    leader::fenced_tx,
    ops,
    scheduler::{self, LiveNode},
};
use crate::{
    db::pool,
    error::Result,
    placements::{status, store, sweeper, JobKind, PlacementJob, PlacementState},
    state::AppState,
};

/// Most placements one round repairs or trims (the rest wait for the next round).
const BATCH: i64 = 200;

#[derive(QueryableByName, Debug)]
struct Candidate {
    #[diesel(sql_type = Text)]
    cid: String,
    #[diesel(sql_type = SqlUuid)]
    node_id: Uuid,
}

/// Runs the leader's rounds every `every` until aborted; idle while not leading.
pub async fn repair_loop(state: AppState, every: Duration) {
    let sweep_every = state.config.ipfs.requeue_after / 2;
    let mut last_sweep = Instant::now();
    loop {
        tokio::time::sleep(every).await;
        let Some(fence) = state.leadership.fence() else {
            continue;
        };
        let live = match read_live(&state).await {
            Ok(live) => Arc::new(live),
            Err(e) => {
                tracing::warn!(error = %e, "reading live nodes failed; will retry");
                continue;
            }
        };
        // Every live node, whatever its state: draining and cordoned nodes still run
        // their jobs and give up replaced copies.
        let up = match up_nodes(&state).await {
            Ok(up) => up,
            Err(e) => {
                tracing::warn!(error = %e, "reading live nodes failed; will retry");
                continue;
            }
        };
        if let Err(e) = ops::watchdog(&state, fence).await {
            tracing::warn!(error = %e, "maintenance watchdog failed; will retry");
        }
        let maintenance = match ops::maintenance_active(&state.db).await {
            Ok(on) => on,
            Err(e) => {
                tracing::warn!(error = %e, "reading the maintenance flag failed; will retry");
                continue;
            }
        };
        if last_sweep.elapsed() >= sweep_every {
            last_sweep = Instant::now();
            if let Err(e) = sweeper::sweep(&state, fence, &up).await {
                tracing::warn!(error = %e, "requeue sweep failed; will retry");
            }
        }
        // Maintenance (rolling restarts) pauses re-placement and rebalancing; drains,
        // asked for explicitly, go on.
        if !maintenance {
            if let Err(e) = repair(&state, fence, &live).await {
                tracing::warn!(error = %e, "repair round failed; will retry");
            }
        }
        if let Err(e) = ops::drain_round(&state, fence, &live).await {
            tracing::warn!(error = %e, "drain round failed; will retry");
        }
        if let Err(e) = trim(&state, fence, &up).await {
            tracing::warn!(error = %e, "trim round failed; will retry");
        }
        if !maintenance {
            if let Err(e) = ops::rebalance_round(&state, fence).await {
                tracing::warn!(error = %e, "rebalance round failed; will retry");
            }
        }
    }
}

/// Ids of every node seen within `cluster.nodeTTL` with a healthy Kubo, any state.
async fn up_nodes(state: &AppState) -> Result<Vec<Uuid>> {
    let mut conn = pool::get(&state.db).await?;
    #[derive(QueryableByName)]
    struct Id {
        #[diesel(sql_type = SqlUuid)]
        id: Uuid,
    }
    let rows: Vec<Id> = diesel::sql_query(
        "SELECT id FROM nodes WHERE kubo_healthy AND last_seen > now() - make_interval(secs => $1)",
    )
    .bind::<Double, _>(state.config.cluster.node_ttl.as_secs_f64())
    .load(&mut conn)
    .await?;
    Ok(rows.into_iter().map(|r| r.id).collect())
}

async fn read_live(state: &AppState) -> Result<Vec<LiveNode>> {
    let mut conn = pool::get(&state.db).await?;
    scheduler::read_live(&mut conn, state.config.cluster.node_ttl).await
}

/// Re-places the placements of nodes dead past the repair delay; returns how many
/// placements were replaced.
pub async fn repair(state: &AppState, fence: i64, live: &Arc<Vec<LiveNode>>) -> Result<usize> {
    let cluster = &state.config.cluster;
    let dead_for = (cluster.node_ttl + cluster.repair_delay).as_secs_f64();
    let candidates: Vec<Candidate> = {
        let mut conn = pool::get(&state.db).await?;
        diesel::sql_query(
            "SELECT p.cid, p.node_id FROM placements p JOIN nodes n ON n.id = p.node_id \
             WHERE n.last_seen < now() - make_interval(secs => $1) \
               AND p.state <> 'unpinning' AND p.replaced_at IS NULL \
             ORDER BY p.cid LIMIT $2",
        )
        .bind::<Double, _>(dead_for)
        .bind::<diesel::sql_types::BigInt, _>(BATCH)
        .load(&mut conn)
        .await?
    };
    let wanted = cluster.max_replicas.max(1) as usize;
    let mut replaced = 0;
    for c in candidates {
        let live = live.clone();
        let jobs = fenced_tx(&state.db, state.node, fence, move |conn| {
            async move { replace_one(conn, &c.cid, c.node_id, &live, wanted, false).await }.boxed()
        })
        .await?;
        if let Some(jobs) = jobs {
            replaced += 1;
            state.jobs.enqueue_all(&jobs).await;
        }
    }
    if replaced > 0 {
        tracing::info!(replaced, "re-placed replicas of dead nodes");
    }
    Ok(replaced)
}

/// Replaces the placement of `cid` on the dead node `dead`: tops the CID up to `wanted`
/// replicas on live nodes, then marks the dead one replaced. `None` when nothing could be
/// done (no longer wanted, or no live node to take it).
pub(crate) async fn replace_one(
    conn: &mut AsyncPgConnection,
    cid: &str,
    dead: Uuid,
    live: &[LiveNode],
    wanted: usize,
    strict: bool,
) -> Result<Option<Vec<PlacementJob>>> {
    // Lock order as everywhere: refcount row, then placements.
    if store::lock_refcount(conn, cid)
        .await?
        .is_none_or(|n| n <= 0)
    {
        return Ok(None);
    }
    let placements = store::lock_all(conn, cid).await?;
    let Some(target) = placements.iter().find(|p| p.node_id == dead) else {
        return Ok(None);
    };
    if target.replaced_at.is_some() || target.state() == Some(PlacementState::Unpinning) {
        return Ok(None);
    }
    let on_live = placements
        .iter()
        .filter(|p| p.replaced_at.is_none() && p.state() != Some(PlacementState::Unpinning))
        .filter(|p| live.iter().any(|n| n.id == p.node_id))
        .count();
    let holding: Vec<Uuid> = placements.iter().map(|p| p.node_id).collect();
    let chosen = scheduler::choose(live, &holding, wanted.saturating_sub(on_live));
    // A dead node's copy is replaced as well as we can; a copy leaving a node that is
    // still up (drain) only when the others will hold all wanted replicas.
    let enough = if strict {
        on_live + chosen.len() >= wanted
    } else {
        on_live + chosen.len() > 0
    };
    if !enough {
        return Ok(None); // nowhere to put it yet: keep this copy as a wanted one
    }
    let mut jobs = Vec::new();
    for node in chosen {
        let p = store::insert_queued(conn, cid, node, None).await?;
        jobs.push(p.job(JobKind::Pin));
    }
    store::mark_replaced(conn, cid, dead).await?;
    status::refresh(conn, cid).await?;
    tracing::info!(cid, dead_node = %dead, new_replicas = jobs.len(), "replaced a replica on a dead node");
    Ok(Some(jobs))
}

/// Trims replaced placements on nodes that are live again once their replacements are
/// pinned; returns how many were trimmed.
pub async fn trim(state: &AppState, fence: i64, live: &[Uuid]) -> Result<usize> {
    let candidates: Vec<Candidate> = {
        let mut conn = pool::get(&state.db).await?;
        diesel::sql_query(
            "SELECT cid, node_id FROM placements \
             WHERE replaced_at IS NOT NULL AND state <> 'unpinning' AND node_id = ANY($1) \
             ORDER BY cid LIMIT $2",
        )
        .bind::<diesel::sql_types::Array<SqlUuid>, _>(live)
        .bind::<diesel::sql_types::BigInt, _>(BATCH)
        .load(&mut conn)
        .await?
    };
    let min = state.config.cluster.min_replicas.max(1) as usize;
    let mut trimmed = 0;
    for c in candidates {
        let job = fenced_tx(&state.db, state.node, fence, move |conn| {
            async move { trim_one(conn, &c.cid, c.node_id, min).await }.boxed()
        })
        .await?;
        if let Some(job) = job {
            trimmed += 1;
            state.jobs.enqueue(&job, None).await;
        }
    }
    Ok(trimmed)
}

async fn trim_one(
    conn: &mut AsyncPgConnection,
    cid: &str,
    node: Uuid,
    min: usize,
) -> Result<Option<PlacementJob>> {
    store::lock_refcount(conn, cid).await?;
    let placements = store::lock_all(conn, cid).await?;
    let Some(surplus) = placements.iter().find(|p| p.node_id == node) else {
        return Ok(None);
    };
    if surplus.replaced_at.is_none() || surplus.state() == Some(PlacementState::Unpinning) {
        return Ok(None);
    }
    let wanted: Vec<_> = placements
        .iter()
        .filter(|p| p.replaced_at.is_none() && p.state() != Some(PlacementState::Unpinning))
        .collect();
    let pinned = wanted
        .iter()
        .filter(|p| p.state() == Some(PlacementState::Pinned))
        .count();
    if pinned < wanted.len().max(min) {
        return Ok(None); // the replacements are not all pinned yet
    }
    let p = store::transition(conn, surplus, PlacementState::Unpinning, None, None, false).await?;
    status::refresh(conn, cid).await?;
    tracing::info!(cid, %node, "trimming a surplus replica on a node that came back");
    Ok(Some(p.job(JobKind::Unpin)))
}
