//! `anchorage admin grant-sysadmin EMAIL` and `anchorage admin member add|list|remove`:
//! the operator's side of users and memberships (needs the database; audited).

use clap::Subcommand;
use futures_util::FutureExt;
use serde_json::json;

use crate::{
    audit::{self, AuditEntry},
    auth::Role,
    config::Config,
    db::{org_tx, system_tx},
    error::{Error, Result},
    tenancy::{members, orgs, users},
};

/// Makes an existing user (by email) a sysadmin.
pub async fn grant_sysadmin(email: String, config: &Config) -> Result<()> {
    let pool = super::cli_pool(config)?;
    let bus = super::cli_bus(config, &pool).await?;
    let actor = super::cli_actor();
    let who = email.clone();
    let announcer = bus.clone();
    system_tx(&pool, |conn| {
        async move {
            if !users::grant_sysadmin(conn, announcer.as_ref(), &email).await? {
                return Err(Error::NotFound(format!(
                    "no user with email {email}; they must sign in once first (or use bootstrap.sysadmins)"
                )));
            }
            audit::record(conn, AuditEntry::new(actor, "user.grant_sysadmin", email.clone())).await
        }
        .boxed()
    })
    .await?;
    bus.flush().await;
    println!("granted sysadmin to {who}");
    Ok(())
}

#[derive(Debug, Subcommand)]
pub enum MemberCommand {
    /// Add EMAIL to ORG (an invitation until that email first signs in).
    Add {
        /// Org id (org_…) or name.
        org: String,
        email: String,
        /// member or orgadmin.
        #[arg(long, default_value = "member")]
        role: Role,
    },
    /// List ORG's members and invitations.
    List {
        /// Org id (org_…) or name.
        org: String,
    },
    /// Remove EMAIL from ORG.
    Remove {
        /// Org id (org_…) or name.
        org: String,
        email: String,
    },
}

pub async fn member(cmd: MemberCommand, config: &Config) -> Result<()> {
    let pool = super::cli_pool(config)?;
    // Running nodes drop the member's cached standing when this commits.
    let bus = super::cli_bus(config, &pool).await?;
    let actor = super::cli_actor();
    let org_arg = match &cmd {
        MemberCommand::Add { org, .. }
        | MemberCommand::List { org }
        | MemberCommand::Remove { org, .. } => org.clone(),
    };
    let org = system_tx(&pool, |conn| {
        async move { Ok(orgs::store::resolve(conn, &org_arg).await?.id) }.boxed()
    })
    .await?;
    let announcer = bus.clone();
    match cmd {
        MemberCommand::Add { email, role, .. } => {
            let m = org_tx(&pool, org, |conn| {
                async move {
                    let m =
                        members::store::add(conn, announcer.as_ref(), org, &email, role).await?;
                    audit::record(
                        conn,
                        AuditEntry::new(actor, "member.add", email.clone())
                            .org(org)
                            .details(json!({ "role": m.role, "pending": m.pending })),
                    )
                    .await?;
                    Ok(m)
                }
                .boxed()
            })
            .await?;
            println!("{}\t{}", m.id, if m.pending { "invited" } else { "added" });
        }
        MemberCommand::List { .. } => {
            let list = org_tx(&pool, org, |conn| members::store::list(conn, org).boxed()).await?;
            for m in list {
                println!(
                    "{}\t{}\t{}\t{}",
                    m.id,
                    m.email.unwrap_or_default(),
                    m.role,
                    if m.pending { "pending" } else { "active" }
                );
            }
        }
        MemberCommand::Remove { email, .. } => {
            org_tx(&pool, org, |conn| {
                async move {
                    let found = members::store::list(conn, org)
                        .await?
                        .into_iter()
                        .find(|m| {
                            m.email
                                .as_deref()
                                .is_some_and(|e| e.eq_ignore_ascii_case(&email))
                        })
                        .ok_or_else(|| Error::NotFound(format!("{email} is not in the org")))?;
                    members::store::remove(conn, announcer.as_ref(), org, found.id).await?;
                    audit::record(
                        conn,
                        AuditEntry::new(actor, "member.remove", found.id.to_string()).org(org),
                    )
                    .await
                }
                .boxed()
            })
            .await?;
            println!("removed");
        }
    }
    bus.flush().await;
    Ok(())
}
