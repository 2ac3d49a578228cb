//! `anchorage dev` from nothing, the way a new user runs it: a private Postgres, a local
//! IPFS node, dev.env, serving — then stopped with SIGTERM and started again on the same
//! data directory.

use std::{
    collections::HashMap,
    fs,
    os::unix::fs::PermissionsExt,
    path::Path,
    process::{Child, Stdio},
    time::{Duration, Instant},
};

use anchorage::{
    auth::Role,
    config::{self, ConfigSource},
    server,
};

fn free_port() -> u16 {
    anchorage::devstack::postgres::free_port().unwrap()
}

/// The dev process. If a failing test leaves it running it is stopped, and so is the
/// Postgres it started, so no cluster outlives the test.
struct DevProcess(Child, std::path::PathBuf);

impl Drop for DevProcess {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            sigterm_and_wait(&mut self.0);
        }
        let _ = anchorage::devstack::postgres::stop_dir(&self.1.join("postgres"));
    }
}

fn start_dev(data_dir: &Path, port: u16) -> DevProcess {
    start_dev_with(data_dir, port, &[])
}

fn start_dev_with(data_dir: &Path, port: u16, args: &[&str]) -> DevProcess {
    let mut cmd = crate::harness::bin::anchorage();
    cmd.args(["dev", "--data-dir"])
        .arg(data_dir)
        .args(args)
        .env("ANCHORAGE_SERVER__LISTEN", format!("127.0.0.1:{port}"))
        // Nothing answers here, so dev starts its own IPFS node.
        .env("ANCHORAGE_IPFS__RPC", "http://127.0.0.1:9")
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::from(
            fs::File::create(data_dir.with_extension("log")).unwrap(),
        ))
        .spawn()
        .map(|child| DevProcess(child, data_dir.to_path_buf()))
        .unwrap()
}

async fn wait_for_health(base: &str, child: &mut Child, log: &Path) {
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            panic!(
                "dev exited early ({status}):\n{}",
                fs::read_to_string(log).unwrap_or_default()
            );
        }
        if let Ok(resp) = client.get(format!("{base}/v1/health")).send().await {
            if resp.status() == 200 {
                return;
            }
        }
        assert!(
            Instant::now() < deadline,
            "dev never became healthy:\n{}",
            fs::read_to_string(log).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

fn sigterm_and_wait(child: &mut Child) -> std::process::ExitStatus {
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("dev did not stop within 60s of SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn read_env(path: &Path) -> HashMap<String, String> {
    fs::read_to_string(path)
        .unwrap()
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[tokio::test]
async fn dev_from_nothing_serves_and_restarts_on_the_same_data_dir() {
    // Like a clone under /root: a private (0700) parent directory.
    let home = tempfile::Builder::new()
        .prefix("dev-home")
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .unwrap();
    fs::set_permissions(home.path(), fs::Permissions::from_mode(0o700)).unwrap();
    let data_dir = home.path().join("clone").join(".anchorage");
    let log = data_dir.with_extension("log");
    fs::create_dir_all(data_dir.parent().unwrap()).unwrap();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");

    let mut dev = start_dev(&data_dir, port);
    wait_for_health(&base, &mut dev.0, &log).await;

    let env = read_env(&data_dir.join("dev.env"));
    assert_eq!(env["ANCHORAGE_URL"], format!("{base}/v1"));
    assert!(env["ANCHORAGE_ORG"].starts_with("org_"));
    let mode = fs::metadata(data_dir.join("dev.env"))
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600, "dev.env holds tokens");

    // The tokens verify against the config dev wrote, as a member of demo and a sysadmin.
    let written = config::load(&ConfigSource {
        file: Some(data_dir.join("anchorage.yaml")),
        env: vec![],
        overrides: vec![],
    })
    .unwrap()
    .config;
    let tokens = server::token_service(&written).unwrap();
    let member = tokens.verify(&env["ANCHORAGE_TOKEN"]).unwrap();
    assert_eq!(member.role, Role::Member);
    assert_eq!(member.org.unwrap().to_string(), env["ANCHORAGE_ORG"]);
    let admin = tokens.verify(&env["ANCHORAGE_ADMIN_TOKEN"]).unwrap();
    assert_eq!(admin.role, Role::Sysadmin);
    assert_ne!(
        written.ipfs.rpc, "http://127.0.0.1:9",
        "dev started its own IPFS node"
    );

    let client = reqwest::Client::new();
    let ready = client.get(format!("{base}/v1/ready")).send().await.unwrap();
    assert_eq!(ready.status(), 200, "{}", ready.text().await.unwrap());

    // `--config DATA_DIR/anchorage.yaml admin …` acts on the same stack.
    let out = crate::harness::bin::anchorage()
        .arg("--config")
        .arg(data_dir.join("anchorage.yaml"))
        .args(["admin", "org", "list"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(&format!("{}\tdemo\t", env["ANCHORAGE_ORG"]))
    );

    let status = sigterm_and_wait(&mut dev.0);
    assert!(status.success(), "clean exit on SIGTERM: {status}");
    assert!(
        !data_dir.join("postgres/postmaster.pid").exists(),
        "dev stopped the Postgres it started"
    );

    // Second run: same data dir, same org, serving again.
    let mut dev = start_dev(&data_dir, port);
    wait_for_health(&base, &mut dev.0, &log).await;
    let again = read_env(&data_dir.join("dev.env"));
    assert_eq!(again["ANCHORAGE_ORG"], env["ANCHORAGE_ORG"]);
    let ready = client.get(format!("{base}/v1/ready")).send().await.unwrap();
    assert_eq!(ready.status(), 200);
    assert!(sigterm_and_wait(&mut dev.0).success());
}

/// `dev --backend nats`: a local nats-server with JetStream in the data dir, a pin
/// carried through it, and the server stopped with dev.
#[tokio::test]
async fn dev_with_the_nats_backend_runs_and_stops_its_own_nats_server() {
    let home = tempfile::Builder::new()
        .prefix("dev-nats")
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .unwrap();
    let data_dir = home.path().join(".anchorage");
    let log = data_dir.with_extension("log");
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let mut dev = start_dev_with(&data_dir, port, &["--backend", "nats"]);
    wait_for_health(&base, &mut dev.0, &log).await;

    let client = reqwest::Client::new();
    let ready: serde_json::Value = client
        .get(format!("{base}/v1/ready"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ready["checks"]["nats"], "ok", "{ready}");
    let nats_port: u16 = fs::read_to_string(data_dir.join("nats.port"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(
        data_dir.join("nats/jetstream").is_dir(),
        "JetStream stores in the data dir"
    );

    // A pin goes through the JetStream queue to the local IPFS node.
    let env = read_env(&data_dir.join("dev.env"));
    let created: serde_json::Value = client
        .post(format!("{}/pins", env["ANCHORAGE_URL"]))
        .bearer_auth(&env["ANCHORAGE_TOKEN"])
        .json(&serde_json::json!({ "cid": crate::harness::fixtures::cid(7) }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = created["requestid"]
        .as_str()
        .expect("a requestid")
        .to_string();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let pin: serde_json::Value = client
            .get(format!("{}/pins/{id}", env["ANCHORAGE_URL"]))
            .bearer_auth(&env["ANCHORAGE_TOKEN"])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if pin["status"] == "pinned" {
            break;
        }
        assert!(Instant::now() < deadline, "never pinned: {pin}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    assert!(sigterm_and_wait(&mut dev.0).success());
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", nats_port)).is_err(),
        "dev stopped the nats-server it started"
    );
}

#[test]
fn a_private_cluster_recovers_from_a_stale_pid_file() {
    use anchorage::devstack::postgres::{PgCluster, StartOptions};
    let home = tempfile::Builder::new()
        .prefix("pg-stale")
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .unwrap();
    let dir = home.path().join("pg");
    let first = PgCluster::ensure_started(&dir, &StartOptions::default()).unwrap();
    assert!(first.started_here);
    // Attaching while it runs reuses it.
    let attached = PgCluster::ensure_started(&dir, &StartOptions::default()).unwrap();
    assert!(!attached.started_here);
    assert_eq!(attached.port, first.port);

    // kill -9 leaves postmaster.pid behind.
    let pid: i32 = fs::read_to_string(dir.join("postmaster.pid"))
        .unwrap()
        .lines()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    // SAFETY: killing the postmaster we started.
    unsafe { libc::kill(pid, libc::SIGKILL) };
    let deadline = Instant::now() + Duration::from_secs(10);
    while Path::new(&format!("/proc/{pid}")).exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        dir.join("postmaster.pid").exists(),
        "the stale pid file is still there"
    );

    let again = PgCluster::ensure_started(&dir, &StartOptions::default()).unwrap();
    assert!(again.started_here);
    again.stop().unwrap();
    assert!(!dir.join("postmaster.pid").exists());
}

/// When a later step fails (here the local IPFS node cannot start), `dev` exits with an
/// error and stops the private Postgres it started.
#[test]
fn a_failed_start_stops_the_private_postgres() {
    let dir = tempfile::TempDir::new().unwrap();
    let data_dir = dir.path().join("stack");
    let broken = dir.path().join("broken_shim.py");
    fs::write(
        &broken,
        "import sys\nsys.exit('this IPFS node cannot start')\n",
    )
    .unwrap();
    let out = crate::harness::bin::anchorage()
        .args(["dev", "--data-dir"])
        .arg(&data_dir)
        .env(
            "ANCHORAGE_SERVER__LISTEN",
            format!("127.0.0.1:{}", free_port()),
        )
        .env("ANCHORAGE_IPFS__RPC", "http://127.0.0.1:9")
        .env("ANCHORAGE_DEV_SHIM", &broken)
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    // Whatever happens, no cluster outlives the test.
    let _ = anchorage::devstack::postgres::stop_dir(&data_dir.join("postgres"));
    assert!(
        !out.status.success(),
        "dev came up with a broken IPFS node:\n{log}"
    );
    assert!(log.contains("private PostgreSQL is up"), "{log}");
    assert!(
        !data_dir.join("postgres/postmaster.pid").exists(),
        "the private Postgres was left running:\n{log}"
    );
}

/// The binary carries no Python: the dev IPFS shim is a tool of the checkout.
#[test]
fn the_binary_contains_no_python() {
    let binary = fs::read(env!("CARGO_BIN_EXE_anchorage")).unwrap();
    let shim = fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tools/kubo-shim/kubo_shim.py"
    ))
    .unwrap();
    for needle in [
        "kubo_shim — a tiny Kubo-compatible HTTP RPC server",
        "import ctypes",
    ] {
        assert!(
            shim.contains(needle),
            "the check looks for a line of the shim: {needle}"
        );
        assert!(
            !binary.windows(needle.len()).any(|w| w == needle.as_bytes()),
            "the binary contains {needle:?}"
        );
    }
}
