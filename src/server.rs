//! Building the shared state from config and running the HTTP server until a shutdown
//! signal, draining in-flight requests.

use std::{net::TcpListener, sync::Arc};

use actix_governor::Governor;
use actix_web::{dev::ServerHandle, middleware, web, App, HttpServer};
use apistos::app::OpenApiWrapper;
use futures_util::FutureExt;

use crate::{
    api::{self, rate_limit, session_gate::SessionGate},
    auth::{denylist::Denylist, keys::KeySet, keys::SigningKey, TokenService},
    cluster::{
        backend::Backend,
        delegates::Delegates,
        heartbeat,
        leader::{self, Leadership},
        nodes::{self, Presence},
        readiness::Readiness,
        scheduler::LiveNodes,
        upkeep,
    },
    config::Config,
    db::{self, migrate, PoolOptions},
    error::{Error, Result},
    jobs::{JobHandler, JobTransport},
    kubo::{Kubo, KuboClient},
    metrics::Metrics,
    pins::counts,
    placements::{reconciler, runner},
    state::AppState,
    tenancy::{org_cache::OrgCache, standing::Standings, tokens},
};

/// Loads signing keys, builds the pool and the Kubo client. Refuses a database that is
/// behind this binary's migrations.
pub async fn build_state(config: Config) -> Result<AppState> {
    migrate::ensure_current(config.postgres.dsn.expose()).await?;
    let db = db::build_pool(
        config.postgres.dsn.expose(),
        &PoolOptions {
            max_connections: config.postgres.max_connections,
            acquire_timeout: config.postgres.connect_timeout,
            statement_timeout: config.postgres.statement_timeout,
        },
    )?;
    let kubo: Arc<dyn Kubo> = Arc::new(
        KuboClient::new(&config.ipfs.rpc, config.ipfs.request_timeout)?
            .with_stall_timeout(config.ipfs.pin_stall_timeout),
    );
    let tokens = token_service(&config)?;
    tokens.cutoffs().reload(&db).await?;
    let delegates = Delegates::new(&config.ipfs.delegates, config.ipfs.public_delegates_only)?;
    let identity = match kubo.id().await {
        Ok(id) => Some(id),
        Err(e) => {
            tracing::warn!(error = %e, "Kubo did not answer at start-up; new pins are refused and pins queue until it does");
            None
        }
    };
    if let Some(id) = &identity {
        delegates.learn(id);
    }
    let (peer_id, addrs) = match identity {
        Some(id) => (Some(id.id), id.addresses),
        None => (None, Vec::new()),
    };
    // Refuse to run beside another live process with the same node name.
    let presence = Presence::claim(config.postgres.dsn.expose(), &config.cluster.node_id).await?;
    let announced = if addrs.is_empty() {
        Vec::new()
    } else {
        delegates.current()
    };
    let backend = Backend::connect(&config, &config.cluster.node_id).await?;
    backend.check_agrees(&db, &config.cluster.node_id).await?;
    let bus = backend.bus(&config, &db);
    let node = nodes::register(
        &db,
        bus.clone(),
        backend.name(),
        &config.cluster.node_id,
        peer_id.as_deref(),
        &announced,
    )
    .await?;
    let jobs = backend.jobs(&config, node).await?;
    let metrics = Metrics::new(&config.cluster.node_id)?;
    let oidc = crate::auth::oidc::Oidc::from_config(&config)?;
    let (leadership, leadership_tx) = Leadership::new();
    let live_nodes = LiveNodes::new(config.cluster.heartbeat * 2, config.cluster.node_ttl)
        .with_counters(metrics.cache("live_nodes"));
    Ok(AppState {
        config: Arc::new(config),
        db,
        kubo,
        node,
        jobs,
        tokens: Arc::new(tokens),
        oidc,
        denylist: Denylist::default().with_counters(metrics.cache("denylist")),
        orgs: OrgCache::default().with_counters(metrics.cache("orgs")),
        standings: Standings::default().with_counters(metrics.cache("standings")),
        delegates,
        events: crate::events::EventHub::default(),
        metrics,
        bus,
        nats: backend.nats().cloned(),
        live_nodes,
        leadership,
        leadership_tx: Arc::new(leadership_tx),
        fetching: Default::default(),
        presence: Arc::new(tokio::sync::Mutex::new(presence)),
    })
}

/// The token service for `config`'s signing keys, issuer and audience.
pub fn token_service(config: &Config) -> Result<TokenService> {
    Ok(TokenService::new(
        key_set(config)?,
        config.token_issuer(),
        config.token_audience(),
    ))
}

/// Loads every configured signing key; the one marked primary mints.
pub fn key_set(config: &Config) -> Result<KeySet> {
    let entries = &config.auth.api_token.signing_keys;
    let keys = entries
        .iter()
        .map(|k| SigningKey::load(&k.id, &k.path))
        .collect::<Result<Vec<_>>>()?;
    let primary = entries.iter().find(|k| k.primary).map(|k| k.id.as_str());
    KeySet::new(keys, primary)
}

/// How often expired denylist entries are deleted.
const DENYLIST_PRUNE: std::time::Duration = std::time::Duration::from_secs(3600);

/// How often idle rate-limiter state is dropped.
const RATE_LIMIT_PRUNE: std::time::Duration = std::time::Duration::from_secs(60);

/// How often the pin count ledger is folded.
const COUNTS_COMPACT: std::time::Duration = std::time::Duration::from_secs(10);

/// A server bound to its socket and running in the background.
pub struct RunningServer {
    pub addr: std::net::SocketAddr,
    pub handle: ServerHandle,
    pub task: tokio::task::JoinHandle<std::io::Result<()>>,
    /// Tells the job workers to stop taking jobs.
    stop_jobs: tokio::sync::watch::Sender<bool>,
    workers: Option<tokio::task::JoinHandle<()>>,
}

impl RunningServer {
    /// Stops everything at once, without waiting (tests).
    pub fn abort(&mut self) {
        let _ = self.stop_jobs.send(true);
        if let Some(workers) = self.workers.take() {
            workers.abort();
        }
        self.task.abort();
    }

    /// Stops taking jobs and waits up to `within` for the ones in flight; a pin still
    /// running after that is picked up again by the sweeper after the next start.
    pub async fn drain_jobs(&mut self, jobs: &dyn JobTransport, within: std::time::Duration) {
        let _ = self.stop_jobs.send(true);
        let drained = async {
            if let Some(workers) = self.workers.take() {
                let _ = workers.await;
            }
            jobs.wait_idle().await;
        };
        if tokio::time::timeout(within, drained).await.is_err() {
            tracing::warn!(
                ?within,
                "jobs still running at shutdown; they will be re-run after restart"
            );
        }
    }
}

/// What runs besides the HTTP server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Work {
    /// Everything: pin workers, the requeue sweeper and the housekeeping loops.
    All,
    /// HTTP and housekeeping only; no placement ever moves (for tests of the API alone).
    ApiOnly,
}

/// Binds `listener` and starts serving `state`. Signals are not handled here: the
/// caller decides when to stop (see [`serve_until_signal`]).
pub fn start(state: AppState, listener: TcpListener, work: Work) -> Result<RunningServer> {
    let addr = listener
        .local_addr()
        .map_err(|e| Error::io("reading the listen address", e))?;
    let max_body = state.config.server.max_body_bytes;
    let shutdown_timeout = state.config.server.shutdown_timeout.as_secs();
    let data = web::Data::new(state);
    let app_state = data.get_ref().clone();
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
    let pool_options = PoolOptions {
        max_connections: (app_state.config.postgres.max_connections / workers).max(2),
        acquire_timeout: app_state.config.postgres.connect_timeout,
        statement_timeout: app_state.config.postgres.statement_timeout,
    };
    let prometheus = data.metrics.http_middleware()?;
    // Built once per node, so every HTTP worker counts against the same limits; off
    // limits still need a governor value for the Condition wrapper, which never runs it.
    let limits = rate_limit::Limits::new(&data.config.server.rate_limit);
    let session_gate = web::Data::new(SessionGate::new(limits.clone()));
    let readiness = web::Data::new(Readiness::default());
    let (limit_anonymous, limit_sign_in, limit_orgs) = (
        limits.anonymous.is_some(),
        limits.sign_in.is_some(),
        limits.orgs.is_some(),
    );
    let anonymous_governor = limits
        .anonymous
        .clone()
        .or_else(|| rate_limit::per_minute(rate_limit::AnonymousClients, 1))
        .expect("a limit of 1 per minute is valid");
    let sign_in_governor = limits
        .sign_in
        .clone()
        .or_else(|| rate_limit::per_minute(rate_limit::SignInClients, 1))
        .expect("a limit of 1 per minute is valid");
    let orgs_governor = limits
        .orgs
        .clone()
        .or_else(|| rate_limit::per_minute(rate_limit::Orgs, 1))
        .expect("a limit of 1 per minute is valid");
    let redirect_path = data.config.auth.authentik.redirect_path.clone();
    let server = HttpServer::new(move || {
        // Each HTTP worker gets its own pool, built on its own runtime: the connections'
        // driver tasks then run on the same thread as the handlers that use them, so a
        // query costs no hand-off between runtimes (it dominated the request profile).
        let mut worker_state = app_state.clone();
        worker_state.db = db::build_pool(app_state.config.postgres.dsn.expose(), &pool_options)
            .expect("the pool options were valid for the main pool");
        App::new()
            .document(api::openapi::spec())
            .app_data(web::Data::new(worker_state))
            .app_data(session_gate.clone())
            .app_data(readiness.clone())
            // Outermost last: paths are normalised, unknown methods renamed, the client
            // IP resolved, then latency
            // per route, the access log and the response counter see everything
            // (429s included); the bearer token is verified before the rate limiter,
            // which exempts verified callers.
            .wrap(middleware::Condition::new(
                limit_orgs,
                Governor::new(&orgs_governor),
            ))
            .wrap(middleware::Condition::new(
                limit_anonymous,
                Governor::new(&anonymous_governor),
            ))
            .wrap(middleware::Condition::new(
                limit_sign_in,
                Governor::new(&sign_in_governor),
            ))
            .wrap(middleware::from_fn(api::authn::middleware))
            .wrap(middleware::from_fn(api::metrics::count))
            .wrap(middleware::from_fn(api::access_log::middleware))
            .wrap(prometheus.clone())
            .wrap(middleware::from_fn(api::client_ip::middleware))
            .wrap(middleware::from_fn(api::metrics::bound_method))
            .wrap(middleware::NormalizePath::trim())
            .configure(|cfg| api::configure(cfg, max_body))
            .build(api::openapi::DOCUMENT_PATH)
            .configure(api::docs::configure)
            .configure(api::metrics::configure)
            .configure(api::events::configure)
            .configure(|cfg| api::auth::configure(cfg, &redirect_path))
            .configure(crate::console::configure)
            .default_service(web::to(api::errors::not_found))
    })
    .workers(workers)
    .disable_signals()
    .shutdown_timeout(shutdown_timeout)
    .listen(listener)
    .map_err(|e| Error::io(format!("listening on {addr}"), e))?
    .run();
    let handle = server.handle();
    let (stop_jobs, stop) = tokio::sync::watch::channel(false);
    let (mut background, workers) = spawn_background(data.get_ref(), work, stop);
    if let Some(limit) = limits.anonymous {
        background.push(tokio::spawn(rate_limit::prune_loop(
            limit,
            RATE_LIMIT_PRUNE,
        )));
    }
    if let Some(limit) = limits.sign_in {
        background.push(tokio::spawn(rate_limit::prune_loop(
            limit,
            RATE_LIMIT_PRUNE,
        )));
    }
    if let Some(limit) = limits.orgs {
        background.push(tokio::spawn(rate_limit::prune_loop(
            limit,
            RATE_LIMIT_PRUNE,
        )));
    }
    let task = tokio::spawn(async move {
        let outcome = server.await;
        for task in background {
            task.abort();
        }
        outcome
    });
    Ok(RunningServer {
        addr,
        handle,
        task,
        stop_jobs,
        workers,
    })
}

/// Starts the loops that run beside the HTTP server (aborted when it stops) and, with
/// [`Work::All`], the job workers (stopped gracefully through `stop`).
fn spawn_background(
    state: &AppState,
    work: Work,
    stop: tokio::sync::watch::Receiver<bool>,
) -> (
    Vec<tokio::task::JoinHandle<()>>,
    Option<tokio::task::JoinHandle<()>>,
) {
    let cluster = &state.config.cluster;
    let lease = Backend::from_nats(state.nats.clone()).lease(&state.config, &state.db, state.node);
    let mut tasks = vec![
        tokio::spawn(heartbeat::heartbeat_loop(state.clone(), cluster.heartbeat)),
        tokio::spawn(leader::election_loop(
            lease,
            cluster.lease_ttl / 3,
            state.leadership_tx.clone(),
            state.metrics.leader_is_elected.clone(),
            stop.clone(),
        )),
        tokio::spawn(state.bus.follow(Arc::new(state.clone()))),
        tokio::spawn(crate::events::follow(
            state.config.postgres.dsn.expose().to_string(),
            state.events.clone(),
        )),
        tokio::spawn(tokens::prune_loop(state.clone(), DENYLIST_PRUNE)),
        tokio::spawn(counts::compact_loop(state.db.clone(), COUNTS_COMPACT)),
    ];
    if work == Work::ApiOnly {
        return (tasks, None);
    }
    let ipfs = &state.config.ipfs;
    tasks.push(tokio::spawn(upkeep::upkeep_loop(
        state.clone(),
        cluster.heartbeat,
    )));
    tasks.push(tokio::spawn(reconciler::reconcile_loop(
        state.clone(),
        ipfs.reconcile_interval,
    )));
    // Unique per process, so a restarted node never collides with its old worker row.
    let worker_name = format!(
        "{}-{}",
        state.config.cluster.node_id,
        uuid::Uuid::now_v7().simple()
    );
    let runner_state = state.clone();
    let handler = JobHandler::new(move |job| {
        let state = runner_state.clone();
        async move { runner::run(&state, job).await }.boxed()
    });
    let workers = tokio::spawn(state.jobs.run_workers(
        handler,
        state.db.clone(),
        ipfs.max_concurrent_pins as usize,
        worker_name,
        stop,
    ));
    (tasks, Some(workers))
}

/// Serves until SIGINT or SIGTERM, then stops accepting, drains in-flight requests
/// (up to `server.shutdownTimeout`) and returns.
pub async fn serve_until_signal(state: AppState) -> Result<()> {
    let listen = state.config.server.listen.clone();
    let listener =
        TcpListener::bind(&listen).map_err(|e| Error::io(format!("binding {listen}"), e))?;
    let grace = state.config.server.shutdown_timeout;
    let jobs = state.jobs.clone();
    let mut running = start(state, listener, Work::All)?;
    tracing::info!(addr = %running.addr, "anchorage is serving");
    shutdown_signal().await;
    tracing::info!("shutting down: draining in-flight requests and jobs");
    running.handle.stop(true).await;
    running.drain_jobs(jobs.as_ref(), grace).await;
    match running.task.await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(Error::io("HTTP server", e)),
        Err(e) => Err(Error::Internal(format!("server task: {e}"))),
    }
}

/// Resolves on the first SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = signal(SignalKind::terminate()).expect("installing the SIGTERM handler");
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
