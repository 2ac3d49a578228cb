//! A real `nats-server` with JetStream for the NATS backend's tests, started and stopped
//! by PID: SIGKILL it, start it again on the same port with the same store, or with an
//! empty store (NATS lost its state).

// A fixture library: not every helper is used by every test.
#![allow(dead_code)]

use std::{path::PathBuf, sync::Mutex};

use anchorage::devstack::{nats::LocalNats, postgres::free_port};
use tempfile::TempDir;

/// One server on a fixed loopback port, its store in a directory the harness keeps.
pub struct NatsServer {
    dir: TempDir,
    port: u16,
    /// The running server and how many stores it has had (behind a lock, so a test can
    /// kill it through a shared reference while clients are busy).
    state: Mutex<(Option<LocalNats>, usize)>,
}

impl NatsServer {
    pub fn start() -> Self {
        let dir = TempDir::new().unwrap();
        let port = free_port().unwrap();
        let server = Self {
            dir,
            port,
            state: Mutex::new((None, 0)),
        };
        server.launch();
        server
    }

    fn store(&self, n: usize) -> PathBuf {
        self.dir.path().join(format!("store-{n}"))
    }

    fn launch(&self) {
        let mut state = self.state.lock().unwrap();
        assert!(state.0.is_none(), "nats-server is running");
        let server = LocalNats::start(&self.store(state.1), self.port)
            .unwrap_or_else(|e| panic!("starting nats-server: {e}"));
        state.0 = Some(server);
    }

    /// `nats://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The server's pid (it must be running).
    pub fn pid(&self) -> u32 {
        self.state
            .lock()
            .unwrap()
            .0
            .as_ref()
            .expect("running")
            .pid()
    }

    /// SIGKILL.
    pub fn kill(&self) {
        if let Some(mut server) = self.state.lock().unwrap().0.take() {
            server.kill();
        }
    }

    /// Starts it again with the store it had.
    pub fn restart(&self) {
        self.kill();
        self.launch();
    }

    /// Starts it again with an empty store: every stream, consumer and key is gone.
    pub fn restart_empty(&self) {
        self.kill();
        self.state.lock().unwrap().1 += 1;
        self.launch();
    }
}
