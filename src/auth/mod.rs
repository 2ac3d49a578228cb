//! Authentication: API token signing keys, minting and verification, roles and scopes,
//! the denylist cache, sessions, the OIDC client, and [`Actor`], the plain who-acts
//! the domain functions take. The request extractors (`Caller`, `Principal`) are the
//! API's, in `api/authn.rs`.
//!
//! Imported by every layer above it: `tenancy`, `state`, `api`, `console`, `server`,
//! `devstack`, `cli`; see the layer table in docs/architecture.md.

pub mod actor;
pub mod denylist;
pub mod key_cutoffs;
pub mod keys;
pub mod oidc;
pub mod return_to;
pub mod roles;
pub mod session;
pub mod token;

pub use actor::Actor;
pub use roles::{Role, Scope};
pub use token::{Claims, MintRequest, MintedToken, TokenService};
