//! A cluster of real `anchorage serve` processes for tests: one migrated database, one
//! signing key, and N nodes, each an `anchorage serve` child on its own loopback port
//! with its own Kubo core.
//!
//! Each node's Kubo lives on a repo and ports the harness keeps, so
//! [`TestCluster::kill_kubo`] / [`TestCluster::restart_kubo`] take it away and bring the
//! *same* node back (same repo, peer id, pins, API and swarm ports).
//!
//! Dropping the cluster SIGKILLs every anchorage process it started and stops every Kubo;
//! when the test is panicking it first prints the tail of every node's log.

// A fixture library: not every helper is used by every test.
#![allow(dead_code)]

use std::{
    future::Future,
    path::{Path, PathBuf},
    process::{Child, Command, Output, Stdio},
    time::{Duration, Instant},
};

use anchorage::{
    auth::{
        keys::{self, KeySet, SigningKey},
        MintRequest, Role, TokenService,
    },
    db::{system_tx, DbPool},
    devstack::{
        kubo::{KuboPorts, LocalKubo},
        postgres::free_port,
    },
    ids::OrgId,
    pins::cid::Cid,
    tenancy::orgs,
};
use futures_util::FutureExt;
use serde_json::{json, Value};
use tempfile::TempDir;
use uuid::Uuid;

use super::{counting_proxy::CountingProxy, nats::NatsServer, tcp_proxy::TcpProxy, TestDb};

/// The cluster backend the nodes run on (`cluster.backend`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Postgres,
    /// One real nats-server; each node reaches it through its own [`TcpProxy`], so a
    /// test can cut one node's link.
    Nats,
}

/// Runs each named `async fn(Backend)` as two tests, `postgres::<name>` and
/// `nats::<name>`.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod postgres {
            $(
                #[tokio::test]
                async fn $name() {
                    super::$name($crate::harness::cluster::Backend::Postgres).await
                }
            )*
        }
        mod nats {
            $(
                #[tokio::test]
                async fn $name() {
                    super::$name($crate::harness::cluster::Backend::Nats).await
                }
            )*
        }
    };
}

/// Key id of the cluster's shared signing key.
const KID: &str = "k1";

/// Cluster timings every node gets unless the test overrides them (`extra_env`).
///
/// The reconciler keeps its production timings (5 min interval, 10 min orphan grace) on
/// purpose: a surplus or released copy must be removed by the cluster's own unpin, not
/// swept up later as an orphan.
pub const DEFAULT_ENV: &[(&str, &str)] = &[
    ("ANCHORAGE_CLUSTER__HEARTBEAT", "1s"),
    ("ANCHORAGE_CLUSTER__NODE_TTL", "3s"),
    ("ANCHORAGE_CLUSTER__LEASE_TTL", "3s"),
    ("ANCHORAGE_CLUSTER__REPAIR_DELAY", "2s"),
    ("ANCHORAGE_IPFS__REQUEUE_AFTER", "3s"),
    ("ANCHORAGE_IPFS__RETRY_BASE_DELAY", "1s"),
    ("ANCHORAGE_SERVER__SHUTDOWN_TIMEOUT", "5s"),
];

/// How long a node may take to answer `/v1/health` after it is spawned.
const HEALTHY_WITHIN: Duration = Duration::from_secs(60);

/// How long [`TestCluster::spawn_extra`] waits for the extra process to exit.
const EXTRA_EXIT_WITHIN: Duration = Duration::from_secs(15);

/// Polls `f` every 150 ms until it yields `Some`, and returns that. Panics with `what`
/// and the time waited when `deadline` passes first.
pub async fn eventually<T, F, Fut>(what: &str, deadline: Duration, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let started = Instant::now();
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(
            started.elapsed() < deadline,
            "{what}: not within {deadline:?} (waited {:?})",
            started.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
}

/// Like [`eventually`], returning how long it took as well.
pub async fn timed<T, F, Fut>(what: &str, deadline: Duration, f: F) -> (T, Duration)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let started = Instant::now();
    let v = eventually(what, deadline, f).await;
    (v, started.elapsed())
}

/// The canonical (CIDv1 base32) form anchorage stores.
pub fn canonical(cid: &str) -> String {
    Cid::parse(cid)
        .unwrap_or_else(|e| panic!("{cid}: {e}"))
        .canonical()
        .to_string()
}

/// A Kubo core whose repo and ports outlive the process, so it can be restarted as the
/// same node.
struct NodeKubo {
    _dir: TempDir,
    repo: PathBuf,
    ports: KuboPorts,
    api: String,
    swarm_addr: String,
    running: Option<LocalKubo>,
}

impl NodeKubo {
    fn start() -> Self {
        let dir = TempDir::new().unwrap();
        let repo = dir.path().join("repo");
        let node = LocalKubo::start(&repo, KuboPorts::default())
            .unwrap_or_else(|e| panic!("starting a Kubo test node: {e}"));
        let api_port = node
            .ready
            .api
            .rsplit(':')
            .next()
            .and_then(|p| p.trim_end_matches('/').parse().ok())
            .unwrap_or_else(|| panic!("no port in {}", node.ready.api));
        let swarm_addr = node.ready.addrs[0].clone();
        let swarm_port = swarm_addr
            .split('/')
            .skip_while(|p| *p != "tcp")
            .nth(1)
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("no tcp port in {swarm_addr}"));
        Self {
            api: node.ready.api.clone(),
            swarm_addr,
            repo,
            ports: KuboPorts {
                api: api_port,
                swarm: swarm_port,
            },
            running: Some(node),
            _dir: dir,
        }
    }
}

/// One cluster member.
struct Node {
    name: String,
    port: u16,
    log: PathBuf,
    child: Option<Child>,
    kubo: NodeKubo,
    /// In front of the Kubo when the test counts the node's RPC calls.
    kubo_counter: Option<CountingProxy>,
}

/// N `anchorage serve` processes sharing one database and signing key.
pub struct TestCluster {
    nodes: Vec<Node>,
    dir: TempDir,
    key: PathBuf,
    tokens: TokenService,
    replicas: (u32, u32),
    extra_env: Vec<(String, String)>,
    extras_spawned: usize,
    http: reqwest::Client,
    sql: tokio_postgres::Client,
    pool: DbPool,
    /// With [`Backend::Nats`]: the server, and one proxy per node in front of it.
    nats: Option<NatsServer>,
    nats_links: Vec<TcpProxy>,
    db: TestDb,
}

impl TestCluster {
    /// A fresh migrated database and `n` nodes `node-0`..`node-{n-1}` with
    /// `cluster.minReplicas`/`maxReplicas` = `replicas`, [`DEFAULT_ENV`] and then
    /// `extra_env` (which wins). Returns once every node answers `GET /v1/health` 200.
    pub async fn start(n: usize, replicas: (u32, u32), extra_env: &[(&str, &str)]) -> Self {
        Self::start_on(TestDb::migrated().await, n, replicas, extra_env).await
    }

    /// [`TestCluster::start`] on `backend`.
    pub async fn start_with(
        backend: Backend,
        n: usize,
        replicas: (u32, u32),
        extra_env: &[(&str, &str)],
    ) -> Self {
        let ports = distinct_free_ports(n);
        Self::launch(
            backend,
            TestDb::migrated().await,
            ports,
            replicas,
            extra_env,
            false,
        )
        .await
    }

    /// [`TestCluster::start_with`], each node's Kubo behind a [`CountingProxy`]
    /// ([`TestCluster::kubo_calls`]).
    pub async fn start_counting_kubo_calls(
        backend: Backend,
        n: usize,
        replicas: (u32, u32),
        extra_env: &[(&str, &str)],
    ) -> Self {
        let ports = distinct_free_ports(n);
        Self::launch(
            backend,
            TestDb::migrated().await,
            ports,
            replicas,
            extra_env,
            true,
        )
        .await
    }

    /// [`TestCluster::start`] on a database the test made (the cluster owns it from now).
    pub async fn start_on(
        db: TestDb,
        n: usize,
        replicas: (u32, u32),
        extra_env: &[(&str, &str)],
    ) -> Self {
        let ports = distinct_free_ports(n);
        Self::start_on_ports(db, ports, replicas, extra_env).await
    }

    /// [`TestCluster::start_on`] with one node per port of `ports`, node `i` listening on
    /// `ports[i]` (so a test can name a node's URL in `extra_env`, e.g. as
    /// `ANCHORAGE_SERVER__PUBLIC_URL`, before the cluster starts).
    pub async fn start_on_ports(
        db: TestDb,
        ports: Vec<u16>,
        replicas: (u32, u32),
        extra_env: &[(&str, &str)],
    ) -> Self {
        Self::launch(Backend::Postgres, db, ports, replicas, extra_env, false).await
    }

    async fn launch(
        backend: Backend,
        db: TestDb,
        ports: Vec<u16>,
        replicas: (u32, u32),
        extra_env: &[(&str, &str)],
        count_kubo_calls: bool,
    ) -> Self {
        let n = ports.len();
        let (nats, nats_links) = match backend {
            Backend::Postgres => (None, Vec::new()),
            Backend::Nats => {
                let server = tokio::task::spawn_blocking(NatsServer::start)
                    .await
                    .unwrap();
                let mut links = Vec::new();
                for _ in 0..n {
                    links.push(TcpProxy::start(server.port()).await);
                }
                (Some(server), links)
            }
        };
        let dir = TempDir::new().unwrap();
        let key = dir.path().join(KID);
        keys::write_new_key_file(&key).unwrap();
        let tokens = TokenService::new(
            KeySet::new(vec![SigningKey::load(KID, &key).unwrap()], Some(KID)).unwrap(),
            "anchorage",
            "anchorage",
        );
        let kubos: Vec<NodeKubo> = tokio::task::spawn_blocking(move || {
            let handles: Vec<_> = (0..n)
                .map(|_| std::thread::spawn(NodeKubo::start))
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        })
        .await
        .unwrap();
        let nodes = kubos
            .into_iter()
            .enumerate()
            .zip(ports)
            .map(|((i, kubo), port)| Node {
                name: format!("node-{i}"),
                port,
                log: dir.path().join(format!("node-{i}.log")),
                child: None,
                kubo_counter: count_kubo_calls.then(|| CountingProxy::start(&kubo.api)),
                kubo,
            })
            .collect();
        let (sql, conn) = tokio_postgres::connect(&db.app_dsn(), tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(conn);
        let mut cluster = Self {
            nodes,
            key,
            tokens,
            replicas,
            extra_env: extra_env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            extras_spawned: 0,
            http: reqwest::Client::new(),
            sql,
            pool: db.app_pool(),
            nats,
            nats_links,
            db,
            dir,
        };
        for i in 0..n {
            cluster.spawn(i);
        }
        for i in 0..n {
            cluster.wait_healthy(i).await;
        }
        // Every node registered with the backend it was given.
        let backend = match backend {
            Backend::Postgres => "postgres",
            Backend::Nats => "nats",
        };
        let on_backend: i64 = (cluster.sql)
            .query_one("SELECT count(*) FROM nodes WHERE backend = $1", &[&backend])
            .await
            .unwrap()
            .get(0);
        assert_eq!(on_backend, n as i64, "nodes registered on {backend}");
        cluster
    }

    /// Number of nodes (running or not).
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// `node-<i>`.
    pub fn name(&self, i: usize) -> &str {
        &self.nodes[i].name
    }

    /// The index of the node called `name`.
    pub fn index(&self, name: &str) -> usize {
        self.nodes
            .iter()
            .position(|n| n.name == name)
            .unwrap_or_else(|| panic!("no node named {name}"))
    }

    /// `http://127.0.0.1:<port of node i><path>`.
    pub fn url(&self, i: usize, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.nodes[i].port)
    }

    /// A request to node `i` with `token` as bearer.
    pub fn req(
        &self,
        i: usize,
        method: reqwest::Method,
        path: &str,
        token: &str,
    ) -> reqwest::RequestBuilder {
        self.http
            .request(method, self.url(i, path))
            .bearer_auth(token)
    }

    /// Mints a token (1 h) with the cluster's signing key, as `anchorage token` would.
    pub fn token(&self, org: Option<OrgId>, role: Role) -> String {
        self.tokens
            .mint(MintRequest {
                sub: "usr_test".into(),
                org,
                role,
                scopes: None,
                ttl: Duration::from_secs(3600),
            })
            .unwrap()
            .jwt
    }

    /// Creates an org (as the CLI would).
    pub async fn create_org(&self, name: &str) -> OrgId {
        let name = name.to_string();
        system_tx(&self.pool, |conn| {
            async move { Ok(orgs::store::create(conn, &name).await?.id) }.boxed()
        })
        .await
        .unwrap()
    }

    /// A pool connecting as the server's role.
    pub fn pool(&self) -> &DbPool {
        &self.pool
    }

    /// The database.
    pub fn db(&self) -> &TestDb {
        &self.db
    }

    /// A plain connection as the server's role (cluster tables have no row security).
    pub fn sql(&self) -> &tokio_postgres::Client {
        &self.sql
    }

    /// `SELECT count(*) AS n ...` (or any query with one bigint column `n`) across all
    /// orgs, through `system_tx`, with `params` bound to `$1`, `$2`, ….
    pub async fn count(&self, sql: &'static str, params: &[super::sql::Param]) -> i64 {
        super::sql::count_in(&self.pool, sql, params).await
    }

    /// `anchorage <args>` as an operator of this cluster would run it: the nodes' database,
    /// signing key, replica counts and cluster timings (so liveness means the same to the
    /// command as to the nodes), `RUST_LOG=warn`, nothing of `serve`'s own settings.
    pub fn cli_command(&self, args: &[&str]) -> Command {
        let mut cmd = crate::harness::bin::anchorage();
        cmd.args(args)
            .env("ANCHORAGE_POSTGRES__DSN", self.db.app_dsn())
            .env(
                "ANCHORAGE_AUTH__API_TOKEN__SIGNING_KEYS",
                json!([{ "id": KID, "path": self.key, "primary": true }]).to_string(),
            )
            .env(
                "ANCHORAGE_CLUSTER__MIN_REPLICAS",
                self.replicas.0.to_string(),
            )
            .env(
                "ANCHORAGE_CLUSTER__MAX_REPLICAS",
                self.replicas.1.to_string(),
            );
        for (k, v) in DEFAULT_ENV {
            cmd.env(k, v);
        }
        if let Some(server) = &self.nats {
            cmd.env("ANCHORAGE_CLUSTER__BACKEND", "nats")
                .env("ANCHORAGE_NATS__URL", server.url());
        }
        for (k, v) in &self.extra_env {
            cmd.env(k, v);
        }
        cmd.env("RUST_LOG", "warn").stdin(Stdio::null());
        cmd
    }

    /// Opens [`TestCluster::sql`]'s connection again (after a Postgres restart cut it).
    pub async fn reconnect_sql(&mut self) {
        let (sql, conn) = tokio_postgres::connect(&self.db.app_dsn(), tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(conn);
        self.sql = sql;
    }

    /// The NATS server ([`Backend::Nats`] only).
    pub fn nats(&self) -> &NatsServer {
        self.nats.as_ref().expect("a NATS cluster")
    }

    /// Node `i`'s link to NATS ([`Backend::Nats`] only).
    pub fn nats_link(&self, i: usize) -> &TcpProxy {
        &self.nats_links[i]
    }

    /// How many `path` calls naming `arg` node `i` made to its Kubo (only with
    /// [`TestCluster::start_counting_kubo_calls`]).
    pub fn kubo_calls(&self, i: usize, path: &str, arg: &str) -> usize {
        let counter = self.nodes[i].kubo_counter.as_ref();
        counter.expect("counting Kubo calls").calls_with(path, arg)
    }

    /// Which backend the nodes run on.
    pub fn backend(&self) -> Backend {
        match self.nats {
            Some(_) => Backend::Nats,
            None => Backend::Postgres,
        }
    }

    // ---- processes -------------------------------------------------------------------

    /// The `anchorage serve` command for node `node_id` on `port` against `kubo_api`,
    /// logging to `log`.
    fn command(&self, node_id: &str, port: u16, kubo_api: &str, log: &Path) -> Command {
        let mut cmd = crate::harness::bin::anchorage();
        if let Some(server) = &self.nats {
            // Node i through its own link; an extra process straight to the server.
            let url = node_id
                .strip_prefix("node-")
                .and_then(|i| i.parse::<usize>().ok())
                .and_then(|i| self.nats_links.get(i))
                .map_or_else(|| server.url(), TcpProxy::nats_url);
            cmd.env("ANCHORAGE_CLUSTER__BACKEND", "nats")
                .env("ANCHORAGE_NATS__URL", url)
                .env("ANCHORAGE_NATS__CONNECT_TIMEOUT", "10s");
        }
        cmd.arg("serve")
            .env("ANCHORAGE_POSTGRES__DSN", self.db.app_dsn())
            .env("ANCHORAGE_IPFS__RPC", kubo_api)
            .env("ANCHORAGE_IPFS__ALLOW_PRIVATE_ORIGINS", "true")
            .env("ANCHORAGE_SERVER__LISTEN", format!("127.0.0.1:{port}"))
            .env(
                "ANCHORAGE_AUTH__API_TOKEN__SIGNING_KEYS",
                json!([{ "id": KID, "path": self.key, "primary": true }]).to_string(),
            )
            .env("ANCHORAGE_CLUSTER__NODE_ID", node_id)
            .env(
                "ANCHORAGE_CLUSTER__MIN_REPLICAS",
                self.replicas.0.to_string(),
            )
            .env(
                "ANCHORAGE_CLUSTER__MAX_REPLICAS",
                self.replicas.1.to_string(),
            )
            .env("RUST_LOG", "info");
        for (k, v) in DEFAULT_ENV {
            cmd.env(k, v);
        }
        for (k, v) in &self.extra_env {
            cmd.env(k, v);
        }
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(log)
                    .unwrap(),
            ));
        cmd
    }

    fn spawn(&mut self, i: usize) {
        assert!(self.nodes[i].child.is_none(), "{} is running", self.name(i));
        let node = &self.nodes[i];
        let header = format!(
            "\n===== harness: spawning {} on port {} (Kubo {}) =====\n",
            node.name, node.port, node.kubo.api
        );
        append(&node.log, &header);
        let api = node
            .kubo_counter
            .as_ref()
            .map_or(&node.kubo.api, |c| &c.url);
        let child = self
            .command(&node.name, node.port, api, &node.log)
            .spawn()
            .unwrap();
        self.nodes[i].child = Some(child);
    }

    async fn wait_healthy(&mut self, i: usize) {
        let started = Instant::now();
        let mut rebinds = 0;
        loop {
            let ok = self
                .http
                .get(self.url(i, "/v1/health"))
                .timeout(Duration::from_secs(2))
                .send()
                .await
                .map(|r| r.status() == 200)
                .unwrap_or(false);
            let child = self.nodes[i].child.as_mut().expect("spawned");
            // Healthy, and answered by this node's own process (not another one that
            // holds the port it failed to bind).
            if ok && child.try_wait().unwrap().is_none() {
                return;
            }
            if let Some(status) = child.try_wait().unwrap() {
                // The free port we picked was taken by another test before the node
                // bound it: pick another and start again.
                let log = self.log(i);
                let tail = &log[log.rfind("===== harness: spawning").unwrap_or(0)..];
                if tail.contains("Address already in use") && rebinds < 3 {
                    rebinds += 1;
                    self.nodes[i].child = None;
                    self.nodes[i].port = free_port().unwrap();
                    self.spawn(i);
                    continue;
                }
                panic!(
                    "{} exited before it was healthy ({status}):\n{}",
                    self.nodes[i].name,
                    self.log(i)
                );
            }
            assert!(
                started.elapsed() < HEALTHY_WITHIN,
                "{} not healthy within {HEALTHY_WITHIN:?}:\n{}",
                self.nodes[i].name,
                self.log(i)
            );
            tokio::time::sleep(Duration::from_millis(150)).await;
        }
    }

    /// The pid of node `i`'s anchorage process.
    pub fn pid(&self, i: usize) -> u32 {
        self.nodes[i]
            .child
            .as_ref()
            .unwrap_or_else(|| panic!("{} is not running", self.nodes[i].name))
            .id()
    }

    /// Whether node `i`'s anchorage process is running (stopped counts as running).
    pub fn is_running(&mut self, i: usize) -> bool {
        match self.nodes[i].child.as_mut() {
            Some(c) => c.try_wait().unwrap().is_none(),
            None => false,
        }
    }

    /// SIGKILLs node `i`'s anchorage process and reaps it. Its Kubo keeps running.
    pub fn kill(&mut self, i: usize) {
        let mut child = self.nodes[i]
            .child
            .take()
            .unwrap_or_else(|| panic!("{} is not running", self.nodes[i].name));
        let _ = child.kill();
        child.wait().unwrap();
        append(&self.nodes[i].log, "\n===== harness: SIGKILL =====\n");
    }

    /// SIGSTOPs node `i`'s anchorage process (it keeps its sockets, answers nothing).
    pub fn stop(&self, i: usize) {
        self.signal(i, libc::SIGSTOP);
    }

    /// SIGCONTs a node [`TestCluster::stop`]ped.
    pub fn cont(&self, i: usize) {
        self.signal(i, libc::SIGCONT);
    }

    fn signal(&self, i: usize, signal: i32) {
        // SAFETY: signalling a child process this harness spawned and has not reaped.
        let rc = unsafe { libc::kill(self.pid(i) as i32, signal) };
        assert_eq!(rc, 0, "kill({signal}) {}", self.nodes[i].name);
    }

    /// Spawns node `i` again — same node id, port and Kubo — and waits until it is healthy.
    /// Its Kubo must be running ([`TestCluster::restart_kubo`] first if it was killed).
    pub async fn restart(&mut self, i: usize) {
        if let Some(mut c) = self.nodes[i].child.take() {
            assert!(
                c.try_wait().unwrap().is_some(),
                "{} is still running",
                self.nodes[i].name
            );
        }
        self.spawn(i);
        self.wait_healthy(i).await;
    }

    /// Stops node `i`'s Kubo (the same repo and ports stay reserved for a restart).
    pub async fn kill_kubo(&mut self, i: usize) {
        let kubo = self.nodes[i]
            .kubo
            .running
            .take()
            .unwrap_or_else(|| panic!("{}'s Kubo is not running", self.nodes[i].name));
        tokio::task::spawn_blocking(move || drop(kubo))
            .await
            .unwrap();
    }

    /// Starts node `i`'s Kubo again on its repo (same peer id and pins) and ports.
    pub async fn restart_kubo(&mut self, i: usize) {
        assert!(
            self.nodes[i].kubo.running.is_none(),
            "{}'s Kubo is running",
            self.nodes[i].name
        );
        let (repo, ports) = (self.nodes[i].kubo.repo.clone(), self.nodes[i].kubo.ports);
        // A just-closed listening port can take a moment to be free again.
        let mut last = None;
        for _ in 0..20 {
            let repo = repo.clone();
            match tokio::task::spawn_blocking(move || LocalKubo::start(&repo, ports))
                .await
                .unwrap()
            {
                Ok(node) => {
                    assert_eq!(
                        node.ready.api, self.nodes[i].kubo.api,
                        "restarted Kubo on another API address"
                    );
                    self.nodes[i].kubo.running = Some(node);
                    return;
                }
                Err(e) => last = Some(e),
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        panic!("restarting {}'s Kubo: {:?}", self.nodes[i].name, last);
    }

    /// Runs one more `anchorage serve` with `cluster.nodeID` = `node_id` (same database,
    /// key and timings, a fresh port; the Kubo of the node of that name, else node 0's),
    /// and returns its exit status and stderr once it exits. If it is still running after
    /// 15 s it is SIGKILLed (the status then says so) and its output returned.
    pub async fn spawn_extra(&mut self, node_id: &str) -> Output {
        self.spawn_extra_with(node_id, &[]).await
    }

    /// [`TestCluster::spawn_extra`] with `env` on top of the nodes' own.
    pub async fn spawn_extra_with(&mut self, node_id: &str, env: &[(&str, &str)]) -> Output {
        self.extras_spawned += 1;
        let log = self
            .dir
            .path()
            .join(format!("extra-{node_id}-{}.log", self.extras_spawned));
        let kubo = self
            .nodes
            .iter()
            .find(|n| n.name == node_id)
            .unwrap_or(&self.nodes[0])
            .kubo
            .api
            .clone();
        let mut child = self
            .command(node_id, free_port().unwrap(), &kubo, &log)
            .envs(env.iter().copied())
            .spawn()
            .unwrap();
        let started = Instant::now();
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if started.elapsed() > EXTRA_EXIT_WITHIN {
                let _ = child.kill();
                break child.wait().unwrap();
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        Output {
            status,
            stdout: Vec::new(),
            stderr: std::fs::read(&log).unwrap_or_default(),
        }
    }

    /// Everything node `i` logged (all its runs).
    pub fn log(&self, i: usize) -> String {
        std::fs::read_to_string(&self.nodes[i].log).unwrap_or_default()
    }

    /// Every node's log, headed by its name (for assertion messages).
    pub fn logs(&self) -> String {
        (0..self.nodes.len())
            .map(|i| format!("----- {} -----\n{}", self.nodes[i].name, self.log(i)))
            .collect::<Vec<_>>()
            .join("\n")
    }

    // ---- Kubo ------------------------------------------------------------------------

    /// Node `i`'s Kubo RPC endpoint (stable across Kubo restarts).
    pub fn kubo_api(&self, i: usize) -> &str {
        &self.nodes[i].kubo.api
    }

    /// Node `i`'s Kubo swarm multiaddr (ends in `/p2p/<peer id>`; stable across restarts).
    pub fn swarm_addr(&self, i: usize) -> &str {
        &self.nodes[i].kubo.swarm_addr
    }

    /// Whether node `i`'s Kubo is running.
    pub fn kubo_running(&self, i: usize) -> bool {
        self.nodes[i].kubo.running.is_some()
    }

    /// POSTs `/api/v0/<path>` with `args` to node `i`'s Kubo.
    pub async fn kubo_rpc(&self, i: usize, path: &str, args: &[(&str, &str)]) -> reqwest::Response {
        self.http
            .post(format!("{}/api/v0/{path}", self.kubo_api(i)))
            .query(args)
            .send()
            .await
            .unwrap_or_else(|e| panic!("{}'s Kubo {path}: {e}", self.nodes[i].name))
    }

    /// Adds `bytes` to node `i`'s Kubo **without pinning it** (so no operator pin exists
    /// and the blocks are only in that node's blockstore) and returns the CID Kubo gives.
    pub async fn add_unpinned(&self, i: usize, bytes: Vec<u8>) -> String {
        let part = reqwest::multipart::Part::bytes(bytes).file_name("data.bin");
        let form = reqwest::multipart::Form::new().part("file", part);
        let resp = self
            .http
            .post(format!("{}/api/v0/add", self.kubo_api(i)))
            .query(&[("pin", "false")])
            .multipart(form)
            .send()
            .await
            .unwrap();
        assert!(resp.status().is_success(), "add: {}", resp.status());
        let body: Value = resp.json().await.unwrap();
        body["Hash"].as_str().unwrap().to_string()
    }

    /// Node `i`'s recursive pins, as Kubo spells them. Panics if its Kubo is down.
    pub async fn kubo_pins(&self, i: usize) -> Vec<String> {
        assert!(
            self.kubo_running(i),
            "{}'s Kubo is not running",
            self.nodes[i].name
        );
        let resp = self
            .kubo_rpc(i, "pin/ls", &[("type", "recursive"), ("stream", "true")])
            .await;
        assert!(resp.status().is_success(), "pin/ls: {}", resp.status());
        resp.text()
            .await
            .unwrap()
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| {
                serde_json::from_str::<Value>(l).unwrap()["Cid"]
                    .as_str()
                    .unwrap()
                    .to_string()
            })
            .collect()
    }

    /// Whether node `i`'s Kubo has a recursive pin of `cid` (in any CID spelling).
    pub async fn kubo_has(&self, i: usize, cid: &str) -> bool {
        let want = canonical(cid);
        self.kubo_pins(i).await.iter().any(|c| {
            Cid::parse(c)
                .map(|c| c.canonical() == want)
                .unwrap_or(false)
        })
    }

    /// Names of the nodes whose *running* Kubo has a recursive pin of `cid`, sorted.
    pub async fn kubo_holders(&self, cid: &str) -> Vec<String> {
        let mut out = Vec::new();
        for i in 0..self.nodes.len() {
            if self.kubo_running(i) && self.kubo_has(i, cid).await {
                out.push(self.nodes[i].name.clone());
            }
        }
        out
    }

    // ---- database observation ----------------------------------------------------------

    /// `nodes.id` of the node named `name`.
    pub async fn node_uuid(&self, name: &str) -> Uuid {
        let row = self
            .sql
            .query_one("SELECT id::text FROM nodes WHERE name = $1", &[&name])
            .await
            .unwrap_or_else(|e| panic!("node {name}: {e}"));
        Uuid::parse_str(row.get::<_, &str>(0)).unwrap()
    }

    /// `(node name, state)` of every placement of `cid` (any spelling), sorted by name.
    pub async fn placements(&self, cid: &str) -> Vec<(String, String)> {
        self.sql
            .query(
                "SELECT n.name, p.state FROM placements p JOIN nodes n ON n.id = p.node_id \
                 WHERE p.cid = $1 ORDER BY n.name",
                &[&canonical(cid)],
            )
            .await
            .unwrap()
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect()
    }

    /// The live leader lease (`leases.name = 'leader'`, `expires_at > now()`): holder's
    /// node name (its uuid if no node row matches) and fence.
    pub async fn leader(&self) -> Option<(String, i64)> {
        self.sql
            .query_opt(
                "SELECT coalesce(n.name, l.holder::text), l.fence FROM leases l \
                 LEFT JOIN nodes n ON n.id = l.holder \
                 WHERE l.name = 'leader' AND l.holder IS NOT NULL AND l.expires_at > now()",
                &[],
            )
            .await
            .unwrap()
            .map(|r| (r.get(0), r.get(1)))
    }

    /// The leader lease row whether live or not: holder name, fence, live.
    pub async fn leader_row(&self) -> Option<(Option<String>, i64, bool)> {
        self.sql
            .query_opt(
                "SELECT coalesce(n.name, l.holder::text), l.fence, \
                        coalesce(l.expires_at > now(), false) \
                 FROM leases l LEFT JOIN nodes n ON n.id = l.holder WHERE l.name = 'leader'",
                &[],
            )
            .await
            .unwrap()
            .map(|r| (r.get(0), r.get(1), r.get(2)))
    }

    /// How many `leases` rows named `leader` are live (0 or 1: `name` is the key).
    pub async fn live_leader_rows(&self) -> i64 {
        self.sql
            .query_one(
                "SELECT count(*) FROM leases WHERE name = 'leader' AND expires_at > now()",
                &[],
            )
            .await
            .unwrap()
            .get(0)
    }
}

impl Drop for TestCluster {
    fn drop(&mut self) {
        if std::thread::panicking() {
            for node in &self.nodes {
                let log = std::fs::read_to_string(&node.log).unwrap_or_default();
                let lines: Vec<&str> = log.lines().collect();
                // Warnings and errors first: a loop logging at INFO can fill any tail.
                let alarms: Vec<&str> = lines
                    .iter()
                    .copied()
                    .filter(|l| l.contains("WARN") || l.contains("ERROR"))
                    .collect();
                let alarms = &alarms[alarms.len().saturating_sub(60)..];
                let tail = &lines[lines.len().saturating_sub(100)..];
                eprintln!(
                    "----- {} (last {} warnings and errors) -----\n{}\n----- {} (last {} log lines) -----\n{}",
                    node.name,
                    alarms.len(),
                    alarms.join("\n"),
                    node.name,
                    tail.len(),
                    tail.join("\n")
                );
            }
        }
        for node in &mut self.nodes {
            if let Some(mut child) = node.child.take() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
        // Kubos stop as `nodes` drops; the database is dropped last (field order).
    }
}

/// `n` loopback ports free right now and distinct from each other (two calls of
/// `free_port` can hand out the same port, and two nodes would then share it).
fn distinct_free_ports(n: usize) -> Vec<u16> {
    let mut ports = Vec::with_capacity(n);
    while ports.len() < n {
        let port = free_port().unwrap();
        if !ports.contains(&port) {
            ports.push(port);
        }
    }
    ports
}

fn append(path: &Path, text: &str) {
    use std::io::Write;
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
    {
        let _ = f.write_all(text.as_bytes());
    }
}
