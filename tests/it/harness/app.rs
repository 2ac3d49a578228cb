//! The app under test, served on a loopback port 0 against a test database.

use std::net::TcpListener;

use anchorage::{
    auth::keys,
    config::{self, Config, ConfigSource},
    server::{self, RunningServer},
    state::AppState,
};
use serde_json::{json, Value};
use tempfile::TempDir;

use super::TestDb;

/// Key id of the signing key every test config carries.
pub const TEST_KID: &str = "test-1";

/// A config for `db` and the Kubo at `kubo_rpc`, with a fresh signing key in `keys_dir`.
pub fn test_config(db: &TestDb, kubo_rpc: &str, keys_dir: &TempDir) -> Config {
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
    config::load(&ConfigSource {
        file: None,
        env: vec![],
        overrides,
    })
    .unwrap_or_else(|e| panic!("test config: {e}"))
    .config
}

/// A running server plus what tests need to talk to it.
pub struct TestApp {
    pub base: String,
    #[allow(dead_code)] // the API tests of later issues assert on DB state through it
    pub state: AppState,
    pub http: reqwest::Client,
    running: Option<RunningServer>,
    _keys: TempDir,
}

impl TestApp {
    /// Builds state for `db` + `kubo_rpc` and serves it on a free port.
    pub async fn spawn(db: &TestDb, kubo_rpc: &str) -> Self {
        let keys = TempDir::new().unwrap();
        let config = test_config(db, kubo_rpc, &keys);
        let state = server::build_state(config).await.unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let running = server::start(state.clone(), listener).unwrap();
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

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(running) = self.running.take() {
            if let Ok(rt) = tokio::runtime::Handle::try_current() {
                let handle = running.handle.clone();
                rt.spawn(async move { handle.stop(false).await });
            }
            running.task.abort();
        }
    }
}
