//! The job transport, behind [`JobTransport`] so a NATS JetStream backend can stand in:
//! one queue per node so a node's workers only take work for its own Kubo; any node may
//! push onto any node's queue. Jobs are nudges — the placement row is the truth — so a
//! failed push is logged and left to the requeue sweeper. [`Jobs`] is the Postgres
//! backend (apalis with apalis-postgres), [`JetStreamJobs`] the NATS one.
//!
//! Imported by `placements`, `cluster`, `state`, `server`, `cli`; it imports only `db`,
//! `ids`, `nats` and `error`; see the layer table in docs/architecture.md.

use std::{sync::Arc, time::Duration};

use futures_util::{future::BoxFuture, FutureExt};

use apalis::prelude::*;
use apalis_postgres::{Config, PgPool, PostgresStorage};

mod in_flight;
mod jetstream;
mod job;

use in_flight::InFlight;
pub use jetstream::{JetStreamJobs, Retries};
pub use job::{JobKind, PlacementJob};

use crate::{
    db::{pool, DbPool},
    error::{Error, Result},
    ids::NodeId,
};

/// What a node does with each job its workers take: the placement runner, handed in
/// by the server so the transport knows nothing of what a job means.
#[derive(Clone)]
pub struct JobHandler(Arc<dyn Fn(PlacementJob) -> BoxFuture<'static, Result<()>> + Send + Sync>);

impl JobHandler {
    pub fn new(
        run: impl Fn(PlacementJob) -> BoxFuture<'static, Result<()>> + Send + Sync + 'static,
    ) -> Self {
        Self(Arc::new(run))
    }

    pub(crate) fn run(&self, job: PlacementJob) -> BoxFuture<'static, Result<()>> {
        (self.0)(job)
    }
}

/// How often workers poll besides LISTEN/NOTIFY (NOTIFY only fires for jobs already due,
/// so delayed retries are found by polling).
const POLL_EVERY: Duration = Duration::from_secs(1);
/// Pause before a worker that ended on its own is replaced.
const WORKER_RESTART_PAUSE: Duration = Duration::from_secs(1);
/// How often finished jobs older than a day are deleted.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);
/// Worker heartbeat; a job whose worker missed three is orphaned and re-enqueued.
const HEARTBEAT: Duration = Duration::from_secs(10);
const MISSED_HEARTBEATS: usize = 3;

/// Moves placement jobs to the nodes that run them.
pub trait JobTransport: Send + Sync {
    /// Queues `job` on its node's queue (after `delay`), at most once per placement
    /// generation. Never fails: a lost push is the sweeper's to repair.
    fn enqueue<'a>(&'a self, job: &'a PlacementJob, delay: Option<Duration>) -> BoxFuture<'a, ()>;

    /// Runs this node's workers, each job through `handler`, until `stop` turns true,
    /// then returns once the jobs in flight have finished (the caller bounds that wait).
    /// `db` is for the transport's own housekeeping.
    fn run_workers(
        &self,
        handler: JobHandler,
        db: DbPool,
        concurrency: usize,
        worker_name: String,
        stop: tokio::sync::watch::Receiver<bool>,
    ) -> BoxFuture<'static, ()>;

    /// Resolves once no job is running on this node.
    fn wait_idle(&self) -> BoxFuture<'_, ()>;
}

impl dyn JobTransport + '_ {
    /// Queues each job now.
    pub async fn enqueue_all(&self, jobs: &[PlacementJob]) {
        for job in jobs {
            self.enqueue(job, None).await;
        }
    }
}

/// The Postgres backend: apalis queues in `apalis.jobs`.
#[derive(Clone)]
pub struct Jobs {
    storage: PostgresStorage<PlacementJob>,
    pool: PgPool,
    queue: String,
    node: uuid::Uuid,
    in_flight: InFlight,
}

impl Jobs {
    /// Connects a small sqlx pool (apalis speaks sqlx) for `node`'s queue.
    pub async fn connect(dsn: &str, node: NodeId) -> Result<Self> {
        let target = crate::db::connect::Target::parse(dsn)?;
        let pool = apalis_postgres::PgPool::connect_lazy(target.job_queue_url())
            .map_err(|e| Error::Unavailable(format!("job queue: {e}")))?;
        let queue = queue_name(node);
        let storage = PostgresStorage::new(&pool).with_config(config(&queue));
        Ok(Self {
            storage,
            pool,
            queue,
            node: node.uuid(),
            in_flight: InFlight::default(),
        })
    }

    async fn push(&self, job: &PlacementJob, delay: Option<Duration>) {
        let mut builder = TaskBuilder::new(job.clone())
            .idempotency_key(job.idempotency_key())
            .max_attempts(1);
        if let Some(d) = delay {
            builder = builder.run_after(d);
        }
        let mut storage = if job.node == self.node {
            self.storage.clone()
        } else {
            PostgresStorage::new(&self.pool)
                .with_config(config(&queue_name(NodeId::from_uuid(job.node))))
        };
        if let Err(e) = storage.push_task(builder.build()).await {
            let text = e.to_string();
            if text.contains("idx_jobs_idempotency_key") || text.contains("duplicate key") {
                return; // already queued for this generation
            }
            tracing::warn!(error = %text, cid = %job.cid, "enqueue failed; the sweeper will retry");
        }
    }

    /// Deletes this node's finished jobs older than `older_than` (apalis keeps them
    /// forever); returns how many. Placement generations never repeat, so no idempotency
    /// key is ever needed again.
    pub async fn prune_done(&self, db: &DbPool, older_than: Duration) -> Result<usize> {
        use diesel_async::RunQueryDsl;
        let mut conn = pool::get(db).await?;
        Ok(diesel::sql_query(
            "DELETE FROM apalis.jobs WHERE job_type = $1 AND status = 'Done' \
             AND done_at < now() - make_interval(secs => $2)",
        )
        .bind::<diesel::sql_types::Text, _>(&self.queue)
        .bind::<diesel::sql_types::Double, _>(older_than.as_secs_f64())
        .execute(&mut conn)
        .await?)
    }

    /// Prunes finished jobs older than a day, every `every`, until aborted.
    async fn prune_loop(self, db: DbPool, every: Duration) {
        loop {
            tokio::time::sleep(every).await;
            match self.prune_done(&db, Duration::from_secs(24 * 3600)).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(removed = n, "pruned finished jobs"),
                Err(e) => tracing::warn!(error = %e, "pruning finished jobs failed; will retry"),
            }
        }
    }

    async fn work(
        self,
        handler: JobHandler,
        db: DbPool,
        concurrency: usize,
        worker_name: String,
        mut stop: tokio::sync::watch::Receiver<bool>,
    ) {
        let pruning = tokio::spawn(self.clone().prune_loop(db, PRUNE_EVERY));
        // A worker ends on its own when its backend fails (a Postgres restart cuts its
        // connections): start another, or this node would take no job again.
        for run in 0u32.. {
            // apalis keeps a row per worker name: a restarted worker needs its own.
            let name = match run {
                0 => worker_name.clone(),
                n => format!("{worker_name}-{n}"),
            };
            let backend = PostgresStorage::<PlacementJob>::new(&self.pool)
                .with_config(config(&self.queue))
                .with_pubsub()
                .poll_with_strategy(Strategy::new().interval(POLL_EVERY));
            let worker = WorkerBuilder::new(name)
                .backend(backend)
                .data(handler.clone())
                .data(self.in_flight.clone())
                .concurrency(concurrency)
                .build(handle);
            let mut signal_rx = stop.clone();
            let signal = async move {
                while !*signal_rx.borrow() {
                    if signal_rx.changed().await.is_err() {
                        break;
                    }
                }
                Ok::<(), std::io::Error>(())
            };
            let outcome = worker.run_until(signal).await;
            if *stop.borrow() {
                tracing::info!("job worker stopped");
                break;
            }
            match outcome {
                Ok(()) => tracing::warn!("job worker ended unexpectedly; starting another"),
                Err(e) => tracing::error!(error = %e, "job worker failed; starting another"),
            }
            tokio::select! {
                _ = tokio::time::sleep(WORKER_RESTART_PAUSE) => {}
                _ = stop.changed() => {}
            }
            if *stop.borrow() {
                break;
            }
        }
        pruning.abort();
    }
}

impl JobTransport for Jobs {
    fn enqueue<'a>(&'a self, job: &'a PlacementJob, delay: Option<Duration>) -> BoxFuture<'a, ()> {
        self.push(job, delay).boxed()
    }

    fn run_workers(
        &self,
        handler: JobHandler,
        db: DbPool,
        concurrency: usize,
        worker_name: String,
        stop: tokio::sync::watch::Receiver<bool>,
    ) -> BoxFuture<'static, ()> {
        self.clone()
            .work(handler, db, concurrency, worker_name, stop)
            .boxed()
    }

    fn wait_idle(&self) -> BoxFuture<'_, ()> {
        self.in_flight.idle().boxed()
    }
}

fn config(queue: &str) -> Config {
    Config::default()
        .queue(queue)
        .heartbeat_interval(HEARTBEAT)
        .missed_heartbeats(MISSED_HEARTBEATS)
}

/// `anchorage.placements.<node uuid>`.
pub fn queue_name(node: NodeId) -> String {
    format!("anchorage.placements.{}", node.uuid())
}

async fn handle(
    job: PlacementJob,
    handler: Data<JobHandler>,
    in_flight: Data<InFlight>,
) -> std::result::Result<(), BoxDynError> {
    let _running = in_flight.enter();
    if let Err(e) = handler.run(job.clone()).await {
        // The placement stays as it was; the sweeper gives it a new job later.
        tracing::warn!(error = %e, cid = %job.cid, "placement job failed");
    }
    Ok(())
}
