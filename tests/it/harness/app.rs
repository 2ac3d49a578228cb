//! The app under test, served on a loopback port 0 against a test database.

use std::net::TcpListener;

use std::time::Duration;

use anchorage::{
    auth::{keys, MintRequest, Role, Scope},
    config::{self, Config, ConfigSource},
    db::system_tx,
    ids::OrgId,
    server::{self, RunningServer, Work},
    state::AppState,
    tenancy::orgs,
};
use futures_util::FutureExt;
use serde_json::{json, Value};
use tempfile::TempDir;

use super::TestDb;

/// Key id of the signing key every test config carries.
pub const TEST_KID: &str = "test-1";

/// A config for `db` and the Kubo at `kubo_rpc`, with a fresh signing key in `keys_dir`.
pub fn test_config(db: &TestDb, kubo_rpc: &str, keys_dir: &TempDir) -> Config {
    test_config_with(db, kubo_rpc, keys_dir, vec![])
}

/// [`test_config`] plus `extra` overrides (dotted key, value).
pub fn test_config_with(
    db: &TestDb,
    kubo_rpc: &str,
    keys_dir: &TempDir,
    extra: Vec<(String, Value)>,
) -> Config {
    let key_path = keys_dir.path().join(TEST_KID);
    if !key_path.exists() {
        keys::write_new_key_file(&key_path).unwrap();
    }
    let overrides: Vec<(String, Value)> = vec![
        ("postgres.dsn".into(), json!(db.app_dsn())),
        ("postgres.migrationDSN".into(), json!(db.owner_dsn())),
        ("ipfs.rpc".into(), json!(kubo_rpc)),
        (
            "auth.apiToken.signingKeys".into(),
            json!([{ "id": TEST_KID, "path": key_path, "primary": true }]),
        ),
        ("server.listen".into(), json!("127.0.0.1:0")),
        ("server.shutdownTimeout".into(), json!("5s")),
    ];
    let overrides = overrides.into_iter().chain(extra).collect();
    config::load(&ConfigSource {
        file: None,
        env: vec![],
        overrides,
    })
    .unwrap_or_else(|e| panic!("test config: {e}"))
    .config
}

/// A loopback port bound ahead of the app ([`TestApp::spawn_at`]), so the app's URL is
/// known before its config (and, say, the identity provider that must name it) exists.
pub struct ReservedPort {
    listener: TcpListener,
    /// `http://127.0.0.1:<port>`.
    pub base: String,
}

impl ReservedPort {
    pub fn new() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        Self { listener, base }
    }
}

/// A running server plus what tests need to talk to it.
pub struct TestApp {
    pub base: String,
    pub state: AppState,
    pub http: reqwest::Client,
    running: Option<RunningServer>,
    _keys: TempDir,
}

impl TestApp {
    /// Builds state for `db` + `kubo_rpc` and serves it on a free port.
    pub async fn spawn(db: &TestDb, kubo_rpc: &str) -> Self {
        Self::spawn_with(db, kubo_rpc, vec![]).await
    }

    /// Like [`TestApp::spawn`] with extra config overrides.
    pub async fn spawn_with(db: &TestDb, kubo_rpc: &str, extra: Vec<(String, Value)>) -> Self {
        Self::spawn_full(db, kubo_rpc, extra, Work::All).await
    }

    /// Serves the API without pin workers or the sweeper, so placements never move.
    pub async fn spawn_api_only(db: &TestDb, kubo_rpc: &str, extra: Vec<(String, Value)>) -> Self {
        Self::spawn_full(db, kubo_rpc, extra, Work::ApiOnly).await
    }

    async fn spawn_full(
        db: &TestDb,
        kubo_rpc: &str,
        extra: Vec<(String, Value)>,
        work: Work,
    ) -> Self {
        let keys = TempDir::new().unwrap();
        let config = test_config_with(db, kubo_rpc, &keys, extra);
        let state = server::build_state(config).await.unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let running = server::start(state.clone(), listener, work).unwrap();
        Self {
            base: format!("http://{}", running.addr),
            state,
            http: reqwest::Client::new(),
            running: Some(running),
            _keys: keys,
        }
    }

    /// Serves on `port` (bound before the config was built, so its URL could go into
    /// it, e.g. as an OIDC redirect URI) with `server.publicURL` = its base URL, what a
    /// browser talks to. `extra` comes after (it may override `server.publicURL`).
    pub async fn spawn_at(
        port: ReservedPort,
        db: &TestDb,
        kubo_rpc: &str,
        extra: Vec<(String, Value)>,
        work: Work,
    ) -> Self {
        let keys = TempDir::new().unwrap();
        let mut overrides = vec![("server.publicURL".to_string(), json!(port.base))];
        overrides.extend(extra);
        let config = test_config_with(db, kubo_rpc, &keys, overrides);
        let state = server::build_state(config).await.unwrap();
        let running = server::start(state.clone(), port.listener, work).unwrap();
        Self {
            base: format!("http://{}", running.addr),
            state,
            http: reqwest::Client::new(),
            running: Some(running),
            _keys: keys,
        }
    }

    /// `base` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// GET `path`, returning status and JSON body (Null when the body is not JSON).
    pub async fn get_json(&self, path: &str) -> (u16, Value) {
        let resp = self.http.get(self.url(path)).send().await.unwrap();
        let status = resp.status().as_u16();
        let body = resp.json::<Value>().await.unwrap_or(Value::Null);
        (status, body)
    }
}

impl TestApp {
    /// Creates an org (as the CLI would) and returns its id.
    pub async fn create_org(&self, name: &str) -> OrgId {
        let name = name.to_string();
        system_tx(&self.state.db, |conn| {
            async move { Ok(orgs::store::create(conn, &name).await?.id) }.boxed()
        })
        .await
        .unwrap()
    }

    /// Mints a token with the app's primary key.
    pub fn token(&self, org: Option<OrgId>, role: Role, scopes: Option<Vec<Scope>>) -> String {
        self.state
            .tokens
            .mint(MintRequest {
                sub: "usr_test".into(),
                org,
                role,
                scopes,
                ttl: Duration::from_secs(3600),
            })
            .unwrap()
            .jwt
    }

    /// The secret bytes of the app's signing key (to forge edge-case tokens).
    pub fn key_secret(&self) -> Vec<u8> {
        let path = &self.state.config.auth.api_token.signing_keys[0].path;
        let raw = std::fs::read(path).unwrap();
        String::from_utf8(raw)
            .unwrap()
            .trim_end()
            .as_bytes()
            .to_vec()
    }

    /// A request builder with `token` as bearer.
    pub fn req(&self, method: reqwest::Method, path: &str, token: &str) -> reqwest::RequestBuilder {
        self.http.request(method, self.url(path)).bearer_auth(token)
    }
}

/// Sends `req`, returning the status and the JSON body (Null when empty or not JSON).
pub async fn send(req: reqwest::RequestBuilder) -> (u16, Value) {
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(mut running) = self.running.take() {
            if let Ok(rt) = tokio::runtime::Handle::try_current() {
                let handle = running.handle.clone();
                rt.spawn(async move { handle.stop(false).await });
            }
            running.abort();
        }
    }
}

/// A key file as the seed's deploy guide makes it: `openssl rand -base64 48 > path`.
pub fn seed_key_file(path: &std::path::Path) {
    use base64::Engine;
    use rand::RngCore;
    let mut bytes = [0u8; 48];
    rand::rng().fill_bytes(&mut bytes);
    let text = base64::engine::general_purpose::STANDARD.encode(bytes);
    std::fs::write(path, format!("{text}\n")).unwrap();
}
