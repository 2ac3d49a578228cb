//! The one client for Kubo's HTTP RPC API (`/api/v0/...`), behind the [`Kubo`] trait so
//! tests can substitute faults. Every call is a POST with query arguments, as Kubo
//! requires, and has its own timeout.
//!
//! Imported by `placements`, `cluster`, `state`, `server`, `devstack`; it imports only
//! `error`; see the layer table in docs/architecture.md.

mod client;
mod error;

use futures_util::future::BoxFuture;
use serde::Deserialize;

pub use client::KuboClient;
pub use error::KuboError;

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

/// What a finished `pin/add` reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PinAdded {
    /// The last `Progress` value seen (blocks fetched).
    pub progress: u64,
}

/// Called with each increase of `pin/add`'s `Progress`.
pub type ProgressFn = Box<dyn Fn(u64) + Send + Sync>;

/// The Kubo operations anchorage needs.
pub trait Kubo: Send + Sync {
    /// `id`: peer id and announced addresses.
    fn id(&self) -> BoxFuture<'_, Result<KuboIdentity, KuboError>>;
    /// `version`: the daemon's version string.
    fn version(&self) -> BoxFuture<'_, Result<String, KuboError>>;
    /// `pin/add?recursive=true&progress=true`, failing as [`KuboError::Stalled`] when the
    /// progress count has not increased for the stall timeout. Wall time is unbounded.
    fn pin_add<'a>(
        &'a self,
        cid: &'a str,
        on_progress: ProgressFn,
    ) -> BoxFuture<'a, Result<PinAdded, KuboError>>;
    /// `pin/rm` of a recursive pin.
    fn pin_rm<'a>(&'a self, cid: &'a str) -> BoxFuture<'a, Result<(), KuboError>>;
    /// Every recursive pin (`pin/ls?type=recursive&stream=true`).
    fn pin_ls_recursive(&self) -> BoxFuture<'_, Result<Vec<String>, KuboError>>;
    /// Whether `cid` is pinned recursively.
    fn is_pinned<'a>(&'a self, cid: &'a str) -> BoxFuture<'a, Result<bool, KuboError>>;
    /// `pin/update?unpin=false`: pins `to`, keeping `from` pinned.
    fn pin_update<'a>(&'a self, from: &'a str, to: &'a str)
        -> BoxFuture<'a, Result<(), KuboError>>;
    /// `swarm/connect` to one multiaddr.
    fn swarm_connect<'a>(&'a self, addr: &'a str) -> BoxFuture<'a, Result<(), KuboError>>;
}
