//! anchorage: a multi-tenant IPFS pinning service speaking the IPFS Pinning Services
//! API v1.0.0, backed by Postgres (with row-level security between tenants) and one
//! Kubo daemon per node.

pub mod addresses;
pub mod api;
#[cfg(test)]
mod architecture;
pub mod audit;
pub mod auth;
pub mod cache;
pub mod cli;
pub mod cluster;
pub mod config;
pub mod console;
pub mod db;
pub mod devstack;
pub mod error;
pub mod events;
pub mod ids;
pub mod jobs;
pub mod kubo;
pub mod metrics;
pub mod nats;
pub mod pins;
pub mod placements;
pub mod server;
pub mod state;
pub mod telemetry;
pub mod tenancy;

pub use error::{Error, Result};
