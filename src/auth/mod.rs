//! Authentication: API token signing keys, minting and verification, roles and scopes,
//! the denylist cache and the `Caller` extractor.

pub mod caller;
pub mod denylist;
pub mod key_cutoffs;
pub mod keys;
pub mod oidc;
pub mod return_to;
pub mod roles;
pub mod session;
pub mod signin;
pub mod token;

pub use caller::{Caller, Principal};
pub use roles::{Role, Scope};
pub use token::{Claims, MintRequest, MintedToken, TokenService};
