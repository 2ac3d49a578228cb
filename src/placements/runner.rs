//! Running placement jobs against this node's Kubo. A job re-reads its placement under a
//! row lock and does nothing unless it is still the placement's current generation, so a
//! duplicate, late or stale job is harmless. Retries are new jobs with a delay, so a
//! waiting retry holds no worker and survives a restart. The SQL is in [`super::store`].

use std::{
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
    time::Duration,
};

use chrono::Utc;
use diesel_async::AsyncPgConnection;
use futures_util::FutureExt;

use super::{
    lifecycle, origins, ownership, status,
    store::{self, Placement},
    PlacementState,
};
use crate::{
    db::system_tx,
    error::{Error, Result},
    jobs::{JobKind, PlacementJob},
    kubo::KuboError,
    pins::cid::other_forms,
    state::AppState,
};

/// How often a running pin writes its progress (and proof of life).
const PROGRESS_EVERY: Duration = Duration::from_secs(2);

/// Runs one job. Errors are only for the database being unavailable; Kubo failures are
/// recorded on the placement.
pub async fn run(state: &AppState, job: PlacementJob) -> Result<()> {
    if job.node != state.node.uuid() {
        tracing::warn!(?job, "job for another node in this node's queue; ignored");
        return Ok(());
    }
    let outcome = match job.kind {
        JobKind::Pin => pin(state, &job).await,
        JobKind::Unpin => unpin(state, &job).await,
    };
    let follow_up = match outcome {
        Ok(follow_up) => follow_up,
        Err(e) => {
            state.metrics.job_acked("err");
            return Err(e);
        }
    };
    for (next, delay) in follow_up {
        state.jobs.enqueue(&next, delay).await;
    }
    Ok(())
}

type FollowUp = Vec<(PlacementJob, Option<Duration>)>;

/// Why an attempt stopped short: Kubo's answer counts as an attempt (retried with
/// backoff, or failed); a database error does not, and leaves the placement `pinning`
/// for the sweeper to re-queue.
enum AttemptError {
    Kubo(KuboError),
    Database(Error),
}

impl From<KuboError> for AttemptError {
    fn from(e: KuboError) -> Self {
        Self::Kubo(e)
    }
}

/// The placement if the job is current and in one of `states`, locked.
async fn current(
    conn: &mut AsyncPgConnection,
    job: &PlacementJob,
    states: &[PlacementState],
) -> Result<Option<Placement>> {
    let p = store::lock(conn, &job.cid, job.node).await?;
    Ok(p.filter(|p| p.generation == job.generation && states.contains(&p.state)))
}

async fn pin(state: &AppState, job: &PlacementJob) -> Result<FollowUp> {
    let max_origins = state.config.ipfs.max_origin_connects as usize;
    let job_in = job.clone();
    let started = system_tx(&state.db, |conn| {
        async move {
            let Some(p) = current(
                conn,
                &job_in,
                &[PlacementState::Queued, PlacementState::Pinning],
            )
            .await?
            else {
                return Ok(None);
            };
            let p = store::start_attempt(conn, &p).await?;
            status::refresh(conn, &p.cid).await?;
            let origins = store::recent_origins(conn, &p.cid, max_origins as i64).await?;
            Ok(Some((p, origins)))
        }
        .boxed()
    })
    .await?;
    let Some((placement, origins)) = started else {
        state.metrics.job_fetched(false);
        return Ok(Vec::new());
    };
    state.metrics.job_fetched(true);
    let outcome = match attempt(state, &placement, origins).await {
        Ok(progress) => Ok(progress),
        Err(AttemptError::Kubo(e)) => Err(e),
        Err(AttemptError::Database(e)) => return Err(e),
    };
    finish(state, job, outcome).await
}

/// Ownership, origins, then `pin/add` (or `pin/update` from a CID this node already
/// holds), with progress written every few seconds.
async fn attempt(
    state: &AppState,
    p: &Placement,
    origins: Vec<String>,
) -> std::result::Result<u64, AttemptError> {
    let kubo = state.kubo.clone();
    if !p.preexisting {
        // Decided once per placement, before pin/add: a pin the operator already had is
        // never removed by us, and one we make is in the ledger even if we crash right
        // after making it.
        let (cid, node) = (p.cid.clone(), p.node_id);
        let owned = system_tx(&state.db, |conn| {
            async move { ownership::is_owned(conn, node, &cid).await }.boxed()
        })
        .await
        .map_err(AttemptError::Database)?;
        if !owned {
            let mut preexisting = kubo.is_pinned(&p.cid).await?;
            for form in other_forms(&p.cid) {
                preexisting = preexisting || kubo.is_pinned(&form).await?;
            }
            let (cid, node) = (p.cid.clone(), p.node_id);
            system_tx(&state.db, |conn| {
                async move {
                    match preexisting {
                        true => store::set_preexisting(conn, &cid, node).await,
                        false => ownership::record(conn, node, &cid).await,
                    }
                }
                .boxed()
            })
            .await
            .map_err(AttemptError::Database)?;
            if preexisting {
                return Ok(p.progress as u64);
            }
        }
    } else {
        return Ok(p.progress as u64);
    }
    origins::connect_in_background(
        kubo.clone(),
        origins,
        state.config.ipfs.max_origin_connects as usize,
        state.config.ipfs.allow_private_origins,
    );
    let _fetching = state.fetching.start(&p.cid);
    if let Some(from) = &p.update_from {
        if kubo.is_pinned(from).await.unwrap_or(false) {
            kubo.pin_update(from, &p.cid).await?;
            return Ok(0);
        }
    }
    let progress = Arc::new(AtomicU64::new(0));
    let seen = progress.clone();
    let pin = kubo.pin_add(&p.cid, Box::new(move |n| seen.store(n, Ordering::Relaxed)));
    tokio::pin!(pin);
    let mut ticker = tokio::time::interval(PROGRESS_EVERY);
    ticker.tick().await;
    let mut written = 0;
    loop {
        tokio::select! {
            result = &mut pin => return Ok(result?.progress),
            _ = ticker.tick() => {
                let now = AtomicU64::load(&progress, Ordering::Relaxed);
                if now != written {
                    written = now;
                    write_progress(state, p, now).await;
                }
            }
        }
    }
}

async fn write_progress(state: &AppState, p: &Placement, progress: u64) {
    let (cid, node, generation) = (p.cid.clone(), p.node_id, p.generation);
    let result = system_tx(&state.db, |conn| {
        async move {
            store::record_progress(conn, &cid, node, generation, progress).await?;
            status::refresh(conn, &cid).await
        }
        .boxed()
    })
    .await;
    if let Err(e) = result {
        tracing::warn!(error = %e, "recording pin progress");
    }
}

/// What an attempt's outcome means for its placement.
#[derive(Debug, PartialEq, Eq)]
enum Verdict {
    Pinned(u64),
    /// Try again after this delay, with this reason shown to the tenant.
    Retry(Duration, String),
    Failed(String),
}

impl Verdict {
    /// `attempts` counts the one that just ended.
    fn of(
        outcome: std::result::Result<u64, &KuboError>,
        attempts: i32,
        max_attempts: i32,
        base: Duration,
    ) -> Self {
        match outcome {
            Ok(progress) => Self::Pinned(progress),
            Err(e) if e.is_transient() && attempts < max_attempts => Self::Retry(
                backoff(base, attempts),
                format!(
                    "attempt {attempts} failed ({}): {}, retrying",
                    e.class(),
                    e.for_tenants()
                ),
            ),
            Err(e) => Self::Failed(format!(
                "failed after {attempts} attempt(s) ({}): {}",
                e.class(),
                e.for_tenants()
            )),
        }
    }

    /// The `anchorage_jobs_acked_total` label.
    fn ack(&self) -> &'static str {
        match self {
            Self::Pinned(_) => "pinned",
            Self::Retry(..) => "retry",
            Self::Failed(_) => "failed",
        }
    }
}

/// Records the attempt's outcome, deciding on a retry.
async fn finish(
    state: &AppState,
    job: &PlacementJob,
    outcome: std::result::Result<u64, KuboError>,
) -> Result<FollowUp> {
    let ipfs = &state.config.ipfs;
    let (max_attempts, base) = (ipfs.max_attempts as i32, ipfs.retry_base_delay);
    let job_in = job.clone();
    let (follow_up, ack) = system_tx(&state.db, |conn| {
        async move {
            // Anything else (an unpin, a newer job) has taken over: leave it be.
            let Some(p) = current(conn, &job_in, &[PlacementState::Pinning]).await? else {
                return Ok((Vec::new(), None));
            };
            if let Err(e) = &outcome {
                tracing::warn!(cid = %p.cid, error = %e, class = e.class(), attempts = p.attempts, "pin attempt failed");
            }
            let verdict = Verdict::of(outcome.as_ref().copied(), p.attempts, max_attempts, base);
            let ack = verdict.ack();
            let follow_up = match verdict {
                Verdict::Pinned(progress) => {
                    store::mark_pinned(conn, &p, progress).await?;
                    tracing::info!(cid = %p.cid, attempts = p.attempts, "pinned");
                    // A replace kept the old CID until now; it may go.
                    match &p.update_from {
                        Some(from) => lifecycle::release_update_source(conn, from, p.node_id)
                            .await?
                            .into_iter()
                            .map(|job| (job, None))
                            .collect(),
                        None => Vec::new(),
                    }
                }
                Verdict::Retry(delay, reason) => {
                    let not_before =
                        Utc::now() + chrono::Duration::from_std(delay).unwrap_or_default();
                    let p = store::transition(
                        conn,
                        &p,
                        PlacementState::Queued,
                        Some(&reason),
                        Some(not_before),
                        false,
                    )
                    .await?;
                    vec![(p.job(JobKind::Pin), Some(delay))]
                }
                Verdict::Failed(reason) => {
                    store::transition(conn, &p, PlacementState::Failed, Some(&reason), None, false)
                        .await?;
                    Vec::new()
                }
            };
            status::refresh(conn, &job_in.cid).await?;
            Ok((follow_up, Some(ack)))
        }
        .boxed()
    })
    .await?;
    if let Some(ack) = ack {
        state.metrics.job_acked(ack);
    }
    Ok(follow_up)
}

/// `base · 2^(attempts-1)`, capped at an hour.
pub fn backoff(base: Duration, attempts: i32) -> Duration {
    let exp = attempts.saturating_sub(1).clamp(0, 16) as u32;
    base.saturating_mul(2u32.saturating_pow(exp))
        .min(Duration::from_secs(3600))
}

/// Removes this node's copy when no pin request wants the CID, re-checking the refcount
/// under its row lock: a request that arrives meanwhile waits for this transaction and
/// then re-places the CID, so its content is never lost.
async fn unpin(state: &AppState, job: &PlacementJob) -> Result<FollowUp> {
    let kubo = state.kubo.clone();
    let base = state.config.ipfs.retry_base_delay;
    let job_in = job.clone();
    let (follow_up, ack) = system_tx(&state.db, |conn| {
        async move {
            let refs = store::lock_refcount(conn, &job_in.cid).await?;
            let Some(p) = current(conn, &job_in, &[PlacementState::Unpinning]).await? else {
                return Ok((Vec::new(), None));
            };
            // Still wanted: put the copy back — unless this is a surplus replica the
            // leader is trimming (its replacement elsewhere is pinned).
            if refs.is_some_and(|n| n > 0) && p.replaced_at.is_none() {
                let p =
                    store::transition(conn, &p, PlacementState::Queued, None, None, true).await?;
                status::refresh(conn, &p.cid).await?;
                return Ok((vec![(p.job(JobKind::Pin), None)], Some("retry")));
            }
            let owned = !p.preexisting && ownership::is_owned(conn, p.node_id, &p.cid).await?;
            if owned {
                match kubo.pin_rm(&p.cid).await {
                    Ok(()) => ownership::forget(conn, p.node_id, &p.cid).await?,
                    // Not pinned (yet): a fetch may still be running and pin it when it
                    // completes. Keep the ledger row, orphaned, so the reconciler
                    // removes the pin if it lands (or forgets the row if it never does).
                    Err(KuboError::NotFound(_)) => {
                        ownership::set_orphan_since(conn, p.node_id, &p.cid, Some(Utc::now()))
                            .await?
                    }
                    Err(e) => {
                        tracing::warn!(cid = %p.cid, error = %e, "unpin failed; will retry");
                        let p = store::transition(
                            conn,
                            &p,
                            PlacementState::Unpinning,
                            Some(&e.for_tenants()),
                            None,
                            false,
                        )
                        .await?;
                        return Ok((vec![(p.job(JobKind::Unpin), Some(base))], Some("retry")));
                    }
                }
            }
            store::delete(conn, &p.cid, p.node_id).await?;
            store::delete_unused_ref(conn, &p.cid).await?;
            tracing::info!(cid = %p.cid, removed_from_kubo = owned, "unpinned");
            Ok((Vec::new(), Some("unpinned")))
        }
        .boxed()
    })
    .await?;
    state.metrics.job_fetched(ack.is_some());
    if let Some(ack) = ack {
        state.metrics.job_acked(ack);
    }
    Ok(follow_up)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_caps() {
        let base = Duration::from_secs(5);
        assert_eq!(backoff(base, 1), Duration::from_secs(5));
        assert_eq!(backoff(base, 2), Duration::from_secs(10));
        assert_eq!(backoff(base, 4), Duration::from_secs(40));
        assert_eq!(backoff(base, 40), Duration::from_secs(3600));
        assert_eq!(backoff(base, 0), Duration::from_secs(5));
    }

    #[test]
    fn transient_failures_retry_until_the_last_attempt_and_refusals_fail_at_once() {
        let base = Duration::from_secs(5);
        let down = KuboError::Unreachable("connection refused".into());
        match Verdict::of(Err(&down), 2, 3, base) {
            Verdict::Retry(delay, reason) => {
                assert_eq!(delay, Duration::from_secs(10));
                assert!(
                    reason.starts_with("attempt 2 failed (unreachable)"),
                    "{reason}"
                );
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            Verdict::of(Err(&down), 3, 3, base),
            Verdict::Failed(_)
        ));
        let refused = KuboError::Rejected("invalid cid".into());
        assert!(matches!(
            Verdict::of(Err(&refused), 1, 3, base),
            Verdict::Failed(_)
        ));
        assert_eq!(Verdict::of(Ok(7), 1, 3, base), Verdict::Pinned(7));
        assert_eq!(Verdict::of(Ok(7), 1, 3, base).ack(), "pinned");
    }
}
