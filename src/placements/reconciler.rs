//! The reconciler (every node, against its own Kubo): a `pinned` placement whose CID
//! Kubo no longer holds is queued again; a pin anchorage owns that no placement wants is
//! removed once it has been orphaned for `ipfs.orphanGracePeriod` (including one that
//! landed after its pin request was deleted mid-fetch); pins anchorage does not own
//! (the operator's) are never touched.

use std::{collections::HashSet, time::Duration};

use chrono::Utc;
use futures_util::FutureExt;

use super::{ownership, status, store, PlacementState};
use crate::{
    db::system_tx,
    error::Result,
    jobs::{JobKind, PlacementJob},
    kubo::KuboError,
    pins::{cid::other_forms, store::add_ref},
    state::AppState,
};

/// What one pass did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Report {
    pub requeued: usize,
    pub orphans_seen: usize,
    pub orphans_removed: usize,
}

/// One pass.
pub async fn reconcile(state: &AppState) -> Result<Report> {
    // Taken before listing Kubo's pins: a fetch that completes in between is then
    // either listed or still counted as in flight.
    let fetching = state.fetching.snapshot();
    let held: HashSet<String> = state.kubo.pin_ls_recursive().await?.into_iter().collect();
    let node = state.node.uuid();
    let grace =
        chrono::Duration::from_std(state.config.ipfs.orphan_grace_period).unwrap_or_default();
    let held_in = held.clone();
    let (mut report, jobs, expired) = system_tx(&state.db, |conn| {
        async move {
            let mut report = Report::default();
            let mut jobs: Vec<PlacementJob> = Vec::new();
            let placements = store::of_node(conn, node).await?;
            let wanted: HashSet<&str> = placements
                .iter()
                .filter(|p| p.state != PlacementState::Unpinning)
                .map(|p| p.cid.as_str())
                .collect();
            for p in placements
                .iter()
                .filter(|p| p.state == PlacementState::Pinned)
            {
                let present = held_in.contains(&p.cid)
                    || other_forms(&p.cid).iter().any(|f| held_in.contains(f));
                if present {
                    continue;
                }
                let Some(locked) = store::lock(conn, &p.cid, node).await? else {
                    continue;
                };
                let requeued = store::transition(
                    conn,
                    &locked,
                    PlacementState::Queued,
                    Some("Kubo no longer held this pin; pinning again"),
                    None,
                    true,
                )
                .await?;
                status::refresh(conn, &p.cid).await?;
                tracing::warn!(cid = %p.cid, "pin missing from Kubo; queued again");
                jobs.push(requeued.job(JobKind::Pin));
                report.requeued += 1;
            }
            let mut expired = Vec::new();
            let now = Utc::now();
            for (cid, orphan_since) in ownership::of_node(conn, node).await? {
                let is_wanted = wanted.contains(cid.as_str());
                match (is_wanted, held_in.contains(&cid), orphan_since) {
                    (true, _, Some(_)) => {
                        ownership::set_orphan_since(conn, node, &cid, None).await?
                    }
                    (true, _, None) => {}
                    // Not in Kubo, not wanted, and no fetch that could still pin it
                    // running: nothing to remove; forget it.
                    (false, false, _) if !fetching.contains(&cid) => {
                        ownership::forget(conn, node, &cid).await?
                    }
                    // A fetch is still running: the pin may land; keep the row.
                    (false, false, _) => {}
                    (false, true, None) => {
                        ownership::set_orphan_since(conn, node, &cid, Some(now)).await?;
                        report.orphans_seen += 1;
                    }
                    (false, true, Some(since)) if now - since >= grace => expired.push(cid),
                    (false, true, Some(_)) => report.orphans_seen += 1,
                }
            }
            Ok((report, jobs, expired))
        }
        .boxed()
    })
    .await?;
    for job in &jobs {
        state.jobs.enqueue(job, None).await;
    }
    for cid in expired {
        if remove_orphan(state, &cid).await? {
            report.orphans_removed += 1;
        }
    }
    Ok(report)
}

/// Removes an orphaned owned pin under the same locks as an unpin, so a request for the
/// CID arriving meanwhile either waits and re-places it or is seen and spares it.
async fn remove_orphan(state: &AppState, cid: &str) -> Result<bool> {
    let node = state.node.uuid();
    let kubo = state.kubo.clone();
    let cid = cid.to_string();
    system_tx(&state.db, |conn| {
        async move {
            // Takes the refcount row lock (a no-op increment), as every writer does first.
            add_ref(conn, &cid, 0).await?;
            let wanted = store::lock_all(conn, &cid)
                .await?
                .iter()
                .any(|p| p.node_id == node && p.state != PlacementState::Unpinning);
            if wanted || !ownership::is_owned(conn, node, &cid).await? {
                return Ok(false);
            }
            match kubo.pin_rm(&cid).await {
                Ok(()) | Err(KuboError::NotFound(_)) => {}
                Err(e) => {
                    tracing::warn!(%cid, error = %e, "removing an orphaned pin failed; will retry");
                    return Ok(false);
                }
            }
            ownership::forget(conn, node, &cid).await?;
            tracing::info!(%cid, "removed an orphaned pin anchorage owned");
            Ok(true)
        }
        .boxed()
    })
    .await
}

/// Reconciles every `every` until aborted.
pub async fn reconcile_loop(state: AppState, every: Duration) {
    loop {
        tokio::time::sleep(every).await;
        match reconcile(&state).await {
            Ok(r) if r != Report::default() => tracing::info!(?r, "reconciled pins with Kubo"),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "reconciling with Kubo failed; will retry"),
        }
    }
}
