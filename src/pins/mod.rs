//! Pin requests: CIDs, validation, listing filters, storage and the service functions
//! the API calls.
//!
//! Imported by `api`, `console`, `server` (and, marked ↑, `placements` for CID forms
//! and the pin states); see the layer table in docs/architecture.md.

pub mod cid;
pub mod counts;
pub mod filter;
pub mod model;
pub mod service;
pub mod store;
