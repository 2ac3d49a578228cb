//! [`Kubo`] over HTTP with reqwest.

use std::time::Duration;

use futures_util::{future::BoxFuture, FutureExt, StreamExt};
use serde::{de::DeserializeOwned, Deserialize};
use tokio::time::Instant;

use super::{Kubo, KuboError, KuboIdentity, PinAdded, ProgressFn};
use crate::error::{Error, Result};

/// Kubo's error body.
#[derive(Debug, Deserialize)]
struct ErrorBody {
    #[serde(rename = "Message")]
    message: String,
}

/// One line of `pin/add`'s stream.
#[derive(Debug, Deserialize)]
struct PinAddLine {
    #[serde(rename = "Progress")]
    progress: Option<u64>,
    #[serde(rename = "Pins")]
    pins: Option<Vec<String>>,
    #[serde(rename = "Message")]
    message: Option<String>,
}

/// One line of `pin/ls?stream=true`.
#[derive(Debug, Deserialize)]
struct PinLsLine {
    #[serde(rename = "Cid")]
    cid: String,
}

/// A client for one Kubo daemon.
#[derive(Clone)]
pub struct KuboClient {
    base: String,
    http: reqwest::Client,
    timeout: Duration,
    stall_timeout: Duration,
}

impl KuboClient {
    /// A client for the RPC endpoint `rpc` (e.g. `http://127.0.0.1:5001`); `timeout`
    /// bounds every call except `pin/add`, which is bounded by stalls only.
    pub fn new(rpc: &str, timeout: Duration) -> Result<Self> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5).min(timeout))
            .build()
            .map_err(|e| Error::Internal(format!("building the Kubo HTTP client: {e}")))?;
        Ok(Self {
            base: rpc.trim_end_matches('/').to_string(),
            http,
            timeout,
            stall_timeout: Duration::from_secs(120),
        })
    }

    /// Sets how long `pin/add` may go without progress.
    pub fn with_stall_timeout(mut self, stall: Duration) -> Self {
        self.stall_timeout = stall;
        self
    }

    fn url(&self, path: &str) -> String {
        format!("{}/api/v0/{path}", self.base)
    }

    /// Posts `path` with `args` and returns the response once its status is a success.
    async fn post(
        &self,
        path: &str,
        args: &[(&str, &str)],
        timeout: Option<Duration>,
    ) -> Result<reqwest::Response, KuboError> {
        let mut request = self.http.post(self.url(path)).query(args);
        if let Some(t) = timeout {
            request = request.timeout(t);
        }
        let response = request.send().await.map_err(|e| transport(path, e))?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let body = response.text().await.unwrap_or_default();
        let message = serde_json::from_str::<ErrorBody>(&body)
            .map(|b| b.message)
            .unwrap_or_else(|_| body.trim().to_string());
        Err(classify(path, status, message))
    }

    /// Posts and decodes one JSON answer.
    async fn call<T: DeserializeOwned>(
        &self,
        path: &str,
        args: &[(&str, &str)],
    ) -> Result<T, KuboError> {
        let response = self.post(path, args, Some(self.timeout)).await?;
        response
            .json::<T>()
            .await
            .map_err(|e| KuboError::Malformed(format!("{path}: {e}")))
    }

    async fn pin_add_inner(
        &self,
        cid: &str,
        on_progress: ProgressFn,
    ) -> Result<PinAdded, KuboError> {
        // Kubo sends headers at once and then a line every 500 ms; a daemon that does not
        // even answer within the stall timeout is as stuck as one that stops counting.
        let response = tokio::time::timeout(
            self.stall_timeout,
            self.post(
                "pin/add",
                &[("arg", cid), ("recursive", "true"), ("progress", "true")],
                None,
            ),
        )
        .await
        .map_err(|_| self.stalled(0))??;
        let mut stream = response.bytes_stream();
        let mut buf: Vec<u8> = Vec::new();
        let mut progress = 0u64;
        let mut last_increase = Instant::now();
        loop {
            let deadline = last_increase + self.stall_timeout;
            let chunk = match tokio::time::timeout_at(deadline, stream.next()).await {
                Err(_) => return Err(self.stalled(progress)),
                Ok(None) => {
                    // Real Kubo reports a failure mid-stream in the X-Stream-Error
                    // trailer and ends the body without a Pins line.
                    return Err(KuboError::Malformed(format!(
                        "pin/add stream for {cid} ended without a result (progress {progress})"
                    )));
                }
                Ok(Some(Err(e))) => return Err(transport("pin/add", e)),
                Ok(Some(Ok(chunk))) => chunk,
            };
            buf.extend_from_slice(&chunk);
            while let Some(pos) = buf.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = buf.drain(..=pos).collect();
                if line.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                let parsed: PinAddLine = serde_json::from_slice(&line).map_err(|e| {
                    KuboError::Malformed(format!(
                        "pin/add: {e}: {}",
                        String::from_utf8_lossy(&line).trim()
                    ))
                })?;
                if let Some(message) = parsed.message {
                    return Err(classify(
                        "pin/add",
                        reqwest::StatusCode::INTERNAL_SERVER_ERROR,
                        message,
                    ));
                }
                if let Some(p) = parsed.progress {
                    if p > progress {
                        progress = p;
                        last_increase = Instant::now();
                        on_progress(p);
                    }
                }
                if parsed.pins.is_some() {
                    return Ok(PinAdded { progress });
                }
            }
            if Instant::now() >= last_increase + self.stall_timeout {
                return Err(self.stalled(progress));
            }
        }
    }

    fn stalled(&self, progress: u64) -> KuboError {
        KuboError::Stalled {
            progress,
            after_secs: self.stall_timeout.as_secs(),
        }
    }

    async fn pin_ls_inner(&self) -> Result<Vec<String>, KuboError> {
        let response = self
            .post(
                "pin/ls",
                &[("type", "recursive"), ("stream", "true")],
                Some(self.timeout),
            )
            .await?;
        let body = response.bytes().await.map_err(|e| transport("pin/ls", e))?;
        body.split(|b| *b == b'\n')
            .filter(|line| !line.iter().all(u8::is_ascii_whitespace))
            .map(|line| {
                serde_json::from_slice::<PinLsLine>(line)
                    .map(|l| l.cid)
                    .map_err(|e| KuboError::Malformed(format!("pin/ls: {e}")))
            })
            .collect()
    }
}

impl Kubo for KuboClient {
    fn id(&self) -> BoxFuture<'_, Result<KuboIdentity, KuboError>> {
        self.call("id", &[]).boxed()
    }

    fn version(&self) -> BoxFuture<'_, Result<String, KuboError>> {
        async move {
            #[derive(Deserialize)]
            struct Version {
                #[serde(rename = "Version")]
                version: String,
            }
            Ok(self.call::<Version>("version", &[]).await?.version)
        }
        .boxed()
    }

    fn pin_add<'a>(
        &'a self,
        cid: &'a str,
        on_progress: ProgressFn,
    ) -> BoxFuture<'a, Result<PinAdded, KuboError>> {
        self.pin_add_inner(cid, on_progress).boxed()
    }

    fn pin_rm<'a>(&'a self, cid: &'a str) -> BoxFuture<'a, Result<(), KuboError>> {
        async move {
            self.call::<serde_json::Value>("pin/rm", &[("arg", cid)])
                .await?;
            Ok(())
        }
        .boxed()
    }

    fn pin_ls_recursive(&self) -> BoxFuture<'_, Result<Vec<String>, KuboError>> {
        self.pin_ls_inner().boxed()
    }

    fn is_pinned<'a>(&'a self, cid: &'a str) -> BoxFuture<'a, Result<bool, KuboError>> {
        async move {
            match self
                .call::<serde_json::Value>("pin/ls", &[("type", "recursive"), ("arg", cid)])
                .await
            {
                Ok(_) => Ok(true),
                Err(KuboError::NotFound(_)) => Ok(false),
                Err(e) => Err(e),
            }
        }
        .boxed()
    }

    fn pin_update<'a>(
        &'a self,
        from: &'a str,
        to: &'a str,
    ) -> BoxFuture<'a, Result<(), KuboError>> {
        async move {
            // Kubo runs pin/update to completion with no progress stream: no call timeout.
            let response = self
                .post(
                    "pin/update",
                    &[("arg", from), ("arg", to), ("unpin", "false")],
                    None,
                )
                .await?;
            response
                .json::<serde_json::Value>()
                .await
                .map_err(|e| KuboError::Malformed(format!("pin/update: {e}")))?;
            Ok(())
        }
        .boxed()
    }

    fn swarm_connect<'a>(&'a self, addr: &'a str) -> BoxFuture<'a, Result<(), KuboError>> {
        async move {
            self.call::<serde_json::Value>("swarm/connect", &[("arg", addr)])
                .await?;
            Ok(())
        }
        .boxed()
    }
}

fn transport(path: &str, e: reqwest::Error) -> KuboError {
    if e.is_timeout() {
        KuboError::Timeout(format!("{path}: {e}"))
    } else {
        KuboError::Unreachable(format!("{path}: {e}"))
    }
}

/// Kubo answers 500 for most failures; the message tells "not pinned" apart.
fn classify(path: &str, status: reqwest::StatusCode, message: String) -> KuboError {
    let lower = message.to_ascii_lowercase();
    if lower.contains("not pinned") {
        KuboError::NotFound(format!("{path}: {message}"))
    } else if status.is_server_error() && status != reqwest::StatusCode::INTERNAL_SERVER_ERROR {
        KuboError::Unreachable(format!("{path}: {status}: {message}"))
    } else {
        KuboError::Rejected(format!("{path}: {status}: {message}"))
    }
}

impl From<KuboError> for Error {
    fn from(e: KuboError) -> Self {
        Error::Kubo(Box::new(e))
    }
}
