//! `anchorage admin drain|cordon|uncordon NODE`, `maintenance on|off|status`,
//! `rebalance [--dry-run]` and `requeue`: cluster operations. They write to the database
//! (audited) and work with no node running; the cluster's leader carries them out (moves
//! replicas, applies the plan), so their effects need a running cluster.

use std::time::Duration;

use clap::{Args, Subcommand};

use crate::{
    auth::Actor,
    cluster::{
        backend::Backend,
        ops::{self, NodeState, RequeueFilter},
    },
    config::Config,
    error::{Error, Result},
    ids::NodeId,
};

/// drain / cordon / uncordon.
pub async fn node_state(which: String, to: NodeState, config: &Config) -> Result<()> {
    let pool = super::cli_pool(config)?;
    let bus = super::cli_bus(config, &pool).await?;
    let node = ops::set_node_state(
        &pool,
        bus.clone(),
        &which,
        to,
        &Actor::operator(super::cli_actor()),
    )
    .await?;
    bus.flush().await;
    println!("{} ({}) is now {}", node.name, node.id, node.state);
    Ok(())
}

#[derive(Debug, Subcommand)]
pub enum MaintenanceCommand {
    /// Pause re-placement and rebalancing (e.g. for a rolling restart) until `off` or the TTL.
    On {
        /// Why, for the audit log and `status`.
        #[arg(long)]
        reason: String,
        /// How long at most, e.g. `30m`; the leader turns it off after that.
        #[arg(long, value_parser = humantime::parse_duration, default_value = "30m")]
        ttl: Duration,
    },
    /// Resume re-placement and rebalancing.
    Off,
    /// Print the flag.
    Status {
        #[arg(long)]
        json: bool,
    },
}

pub async fn maintenance(cmd: MaintenanceCommand, config: &Config) -> Result<()> {
    let pool = super::cli_pool(config)?;
    let m = match cmd {
        MaintenanceCommand::On { reason, ttl } => {
            ops::maintenance_on(&pool, reason, ttl, &Actor::operator(super::cli_actor())).await?
        }
        MaintenanceCommand::Off => {
            ops::maintenance_off(&pool, &Actor::operator(super::cli_actor())).await?
        }
        MaintenanceCommand::Status { json } => {
            let mut conn = crate::db::pool::get(&pool).await?;
            let m = ops::maintenance(&mut conn).await?;
            if json {
                println!("{}", to_json(&m)?);
                return Ok(());
            }
            m
        }
    };
    match (m.maintenance, m.expires_at) {
        (true, Some(until)) => println!(
            "maintenance ON until {} ({})",
            until.to_rfc3339(),
            m.reason.unwrap_or_default()
        ),
        _ => println!("maintenance off"),
    }
    Ok(())
}

#[derive(Debug, Args)]
pub struct RebalanceArgs {
    /// Print the plan and change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
    /// After asking for the apply, wait this long for it to finish, printing progress.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "10m")]
    pub wait: Duration,
}

pub async fn rebalance(args: RebalanceArgs, config: &Config) -> Result<()> {
    let pool = super::cli_pool(config)?;
    let ttl = config.cluster.node_ttl;
    let status = {
        let mut conn = crate::db::pool::get(&pool).await?;
        ops::rebalance_status(&mut conn, ttl).await?
    };
    if args.dry_run {
        if args.json {
            println!("{}", to_json(&status.moves)?);
        } else if status.moves.is_empty() {
            println!("balanced: nothing to move");
        } else {
            for m in &status.moves {
                println!("{}\t{} -> {}", m.cid, m.from, m.to);
            }
            println!("{} moves (this round)", status.moves.len());
        }
        return Ok(());
    }
    ops::request_rebalance(&pool, &Actor::operator(super::cli_actor())).await?;
    println!("rebalance requested; the leader applies it");
    let deadline = std::time::Instant::now() + args.wait;
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let s = {
            let mut conn = crate::db::pool::get(&pool).await?;
            ops::rebalance_status(&mut conn, ttl).await?
        };
        println!("moves left {}, in flight {}", s.moves.len(), s.in_flight);
        if !s.requested {
            println!("rebalance done");
            return Ok(());
        }
        if std::time::Instant::now() > deadline {
            return Err(Error::Unavailable(format!(
                "the rebalance was still running after {:?}; is a leader up? (it goes on)",
                args.wait
            )));
        }
    }
}

#[derive(Debug, Args)]
pub struct RequeueArgs {
    /// Only this CID.
    #[arg(long)]
    pub cid: Option<String>,
    /// Only placements on this node (name or nod_…).
    #[arg(long)]
    pub node: Option<String>,
    /// Placements in this state: failed (default), queued or pinning.
    #[arg(long)]
    pub status: Option<String>,
}

pub async fn requeue(args: RequeueArgs, config: &Config) -> Result<()> {
    let pool = super::cli_pool(config)?;
    let jobs = Backend::connect(config, "anchorage-cli")
        .await?
        .jobs(config, NodeId::new())
        .await?;
    let n = ops::requeue(
        &pool,
        jobs.as_ref(),
        RequeueFilter {
            cid: args.cid,
            node: args.node,
            status: args.status,
        },
        &Actor::operator(super::cli_actor()),
    )
    .await?;
    println!("requeued {n}");
    Ok(())
}

fn to_json(value: &impl serde::Serialize) -> Result<String> {
    serde_json::to_string_pretty(value).map_err(|e| Error::Internal(format!("printing JSON: {e}")))
}
