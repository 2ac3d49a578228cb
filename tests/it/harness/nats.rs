//! A real `nats-server` with JetStream for the NATS backend's tests, started and stopped
//! by PID: SIGKILL it, start it again on the same port with the same store, or with an
//! empty store (NATS lost its state).

// A fixture library: not every helper is used by every test.
#![allow(dead_code)]

use std::path::PathBuf;

use anchorage::devstack::{nats::LocalNats, postgres::free_port};
use tempfile::TempDir;

/// One server on a fixed loopback port, its store in a directory the harness keeps.
pub struct NatsServer {
    dir: TempDir,
    port: u16,
    running: Option<LocalNats>,
    stores: usize,
}

impl NatsServer {
    pub fn start() -> Self {
        let dir = TempDir::new().unwrap();
        let port = free_port().unwrap();
        let mut server = Self {
            dir,
            port,
            running: None,
            stores: 0,
        };
        server.launch();
        server
    }

    fn store(&self) -> PathBuf {
        self.dir.path().join(format!("store-{}", self.stores))
    }

    fn launch(&mut self) {
        assert!(self.running.is_none(), "nats-server is running");
        let server = LocalNats::start(&self.store(), self.port)
            .unwrap_or_else(|e| panic!("starting nats-server: {e}"));
        self.running = Some(server);
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
        self.running.as_ref().expect("running").pid()
    }

    /// SIGKILL.
    pub fn kill(&mut self) {
        if let Some(mut server) = self.running.take() {
            server.kill();
        }
    }

    /// Starts it again with the store it had.
    pub fn restart(&mut self) {
        self.kill();
        self.launch();
    }

    /// Starts it again with an empty store: every stream, consumer and key is gone.
    pub fn restart_empty(&mut self) {
        self.kill();
        self.stores += 1;
        self.launch();
    }
}
