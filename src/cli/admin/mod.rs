//! `anchorage admin …`: operator tools, one file per command. Commands that need only
//! key files work offline; the others talk to Postgres directly (postgres.dsn).

mod audit;
mod cluster;
mod cluster_ops;
mod mint_token;
mod org;
mod people;
mod prune_denylist;
mod revoke_token;
mod rotate_signing_key;

use std::path::PathBuf;

use clap::Subcommand;

use crate::{
    config::Config,
    db::{self, DbPool, PoolOptions},
    error::Result,
};

#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Create and list organisations (needs the database).
    #[command(subcommand)]
    Org(org::OrgCommand),
    /// Mint a standalone API token signed with a configured key (works offline unless
    /// --org names an org by name). The token alone goes to stdout.
    MintToken(mint_token::MintTokenArgs),
    /// Create a new random signing key file (mode 0400) and print its verify-only config
    /// entry (step 1 of the three-step rotation in docs/configuration.md).
    #[command(alias = "rotate-key")]
    RotateSigningKey(rotate_signing_key::RotateArgs),
    /// Revoke a token by jti, CLI-minted ones included (needs the database).
    RevokeToken(revoke_token::RevokeArgs),
    /// Delete denylist entries of tokens that have expired anyway (needs the database).
    PruneDenylist,
    /// Drain NODE (name or nod_…): no new placements; its replicas move to other nodes,
    /// each removed only once its copy is pinned. Needs the database; a running cluster's
    /// leader does the moving.
    Drain { node: String },
    /// Cordon NODE: no new placements, nothing moved (needs the database).
    Cordon { node: String },
    /// Return NODE to active (needs the database).
    Uncordon { node: String },
    /// Maintenance mode: pause re-placement and rebalancing (needs the database; the
    /// running leader enforces the TTL).
    #[command(subcommand)]
    Maintenance(cluster_ops::MaintenanceCommand),
    /// Print the rebalance plan (--dry-run), or ask the leader to apply it and wait
    /// (needs the database; applying needs a running cluster).
    Rebalance(cluster_ops::RebalanceArgs),
    /// Re-queue placements by CID, node or status (needs the database; the nodes' workers
    /// run them).
    Requeue(cluster_ops::RequeueArgs),
    /// Make an existing user (by email) a sysadmin (needs the database).
    GrantSysadmin { email: String },
    /// Add, list and remove an org's members (needs the database).
    #[command(subcommand)]
    Member(people::MemberCommand),
    /// Print the audit log, newest first, filtered by actor, action, target, org and
    /// time (needs the database).
    Audit(audit::AuditArgs),
    /// List the cluster's nodes: name, id, state, liveness, leader, last seen, Kubo peer
    /// id and placements per state (needs the database).
    ClusterPresences(cluster::PresenceArgs),
    /// Print each node's cache hits, misses and entries from its last heartbeat (needs
    /// the database).
    CacheStats(cluster::PresenceArgs),
}

pub async fn run(cmd: AdminCommand, file: Option<PathBuf>) -> Result<()> {
    let config = super::load(file, vec![])?;
    match cmd {
        AdminCommand::Org(cmd) => org::run(cmd, &config).await,
        AdminCommand::MintToken(args) => mint_token::run(args, &config).await,
        AdminCommand::RotateSigningKey(args) => rotate_signing_key::run(args),
        AdminCommand::RevokeToken(args) => revoke_token::run(args, &config).await,
        AdminCommand::PruneDenylist => prune_denylist::run(&config).await,
        AdminCommand::Audit(args) => audit::run(args, &config).await,
        AdminCommand::Drain { node } => {
            cluster_ops::node_state(node, crate::cluster::ops::NodeState::Draining, &config).await
        }
        AdminCommand::Cordon { node } => {
            cluster_ops::node_state(node, crate::cluster::ops::NodeState::Cordoned, &config).await
        }
        AdminCommand::Uncordon { node } => {
            cluster_ops::node_state(node, crate::cluster::ops::NodeState::Active, &config).await
        }
        AdminCommand::Maintenance(cmd) => cluster_ops::maintenance(cmd, &config).await,
        AdminCommand::Rebalance(args) => cluster_ops::rebalance(args, &config).await,
        AdminCommand::Requeue(args) => cluster_ops::requeue(args, &config).await,
        AdminCommand::GrantSysadmin { email } => people::grant_sysadmin(email, &config).await,
        AdminCommand::Member(cmd) => people::member(cmd, &config).await,
        AdminCommand::ClusterPresences(args) => cluster::presences(args, &config).await,
        AdminCommand::CacheStats(args) => cluster::cache_stats(args, &config).await,
    }
}

/// A small pool for one CLI command.
pub(crate) fn cli_pool(config: &Config) -> Result<DbPool> {
    db::build_pool(
        config.postgres.dsn.expose(),
        &PoolOptions {
            max_connections: 2,
            acquire_timeout: config.postgres.connect_timeout,
            statement_timeout: config.postgres.statement_timeout,
        },
    )
}

/// The invalidation bus of `cluster.backend`, so running nodes drop what a command
/// changes. Call its `flush` before the command returns.
pub(crate) async fn cli_bus(
    config: &Config,
    pool: &DbPool,
) -> Result<std::sync::Arc<dyn crate::cluster::invalidation::InvalidationBus>> {
    let backend = crate::cluster::backend::Backend::connect(config, "anchorage-cli").await?;
    Ok(backend.bus(config, pool))
}

/// The actor recorded in the audit log for CLI actions: `cli:<OS user>`.
pub(crate) fn cli_actor() -> String {
    let user = std::env::var("SUDO_USER")
        .or_else(|_| std::env::var("USER"))
        .unwrap_or_else(|_| "unknown".into());
    format!("cli:{user}")
}
