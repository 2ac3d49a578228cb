//! `anchorage admin revoke-token`: put any token's jti (CLI-minted ones included) on the
//! denylist until it would have expired anyway.

use chrono::{DateTime, Utc};
use clap::Args;

use crate::{config::Config, error::Result, ids::TokenId, tenancy::tokens};

#[derive(Debug, Args)]
pub struct RevokeArgs {
    /// The token's jti (`tok_…`; `mint-token -v` prints it).
    jti: TokenId,
    /// When the token expires (RFC 3339). The entry is kept until then. Default: now +
    /// auth.apiToken.maxTTL, which outlives any token anchorage mints.
    #[arg(long, value_name = "RFC3339")]
    expires_at: Option<DateTime<Utc>>,
}

pub async fn run(args: RevokeArgs, config: &Config) -> Result<()> {
    let pool = super::cli_pool(config)?;
    let max = chrono::Duration::from_std(config.auth.api_token.max_ttl)
        .unwrap_or(chrono::Duration::days(365));
    let expires_at = args.expires_at.unwrap_or_else(|| Utc::now() + max);
    let bus = std::sync::Arc::new(crate::cluster::invalidation::PgNotify::new(
        config.postgres.dsn.expose(),
    ));
    tokens::revoke_by_jti(&pool, bus, super::cli_actor(), args.jti, expires_at).await?;
    println!(
        "revoked {} (denylisted until {})",
        args.jti,
        expires_at.to_rfc3339()
    );
    Ok(())
}
