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
