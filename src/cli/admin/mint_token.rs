//! `anchorage admin mint-token`: a standalone API token, signed with a configured key
//! (or one given with --signing-key). The token alone goes to stdout so scripts can
//! capture it; `-v` prints its metadata to stderr.

use std::{path::PathBuf, time::Duration};

use clap::Args;
use futures_util::FutureExt;
use serde_json::json;

use crate::{
    audit::{self, AuditEntry},
    auth::{
        keys::{KeySet, SigningKey},
        MintRequest, MintedToken, Role, Scope, TokenService,
    },
    config::Config,
    db::system_tx,
    error::{Error, Result},
    ids::OrgId,
    server,
    tenancy::orgs,
};

#[derive(Debug, Args)]
pub struct MintTokenArgs {
    /// sysadmin, orgadmin or member.
    #[arg(long, default_value = "member", value_parser = parse_role)]
    role: Role,
    /// The org the token acts in (`org_…` id, or a name, which needs the database).
    /// Required for orgadmin and member.
    #[arg(long)]
    org: Option<String>,
    /// The token's subject (`sub`): a user id or a service name.
    #[arg(long, default_value = "cli")]
    user: String,
    /// Lifetime, e.g. 24h or 30d. Default: auth.apiToken.defaultTTL; at most maxTTL.
    #[arg(long, value_parser = humantime::parse_duration)]
    ttl: Option<Duration>,
    /// Limit the token to these scopes (repeat or comma-separate). Default: the role's.
    #[arg(long = "scope", value_delimiter = ',', value_parser = parse_scope)]
    scopes: Vec<Scope>,
    /// Sign with this key id (default: the primary key).
    #[arg(long)]
    kid: Option<String>,
    /// Sign with this key file instead of the configured keys (kid: --kid, else the
    /// file name).
    #[arg(long, value_name = "PATH")]
    signing_key: Option<PathBuf>,
    /// Override the `iss` claim (default: auth.apiToken.issuer).
    #[arg(long)]
    issuer: Option<String>,
    /// Override the `aud` claim (default: auth.apiToken.audience).
    #[arg(long)]
    audience: Option<String>,
    /// Print the token's metadata (jti, kid, role, org, scopes, expiry) to stderr.
    #[arg(short, long)]
    verbose: bool,
}

fn parse_role(s: &str) -> Result<Role, String> {
    s.parse().map_err(|e: Error| e.to_string())
}

fn parse_scope(s: &str) -> Result<Scope, String> {
    s.trim().parse().map_err(|e: Error| e.to_string())
}

pub async fn run(args: MintTokenArgs, config: &Config) -> Result<()> {
    let ttl = args.ttl.unwrap_or(config.auth.api_token.default_ttl);
    if ttl > config.auth.api_token.max_ttl {
        return Err(Error::BadRequest(format!(
            "--ttl {} exceeds auth.apiToken.maxTTL ({})",
            humantime::format_duration(ttl),
            humantime::format_duration(config.auth.api_token.max_ttl)
        )));
    }
    let service = signer(&args, config)?;
    let org = match &args.org {
        None => None,
        Some(text) => match text.parse::<OrgId>() {
            Ok(id) => Some(id),
            Err(_) => Some(org_by_name(config, text).await?),
        },
    };
    let request = MintRequest {
        sub: args.user.clone(),
        org,
        role: args.role,
        scopes: (!args.scopes.is_empty()).then(|| args.scopes.clone()),
        ttl,
    };
    let minted = match &args.kid {
        Some(kid) => service.mint_with(kid, request)?,
        None => service.mint(request)?,
    };
    if args.verbose {
        eprintln!("{}", describe(&minted));
    }
    println!("{}", minted.jwt);
    audit_best_effort(config, &minted).await;
    Ok(())
}

fn signer(args: &MintTokenArgs, config: &Config) -> Result<TokenService> {
    let issuer = args
        .issuer
        .clone()
        .unwrap_or_else(|| config.token_issuer().to_string());
    let audience = args
        .audience
        .clone()
        .unwrap_or_else(|| config.token_audience().to_string());
    match &args.signing_key {
        Some(path) => {
            let kid = args.kid.clone().unwrap_or_else(|| {
                path.file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_else(|| "cli".into())
            });
            let key = SigningKey::load(&kid, path)?;
            Ok(TokenService::new(
                KeySet::new(vec![key], Some(&kid))?,
                issuer,
                audience,
            ))
        }
        None => {
            if config.auth.api_token.signing_keys.is_empty() {
                return Err(Error::config(
                    "auth.apiToken.signingKeys",
                    "no signing keys are configured; pass --signing-key or create one with `anchorage admin rotate-signing-key`",
                ));
            }
            Ok(TokenService::new(
                server::key_set(config)?,
                issuer,
                audience,
            ))
        }
    }
}

async fn org_by_name(config: &Config, name: &str) -> Result<OrgId> {
    let pool = super::cli_pool(config)?;
    let name = name.to_string();
    let org = system_tx(&pool, |conn| {
        async move { orgs::resolve(conn, &name).await }.boxed()
    })
    .await?;
    Ok(org.id)
}

fn describe(minted: &MintedToken) -> String {
    let c = &minted.claims;
    let scopes: Vec<&str> = c.effective_scopes().iter().map(|s| s.as_str()).collect();
    format!(
        "jti={} kid={} sub={} role={} org={} scopes={} expires={} iss={} aud={}",
        c.jti,
        minted.kid,
        c.sub,
        c.role,
        c.org.map(|o| o.to_string()).unwrap_or_else(|| "-".into()),
        scopes.join(","),
        c.expires_at().to_rfc3339(),
        c.iss,
        c.aud
    )
}

/// Records the mint when the database answers quickly; the token is standalone, so an
/// offline mint still succeeds (with a note on stderr).
async fn audit_best_effort(config: &Config, minted: &MintedToken) {
    let c = &minted.claims;
    let mut entry =
        AuditEntry::new(super::cli_actor(), "token.mint", c.jti.to_string()).details(json!({
            "kid": minted.kid,
            "sub": c.sub,
            "role": c.role,
            "scopes": c.scopes,
            "expires_at": c.expires_at(),
            "source": "cli",
        }));
    if let Some(org) = c.org {
        entry = entry.org(org);
    }
    let attempt = async {
        let pool = super::cli_pool(config)?;
        audit::record_now(&pool, entry).await
    };
    match tokio::time::timeout(Duration::from_secs(3), attempt).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => eprintln!("note: the mint was not audited: {e}"),
        Err(_) => {
            eprintln!("note: the mint was not audited: the database did not answer within 3s")
        }
    }
}
