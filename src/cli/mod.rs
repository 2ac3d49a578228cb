//! The `anchorage` command line: one binary, `serve`, `dev`, `migrate` and `admin`.
//! Every subcommand reads the same layered config (defaults < file < env < flags).
//!
//! Imported by `main.rs` only; see the layer table in docs/architecture.md.

mod admin;
mod dev;
mod healthcheck;
mod migrate;
mod serve;

use std::{path::PathBuf, process::ExitCode};

use clap::{Parser, Subcommand};

use crate::{
    config::{self, Config, ConfigSource},
    error::{Error, Result},
    telemetry,
};

/// anchorage — a multi-tenant IPFS pinning service (IPFS Pinning Services API v1.0.0).
#[derive(Debug, Parser)]
#[command(name = "anchorage", version = VERSION, about, long_about = None, propagate_version = true)]
pub struct Cli {
    /// YAML config file. Default: /etc/anchorage/anchorage.yaml when it exists.
    /// ANCHORAGE_* environment variables and flags override it.
    #[arg(long, global = true, value_name = "PATH")]
    config: Option<PathBuf>,

    #[command(subcommand)]
    command: Command,
}

/// `anchorage --version`: the release and the commit it was built from.
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("ANCHORAGE_GIT_COMMIT"),
    ")"
);

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the HTTP API and run this node's workers.
    Serve(serve::ServeArgs),
    /// One-command local stack: private Postgres, migrations, dev key, demo org and
    /// tokens, a local IPFS node if none answers, then serve in the foreground.
    Dev(dev::DevArgs),
    /// Apply, revert or inspect the database schema (uses postgres.migrationDSN).
    #[command(subcommand)]
    Migrate(migrate::MigrateCommand),
    /// Operator tools.
    #[command(subcommand)]
    Admin(admin::AdminCommand),
    /// Exit 0 when the server answers `/v1/health` (for container HEALTHCHECKs, which
    /// then need no curl).
    Healthcheck(healthcheck::HealthcheckArgs),
}

/// Parses arguments, runs the command on a multi-threaded runtime and maps errors to
/// an exit code with a one-line message.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            match e {
                Error::Config { .. } => ExitCode::from(2),
                _ => ExitCode::FAILURE,
            }
        }
    }
}

async fn run(cli: Cli) -> Result<()> {
    let file = cli.config.clone();
    match cli.command {
        Command::Serve(args) => serve::run(args, file).await,
        Command::Dev(args) => dev::run(args, file).await,
        Command::Migrate(cmd) => migrate::run(cmd, load(file, vec![])?).await,
        Command::Admin(cmd) => admin::run(cmd, file).await,
        Command::Healthcheck(args) => healthcheck::run(args, file).await,
    }
}

/// Loads the config with `overrides` from flags, starts logging and reports env warnings.
pub(crate) fn load(
    file: Option<PathBuf>,
    overrides: Vec<(String, serde_json::Value)>,
) -> Result<Config> {
    let mut src = ConfigSource::from_process(file);
    src.overrides = overrides;
    load_from(&src)
}

/// Like [`load`] for an already assembled source.
pub(crate) fn load_from(src: &ConfigSource) -> Result<Config> {
    let loaded = config::load(src)?;
    telemetry::init(&loaded.config.log.level, loaded.config.log.format);
    for warning in &loaded.warnings {
        tracing::warn!("{warning}");
    }
    Ok(loaded.config)
}
