//! The NATS job transport: a JetStream work-queue stream `<prefix>_JOBS`, one subject
//! `<prefix>.jobs.<node uuid>` per node, and one durable pull consumer per node.
//!
//! - **At most one message per placement generation**: `Nats-Msg-Id` is the same
//!   idempotency key apalis uses, so a push repeated within the dedup window is dropped.
//! - **Acked only after the placement row is updated**: the handler returns once the
//!   runner's transaction committed; a lost ack redelivers the job, and the runner finds
//!   the generation already done and does nothing.
//! - **Redelivery** of a job whose worker died follows the consumer's backoff
//!   (`ipfs.retryBaseDelay`, doubling), up to `ipfs.maxAttempts` runs. A running job
//!   reports progress so it is not redelivered while alive.
//! - **Delayed jobs** (retries) carry `Anchorage-Not-Before`; a worker that receives one
//!   early hands it back with a NAK delayed until then, so a waiting retry holds no
//!   worker and survives restarts. That costs one delivery, allowed for in `max_deliver`.
//!
//! The stream is not authoritative: a message lost with the NATS store is a placement
//! the requeue sweeper gives a new job.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_nats::{
    jetstream::{
        consumer::{pull, AckPolicy, PullConsumer},
        message::AckKind,
        stream::{self, RetentionPolicy, StorageType},
        Message,
    },
    HeaderMap,
};
use futures_util::{future::BoxFuture, FutureExt, StreamExt};
use tokio::sync::{watch, Semaphore};

use super::{in_flight::InFlight, JobHandler, JobTransport, PlacementJob};
use crate::{
    db::DbPool,
    error::{Error, Result},
    ids::NodeId,
    nats::Nats,
};

/// The header naming when a delayed job may run (Unix milliseconds).
const NOT_BEFORE: &str = "Anchorage-Not-Before";

/// Duplicate pushes of one generation inside this window are dropped by the server.
const DEDUP_WINDOW: Duration = Duration::from_secs(600);

/// A message no consumer could finish in a day is dropped; the sweeper has long since
/// given its placement a new generation.
const MAX_AGE: Duration = Duration::from_secs(24 * 3600);

/// How long one pull request waits for messages before asking again.
const PULL_WAIT: Duration = Duration::from_secs(5);

/// Deliveries a job may spend besides its runs: waiting out its delay, and one spare
/// for a NAK that arrives early by clock skew between nodes.
const WAIT_DELIVERIES: i64 = 2;

/// How jobs whose worker died are retried: the same numbers as placement retries.
#[derive(Debug, Clone, Copy)]
pub struct Retries {
    /// `ipfs.maxAttempts`.
    pub max_attempts: u32,
    /// `ipfs.retryBaseDelay`.
    pub base_delay: Duration,
}

impl Retries {
    /// Redelivery delays: base, 2·base, 4·base… (at least a second, at most an hour).
    fn backoff(&self) -> Vec<Duration> {
        (0..self.max_attempts)
            .map(|k| {
                let d = self.base_delay.saturating_mul(1 << k.min(16));
                d.clamp(Duration::from_secs(1), Duration::from_secs(3600))
            })
            .collect()
    }

    /// How often a running job tells the server it is alive: well inside the shortest
    /// redelivery delay.
    fn progress_every(&self) -> Duration {
        (self.backoff()[0] / 3).max(Duration::from_millis(200))
    }
}

/// Placement jobs over JetStream.
#[derive(Clone)]
pub struct JetStreamJobs {
    nats: Nats,
    node: NodeId,
    retries: Retries,
    in_flight: InFlight,
}

impl JetStreamJobs {
    /// Makes sure the stream exists (creating it with `nats.streamReplicas` replicas).
    pub async fn connect(nats: Nats, node: NodeId, retries: Retries) -> Result<Self> {
        let jobs = Self {
            nats,
            node,
            retries,
            in_flight: InFlight::default(),
        };
        jobs.ensure_stream().await?;
        Ok(jobs)
    }

    /// The stream, created if missing (first start, or NATS lost its store).
    async fn ensure_stream(&self) -> Result<stream::Stream> {
        let names = &self.nats.names;
        (self.nats.jetstream)
            .get_or_create_stream(stream::Config {
                name: names.jobs_stream(),
                subjects: vec![names.all_jobs()],
                retention: RetentionPolicy::WorkQueue,
                storage: StorageType::File,
                num_replicas: self.nats.replicas,
                duplicate_window: DEDUP_WINDOW,
                max_age: MAX_AGE,
                ..Default::default()
            })
            .await
            .map_err(|e| Error::nats(format!("creating stream {}", names.jobs_stream()), e))
    }

    async fn push(&self, job: &PlacementJob, delay: Option<Duration>) {
        if !self.nats.is_up() {
            // Waiting for an ack that cannot come would hold the request that queued the
            // job; the placement row is written, and the sweeper queues it once NATS is back.
            tracing::warn!(cid = %job.cid, "NATS is down: job not queued; the sweeper will queue it");
            return;
        }
        let mut pushed = self.try_push(job, delay).await;
        if pushed.is_err() && self.ensure_stream().await.is_ok() {
            // The stream was missing (NATS lost its store) and is back: once more.
            pushed = self.try_push(job, delay).await;
        }
        if let Err(e) = pushed {
            tracing::warn!(error = %e, cid = %job.cid, "enqueue failed; the sweeper will retry");
        }
    }

    async fn try_push(&self, job: &PlacementJob, delay: Option<Duration>) -> Result<()> {
        let mut headers = HeaderMap::new();
        headers.insert("Nats-Msg-Id", job.idempotency_key().as_str());
        if let Some(delay) = delay {
            let at = now_millis().saturating_add(delay.as_millis() as u64);
            headers.insert(NOT_BEFORE, at.to_string().as_str());
        }
        let body = serde_json::to_vec(job).map_err(|e| Error::Internal(e.to_string()))?;
        let subject = self.nats.names.jobs(job.node);
        self.nats
            .jetstream
            .publish_with_headers(subject, headers, body.into())
            .await
            .map_err(|e| Error::nats("publishing a job", e))?
            .await
            .map_err(|e| Error::nats("publishing a job", e))?;
        Ok(())
    }

    /// This node's durable pull consumer.
    async fn consumer(&self, concurrency: usize) -> Result<PullConsumer> {
        let names = &self.nats.names;
        let name = names.jobs_consumer(self.node.uuid());
        let stream = self.ensure_stream().await?;
        let config = pull::Config {
            durable_name: Some(name.clone()),
            filter_subject: names.jobs(self.node.uuid()),
            ack_policy: AckPolicy::Explicit,
            max_deliver: i64::from(self.retries.max_attempts) + WAIT_DELIVERIES,
            backoff: self.retries.backoff(),
            max_ack_pending: concurrency as i64,
            ..Default::default()
        };
        // Create, or update one a previous version left with other settings.
        stream
            .create_consumer(config)
            .await
            .map_err(|e| Error::nats(format!("creating consumer {name}"), e))
    }

    async fn work(self, handler: JobHandler, concurrency: usize, mut stop: watch::Receiver<bool>) {
        let slots = std::sync::Arc::new(Semaphore::new(concurrency));
        let mut consumer = None;
        while !*stop.borrow() {
            let pulled = async {
                let c = match &consumer {
                    Some(c) => c,
                    None => consumer.insert(self.consumer(concurrency).await?),
                };
                // Ask for as many jobs as there are free workers, at least one.
                let free = slots.clone().acquire_owned().await.expect("never closed");
                let want = slots.available_permits() + 1;
                let batch = c
                    .batch()
                    .max_messages(want)
                    .expires(PULL_WAIT)
                    .messages()
                    .await
                    .map_err(|e| Error::nats("pulling jobs", e))?;
                Ok::<_, Error>((free, batch))
            };
            let (first, mut batch) = tokio::select! {
                pulled = pulled => match pulled {
                    Ok(got) => got,
                    Err(e) => {
                        tracing::warn!(error = %e, "job consumer unavailable; retrying");
                        consumer = None;
                        tokio::select! {
                            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                            _ = stop.changed() => {}
                        }
                        continue;
                    }
                },
                _ = stop.changed() => break,
            };
            let mut first = Some(first);
            while let Some(message) = tokio::select! {
                m = batch.next() => m,
                _ = stop.changed() => None,
            } {
                let message = match message {
                    Ok(m) => m,
                    Err(e) => {
                        // The consumer (or its stream) may be gone with NATS's store:
                        // make it again after a pause.
                        tracing::warn!(error = %e, "pulling jobs failed; retrying");
                        consumer = None;
                        tokio::select! {
                            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                            _ = stop.changed() => {}
                        }
                        break;
                    }
                };
                let slot = match first.take() {
                    Some(slot) => slot,
                    None => slots.clone().acquire_owned().await.expect("never closed"),
                };
                let worker = self.clone();
                let handler = handler.clone();
                tokio::spawn(async move {
                    worker.handle(handler, message).await;
                    drop(slot);
                });
            }
        }
        tracing::info!("job worker stopped");
    }

    /// Runs one message's job and settles the message.
    async fn handle(&self, handler: JobHandler, message: Message) {
        if let Some(wait) = early_by(&message) {
            let _ = message.ack_with(AckKind::Nak(Some(wait))).await;
            return;
        }
        let job: PlacementJob = match serde_json::from_slice(&message.payload) {
            Ok(job) => job,
            Err(e) => {
                tracing::warn!(error = %e, "unreadable job message dropped");
                let _ = message.ack_with(AckKind::Term).await;
                return;
            }
        };
        let _running = self.in_flight.enter();
        let mut run = handler.run(job.clone());
        let mut progress = tokio::time::interval(self.retries.progress_every());
        progress.tick().await;
        let outcome = loop {
            tokio::select! {
                outcome = &mut run => break outcome,
                _ = progress.tick() => {
                    let _ = message.ack_with(AckKind::Progress).await;
                }
            }
        };
        match outcome {
            // The placement row is updated: the job is done.
            Ok(()) => {
                if let Err(e) = message.ack().await {
                    tracing::warn!(error = %e, cid = %job.cid, "job ack lost; a redelivery will find it done");
                }
            }
            // The database was unavailable: try again after the backoff.
            Err(e) => {
                tracing::warn!(error = %e, cid = %job.cid, "placement job failed; redelivering");
                let delivered = message.info().map(|i| i.delivered).unwrap_or(1).max(1);
                let backoff = self.retries.backoff();
                let wait = backoff[(delivered as usize - 1).min(backoff.len() - 1)];
                let _ = message.ack_with(AckKind::Nak(Some(wait))).await;
            }
        }
    }
}

/// How long before the message's `Anchorage-Not-Before` it arrived, if early.
fn early_by(message: &Message) -> Option<Duration> {
    let at: u64 = message
        .headers
        .as_ref()?
        .get(NOT_BEFORE)?
        .as_str()
        .parse()
        .ok()?;
    let now = now_millis();
    (at > now).then(|| Duration::from_millis(at - now))
}

fn now_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis() as u64
}

impl JobTransport for JetStreamJobs {
    fn enqueue<'a>(&'a self, job: &'a PlacementJob, delay: Option<Duration>) -> BoxFuture<'a, ()> {
        self.push(job, delay).boxed()
    }

    fn run_workers(
        &self,
        handler: JobHandler,
        _db: DbPool,
        concurrency: usize,
        _worker_name: String,
        stop: watch::Receiver<bool>,
    ) -> BoxFuture<'static, ()> {
        self.clone().work(handler, concurrency, stop).boxed()
    }

    fn wait_idle(&self) -> BoxFuture<'_, ()> {
        self.in_flight.idle().boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redelivery_backs_off_like_placement_retries() {
        let retries = Retries {
            max_attempts: 4,
            base_delay: Duration::from_secs(10),
        };
        let secs: Vec<u64> = retries.backoff().iter().map(Duration::as_secs).collect();
        assert_eq!(secs, [10, 20, 40, 80]);
        assert_eq!(retries.progress_every(), Duration::from_secs(10) / 3);
        let tiny = Retries {
            max_attempts: 1,
            base_delay: Duration::from_millis(10),
        };
        assert_eq!(tiny.backoff(), [Duration::from_secs(1)]);
    }
}
