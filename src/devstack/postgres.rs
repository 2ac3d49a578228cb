//! A private PostgreSQL cluster in a directory of ours, for `anchorage dev` and the
//! test harness: found on the system, initialised once, started on a loopback port,
//! reused while running, recovered from a stale `postmaster.pid`, stopped on request.
//!
//! PostgreSQL refuses to run as root. When we are root we run it in a user namespace
//! where it has a non-root uid but still owns the directory — so the data directory can
//! stay inside the clone even when the clone sits under a 0700 `/root`.

use std::{
    fs,
    net::TcpListener,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use crate::error::{Error, Result};

/// A running (or just started) private cluster.
#[derive(Debug, Clone)]
pub struct PgCluster {
    pub data_dir: PathBuf,
    pub port: u16,
    /// Whether this process started it (and so should stop it).
    pub started_here: bool,
}

/// Extra server settings, e.g. `fsync=off` for tests.
#[derive(Debug, Clone, Default)]
pub struct StartOptions {
    pub preferred_port: Option<u16>,
    pub settings: Vec<(String, String)>,
}

impl PgCluster {
    /// Starts the cluster in `data_dir` (initialising it first if needed), or attaches to
    /// it if it is already running.
    pub fn ensure_started(data_dir: &Path, opts: &StartOptions) -> Result<Self> {
        let bin_dir = find_bin_dir()?;
        if let Some(parent) = data_dir.parent() {
            fs::create_dir_all(parent)
                .map_err(|e| Error::io(format!("creating {}", parent.display()), e))?;
        }
        if !data_dir.join("PG_VERSION").exists() {
            init(&bin_dir, data_dir)?;
        }
        if let Some(port) = running_port(data_dir) {
            return Ok(Self {
                data_dir: data_dir.to_path_buf(),
                port,
                started_here: false,
            });
        }
        // A postmaster.pid whose process is gone is left by a crash or a kill -9. The
        // dead postmaster's children notice and exit within moments; retry once for them.
        let stale = fs::remove_file(data_dir.join("postmaster.pid")).is_ok();
        let port = match opts.preferred_port {
            Some(p) if port_is_free(p) => p,
            _ => free_port()?,
        };
        if let Err(first) = start(&bin_dir, data_dir, port, opts) {
            if !stale {
                return Err(first);
            }
            std::thread::sleep(Duration::from_secs(3));
            start(&bin_dir, data_dir, port, opts)?;
        }
        Ok(Self {
            data_dir: data_dir.to_path_buf(),
            port,
            started_here: true,
        })
    }

    /// A DSN for `user` on database `db` (trust auth on loopback).
    pub fn dsn(&self, user: &str, db: &str) -> String {
        format!("postgres://{user}@127.0.0.1:{}/{db}", self.port)
    }

    /// Stops the cluster (fast shutdown: open sessions are cut) and waits for it.
    pub fn stop(&self) -> Result<()> {
        stop_dir(&self.data_dir)
    }
}

fn start(bin_dir: &Path, data_dir: &Path, port: u16, opts: &StartOptions) -> Result<()> {
    let mut server_opts =
        format!("-p {port} -c listen_addresses=127.0.0.1 -c unix_socket_directories=''");
    for (k, v) in &opts.settings {
        server_opts.push_str(&format!(" -c {k}={v}"));
    }
    let log = data_dir.with_extension("log");
    let out = as_postgres_user(&bin_dir.join("pg_ctl"))
        .arg("start")
        .arg("-w")
        .args(["-t", "120"])
        .arg("-D")
        .arg(data_dir)
        .arg("-l")
        .arg(&log)
        .arg("-o")
        .arg(&server_opts)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .map_err(|e| Error::io("running pg_ctl start", e))?;
    if out.status.success() {
        return Ok(());
    }
    let text = fs::read_to_string(&log).unwrap_or_default();
    let tail: Vec<&str> = text.lines().rev().take(15).collect();
    Err(Error::Unavailable(format!(
        "PostgreSQL did not start in {}: {}\n{}",
        data_dir.display(),
        String::from_utf8_lossy(&out.stderr).trim(),
        tail.into_iter().rev().collect::<Vec<_>>().join("\n")
    )))
}

/// Restarts the cluster running in `data_dir` with a fast shutdown (open sessions are
/// cut) and the options it was started with; waits until it accepts connections again.
pub fn restart_dir(data_dir: &Path) -> Result<()> {
    let out = as_postgres_user(&find_bin_dir()?.join("pg_ctl"))
        .args(["restart", "-m", "fast", "-w", "-t", "120", "-D"])
        .arg(data_dir)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .map_err(|e| Error::io("running pg_ctl restart", e))?;
    if out.status.success() {
        return Ok(());
    }
    Err(Error::Unavailable(format!(
        "PostgreSQL did not restart in {}: {}",
        data_dir.display(),
        String::from_utf8_lossy(&out.stderr).trim()
    )))
}

/// Stops whatever cluster runs in `data_dir`, if any.
pub fn stop_dir(data_dir: &Path) -> Result<()> {
    let Some(pid) = postmaster_pid(data_dir) else {
        return Ok(());
    };
    if !is_postgres_process(pid) {
        return Ok(());
    }
    // SAFETY: kill(2) with a pid we read from the cluster's own lock file.
    unsafe {
        libc::kill(pid, libc::SIGINT);
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while is_postgres_process(pid) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    if is_postgres_process(pid) {
        return Err(Error::Unavailable(format!(
            "PostgreSQL (pid {pid}) did not stop within 30s"
        )));
    }
    Ok(())
}

/// Finds PostgreSQL's server binaries: `initdb` on PATH, else the newest
/// `/usr/lib/postgresql/*/bin`.
pub fn find_bin_dir() -> Result<PathBuf> {
    let on_path = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default();
    if let Some(dir) = on_path
        .into_iter()
        .find(|d| d.join("initdb").is_file() && d.join("pg_ctl").is_file())
    {
        return Ok(dir);
    }
    let mut versions: Vec<(u32, PathBuf)> = fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let v = e.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").is_file().then_some((v, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin).ok_or_else(|| {
        Error::Unavailable(
            "PostgreSQL server binaries (initdb, pg_ctl) were not found on PATH or in /usr/lib/postgresql/*/bin; \
             install them (Debian/Ubuntu: `apt-get install postgresql`) or set postgres.dsn to an existing server"
                .into(),
        )
    })
}

fn init(bin_dir: &Path, data_dir: &Path) -> Result<()> {
    // A directory without PG_VERSION is an initdb that died half-way; start over.
    if data_dir.exists() {
        fs::remove_dir_all(data_dir)
            .map_err(|e| Error::io(format!("clearing {}", data_dir.display()), e))?;
    }
    let out = as_postgres_user(&bin_dir.join("initdb"))
        .arg("-D")
        .arg(data_dir)
        .args([
            "-A",
            "trust",
            "-U",
            "postgres",
            "-E",
            "UTF8",
            "--no-sync",
            "--no-instructions",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .map_err(|e| Error::io("running initdb", e))?;
    if !out.status.success() {
        return Err(Error::Unavailable(format!(
            "initdb failed for {}: {}",
            data_dir.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(())
}

/// A command for a PostgreSQL binary, run with a non-root uid when we are root.
fn as_postgres_user(program: &Path) -> Command {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        let mut cmd = Command::new("unshare");
        cmd.args(["--user", "--map-user=1000", "--map-group=1000", "--"])
            .arg(program);
        cmd
    } else {
        Command::new(program)
    }
}

fn postmaster_pid(data_dir: &Path) -> Option<i32> {
    let text = fs::read_to_string(data_dir.join("postmaster.pid")).ok()?;
    text.lines().next()?.trim().parse().ok()
}

/// The port of the cluster running in `data_dir`, if its postmaster is alive.
fn running_port(data_dir: &Path) -> Option<u16> {
    let text = fs::read_to_string(data_dir.join("postmaster.pid")).ok()?;
    let pid: i32 = text.lines().next()?.trim().parse().ok()?;
    if !is_postgres_process(pid) {
        return None;
    }
    text.lines().nth(3)?.trim().parse().ok()
}

fn is_postgres_process(pid: i32) -> bool {
    fs::read(format!("/proc/{pid}/cmdline"))
        .map(|c| String::from_utf8_lossy(&c).contains("postgres"))
        .unwrap_or(false)
}

fn port_is_free(port: u16) -> bool {
    TcpListener::bind(("127.0.0.1", port)).is_ok()
}

/// A loopback port nobody listens on right now.
pub fn free_port() -> Result<u16> {
    TcpListener::bind(("127.0.0.1", 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| Error::io("finding a free port", e))
}

/// Creates `owner` (owns the database, runs migrations) and `app` (the server's role:
/// no superuser, no BYPASSRLS, owns nothing) and database `db`, if missing.
pub async fn provision(superuser_dsn: &str, db: &str, owner: &str, app: &str) -> Result<()> {
    use crate::db::migrate::quote_ident;
    let (client, connection) = tokio_postgres::connect(superuser_dsn, tokio_postgres::NoTls)
        .await
        .map_err(|e| Error::Unavailable(format!("connecting to the private PostgreSQL: {e}")))?;
    let conn_task = tokio::spawn(connection);
    let sql_err =
        |e: tokio_postgres::Error| Error::Internal(format!("provisioning PostgreSQL: {e}"));
    for role in [owner, app] {
        let exists = client
            .query_opt("SELECT 1 FROM pg_roles WHERE rolname = $1", &[&role])
            .await
            .map_err(sql_err)?
            .is_some();
        if !exists {
            client
                .batch_execute(&format!(
                    "CREATE ROLE {} LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE",
                    quote_ident(role)
                ))
                .await
                .map_err(sql_err)?;
        }
    }
    let db_exists = client
        .query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&db])
        .await
        .map_err(sql_err)?
        .is_some();
    if !db_exists {
        client
            .batch_execute(&format!(
                "CREATE DATABASE {} OWNER {}",
                quote_ident(db),
                quote_ident(owner)
            ))
            .await
            .map_err(sql_err)?;
    }
    drop(client);
    let _ = conn_task.await;
    Ok(())
}
