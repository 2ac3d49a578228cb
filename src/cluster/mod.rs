//! Cluster concerns: this node's registration, and what it tells clients about where to
//! send data (delegates), refreshed from its Kubo.

pub mod delegates;
pub mod nodes;
