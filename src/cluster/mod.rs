//! Cluster concerns: the backend (Postgres or NATS), this node's claim and heartbeat,
//! leader election, where replicas go
//! and their repair, cross-node cache invalidation, and what clients are told about
//! where to send data (delegates). The SQL of the leader's rounds and of the operator
//! commands is in `store.rs`.
//!
//! Imported by `pins`, `tenancy`, `state`, `api`, `console`, `server`, `cli` (and,
//! marked ↑ in docs/architecture.md, `placements` and `state` for the scheduler and the
//! handles a node holds); see the layer table in docs/architecture.md.

pub mod backend;
pub mod delegates;
pub mod heartbeat;
pub mod invalidation;
pub mod kv_lease;
pub mod leader;
pub mod nats_bus;
pub mod nodes;
pub mod ops;
pub mod plan;
pub mod presences;
pub mod readiness;
pub mod scheduler;
pub mod store;
pub mod upkeep;
