//! Placements: which node holds (or will hold) which CID, and the pin lifecycle that
//! moves them `queued` → `pinning` → `pinned` (or `failed`), and `unpinning` when no pin
//! request wants the CID any more. Postgres is the truth; jobs only nudge.

pub mod fetching;
pub mod lifecycle;
pub mod origins;
pub mod ownership;
pub mod reconciler;
pub mod runner;
pub mod status;
pub mod store;
pub mod sweeper;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A placement's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PlacementState {
    Queued,
    Pinning,
    Pinned,
    Failed,
    Unpinning,
}

impl PlacementState {
    pub fn as_str(self) -> &'static str {
        match self {
            PlacementState::Queued => "queued",
            PlacementState::Pinning => "pinning",
            PlacementState::Pinned => "pinned",
            PlacementState::Failed => "failed",
            PlacementState::Unpinning => "unpinning",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [
            PlacementState::Queued,
            PlacementState::Pinning,
            PlacementState::Pinned,
            PlacementState::Failed,
            PlacementState::Unpinning,
        ]
        .into_iter()
        .find(|st| st.as_str() == s)
    }
}

/// What a job asks a node to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobKind {
    Pin,
    Unpin,
}

/// A nudge for one placement. It carries ids only: the runner re-reads the placement, and
/// a job whose generation is not the placement's current one does nothing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlacementJob {
    pub kind: JobKind,
    pub cid: String,
    pub node: Uuid,
    pub generation: i64,
}

impl PlacementJob {
    /// Keeps one job per placement generation in the queue.
    pub fn idempotency_key(&self) -> String {
        let kind = match self.kind {
            JobKind::Pin => "pin",
            JobKind::Unpin => "unpin",
        };
        format!("{kind}:{}:{}:{}", self.cid, self.node, self.generation)
    }
}
