//! `anchorage admin audit`: the audit log, newest first, with the API's filters (needs
//! the database; reads every org's entries).

use chrono::{DateTime, Utc};
use clap::Args;
use futures_util::FutureExt;
use uuid::Uuid;

use crate::{
    audit::{self, AuditQuery, AuditView},
    config::Config,
    db::system_tx,
    error::{Error, Result},
    tenancy::orgs,
};

#[derive(Debug, Args)]
pub struct AuditArgs {
    /// Only entries by this actor.
    #[arg(long)]
    pub actor: Option<String>,
    /// Only this action, e.g. `token.revoke`.
    #[arg(long)]
    pub action: Option<String>,
    /// Only entries about this target.
    #[arg(long)]
    pub target: Option<String>,
    /// Only this org's entries (id or name).
    #[arg(long)]
    pub org: Option<String>,
    /// From this time on (RFC 3339).
    #[arg(long)]
    pub since: Option<DateTime<Utc>>,
    /// Before this time (RFC 3339).
    #[arg(long)]
    pub until: Option<DateTime<Utc>>,
    /// Entries older than this entry id (the previous page's last).
    #[arg(long)]
    pub before: Option<Uuid>,
    /// Page size (1-1000).
    #[arg(long, default_value_t = audit::DEFAULT_LIMIT)]
    pub limit: i64,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

pub async fn run(args: AuditArgs, config: &Config) -> Result<()> {
    let pool = super::cli_pool(config)?;
    let org_arg = args.org.clone();
    let mut query = AuditQuery {
        actor: args.actor,
        action: args.action,
        target: args.target,
        org: None,
        since: args.since,
        until: args.until,
        before: args.before,
        limit: Some(args.limit),
    };
    query.page_size()?;
    let entries: Vec<AuditView> = system_tx(&pool, |conn| {
        async move {
            if let Some(org) = org_arg {
                query.org = Some(orgs::store::resolve(conn, &org).await?.id);
            }
            Ok(audit::query(conn, &query)
                .await?
                .into_iter()
                .map(AuditView::from)
                .collect())
        }
        .boxed()
    })
    .await?;
    if args.json {
        let text = serde_json::to_string_pretty(&entries)
            .map_err(|e| Error::Internal(format!("printing JSON: {e}")))?;
        println!("{text}");
        return Ok(());
    }
    println!("AT\tACTOR\tACTION\tTARGET\tORG\tSOURCE IP\tID");
    for e in entries {
        println!(
            "{}\t{}\t{}\t{}\t{}\t{}\t{}",
            e.at.to_rfc3339(),
            e.actor,
            e.action,
            e.target,
            e.org.map_or("-".into(), |o| o.to_string()),
            e.source_ip.map_or("-".into(), |ip| ip.to_string()),
            e.id
        );
    }
    Ok(())
}
