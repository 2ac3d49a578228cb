//! Tenancy: organisations, users and memberships.

pub mod orgs;
pub mod users;
