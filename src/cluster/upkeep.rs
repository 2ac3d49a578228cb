//! The leader's upkeep, one round per heartbeat interval. Operators ask for drains,
//! rebalances and maintenance through [`super::ops`]; the rounds here carry them out:
//!
//! - **watchdog**: a maintenance flag left on past its TTL is cleared;
//! - **sweep** (every `ipfs.requeueAfter / 2`): re-enqueue abandoned placements on live
//!   nodes;
//! - **repair**: a placement on a node silent for `cluster.nodeTTL + cluster.repairDelay`
//!   is *replaced* — new replicas go on other live nodes until the CID has
//!   `cluster.maxReplicas` wanted replicas on live nodes again — and marked so;
//! - **trim**: a replaced placement whose node is live again is removed once every
//!   wanted replica elsewhere is pinned, so the count never dips below what is wanted;
//! - **drain**: replicas on live draining nodes are copied away (trim removes the
//!   originals);
//! - **rebalance**: when an operator asked, the current plan's moves are started.
//!
//! Every write goes through [`fenced_tx`]: a deposed leader changes nothing. This file
//! holds the rules; the SQL is in [`super::store`] (the cluster's) and
//! [`crate::placements::store`] (a CID's placements, locked).

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use diesel_async::AsyncPgConnection;
use futures_util::FutureExt;
use uuid::Uuid;

use super::{
    leader::fenced_tx,
    ops,
    plan::Move,
    scheduler::{self, LiveNode},
    store,
};
use crate::{
    db::pool,
    error::Result,
    jobs::{JobKind, PlacementJob},
    placements::{status, store as placement_store, PlacementState},
    state::AppState,
};

/// Most placements one round repairs, trims or drains (the rest wait for the next
/// round).
const BATCH: i64 = 200;

/// Runs the leader's rounds every `every` until aborted; idle while not leading.
pub async fn upkeep_loop(state: AppState, every: Duration) {
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
        if let Err(e) = watchdog(&state, fence).await {
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
            if let Err(e) = sweep(&state, fence, &up).await {
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
        if let Err(e) = drain_round(&state, fence, &live).await {
            tracing::warn!(error = %e, "drain round failed; will retry");
        }
        if let Err(e) = trim(&state, fence, &up).await {
            tracing::warn!(error = %e, "trim round failed; will retry");
        }
        if !maintenance {
            if let Err(e) = rebalance_round(&state, fence).await {
                tracing::warn!(error = %e, "rebalance round failed; will retry");
            }
        }
    }
}

/// Ids of every node seen within `cluster.nodeTTL` with a healthy Kubo, any state.
async fn up_nodes(state: &AppState) -> Result<Vec<Uuid>> {
    let mut conn = pool::get(&state.db).await?;
    store::up_nodes(&mut conn, state.config.cluster.node_ttl).await
}

async fn read_live(state: &AppState) -> Result<Vec<LiveNode>> {
    let mut conn = pool::get(&state.db).await?;
    scheduler::read_live(&mut conn, state.config.cluster.node_ttl).await
}

/// Re-places the placements of nodes dead past the repair delay; returns how many
/// placements were replaced.
pub async fn repair(state: &AppState, fence: i64, live: &Arc<Vec<LiveNode>>) -> Result<usize> {
    let cluster = &state.config.cluster;
    let dead_for = cluster.node_ttl + cluster.repair_delay;
    let candidates = {
        let mut conn = pool::get(&state.db).await?;
        store::repair_candidates(&mut conn, dead_for, BATCH).await?
    };
    let replaced = replace_each(state, fence, live, candidates, false).await?;
    if replaced > 0 {
        tracing::info!(replaced, "re-placed replicas of dead nodes");
    }
    Ok(replaced)
}

/// [`replace_one`] for each candidate, each in its own fenced transaction, with the
/// new placements' jobs pushed after each commit. Returns how many were replaced.
async fn replace_each(
    state: &AppState,
    fence: i64,
    live: &Arc<Vec<LiveNode>>,
    candidates: Vec<store::PlacementKey>,
    strict: bool,
) -> Result<usize> {
    let wanted = state.config.cluster.max_replicas.max(1) as usize;
    let mut replaced = 0;
    for c in candidates {
        let live = live.clone();
        let jobs = fenced_tx(&state.db, state.node, fence, move |conn| {
            async move { replace_one(conn, &c.cid, c.node_id, &live, wanted, strict).await }.boxed()
        })
        .await?;
        if let Some(jobs) = jobs {
            replaced += 1;
            state.jobs.enqueue_all(&jobs).await;
        }
    }
    Ok(replaced)
}

/// Replaces the placement of `cid` on the dead node `dead`: tops the CID up to `wanted`
/// replicas on live nodes, then marks the dead one replaced. `None` when nothing could be
/// done (no longer wanted, or no live node to take it).
async fn replace_one(
    conn: &mut AsyncPgConnection,
    cid: &str,
    dead: Uuid,
    live: &[LiveNode],
    wanted: usize,
    strict: bool,
) -> Result<Option<Vec<PlacementJob>>> {
    // Lock order as everywhere: refcount row, then placements.
    if placement_store::lock_refcount(conn, cid)
        .await?
        .is_none_or(|n| n <= 0)
    {
        return Ok(None);
    }
    let placements = placement_store::lock_all(conn, cid).await?;
    let Some(target) = placements.iter().find(|p| p.node_id == dead) else {
        return Ok(None);
    };
    if target.replaced_at.is_some() || target.state == PlacementState::Unpinning {
        return Ok(None);
    }
    // The copy being replaced never counts, even when its node is still in `live`: the
    // live set is read at the start of the round, and a node drained since then is in
    // it (counting its own copy made a drain mark copies replaced with none made).
    let on_live = placements
        .iter()
        .filter(|p| p.node_id != dead)
        .filter(|p| p.replaced_at.is_none() && p.state != PlacementState::Unpinning)
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
        let p = placement_store::insert_queued(conn, cid, node, None).await?;
        jobs.push(p.job(JobKind::Pin));
    }
    placement_store::mark_replaced(conn, cid, dead).await?;
    status::refresh(conn, cid).await?;
    let why = if strict {
        "moved a replica off a draining node"
    } else {
        "replaced a replica on a dead node"
    };
    tracing::info!(cid, node = %dead, new_replicas = jobs.len(), "{why}");
    Ok(Some(jobs))
}

/// Trims replaced placements on nodes that are live again once their replacements are
/// pinned; returns how many were trimmed.
pub async fn trim(state: &AppState, fence: i64, live: &[Uuid]) -> Result<usize> {
    let candidates = {
        let mut conn = pool::get(&state.db).await?;
        store::trim_candidates(&mut conn, live, BATCH).await?
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
    placement_store::lock_refcount(conn, cid).await?;
    let placements = placement_store::lock_all(conn, cid).await?;
    let Some(surplus) = placements.iter().find(|p| p.node_id == node) else {
        return Ok(None);
    };
    if surplus.replaced_at.is_none() || surplus.state == PlacementState::Unpinning {
        return Ok(None);
    }
    let wanted: Vec<_> = placements
        .iter()
        .filter(|p| p.replaced_at.is_none() && p.state != PlacementState::Unpinning)
        .collect();
    let pinned = wanted
        .iter()
        .filter(|p| p.state == PlacementState::Pinned)
        .count();
    if pinned < wanted.len().max(min) {
        return Ok(None); // the replacements are not all pinned yet
    }
    let p =
        placement_store::transition(conn, surplus, PlacementState::Unpinning, None, None, false)
            .await?;
    status::refresh(conn, cid).await?;
    tracing::info!(cid, %node, "trimming a surplus replica on a node that came back");
    Ok(Some(p.job(JobKind::Unpin)))
}

/// The requeue sweep: a placement on a live node left `queued`, `pinning` or
/// `unpinning` with no sign of life past `ipfs.requeueAfter` (a lost enqueue, a worker
/// that died mid-pin) gets a new generation and a fresh job on its node's queue, so a
/// lost job is never a lost pin.
///
/// One sweep over the placements of `live` nodes as the leader holding `fence`;
/// returns how many placements were re-enqueued.
pub async fn sweep(state: &AppState, fence: i64, live: &[Uuid]) -> Result<usize> {
    let stale_secs = state.config.ipfs.requeue_after.as_secs() as i64;
    let live = live.to_vec();
    let jobs = fenced_tx(&state.db, state.node, fence, move |conn| {
        async move {
            let mut jobs = Vec::new();
            for p in placement_store::stale(conn, &live, stale_secs).await? {
                let (next, kind) = match p.state {
                    PlacementState::Unpinning => (PlacementState::Unpinning, JobKind::Unpin),
                    _ => (PlacementState::Queued, JobKind::Pin),
                };
                let p = placement_store::transition(conn, &p, next, p.info.as_deref(), None, false)
                    .await?;
                jobs.push(p.job(kind));
            }
            Ok(jobs)
        }
        .boxed()
    })
    .await?;
    for job in &jobs {
        tracing::info!(cid = %job.cid, kind = ?job.kind, "requeued a placement with no live job");
        state.jobs.enqueue(job, None).await;
    }
    Ok(jobs.len())
}

/// The leader's watchdog: clears a maintenance flag left on past its TTL, loudly.
pub async fn watchdog(state: &AppState, fence: i64) -> Result<bool> {
    let cleared = fenced_tx(&state.db, state.node, fence, |conn| {
        async move {
            let expired = store::maintenance_expired(conn).await?;
            if expired {
                ops::clear_maintenance(conn, "system:watchdog".into(), "maintenance.expire", None)
                    .await?;
            }
            Ok(expired)
        }
        .boxed()
    })
    .await?;
    if cleared {
        tracing::warn!("maintenance mode was left on past its TTL; the watchdog turned it off");
    }
    Ok(cleared)
}

/// The leader's drain step: copies replicas away from live draining nodes (the trim
/// step removes the originals once the copies are pinned). Returns how many moved.
pub async fn drain_round(state: &AppState, fence: i64, live: &Arc<Vec<LiveNode>>) -> Result<usize> {
    let candidates = {
        let mut conn = pool::get(&state.db).await?;
        store::draining_candidates(&mut conn, state.config.cluster.node_ttl, BATCH).await?
    };
    let moved = replace_each(state, fence, live, candidates, true).await?;
    if moved > 0 {
        tracing::info!(moved, "copying replicas away from draining nodes");
    }
    Ok(moved)
}

/// The leader's rebalance step, when an operator asked for one: starts the current
/// plan's moves (copy to `to`, mark the `from` copy replaced); clears the request once
/// nothing is left to move or in flight. Returns how many moves started.
pub async fn rebalance_round(state: &AppState, fence: i64) -> Result<usize> {
    let ttl = state.config.cluster.node_ttl;
    let status = {
        let mut conn = pool::get(&state.db).await?;
        ops::rebalance_status(&mut conn, ttl).await?
    };
    if !status.requested {
        return Ok(0);
    }
    if status.moves.is_empty() {
        if status.in_flight == 0 {
            fenced_tx(&state.db, state.node, fence, |conn| {
                async move { store::clear_rebalance_request(conn).await }.boxed()
            })
            .await?;
            tracing::info!("rebalance finished");
        }
        return Ok(0);
    }
    let moves = {
        let mut conn = pool::get(&state.db).await?;
        ops::current_plan(&mut conn, ttl).await?
    };
    let mut started = 0;
    for m in moves {
        let job = fenced_tx(&state.db, state.node, fence, move |conn| {
            async move { start_move(conn, &m).await }.boxed()
        })
        .await?;
        if let Some(job) = job {
            started += 1;
            state.jobs.enqueue(&job, None).await;
        }
    }
    tracing::info!(started, "rebalance round started moves");
    Ok(started)
}

/// Copy-then-remove, first half: a queued placement on `to`, the `from` copy marked
/// replaced (trimmed once the copy is pinned). Nothing when the world moved on.
async fn start_move(conn: &mut AsyncPgConnection, m: &Move) -> Result<Option<PlacementJob>> {
    if placement_store::lock_refcount(conn, &m.cid)
        .await?
        .is_none_or(|n| n <= 0)
    {
        return Ok(None);
    }
    let placements = placement_store::lock_all(conn, &m.cid).await?;
    let from_ok = placements.iter().any(|p| {
        p.node_id == m.from && p.replaced_at.is_none() && p.state == PlacementState::Pinned
    });
    let to_free = !placements.iter().any(|p| p.node_id == m.to);
    if !from_ok || !to_free {
        return Ok(None);
    }
    let p = placement_store::insert_queued(conn, &m.cid, m.to, None).await?;
    placement_store::mark_replaced(conn, &m.cid, m.from).await?;
    status::refresh(conn, &m.cid).await?;
    Ok(Some(p.job(JobKind::Pin)))
}
