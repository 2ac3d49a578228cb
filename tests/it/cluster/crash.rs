//! A node killed with SIGKILL in the middle of a pin comes back and finishes it: the
//! placement row is the truth, the sweeper (or apalis's orphan recovery) re-issues the
//! job, and stale duplicates do nothing.

use std::{
    process::{Child, Stdio},
    time::{Duration, Instant},
};

use anchorage::{
    auth::{keys::KeySet, keys::SigningKey, MintRequest, Role, TokenService},
    db::system_tx,
    tenancy::orgs,
};
use futures_util::FutureExt;
use serde_json::{json, Value};
use tempfile::TempDir;

use crate::harness::{cluster::Backend, kubo::random_bytes, nats::NatsServer, KuboNode, TestDb};

struct Serve(Child);

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn serve(
    db: &TestDb,
    kubo: &str,
    key: &std::path::Path,
    port: u16,
    log: &std::path::Path,
    nats: Option<&NatsServer>,
) -> Serve {
    let mut cmd = crate::harness::bin::anchorage();
    if let Some(nats) = nats {
        cmd.env("ANCHORAGE_CLUSTER__BACKEND", "nats")
            .env("ANCHORAGE_NATS__URL", nats.url());
    }
    let child = cmd
        .arg("serve")
        .env("ANCHORAGE_POSTGRES__DSN", db.app_dsn())
        .env("ANCHORAGE_IPFS__RPC", kubo)
        .env("ANCHORAGE_IPFS__ALLOW_PRIVATE_ORIGINS", "true")
        .env("ANCHORAGE_IPFS__REQUEUE_AFTER", "3s")
        .env("ANCHORAGE_IPFS__RETRY_BASE_DELAY", "1s")
        .env("ANCHORAGE_SERVER__LISTEN", format!("127.0.0.1:{port}"))
        .env("ANCHORAGE_SERVER__SHUTDOWN_TIMEOUT", "5s")
        .env(
            "ANCHORAGE_AUTH__API_TOKEN__SIGNING_KEYS",
            json!([{ "id": "k1", "path": key, "primary": true }]).to_string(),
        )
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::from(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(log)
                .unwrap(),
        ))
        .spawn()
        .unwrap();
    Serve(child)
}

async fn wait_healthy(base: &str, log: &std::path::Path) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while reqwest::get(format!("{base}/v1/health"))
        .await
        .map(|r| r.status() != 200)
        .unwrap_or(true)
    {
        assert!(
            Instant::now() < deadline,
            "serve never came up:\n{}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn placement_state(db: &TestDb) -> Option<String> {
    use diesel_async::RunQueryDsl;
    #[derive(diesel::QueryableByName)]
    struct Row {
        #[diesel(sql_type = diesel::sql_types::Text)]
        state: String,
    }
    let pool = db.app_pool();
    let mut conn = anchorage::db::pool::get(&pool).await.unwrap();
    diesel::sql_query("SELECT state FROM placements")
        .load::<Row>(&mut conn)
        .await
        .unwrap()
        .pop()
        .map(|r| r.state)
}

/// A database with an org, two Kubo nodes (an origin holding `cid`, and anchorage's),
/// a signing key and a member token, ready for `anchorage serve` on `port`.
struct Fixture {
    db: TestDb,
    origin: KuboNode,
    ours: KuboNode,
    cid: String,
    key: std::path::PathBuf,
    log: std::path::PathBuf,
    port: u16,
    base: String,
    token: String,
    nats: Option<NatsServer>,
    _dir: TempDir,
}

async fn fixture(content_bytes: usize, backend: Backend) -> Fixture {
    let db = TestDb::migrated().await;
    let nats = match backend {
        Backend::Postgres => None,
        Backend::Nats => Some(
            tokio::task::spawn_blocking(NatsServer::start)
                .await
                .unwrap(),
        ),
    };
    let (origin, ours) = tokio::task::spawn_blocking(|| (KuboNode::start(), KuboNode::start()))
        .await
        .unwrap();
    let cid = origin.add(random_bytes(content_bytes)).await;
    let dir = TempDir::new().unwrap();
    let key = dir.path().join("k1");
    anchorage::auth::keys::write_new_key_file(&key).unwrap();
    let log = dir.path().join("serve.log");
    let port = anchorage::devstack::postgres::free_port().unwrap();
    let pool = db.app_pool();
    let org = system_tx(&pool, |conn| {
        async move { orgs::store::create(conn, "acme").await }.boxed()
    })
    .await
    .unwrap();
    let tokens = TokenService::new(
        KeySet::new(vec![SigningKey::load("k1", &key).unwrap()], Some("k1")).unwrap(),
        "anchorage",
        "anchorage",
    );
    let token = tokens
        .mint(MintRequest {
            sub: "usr_x".into(),
            org: Some(org.id),
            role: Role::Member,
            scopes: None,
            ttl: Duration::from_secs(600),
        })
        .unwrap()
        .jwt;
    Fixture {
        db,
        origin,
        ours,
        cid,
        key,
        log,
        port,
        base: format!("http://127.0.0.1:{port}"),
        token,
        nats,
        _dir: dir,
    }
}

impl Fixture {
    fn serve(&self) -> Serve {
        serve(
            &self.db,
            self.ours.api(),
            &self.key,
            self.port,
            &self.log,
            self.nats.as_ref(),
        )
    }

    /// Freezes (or thaws) the origin, so a pin from it cannot finish.
    fn freeze_origin(&self, frozen: bool) {
        let signal = if frozen { libc::SIGSTOP } else { libc::SIGCONT };
        // SAFETY: signalling a child process of this test.
        unsafe { libc::kill(self.origin.node.pid() as i32, signal) };
    }

    /// POSTs a pin of `cid` from the origin and waits until its placement is `pinning`.
    async fn start_stuck_pin(&self) -> String {
        let resp: Value = reqwest::Client::new()
            .post(format!("{}/v1/pins", self.base))
            .bearer_auth(&self.token)
            .json(&json!({"cid": self.cid, "origins": [self.origin.swarm_addr()]}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let id = resp["requestid"]
            .as_str()
            .expect("202 with a requestid")
            .to_string();
        let deadline = Instant::now() + Duration::from_secs(30);
        while placement_state(&self.db).await.as_deref() != Some("pinning") {
            assert!(Instant::now() < deadline, "never started pinning");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        id
    }
}

async fn sigkill_mid_pin_and_restart_completes_the_pin_once(backend: Backend) {
    let f = fixture(2 * 1024 * 1024, backend).await;
    let mut first = f.serve();
    wait_healthy(&f.base, &f.log).await;
    f.freeze_origin(true);
    let id = f.start_stuck_pin().await;

    // SIGKILL mid-pin; the origin thaws; the node starts again.
    first.0.kill().unwrap();
    first.0.wait().unwrap();
    f.freeze_origin(false);
    let _second = f.serve();
    wait_healthy(&f.base, &f.log).await;

    let http = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let got: Value = http
            .get(format!("{}/v1/pins/{id}", f.base))
            .bearer_auth(&f.token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if got["status"] == "pinned" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not pinned after restart: {got}\n{}",
            std::fs::read_to_string(&f.log).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert_eq!(placement_state(&f.db).await.as_deref(), Some("pinned"));
    let listed = f
        .ours
        .rpc("pin/ls", &[("type", "recursive"), ("stream", "true")])
        .await
        .text()
        .await
        .unwrap();
    let canonical = anchorage::pins::cid::Cid::parse(&f.cid)
        .unwrap()
        .canonical()
        .to_string();
    assert_eq!(
        listed.matches(&canonical).count(),
        1,
        "exactly one Kubo pin: {listed}"
    );
}

async fn sigterm_with_a_stuck_pin_exits_within_the_shutdown_timeout(backend: Backend) {
    let f = fixture(1024 * 1024, backend).await;
    let mut node = f.serve();
    wait_healthy(&f.base, &f.log).await;
    f.freeze_origin(true);
    f.start_stuck_pin().await;

    let sent = Instant::now();
    // SAFETY: signalling our own child.
    unsafe { libc::kill(node.0.id() as i32, libc::SIGTERM) };
    let status = loop {
        if let Some(status) = node.0.try_wait().unwrap() {
            break status;
        }
        assert!(
            sent.elapsed() < Duration::from_secs(45),
            "did not exit after SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    f.freeze_origin(false);
    assert!(status.success(), "clean exit: {status}");
    // shutdownTimeout is 5 s here: the stuck pin is given that long, no more.
    assert!(
        sent.elapsed() < Duration::from_secs(15),
        "{:?}",
        sent.elapsed()
    );
    assert_eq!(
        placement_state(&f.db).await.as_deref(),
        Some("pinning"),
        "left for the sweeper"
    );
    let log_text = std::fs::read_to_string(&f.log).unwrap();
    assert!(
        log_text.contains("draining in-flight requests and jobs"),
        "{log_text}"
    );
}

crate::on_both_backends!(
    sigkill_mid_pin_and_restart_completes_the_pin_once,
    sigterm_with_a_stuck_pin_exits_within_the_shutdown_timeout,
);
