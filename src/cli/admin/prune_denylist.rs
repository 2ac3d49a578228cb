//! `anchorage admin prune-denylist`: delete denylist entries of tokens that have expired
//! anyway (the server also does this hourly).

use crate::{
    audit::{self, AuditEntry},
    config::Config,
    error::Result,
    tenancy::tokens,
};

pub async fn run(config: &Config) -> Result<()> {
    let pool = super::cli_pool(config)?;
    let removed = tokens::prune_denylist(&pool).await?;
    audit::record_now(
        &pool,
        AuditEntry::new(super::cli_actor(), "denylist.prune", "token_denylist")
            .details(serde_json::json!({ "removed": removed })),
    )
    .await?;
    println!("removed {removed} expired denylist entries");
    Ok(())
}
