//! The requeue sweeper: a placement left `queued`, `pinning` or `unpinning` with no sign
//! of life past `ipfs.requeueAfter` (a lost enqueue, a worker that died mid-pin) gets a
//! new generation and a fresh job. A lost job is never a lost pin.

use std::time::Duration;

use futures_util::FutureExt;

use super::{store, JobKind, PlacementState};
use crate::{db::system_tx, error::Result, state::AppState};

/// One sweep; returns how many placements were re-enqueued.
pub async fn sweep(state: &AppState) -> Result<usize> {
    let node = state.node.uuid();
    let stale_secs = state.config.ipfs.requeue_after.as_secs() as i64;
    let jobs = system_tx(&state.db, |conn| {
        async move {
            let mut jobs = Vec::new();
            for p in store::stale(conn, node, stale_secs).await? {
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

/// Sweeps every `every` until aborted.
pub async fn sweep_loop(state: AppState, every: Duration) {
    loop {
        tokio::time::sleep(every).await;
        if let Err(e) = sweep(&state).await {
            tracing::warn!(error = %e, "requeue sweep failed; will retry");
        }
    }
}
