//! Who may do what: bearer tokens on the API, human sign-in through OIDC (over HTTP,
//! without a browser), the sign-in half of the security review, signing-key rotation,
//! the identity providers the tests sign in with, and row-level security in Postgres.

mod bearer;
mod key_rotation;
mod oidc_harness;
mod rls;
pub mod security_signin;
pub mod signin;
