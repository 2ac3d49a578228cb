//! The NATS connection behind `cluster.backend: nats`: one client per process, shared
//! by the job transport (JetStream work queue), the leader lease (a KV bucket) and the
//! cache-invalidation bus (a core subject). NATS state is never authoritative: Postgres
//! keeps the placements and the leader's fence, so losing NATS only delays work.
//!
//! Start-up retries an unreachable server for `nats.connectTimeout`, then fails with a
//! message naming the servers. After that the client reconnects by itself, with
//! backoff; every state change is logged and published as a [`Link`], so the
//! invalidation bus can drop its caches across a gap.
//!
//! Imported by `jobs`, `cluster`, `server`, `cli`; it imports only `config` and `error`;
//! see the layer table in docs/architecture.md.

use std::time::{Duration, Instant};

use async_nats::{jetstream, ConnectOptions, Event};
use tokio::sync::watch;

mod names;

pub use names::Names;

use crate::{
    config::{self, redact_url},
    error::{Error, Result},
};

/// Whether the client is connected right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Link {
    Up,
    Down,
}

/// A connected client, its JetStream context and the names under `nats.prefix`.
#[derive(Clone)]
pub struct Nats {
    pub client: async_nats::Client,
    pub jetstream: jetstream::Context,
    pub names: Names,
    /// Replicas of each stream and bucket (`nats.streamReplicas`).
    pub replicas: usize,
    link: watch::Receiver<Link>,
}

/// Longest pause between reconnection attempts.
const MAX_RECONNECT_DELAY: Duration = Duration::from_secs(2);

/// Longest wait for one connection attempt.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(5);

impl Nats {
    /// Connects to `config`'s servers as `client_name`, retrying for
    /// `nats.connectTimeout`.
    pub async fn connect(config: &config::Nats, client_name: &str) -> Result<Self> {
        let shown: Vec<String> = config.url.iter().map(|u| redact_url(u)).collect();
        let shown = shown.join(", ");
        let started = Instant::now();
        let mut pause = Duration::from_millis(200);
        let (link_tx, link) = watch::channel(Link::Down);
        let link_tx = std::sync::Arc::new(link_tx);
        loop {
            let left = config.connect_timeout.saturating_sub(started.elapsed());
            let options = options(config, client_name, link_tx.clone())
                .await?
                .connection_timeout(ATTEMPT_TIMEOUT.min(left).max(Duration::from_millis(100)));
            match options.connect(config.url.clone()).await {
                Ok(client) => {
                    let _ = link_tx.send(Link::Up);
                    tracing::info!(servers = %shown, "connected to NATS");
                    let mut jetstream = jetstream::new(client.clone());
                    jetstream.set_timeout(Duration::from_secs(10));
                    return Ok(Self {
                        client,
                        jetstream,
                        names: Names::new(&config.prefix),
                        replicas: config.stream_replicas as usize,
                        link,
                    });
                }
                Err(e) if started.elapsed() < config.connect_timeout => {
                    tracing::warn!(servers = %shown, error = %e, "NATS is unreachable; retrying");
                    let left = config.connect_timeout.saturating_sub(started.elapsed());
                    tokio::time::sleep(pause.min(left)).await;
                    pause = (pause * 2).min(Duration::from_secs(3));
                }
                Err(e) => {
                    return Err(Error::config(
                        "nats.url",
                        format!(
                        "no NATS server answered at {shown} within nats.connectTimeout ({}): {e}",
                        humantime::format_duration(config.connect_timeout)
                    ),
                    ))
                }
            }
        }
    }

    /// Whether the client is connected now.
    pub fn is_up(&self) -> bool {
        self.client.connection_state() == async_nats::connection::State::Connected
    }

    /// Follows the connection's ups and downs.
    pub fn link(&self) -> watch::Receiver<Link> {
        self.link.clone()
    }
}

/// Credentials, TLS, and a callback that logs and publishes every state change.
async fn options(
    config: &config::Nats,
    client_name: &str,
    link: std::sync::Arc<watch::Sender<Link>>,
) -> Result<ConnectOptions> {
    let mut options = match &config.creds_file {
        Some(path) => ConnectOptions::with_credentials_file(path)
            .await
            .map_err(|e| {
                Error::config(
                    "nats.credsFile",
                    format!("cannot read {}: {e}", path.display()),
                )
            })?,
        None => ConnectOptions::new(),
    };
    if let Some(token) = &config.token {
        options = options.token(token.expose().clone());
    }
    let tls = &config.tls;
    if tls.required {
        options = options.require_tls(true);
    }
    if let Some(ca) = &tls.ca_file {
        options = options.add_root_certificates(ca.clone());
    }
    if let (Some(cert), Some(key)) = (&tls.cert_file, &tls.key_file) {
        options = options.add_client_certificate(cert.clone(), key.clone());
    }
    Ok(options
        .name(client_name)
        .max_reconnects(None)
        // 100 ms doubling to 2 s: back soon after a NATS restart, gentle while it is out.
        .reconnect_delay_callback(|attempts| {
            Duration::from_millis(100u64.saturating_mul(1 << attempts.min(5)))
                .min(MAX_RECONNECT_DELAY)
        })
        .event_callback(move |event| {
            let link = link.clone();
            async move {
                match &event {
                    Event::Connected => {
                        tracing::info!("NATS connection is back");
                        let _ = link.send(Link::Up);
                    }
                    Event::Disconnected => {
                        tracing::warn!("NATS connection lost; reconnecting");
                        let _ = link.send(Link::Down);
                    }
                    Event::Closed => {
                        tracing::info!("NATS connection closed");
                        let _ = link.send(Link::Down);
                    }
                    Event::LameDuckMode => {
                        tracing::warn!("the NATS server is shutting down (lame duck mode)")
                    }
                    other => tracing::warn!(event = %other, "NATS client event"),
                }
            }
        }))
}
