//! Shared test fixtures.

pub mod app;
pub mod bin;
pub mod browser;
pub mod cluster;
pub mod counting_proxy;
pub mod fake_idp;
pub mod fake_kubo;
pub mod fixtures;
pub mod kubo;
pub mod nats;
pub mod oidc;
pub mod pg;
pub mod pg_tls;
pub mod sql;
pub mod tcp_proxy;

pub use app::{send, test_config, TestApp};
pub use kubo::KuboNode;
pub use pg::TestDb;
