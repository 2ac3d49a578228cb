//! `anchorage serve`.

use std::path::PathBuf;

use clap::Args;
use serde_json::Value;

use crate::{error::Result, server};

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on (overrides server.listen), e.g. 0.0.0.0:8080.
    #[arg(long, value_name = "ADDR")]
    listen: Option<String>,
    /// This node's name in the cluster (overrides cluster.nodeID).
    #[arg(long, value_name = "NAME")]
    node_id: Option<String>,
    /// Serve even when postgres.dsn's role owns the tenant tables, is a superuser or has
    /// BYPASSRLS (it could then switch row-level security off); only warns.
    #[arg(long)]
    allow_owner_role: bool,
}

impl ServeArgs {
    pub(crate) fn overrides(&self) -> Vec<(String, Value)> {
        let mut out = Vec::new();
        if let Some(listen) = &self.listen {
            out.push(("server.listen".to_string(), Value::String(listen.clone())));
        }
        if let Some(node) = &self.node_id {
            out.push(("cluster.nodeID".to_string(), Value::String(node.clone())));
        }
        out
    }
}

pub async fn run(args: ServeArgs, file: Option<PathBuf>) -> Result<()> {
    let config = super::load(file, args.overrides())?;
    tracing::info!(config = %config.redacted_summary(), "starting");
    if let Some(warning) = crate::api::metrics::exposure_warning(&config) {
        tracing::warn!("{warning}");
    }
    crate::db::role::refuse_owner_role(config.postgres.dsn.expose(), args.allow_owner_role).await?;
    let state = server::build_state(config).await?;
    server::serve_until_signal(state).await
}
