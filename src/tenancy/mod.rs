//! Tenancy: organisations, users, memberships and API tokens.

pub mod org_cache;
pub mod orgs;
pub mod tokens;
pub mod users;
