//! End-to-end browser scenarios: a Node module `tests/e2e/<name>.mjs` drives Debian's
//! headless Chromium (`/usr/bin/chromium`) through npm `playwright-core` (installed in
//! `tests/e2e/node_modules` by `tests/run.sh`, or here on first use; it never downloads a
//! browser of its own). See `tests/e2e/lib.mjs` for the scenario side.
//!
//! ```ignore
//! let mut run = Scenario::new("console_member", &app.base)
//!     .env("LOGIN_HINT", "alice")
//!     .start()
//!     .await;
//! let minted = run.result().await; // the scenario's next `RESULT {json}` line
//! // ... check the database, call the API ...
//! run.reply(json!({})).await; // the scenario's `await fromTest()` resolves
//! let outcome = run.finish().await; // exit 0, or panic with its output
//! ```
//!
//! The scenario gets `BASE_URL`, `SCENARIO`, `SCREENSHOT_DIR`
//! (`<target>/e2e-screenshots`, not committed) and `EXIT_ON_STDIN_CLOSE=1`, plus what the
//! test adds with [`Scenario::env`]. Its stdout protocol: `STEP <what>`, `RESULT <json>`,
//! `SCREENSHOT <path>`, `WARN <what>`, `FAIL <why>`. A failed expectation (non-zero
//! exit), a scenario that runs past its timeout (120 s unless [`Scenario::timeout`]) or
//! one that exits while the test waits for a result panics with its steps, its stderr
//! (the page's console and failed requests go there too) and the screenshot it took of
//! the page at failure.

// A fixture library: not every helper is used by every test.
#![allow(dead_code)]

use std::{
    convert::Infallible,
    fs,
    os::fd::AsRawFd,
    path::{Path, PathBuf},
    process::Stdio,
    sync::{Arc, Mutex, OnceLock},
    time::{Duration, Instant},
};

use serde_json::Value;
use tokio::{
    io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader},
    process::{Child, ChildStdin, Command},
    sync::mpsc,
};

/// How long a scenario may run unless [`Scenario::timeout`] says otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);

/// The Chromium the scenarios drive (Debian's `chromium` package).
pub const CHROMIUM: &str = "/usr/bin/chromium";

/// `<target dir>/e2e-screenshots`, where every scenario writes its screenshots
/// (`<scenario>-<name>.png`).
pub fn screenshot_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("CARGO_TARGET_TMPDIR is <target>/tmp")
        .join("e2e-screenshots")
}

fn e2e_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/e2e")
}

/// A scenario to run: `tests/e2e/<name>.mjs` against the app at `base_url`.
pub struct Scenario {
    name: String,
    env: Vec<(String, String)>,
    timeout: Duration,
}

impl Scenario {
    /// `tests/e2e/<name>.mjs`, with `BASE_URL` = `base_url` (e.g. `http://127.0.0.1:1234`).
    pub fn new(name: &str, base_url: &str) -> Self {
        Self {
            name: name.to_string(),
            env: vec![("BASE_URL".into(), base_url.trim_end_matches('/').into())],
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// One more environment variable for the scenario.
    pub fn env(mut self, key: &str, value: impl ToString) -> Self {
        self.env.push((key.to_string(), value.to_string()));
        self
    }

    /// How long the whole scenario may take (from spawning node to its exit).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Runs it to the end without talking to it: [`Scenario::start`] then
    /// [`Running::finish`].
    pub async fn run(self) -> Outcome {
        self.start().await.finish().await
    }

    /// Spawns `node tests/e2e/<name>.mjs` (installing `tests/e2e`'s packages first if
    /// needed) in a process group of its own, so that the browser goes with it.
    pub async fn start(self) -> Running {
        tokio::task::spawn_blocking(ensure_node_modules)
            .await
            .unwrap();
        assert!(
            Path::new(CHROMIUM).exists() || std::env::var_os("CHROMIUM").is_some(),
            "{CHROMIUM} is missing (Debian's chromium: bash packaging/prereqs.sh)"
        );
        let script = e2e_dir().join(format!("{}.mjs", self.name));
        assert!(script.exists(), "no scenario {}", script.display());
        let shots = screenshot_dir();
        fs::create_dir_all(&shots).unwrap();

        let mut cmd = Command::new("node");
        cmd.arg(&script)
            .current_dir(e2e_dir())
            .env("SCENARIO", self.name.replace('_', "-"))
            .env("SCREENSHOT_DIR", &shots)
            .env("EXIT_ON_STDIN_CLOSE", "1")
            .env("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true);
        let started = Instant::now();
        let mut child = cmd.spawn().unwrap_or_else(|e| {
            panic!("starting node (Node.js 20+ is needed: bash packaging/prereqs.sh): {e}")
        });
        let pid = child.id().expect("a fresh child has a pid") as i32;

        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut reader = BufReader::new(stdout).lines();
            while let Ok(Some(line)) = reader.next_line().await {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let stderr_buf = Arc::new(Mutex::new(String::new()));
        let mut stderr = child.stderr.take().unwrap();
        let sink = stderr_buf.clone();
        let stderr_task = tokio::spawn(async move {
            let mut chunk = [0u8; 8192];
            while let Ok(n) = stderr.read(&mut chunk).await {
                if n == 0 {
                    break;
                }
                sink.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&chunk[..n]));
            }
        });

        Running {
            stdin: child.stdin.take(),
            child,
            pid,
            lines,
            stderr: stderr_buf,
            stderr_task: Some(stderr_task),
            deadline: started + self.timeout,
            timeout: self.timeout,
            name: self.name,
            started,
            transcript: Vec::new(),
            results: Vec::new(),
            unread: 0,
            screenshots: Vec::new(),
            warnings: Vec::new(),
            failure: None,
            browser_up: None,
            exited: false,
        }
    }
}

/// A scenario in progress.
pub struct Running {
    name: String,
    child: Child,
    pid: i32,
    stdin: Option<ChildStdin>,
    lines: mpsc::UnboundedReceiver<String>,
    stderr: Arc<Mutex<String>>,
    stderr_task: Option<tokio::task::JoinHandle<()>>,
    started: Instant,
    deadline: Instant,
    timeout: Duration,
    /// Every stdout line so far, with the time it came.
    transcript: Vec<String>,
    results: Vec<Value>,
    /// Results not yet handed out by [`Running::result`] (at the end of `results`).
    unread: usize,
    screenshots: Vec<PathBuf>,
    warnings: Vec<String>,
    failure: Option<String>,
    /// When the first `STEP` came: node and Chromium are up.
    browser_up: Option<Duration>,
    exited: bool,
}

/// What a finished scenario reported.
#[derive(Debug)]
pub struct Outcome {
    /// Every `RESULT` value, in order.
    pub results: Vec<Value>,
    pub screenshots: Vec<PathBuf>,
    pub warnings: Vec<String>,
    /// Its stdout lines, each with the elapsed time it came at.
    pub transcript: Vec<String>,
    /// From spawning node to the first `STEP` (the browser is up).
    pub browser_up: Duration,
    /// From spawning node to its exit.
    pub elapsed: Duration,
}

impl Outcome {
    /// The last result that has `key`; panics when none has.
    pub fn get(&self, key: &str) -> &Value {
        self.results
            .iter()
            .rev()
            .find(|r| r.get(key).is_some())
            .map(|r| &r[key])
            .unwrap_or_else(|| panic!("no RESULT with {key:?}: {:?}", self.results))
    }
}

impl Running {
    /// The next `RESULT` value the scenario prints (in order; values printed before this
    /// call are handed out first).
    pub async fn result(&mut self) -> Value {
        loop {
            if self.unread > 0 {
                let v = self.results[self.results.len() - self.unread].clone();
                self.unread -= 1;
                return v;
            }
            match self.next_line().await {
                Some(()) => {}
                None => {
                    let status = self.wait_exit().await;
                    let why = format!("it exited ({status}) while the test waited for a RESULT");
                    match self.fail(&why).await {}
                }
            }
        }
    }

    /// Sends `value` (one JSON line) to the scenario's `fromTest()`.
    pub async fn reply(&mut self, value: Value) {
        let line = format!("{value}\n");
        let stdin = self.stdin.as_mut().expect("stdin is open");
        let written = match stdin.write_all(line.as_bytes()).await {
            Ok(()) => stdin.flush().await,
            Err(e) => Err(e),
        };
        if let Err(e) = written {
            match self.fail(&format!("writing to its stdin: {e}")).await {}
        }
    }

    /// Reads the rest of its output, waits for it to exit, and returns what it reported;
    /// panics unless it exited 0.
    pub async fn finish(mut self) -> Outcome {
        while self.next_line().await.is_some() {}
        let status = self.wait_exit().await;
        if !status.success() {
            match self.fail(&format!("it exited {status}")).await {}
        }
        let outcome = Outcome {
            results: std::mem::take(&mut self.results),
            screenshots: std::mem::take(&mut self.screenshots),
            warnings: std::mem::take(&mut self.warnings),
            transcript: std::mem::take(&mut self.transcript),
            browser_up: self.browser_up.unwrap_or_default(),
            elapsed: self.started.elapsed(),
        };
        println!(
            "scenario {}: browser up after {:?}, done after {:?}\n{}",
            self.name,
            outcome.browser_up,
            outcome.elapsed,
            outcome.transcript.join("\n")
        );
        outcome
    }

    /// Reads and records one stdout line; `None` at EOF. Fails the test at the deadline.
    async fn next_line(&mut self) -> Option<()> {
        let left = self.deadline.saturating_duration_since(Instant::now());
        let line = match tokio::time::timeout(left, self.lines.recv()).await {
            Ok(Some(line)) => line,
            Ok(None) => return None,
            Err(_) => {
                let why = format!("it did not finish within {:?}", self.timeout);
                match self.fail(&why).await {}
            }
        };
        let at = self.started.elapsed();
        self.transcript
            .push(format!("[{:>6.2}s] {line}", at.as_secs_f64()));
        let (kind, rest) = line.split_once(' ').unwrap_or((line.as_str(), ""));
        match kind {
            "STEP" => {
                self.browser_up.get_or_insert(at);
            }
            "RESULT" => match serde_json::from_str::<Value>(rest) {
                Ok(v) => {
                    self.results.push(v);
                    self.unread += 1;
                }
                Err(e) => {
                    let why = format!("a RESULT line that is not JSON ({e}): {rest}");
                    match self.fail(&why).await {}
                }
            },
            "SCREENSHOT" => self.screenshots.push(PathBuf::from(rest)),
            "WARN" => self.warnings.push(rest.to_string()),
            "FAIL" => self.failure = Some(rest.to_string()),
            _ => {}
        }
        Some(())
    }

    async fn wait_exit(&mut self) -> std::process::ExitStatus {
        let left = self.deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, self.child.wait()).await {
            Ok(Ok(status)) => {
                self.exited = true;
                self.kill_group();
                status
            }
            Ok(Err(e)) => panic!("waiting for scenario {}: {e}", self.name),
            Err(_) => {
                let why = format!("it did not exit within {:?}", self.timeout);
                match self.fail(&why).await {}
            }
        }
    }

    /// SIGKILLs the scenario's process group (node and the browser it started).
    fn kill_group(&self) {
        // SAFETY: signalling the process group we created for this child (its pid).
        unsafe { libc::killpg(self.pid, libc::SIGKILL) };
    }

    /// Stops the scenario and panics with everything it said.
    async fn fail(&mut self, why: &str) -> Infallible {
        if !self.exited {
            self.kill_group();
            let _ = tokio::time::timeout(Duration::from_secs(5), self.child.wait()).await;
            self.exited = true;
        }
        // The rest of stdout, and stderr to its end.
        while let Ok(Some(line)) =
            tokio::time::timeout(Duration::from_millis(500), self.lines.recv()).await
        {
            self.transcript.push(format!("[  end ] {line}"));
            if let Some(f) = line.strip_prefix("FAIL ") {
                self.failure = Some(f.to_string());
            }
        }
        if let Some(task) = self.stderr_task.take() {
            let _ = tokio::time::timeout(Duration::from_secs(2), task).await;
        }
        let stderr = self.stderr.lock().unwrap().clone();
        let lines: Vec<&str> = stderr.lines().collect();
        let tail = lines[lines.len().saturating_sub(150)..].join("\n");
        panic!(
            "browser scenario {} failed after {:?}: {why}\n\
             failed expectation: {}\n\
             screenshots: {}\n\
             --- stdout ---\n{}\n\
             --- stderr (last {} lines) ---\n{tail}",
            self.name,
            self.started.elapsed(),
            self.failure.as_deref().unwrap_or("(none reported)"),
            if self.screenshots.is_empty() {
                "(none)".to_string()
            } else {
                self.screenshots
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            },
            self.transcript.join("\n"),
            lines.len().min(150),
        );
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if !self.exited {
            self.kill_group();
        }
    }
}

/// `npm ci` in `tests/e2e` unless its `node_modules` is up to date with the lock file
/// (`tests/run.sh` normally did it already); once per process, under a file lock so that
/// concurrent test processes don't install over each other. Never downloads a browser.
fn ensure_node_modules() {
    static DONE: OnceLock<()> = OnceLock::new();
    DONE.get_or_init(|| {
        let dir = e2e_dir();
        if node_modules_current(&dir) {
            return;
        }
        let lock_dir = Path::new(env!("CARGO_TARGET_TMPDIR"));
        fs::create_dir_all(lock_dir).unwrap();
        let lock = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(lock_dir.join("anchorage-test-e2e-npm.lock"))
            .unwrap();
        // SAFETY: flock on a descriptor we own; released when `lock` closes.
        let rc = unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX) };
        assert_eq!(rc, 0, "flock");
        if node_modules_current(&dir) {
            return;
        }
        let out = std::process::Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund", "--prefix"])
            .arg(&dir)
            .env("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| {
                panic!("running npm (npm is needed: bash packaging/prereqs.sh): {e}")
            });
        assert!(
            out.status.success(),
            "npm ci --prefix {} failed ({}):\n{}\n{}",
            dir.display(),
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        drop(lock);
    });
}

/// `node_modules` is there and no older than `package-lock.json` (npm writes
/// `node_modules/.package-lock.json` last when it installs).
fn node_modules_current(dir: &Path) -> bool {
    let mtime = |p: PathBuf| fs::metadata(p).and_then(|m| m.modified()).ok();
    match (
        mtime(dir.join("node_modules/.package-lock.json")),
        mtime(dir.join("package-lock.json")),
    ) {
        (Some(installed), Some(lock)) => installed >= lock,
        _ => false,
    }
}
