//! Tenancy: organisations, users, memberships and API tokens.

pub mod access;
pub mod audit_log;
pub mod members;
pub mod org_cache;
pub mod orgs;
pub mod signin;
pub mod standing;
pub mod tokens;
pub mod users;
