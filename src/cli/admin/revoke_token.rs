//! `anchorage admin revoke-token`: put any token's jti (CLI-minted ones included) on the
//! denylist until it would have expired anyway; or, with `--kid`, refuse every token a
//! signing key has issued so far (the compromise path of a key rotation).

use chrono::{DateTime, Utc};
use clap::Args;

use crate::{config::Config, error::Result, ids::TokenId, tenancy::tokens};

#[derive(Debug, Args)]
pub struct RevokeArgs {
    /// The token's jti (`tok_…`; `mint-token -v` prints it).
    #[arg(required_unless_present = "kid", conflicts_with = "kid")]
    jti: Option<TokenId>,
    /// Instead of one token: every token signed with this key id, issued up to now.
    #[arg(long)]
    kid: Option<String>,
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
    let bus = super::cli_bus(config, &pool).await?;
    if let Some(kid) = &args.kid {
        let cutoff = Utc::now();
        tokens::revoke_key(
            &pool,
            bus.clone(),
            super::cli_actor(),
            kid,
            cutoff,
            expires_at,
        )
        .await?;
        bus.flush().await;
        println!(
            "revoked every token of key \"{kid}\" issued up to {} (refused until {})",
            cutoff.to_rfc3339(),
            expires_at.to_rfc3339()
        );
        return Ok(());
    }
    let jti = args.jti.expect("clap requires a jti without --kid");
    tokens::revoke_by_jti(&pool, bus.clone(), super::cli_actor(), jti, expires_at).await?;
    bus.flush().await;
    println!(
        "revoked {} (denylisted until {})",
        jti,
        expires_at.to_rfc3339()
    );
    Ok(())
}
