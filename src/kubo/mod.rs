//! The one client for Kubo's HTTP RPC API (`/api/v0/...`). Every call is a POST with
//! query arguments, as Kubo requires, and has its own timeout.

use std::time::Duration;

use serde::Deserialize;

use crate::error::{Error, Result};

/// Kubo's answer to `id`.
#[derive(Debug, Clone, Deserialize)]
pub struct KuboIdentity {
    #[serde(rename = "ID")]
    pub id: String,
    #[serde(rename = "Addresses", default)]
    pub addresses: Vec<String>,
    #[serde(rename = "AgentVersion", default)]
    pub agent_version: String,
}

/// Kubo's error body.
#[derive(Debug, Deserialize)]
struct KuboErrorBody {
    #[serde(rename = "Message")]
    message: String,
}

/// A client for one Kubo daemon.
#[derive(Clone)]
pub struct KuboClient {
    base: String,
    http: reqwest::Client,
    timeout: Duration,
}

impl KuboClient {
    /// Builds a client for the RPC endpoint `rpc` (e.g. `http://127.0.0.1:5001`).
    pub fn new(rpc: &str, timeout: Duration) -> Result<Self> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5).min(timeout))
            .build()
            .map_err(|e| Error::Kubo(format!("building HTTP client: {e}")))?;
        Ok(Self {
            base: rpc.trim_end_matches('/').to_string(),
            http,
            timeout,
        })
    }

    /// The RPC endpoint this client talks to.
    pub fn endpoint(&self) -> &str {
        &self.base
    }

    /// `POST /api/v0/id`: the daemon's peer id and addresses.
    pub async fn id(&self) -> Result<KuboIdentity> {
        self.call("id", &[], self.timeout).await
    }

    /// Posts `path` with `args` and decodes a JSON answer, turning Kubo's error body into
    /// a message.
    async fn call<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        args: &[(&str, &str)],
        timeout: Duration,
    ) -> Result<T> {
        let url = format!("{}/api/v0/{path}", self.base);
        let response = self
            .http
            .post(&url)
            .query(args)
            .timeout(timeout)
            .send()
            .await
            .map_err(|e| Error::Kubo(format!("{path}: Kubo unreachable at {}: {e}", self.base)))?;
        let status = response.status();
        if !status.is_success() {
            let body = response.text().await.unwrap_or_default();
            let message = serde_json::from_str::<KuboErrorBody>(&body)
                .map(|b| b.message)
                .unwrap_or(body);
            return Err(Error::Kubo(format!(
                "{path}: Kubo answered {status}: {message}"
            )));
        }
        response
            .json::<T>()
            .await
            .map_err(|e| Error::Kubo(format!("{path}: unexpected answer: {e}")))
    }
}
