//! The requeue sweeper: a placement on a live node left `queued`, `pinning` or
//! `unpinning` with no sign of life past `ipfs.requeueAfter` (a lost enqueue, a worker
//! that died mid-pin) gets a new generation and a fresh job on its node's queue. A lost
//! job is never a lost pin. It runs on the leader, with its fence.

use futures_util::FutureExt;
use uuid::Uuid;

use super::{store, JobKind, PlacementState};
use crate::{cluster::leader::fenced_tx, error::Result, state::AppState};

/// One sweep over the placements of `live` nodes as the leader holding `fence`;
/// returns how many placements were re-enqueued.
pub async fn sweep(state: &AppState, fence: i64, live: &[Uuid]) -> Result<usize> {
    let stale_secs = state.config.ipfs.requeue_after.as_secs() as i64;
    let live = live.to_vec();
    let jobs = fenced_tx(&state.db, state.node, fence, move |conn| {
        async move {
            let mut jobs = Vec::new();
            for p in store::stale(conn, &live, stale_secs).await? {
                let (next, kind) = match p.state() {
                    Some(PlacementState::Unpinning) => (PlacementState::Unpinning, JobKind::Unpin),
                    _ => (PlacementState::Queued, JobKind::Pin),
                };
                let p = store::transition(conn, &p, next, p.info.as_deref(), None, false).await?;
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
