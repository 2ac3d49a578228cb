//! The job message: what one placement job asks one node to do. It belongs to the
//! transport, so any backend (apalis today, JetStream next) carries the same shape and
//! the placements code that makes and runs jobs imports it from here.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

crate::text_enum! {
    /// What a job asks a node to do.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
    #[serde(rename_all = "lowercase")]
    pub enum JobKind ("job kind") {
        Pin = "pin",
        Unpin = "unpin",
    }
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
        let kind = self.kind.as_str();
        format!("{kind}:{}:{}:{}", self.cid, self.node, self.generation)
    }
}
