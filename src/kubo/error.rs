//! Kubo failures, classified so that callers (retries, `info`, logs) can tell a dead
//! daemon from a refused request from content nobody serves.

use std::fmt;

/// Why a Kubo call failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KuboError {
    /// No connection, or the connection broke: the daemon is down or unreachable.
    Unreachable(String),
    /// Kubo answered with an error (bad argument, not pinned, …).
    Rejected(String),
    /// The CID or path is not known to Kubo (e.g. `pin/rm` of something not pinned).
    NotFound(String),
    /// `pin/add` made no progress for the stall timeout.
    Stalled { progress: u64, after_secs: u64 },
    /// The call took longer than its timeout.
    Timeout(String),
    /// Kubo's answer did not have the documented shape (truncated or malformed stream).
    Malformed(String),
}

impl KuboError {
    /// Whether trying again later may succeed.
    pub fn is_transient(&self) -> bool {
        !matches!(self, KuboError::Rejected(_) | KuboError::NotFound(_))
    }

    /// A short machine-readable class for logs, metrics and `info`.
    pub fn class(&self) -> &'static str {
        match self {
            KuboError::Unreachable(_) => "unreachable",
            KuboError::Rejected(_) => "rejected",
            KuboError::NotFound(_) => "not_found",
            KuboError::Stalled { .. } => "stalled",
            KuboError::Timeout(_) => "timeout",
            KuboError::Malformed(_) => "malformed",
        }
    }

    /// What a tenant is told in `status_details`: what happened, in their terms. The
    /// error itself (RPC URLs, Kubo's own messages) goes to the logs only.
    pub fn for_tenants(&self) -> String {
        match self {
            KuboError::Unreachable(_) => "IPFS node unavailable".into(),
            KuboError::Timeout(_) => "IPFS node did not answer in time".into(),
            KuboError::Rejected(_) => "the IPFS node refused to pin this CID".into(),
            KuboError::NotFound(_) => "content not found".into(),
            KuboError::Stalled {
                progress: 0,
                after_secs,
            } => format!("content not found on the network yet (no blocks for {after_secs}s)"),
            KuboError::Stalled {
                progress,
                after_secs,
            } => format!("fetch stalled: no new blocks for {after_secs}s after {progress} blocks"),
            KuboError::Malformed(_) => "unexpected answer from the IPFS node".into(),
        }
    }
}

impl fmt::Display for KuboError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KuboError::Unreachable(m) => write!(f, "Kubo unreachable: {m}"),
            KuboError::Rejected(m) => write!(f, "Kubo rejected the request: {m}"),
            KuboError::NotFound(m) => write!(f, "not found in Kubo: {m}"),
            KuboError::Stalled {
                progress,
                after_secs,
            } => write!(
                f,
                "pin stalled: no new blocks for {after_secs}s (progress {progress})"
            ),
            KuboError::Timeout(m) => write!(f, "Kubo timed out: {m}"),
            KuboError::Malformed(m) => write!(f, "unexpected answer from Kubo: {m}"),
        }
    }
}

impl std::error::Error for KuboError {}
