//! Authentication: API token signing keys, minting and verification, roles and scopes.

pub mod keys;
pub mod roles;
pub mod token;

pub use roles::{Role, Scope};
pub use token::{Claims, MintRequest, MintedToken, TokenService};
