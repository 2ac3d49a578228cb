//! A real OpenID Provider for login tests: npm's `oidc-provider` (certified) run by
//! `tests/oidc/provider.mjs` in a node child process, with its config, signing keys and
//! log in a private directory. Sign-in needs no browser: the authorization request names
//! the account in `login_hint`, and the provider logs it in and consents by itself.
//!
//! The issuer has a path with a trailing slash, like Authentik's:
//! `http://127.0.0.1:<port>/application/o/anchorage/`.

// Helpers for the login tests: not every test uses every one.
#![allow(dead_code)]

use std::{
    collections::BTreeMap,
    fs,
    io::{BufRead, BufReader},
    os::fd::AsRawFd,
    path::{Path, PathBuf},
    process::{Child, ChildStdin, Command, Stdio},
    sync::{mpsc, OnceLock},
    time::{Duration, Instant},
};

use reqwest::{
    header::{COOKIE, LOCATION, SET_COOKIE},
    redirect::Policy,
    Url,
};
use serde_json::{json, Value};
use tempfile::TempDir;

/// The issuer's path (trailing slash included), as Authentik names its providers.
pub const ISSUER_PATH: &str = "/application/o/anchorage/";

/// Node starts the provider in about a second; under a full parallel run (browsers,
/// several Kubo nodes and providers at once on two cores) it has taken over 20 s.
const START_TIMEOUT: Duration = Duration::from_secs(45);

/// A user the provider knows; `sub` is also what `login_hint` names.
#[derive(Debug, Clone)]
pub struct Account {
    pub sub: String,
    pub email: String,
    /// What the ID token's `email_verified` says; false unless [`Account::verified`].
    pub email_verified: bool,
    pub groups: Vec<String>,
}

impl Account {
    /// An account whose email the provider does not vouch for (`email_verified: false`,
    /// what recent Authentik releases send by default).
    pub fn new(sub: &str, email: &str, groups: &[&str]) -> Self {
        Self {
            sub: sub.into(),
            email: email.into(),
            email_verified: false,
            groups: groups.iter().map(|g| g.to_string()).collect(),
        }
    }

    /// The same account with `email_verified: true`.
    pub fn verified(mut self) -> Self {
        self.email_verified = true;
        self
    }
}

/// Where the provider sent the browser back to the client (not followed).
#[derive(Debug, Clone)]
pub struct Redirected {
    /// The whole redirect URL (the client's redirect URI with its parameters).
    pub url: String,
    pub code: Option<String>,
    pub state: Option<String>,
    pub error: Option<String>,
    pub error_description: Option<String>,
}

impl Redirected {
    /// Reads the authorization response's parameters from the query (or, failing that,
    /// the fragment) of `url`.
    pub fn parse(url: &Url) -> Self {
        let mut params: BTreeMap<String, String> = url.query_pairs().into_owned().collect();
        if params.is_empty() {
            if let Some(fragment) = url.fragment() {
                params = serde_urlencoded::from_str(fragment).unwrap_or_default();
            }
        }
        Self {
            url: url.to_string(),
            code: params.remove("code"),
            state: params.remove("state"),
            error: params.remove("error"),
            error_description: params.remove("error_description"),
        }
    }
}

/// A running provider; the node process is killed on drop (and exits by itself when the
/// test process dies, as its stdin closes).
pub struct OidcProvider {
    child: Child,
    stdin: Option<ChildStdin>,
    issuer: String,
    config: Value,
    redirect_uris: Vec<Url>,
    dir: TempDir,
}

impl OidcProvider {
    /// Starts a provider with these public clients (`client_id`, redirect URIs) and
    /// accounts, on a free port, with a freshly generated signing key.
    pub fn start(clients: &[(&str, Vec<String>)], accounts: &[Account]) -> Self {
        ensure_node_modules();
        let dir = TempDir::new().unwrap();
        let config = json!({
            "port": 0,
            "issuerPath": ISSUER_PATH,
            "clients": clients
                .iter()
                .map(|(id, uris)| json!({ "client_id": id, "redirect_uris": uris }))
                .collect::<Vec<_>>(),
            "accounts": accounts
                .iter()
                .map(|a| json!({
                    "sub": a.sub,
                    "email": a.email,
                    "email_verified": a.email_verified,
                    "groups": a.groups,
                }))
                .collect::<Vec<_>>(),
            "keysFile": dir.path().join("keys.json"),
            "exitOnStdinClose": true,
        });
        let redirect_uris = clients
            .iter()
            .flat_map(|(_, uris)| uris.iter())
            .map(|u| Url::parse(u).unwrap_or_else(|e| panic!("redirect URI {u}: {e}")))
            .collect();
        let launched = launch(dir.path(), &config);
        Self {
            child: launched.child,
            stdin: launched.stdin,
            issuer: launched.issuer,
            config,
            redirect_uris,
            dir,
        }
    }

    /// The issuer, with its trailing slash.
    pub fn issuer(&self) -> String {
        self.issuer.clone()
    }

    /// `<issuer>.well-known/openid-configuration`.
    pub fn discovery_url(&self) -> String {
        format!("{}.well-known/openid-configuration", self.issuer)
    }

    /// The port the provider listens on (kept across restarts).
    pub fn port(&self) -> u16 {
        Url::parse(&self.issuer).unwrap().port().unwrap()
    }

    /// The `kid` of the current signing key.
    pub fn kid(&self) -> String {
        let jwks: Value =
            serde_json::from_slice(&fs::read(self.dir.path().join("keys.json")).unwrap()).unwrap();
        jwks["keys"][0]["kid"].as_str().unwrap().to_string()
    }

    /// The provider's log (stderr) so far.
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("provider.log")).unwrap_or_default()
    }

    /// Restarts the provider on the same port (so the same issuer) with a new signing
    /// key: a new `kid`, the old key gone from the JWKS. Sessions and codes are lost too.
    pub async fn restart_with_new_keys(&mut self) {
        let old_kid = self.kid();
        self.stop();
        fs::remove_file(self.dir.path().join("keys.json")).unwrap();
        let mut config = self.config.clone();
        config["port"] = json!(self.port());
        let dir = self.dir.path().to_path_buf();
        let launched = tokio::task::spawn_blocking(move || launch(&dir, &config))
            .await
            .unwrap();
        assert_eq!(
            launched.issuer, self.issuer,
            "the issuer changed on restart"
        );
        self.child = launched.child;
        self.stdin = launched.stdin;
        assert_ne!(self.kid(), old_kid, "the signing key did not change");
    }

    /// Drives the authorization request `authorize_url` (the provider URL the server
    /// redirects the browser to) as a browser would, signing in as `login_hint` (an
    /// account's `sub`; anything else is refused with `error=access_denied`). Follows the
    /// provider's own redirects with a fresh cookie jar and stops at the first redirect to
    /// one of the clients' redirect URIs, without following it.
    pub async fn authorize(&self, authorize_url: &str, login_hint: &str) -> Redirected {
        let mut url = Url::parse(authorize_url)
            .unwrap_or_else(|e| panic!("authorize URL {authorize_url}: {e}"));
        let params: Vec<(String, String)> = url
            .query_pairs()
            .into_owned()
            .filter(|(k, _)| k != "login_hint")
            .collect();
        url.query_pairs_mut()
            .clear()
            .extend_pairs(params)
            .append_pair("login_hint", login_hint);
        let client = reqwest::Client::builder()
            .redirect(Policy::none())
            .build()
            .unwrap();
        let mut jar = CookieJar::default();
        for _ in 0..20 {
            let mut req = client.get(url.clone());
            if let Some(cookies) = jar.header() {
                req = req.header(COOKIE, cookies);
            }
            let resp = req
                .send()
                .await
                .unwrap_or_else(|e| panic!("GET {url}: {e}\n{}", self.log_tail()));
            jar.store(resp.headers());
            let status = resp.status();
            let location = resp
                .headers()
                .get(LOCATION)
                .map(|l| l.to_str().unwrap().to_string());
            let Some(location) = location.filter(|_| status.is_redirection()) else {
                let body = resp.text().await.unwrap_or_default();
                panic!(
                    "GET {url} answered {status}, not a redirect: {body}\n{}",
                    self.log_tail()
                );
            };
            let next = url.join(&location).unwrap();
            if self.is_redirect_uri(&next) {
                return Redirected::parse(&next);
            }
            assert_eq!(
                next.origin(),
                url.origin(),
                "the provider redirected to {next}, which is no client's redirect URI"
            );
            url = next;
        }
        panic!(
            "more than 20 redirects from {authorize_url}\n{}",
            self.log_tail()
        );
    }

    fn is_redirect_uri(&self, url: &Url) -> bool {
        let bare = |u: &Url| {
            let mut u = u.clone();
            u.set_query(None);
            u.set_fragment(None);
            u
        };
        let url = bare(url);
        self.redirect_uris.iter().any(|r| bare(r) == url)
    }

    fn log_tail(&self) -> String {
        tail(&self.log(), 40)
    }

    fn stop(&mut self) {
        self.stdin.take();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for OidcProvider {
    fn drop(&mut self) {
        self.stop();
    }
}

struct Launched {
    child: Child,
    stdin: Option<ChildStdin>,
    issuer: String,
}

/// Writes `config` into `dir` and starts the provider on it; waits for `READY`. A start
/// that hangs is tried once more: on a loaded two-core machine a Node process has, rarely,
/// printed nothing after its first warning for a whole minute.
fn launch(dir: &Path, config: &Value) -> Launched {
    match launch_once(dir, config) {
        Ok(launched) => launched,
        Err(first) => {
            eprintln!("the test OIDC provider did not start ({first}); trying once more");
            launch_once(dir, config).unwrap_or_else(|again| panic!("{again}"))
        }
    }
}

fn launch_once(dir: &Path, config: &Value) -> Result<Launched, String> {
    let config_path = dir.join("config.json");
    fs::write(&config_path, serde_json::to_vec_pretty(config).unwrap()).unwrap();
    let log_path = dir.join("provider.log");
    let log = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .unwrap();
    let mut child = Command::new("node")
        .arg(oidc_dir().join("provider.mjs"))
        .arg("--config")
        .arg(&config_path)
        .current_dir(oidc_dir())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::from(log))
        .spawn()
        .unwrap_or_else(|e| {
            panic!("starting node (Node.js 20+ is needed: bash packaging/prereqs.sh): {e}")
        });
    let stdin = child.stdin.take();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        // Every line until EOF, so the provider never blocks on a full pipe.
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            let _ = tx.send(line);
        }
    });
    let started = Instant::now();
    let fail = |child: &mut Child, why: String| -> String {
        let _ = child.kill();
        let _ = child.wait();
        let log = fs::read_to_string(&log_path).unwrap_or_default();
        format!(
            "the test OIDC provider did not start: {why}\n--- provider stderr ---\n{}",
            tail(&log, 60)
        )
    };
    loop {
        match rx.recv_timeout(Duration::from_millis(100)) {
            Ok(line) => {
                if let Some(issuer) = line.strip_prefix("READY ") {
                    return Ok(Launched {
                        child,
                        stdin,
                        issuer: issuer.trim().to_string(),
                    });
                }
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                let status = child.wait().ok();
                return Err(fail(
                    &mut child,
                    format!("it closed stdout and exited ({status:?})"),
                ));
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {
                if let Ok(Some(status)) = child.try_wait() {
                    return Err(fail(&mut child, format!("it exited ({status})")));
                }
                if started.elapsed() > START_TIMEOUT {
                    return Err(fail(
                        &mut child,
                        format!("no READY line within {START_TIMEOUT:?}"),
                    ));
                }
            }
        }
    }
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

fn oidc_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/oidc")
}

/// `npm ci` in `tests/oidc` unless its `node_modules` is up to date with the lock file
/// (`tests/run.sh` normally did it already); once per process, and under a file lock so
/// concurrent test processes don't install over each other.
fn ensure_node_modules() {
    static DONE: OnceLock<()> = OnceLock::new();
    DONE.get_or_init(|| {
        let dir = oidc_dir();
        if node_modules_current(&dir) {
            return;
        }
        let lock_dir = Path::new(env!("CARGO_TARGET_TMPDIR"));
        fs::create_dir_all(lock_dir).unwrap();
        let _lock = FileLock::acquire(&lock_dir.join("anchorage-test-oidc-npm.lock"));
        if node_modules_current(&dir) {
            return;
        }
        let out = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund", "--prefix"])
            .arg(&dir)
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

/// Cookies by name, for one host (every request of an authorization goes to the provider).
#[derive(Default)]
struct CookieJar(BTreeMap<String, String>);

impl CookieJar {
    fn store(&mut self, headers: &reqwest::header::HeaderMap) {
        for value in headers.get_all(SET_COOKIE) {
            let Ok(value) = value.to_str() else { continue };
            let mut parts = value.split(';').map(str::trim);
            let Some((name, val)) = parts.next().and_then(|nv| nv.split_once('=')) else {
                continue;
            };
            let expired = parts.any(|attr| {
                let attr = attr.to_ascii_lowercase();
                attr == "max-age=0" || (attr.starts_with("expires=") && attr.contains("1970"))
            });
            if expired || val.is_empty() {
                self.0.remove(name);
            } else {
                self.0.insert(name.to_string(), val.to_string());
            }
        }
    }

    fn header(&self) -> Option<String> {
        (!self.0.is_empty()).then(|| {
            self.0
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join("; ")
        })
    }
}

/// An exclusive `flock` held until dropped.
struct FileLock(fs::File);

impl FileLock {
    fn acquire(path: &Path) -> Self {
        let file = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)
            .unwrap();
        // SAFETY: flock on a descriptor we own.
        let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) };
        assert_eq!(rc, 0, "flock {}", path.display());
        Self(file)
    }
}

impl Drop for FileLock {
    fn drop(&mut self) {
        // SAFETY: unlocking the descriptor we locked.
        unsafe { libc::flock(self.0.as_raw_fd(), libc::LOCK_UN) };
    }
}
