//! `anchorage admin org create|list`.

use clap::Subcommand;
use futures_util::FutureExt;
use serde_json::json;

use crate::{
    audit::{self, AuditEntry},
    config::Config,
    db::system_tx,
    error::Result,
    tenancy::orgs,
};

#[derive(Debug, Subcommand)]
pub enum OrgCommand {
    /// Create an org and print its id.
    Create {
        /// Lowercase letters, digits and dashes.
        name: String,
    },
    /// List orgs: id, name, created.
    List,
}

pub async fn run(cmd: OrgCommand, config: &Config) -> Result<()> {
    let pool = super::cli_pool(config)?;
    match cmd {
        OrgCommand::Create { name } => {
            let actor = super::cli_actor();
            let org = system_tx(&pool, |conn| {
                async move {
                    let org = orgs::store::create(conn, &name).await?;
                    audit::record(
                        conn,
                        AuditEntry::new(actor, "org.create", org.id.to_string())
                            .org(org.id)
                            .details(json!({ "name": org.name })),
                    )
                    .await?;
                    Ok(org)
                }
                .boxed()
            })
            .await?;
            println!("{}", org.id);
        }
        OrgCommand::List => {
            let all = system_tx(&pool, |conn| orgs::store::list(conn).boxed()).await?;
            for org in all {
                println!("{}\t{}\t{}", org.id, org.name, org.created_at.to_rfc3339());
            }
        }
    }
    Ok(())
}
