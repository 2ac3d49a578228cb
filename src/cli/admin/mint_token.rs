//! `anchorage admin mint-token`: a standalone API token, signed with a configured key
//! (or one given with --signing-key). The token alone goes to stdout so scripts can
//! capture it; `-v` prints its metadata to stderr. The defaults are the seed's: a
//! sysadmin break-glass token for 395 days, which it warns about.

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
    #[arg(long, default_value = "sysadmin", value_parser = parse_role)]
    role: Role,
    /// The org the token acts in (`org_…` id, or a name, which needs the database).
    /// Required for orgadmin and member.
    #[arg(long)]
    org: Option<String>,
    /// The token's subject (`sub`): a user id or a service name.
    #[arg(long, default_value = "cli")]
    user: String,
    /// Lifetime, e.g. 8h or 30d. Default: 9480h (395 days); at most auth.apiToken.maxTTL.
    #[arg(long, value_parser = humantime::parse_duration)]
    ttl: Option<Duration>,
    /// Limit the token to these scopes (repeat or comma-separate). Default: the role's.
    #[arg(long = "scope", value_delimiter = ',', value_parser = parse_scope)]
    scopes: Vec<Scope>,
    /// Sign with this key id (default: the primary key, or the configured entry of
    /// --signing-key).
    #[arg(long)]
    kid: Option<String>,
    /// Sign with this key file (kid: --kid, else the id of the auth.apiToken.signingKeys
    /// entry with this path).
    #[arg(long, value_name = "PATH")]
    signing_key: Option<PathBuf>,
    /// A free-form label, recorded in the audit entry and printed with -v.
    #[arg(long, default_value = "cli-mint")]
    label: String,
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

/// The seed's default lifetime: a year and a 30-day grace.
pub const BREAK_GLASS_TTL: Duration = Duration::from_secs(9480 * 3600);

pub async fn run(args: MintTokenArgs, config: &Config) -> Result<()> {
    let ttl = args.ttl.unwrap_or(BREAK_GLASS_TTL);
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
    if args.role == Role::Sysadmin && args.ttl.is_none() {
        eprintln!(
            "warning: this is a sysadmin break-glass token valid for 395 days (9480h): it can act in every org. \
             Keep it offline; for anything else pass --role and --org, and a shorter --ttl"
        );
    }
    if args.verbose {
        eprintln!("{} label={}", describe(&minted), args.label);
    }
    println!("{}", minted.jwt);
    audit_best_effort(config, &minted, &args.label).await;
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
            let kid = match &args.kid {
                Some(kid) => kid.clone(),
                None => configured_kid(config, path)?,
            };
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

/// The id the servers know the key file `path` by: the auth.apiToken.signingKeys entry
/// with that path. A key file in no entry needs --kid, or the entry.
fn configured_kid(config: &Config, path: &std::path::Path) -> Result<String> {
    let wanted = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    config
        .auth
        .api_token
        .signing_keys
        .iter()
        .find(|k| std::fs::canonicalize(&k.path).unwrap_or_else(|_| k.path.clone()) == wanted)
        .map(|k| k.id.clone())
        .ok_or_else(|| {
            Error::config(
                "auth.apiToken.signingKeys",
                format!(
                    "--signing-key {} is in no auth.apiToken.signingKeys entry, so its key id (the JWT kid) is unknown: \
                     pass --kid <id> with the id the servers load this file under, or add an entry for it \
                     (anchorage admin rotate-signing-key prints one)",
                    path.display()
                ),
            )
        })
}

async fn org_by_name(config: &Config, name: &str) -> Result<OrgId> {
    let pool = super::cli_pool(config)?;
    let name = name.to_string();
    let org = system_tx(&pool, |conn| {
        async move { orgs::store::resolve(conn, &name).await }.boxed()
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
async fn audit_best_effort(config: &Config, minted: &MintedToken, label: &str) {
    let c = &minted.claims;
    let mut entry =
        AuditEntry::new(super::cli_actor(), "token.mint", c.jti.to_string()).details(json!({
            "kid": minted.kid,
            "sub": c.sub,
            "role": c.role,
            "scopes": c.scopes,
            "expires_at": c.expires_at(),
            "source": "cli",
            "label": label,
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
