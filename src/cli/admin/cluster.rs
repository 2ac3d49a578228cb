//! `anchorage admin cluster-presences` and `anchorage admin cache-stats`: the cluster's
//! nodes as the database sees them (read-only, needs the database).

use clap::Args;

use crate::{cluster::presences, config::Config, error::Result};

#[derive(Debug, Args)]
pub struct PresenceArgs {
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// One line per node: name, id, state, liveness, leader, last seen, Kubo peer id and
/// placements per state.
pub async fn presences(args: PresenceArgs, config: &Config) -> Result<()> {
    let pool = super::cli_pool(config)?;
    let nodes = presences::list(&pool, config.cluster.node_ttl).await?;
    if args.json {
        println!("{}", to_json(&nodes)?);
        return Ok(());
    }
    println!("NODE\tID\tSTATE\tLIVE\tLEADER\tLAST SEEN\tKUBO PEER ID\tPLACEMENTS");
    for n in nodes {
        let placements = n
            .placements
            .iter()
            .map(|(state, count)| format!("{state}={count}"))
            .collect::<Vec<_>>()
            .join(",");
        println!(
            "{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}",
            n.node_id,
            n.id,
            n.state,
            if n.live { "live" } else { "dead" },
            if n.leader { "leader" } else { "-" },
            n.last_seen.map_or("never".into(), |t| t.to_rfc3339()),
            n.kubo_peer_id.as_deref().unwrap_or("-"),
            if placements.is_empty() {
                "-".into()
            } else {
                placements
            },
        );
    }
    Ok(())
}

/// One line per node and cache: hits, misses and entries from its last heartbeat.
pub async fn cache_stats(args: PresenceArgs, config: &Config) -> Result<()> {
    let pool = super::cli_pool(config)?;
    let nodes = presences::list(&pool, config.cluster.node_ttl).await?;
    if args.json {
        let stats: std::collections::BTreeMap<_, _> = nodes
            .iter()
            .map(|n| (n.node_id.clone(), &n.caches))
            .collect();
        println!("{}", to_json(&stats)?);
        return Ok(());
    }
    println!("NODE\tCACHE\tHITS\tMISSES\tENTRIES");
    for n in &nodes {
        for (cache, s) in &n.caches {
            println!(
                "{}\t{cache}\t{}\t{}\t{}",
                n.node_id, s.hits, s.misses, s.entries
            );
        }
    }
    Ok(())
}

fn to_json(value: &impl serde::Serialize) -> Result<String> {
    serde_json::to_string_pretty(value)
        .map_err(|e| crate::error::Error::Internal(format!("printing JSON: {e}")))
}
