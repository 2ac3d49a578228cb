//! Running the `anchorage` binary as an operator does: the CLI, `anchorage dev`,
//! migrations, the seed runbooks' commands, and the Postgres connection's password file
//! and TLS.

mod cli;
mod dev;
mod migrations;
mod postgres_auth;
mod postgres_tls;
mod seed_commands;
