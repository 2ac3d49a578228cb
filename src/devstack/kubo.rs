//! A local IPFS node for `anchorage dev` and the tests: the real Kubo core (libkubo from
//! PyPI's `kubo-python`) behind a small Python server, `tools/kubo-shim/kubo_shim.py`,
//! that speaks the part of Kubo's `/api/v0` RPC anchorage uses. The script is a
//! development tool, not part of the product: it is found in the checkout the binary was
//! built from, or at `ANCHORAGE_DEV_SHIM`, and never compiled in.

use std::{
    fs,
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
    process::{Child, ChildStdin, Command, Stdio},
    sync::mpsc,
    time::Duration,
};

use serde::Deserialize;

use crate::error::{Error, Result};

/// Where the shim is in the checkout the binary was built from.
const CHECKOUT_SHIM: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tools/kubo-shim/kubo_shim.py");

/// Names the shim's path when the binary runs away from its checkout.
pub const SHIM_ENV: &str = "ANCHORAGE_DEV_SHIM";

/// The shim script: `ANCHORAGE_DEV_SHIM`, else the checkout's, else an error saying how
/// to get one.
pub fn shim_path() -> Result<PathBuf> {
    if let Some(path) = std::env::var_os(SHIM_ENV) {
        let path = PathBuf::from(path);
        return match path.is_file() {
            true => Ok(path),
            false => Err(Error::config(
                "ANCHORAGE_DEV_SHIM",
                format!("{} is not a file", path.display()),
            )),
        };
    }
    let checkout = PathBuf::from(CHECKOUT_SHIM);
    if checkout.is_file() {
        return Ok(checkout);
    }
    Err(Error::config(
        "ANCHORAGE_DEV_SHIM",
        "the local IPFS node needs tools/kubo-shim/kubo_shim.py from an anchorage checkout: \
         run `anchorage dev` from a checkout (packaging/quickstart.sh), set ANCHORAGE_DEV_SHIM to the script, \
         or point ipfs.rpc at a running Kubo",
    ))
}

/// How long a node may take to print its ready line.
const START_TIMEOUT: Duration = Duration::from_secs(90);

/// The line the shim prints once it serves.
#[derive(Debug, Clone, Deserialize)]
pub struct ShimReady {
    /// RPC endpoint, e.g. `http://127.0.0.1:41234`.
    pub api: String,
    pub peer_id: String,
    /// Swarm multiaddrs ending in `/p2p/<peer id>`.
    pub addrs: Vec<String>,
}

/// A running local IPFS node. Dropping it stops the node.
pub struct LocalKubo {
    pub ready: ShimReady,
    pub repo: PathBuf,
    child: Child,
    // Held open: the shim exits when its stdin closes, so it never outlives us.
    stdin: Option<ChildStdin>,
}

/// Ports to ask for (0 = any free one).
#[derive(Debug, Clone, Copy, Default)]
pub struct KuboPorts {
    pub api: u16,
    pub swarm: u16,
}

impl LocalKubo {
    /// Starts a node on `repo` (created on first use) and waits for it to serve.
    pub fn start(repo: &Path, ports: KuboPorts) -> Result<Self> {
        fs::create_dir_all(repo)
            .map_err(|e| Error::io(format!("creating {}", repo.display()), e))?;
        let script = shim_path()?;
        let log_path = repo.with_extension("log");
        let log = fs::File::create(&log_path)
            .map_err(|e| Error::io(format!("creating {}", log_path.display()), e))?;
        let mut child = Command::new(python())
            .arg(&script)
            .arg("--repo")
            .arg(repo)
            .args(["--api-port", &ports.api.to_string()])
            .args(["--swarm-port", &ports.swarm.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log))
            .spawn()
            .map_err(|e| {
                Error::io(
                    "starting the local IPFS node (python3 is needed; install it with `apt-get install python3`)",
                    e,
                )
            })?;
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().expect("stdout is piped");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let mut reader = BufReader::new(stdout);
            let _ = tx.send(reader.read_line(&mut line).map(|_| line));
            // Keep draining so the shim never blocks on a full pipe.
            let mut sink = String::new();
            while matches!(reader.read_line(&mut sink), Ok(n) if n > 0) {
                sink.clear();
            }
        });
        let failure = |why: String| {
            let log = fs::read_to_string(&log_path).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(12).collect();
            Error::Unavailable(format!(
                "the local IPFS node did not start: {why}\n{}\n(it needs PyPI's kubo-python: `pip install kubo-python`)",
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            ))
        };
        let line = match rx.recv_timeout(START_TIMEOUT) {
            Ok(Ok(line)) if !line.trim().is_empty() => line,
            Ok(Ok(_)) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(failure("it exited".into()));
            }
            Ok(Err(e)) => return Err(failure(e.to_string())),
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(failure(format!("no ready line within {START_TIMEOUT:?}")));
            }
        };
        let ready: ShimReady = serde_json::from_str(line.trim())
            .map_err(|e| failure(format!("unexpected ready line {line:?}: {e}")))?;
        Ok(Self {
            ready,
            repo: repo.to_path_buf(),
            child,
            stdin,
        })
    }

    /// The node's process id (tests freeze and thaw it to simulate a stalled peer).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The RPC endpoint.
    pub fn api(&self) -> &str {
        &self.ready.api
    }

    /// Stops the node and waits for it to exit.
    pub fn stop(&mut self) {
        // Closing stdin asks the shim to shut down cleanly; kill if it lingers.
        self.stdin.take();
        for _ in 0..100 {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for LocalKubo {
    fn drop(&mut self) {
        self.stop();
    }
}

fn python() -> String {
    std::env::var("KUBO_SHIM_PYTHON")
        .ok()
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| "python3".to_string())
}
