//! Cluster concerns. For now: what this node tells clients about where to send data
//! (delegates), refreshed from its Kubo.

pub mod delegates;
