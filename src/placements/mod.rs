//! Placements: which node holds (or will hold) which CID, and the pin lifecycle that
//! moves them `queued` → `pinning` → `pinned` (or `failed`), and `unpinning` when no pin
//! request wants the CID any more. Postgres is the truth; jobs only nudge.
//!
//! Imported by `pins`, `cluster`, `state`, `server`; see the layer table in
//! docs/architecture.md.

pub mod fetching;
pub mod lifecycle;
pub mod origins;
pub mod ownership;
pub mod reconciler;
pub mod runner;
pub mod status;
pub mod store;

crate::text_enum! {
    /// A placement's state.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    pub enum PlacementState ("placement state") {
        Queued = "queued",
        Pinning = "pinning",
        Pinned = "pinned",
        Failed = "failed",
        Unpinning = "unpinning",
    }
}
