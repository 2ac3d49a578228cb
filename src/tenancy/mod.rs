//! Tenancy: organisations, users, memberships and API tokens.
//!
//! Imported by `api`, `console`, `server`, `devstack`, `cli` (and, marked ↑, `state`
//! for the org and standing caches); see the layer table in docs/architecture.md.

pub mod access;
pub mod audit_log;
pub mod members;
pub mod org_cache;
pub mod orgs;
pub mod signin;
pub mod standing;
pub mod tokens;
pub mod users;
