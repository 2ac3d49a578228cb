//! The sign-in flow around [`super::oidc`]: an authorization request is remembered in
//! `login_attempts` (state → nonce, PKCE verifier, where to return), so the provider's
//! redirect may land on any node; completing it consumes the row once, verifies the ID
//! token, records the user and opens a session. Without a provider (`dev`), an API
//! token of a known user may open a session instead, so the console stays usable.

use std::time::Duration;

use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use futures_util::FutureExt;
use serde_json::json;

use super::session;
use crate::{
    audit::{self, AuditEntry},
    db::{schema::login_attempts, system_tx},
    error::{Error, Result},
    ids::UserId,
    state::AppState,
    tenancy::users,
};

/// How long an authorization request may take to come back.
pub const ATTEMPT_TTL: Duration = Duration::from_secs(600);

/// A relative path on this site, or `/`: never an open redirect.
pub fn safe_return_to(requested: Option<&str>) -> String {
    match requested {
        Some(p) if p.starts_with('/') && !p.starts_with("//") && !p.contains('\\') => p.to_string(),
        _ => "/".to_string(),
    }
}

/// Starts a sign-in; returns the provider URL to send the browser to.
pub async fn begin(state: &AppState, return_to: Option<&str>) -> Result<String> {
    let oidc = state.oidc.clone().ok_or_else(not_configured)?;
    let start = oidc.begin().await?;
    let return_to = safe_return_to(return_to);
    let ttl = ATTEMPT_TTL.as_secs_f64();
    system_tx(&state.db, |conn| {
        async move {
            // Housekeeping on the way: attempts nobody came back for.
            diesel::sql_query(
                "DELETE FROM login_attempts WHERE created_at < now() - make_interval(secs => $1)",
            )
            .bind::<diesel::sql_types::Double, _>(ttl)
            .execute(conn)
            .await?;
            diesel::insert_into(login_attempts::table)
                .values((
                    login_attempts::state.eq(&start.state),
                    login_attempts::nonce.eq(&start.nonce),
                    login_attempts::pkce_verifier.eq(&start.pkce_verifier),
                    login_attempts::return_to.eq(&return_to),
                ))
                .execute(conn)
                .await?;
            Ok(start.url)
        }
        .boxed()
    })
    .await
}

/// A session just opened.
#[derive(Debug, Clone)]
pub struct Opened {
    pub secret: String,
    pub user: UserId,
    pub return_to: String,
}

/// Completes the sign-in `state_param` with the provider's `code`.
pub async fn complete(
    state: &AppState,
    code: &str,
    state_param: &str,
    ip: Option<std::net::IpAddr>,
) -> Result<Opened> {
    let oidc = state.oidc.clone().ok_or_else(not_configured)?;
    let ttl = ATTEMPT_TTL.as_secs_f64();
    let key = state_param.to_string();
    let attempt: Option<(String, String, String)> = system_tx(&state.db, |conn| {
        async move {
            Ok(diesel::delete(
                login_attempts::table
                    .filter(login_attempts::state.eq(&key))
                    .filter(diesel::dsl::sql::<diesel::sql_types::Bool>(&format!(
                        "created_at > now() - make_interval(secs => {ttl})"
                    ))),
            )
            .returning((
                login_attempts::nonce,
                login_attempts::pkce_verifier,
                login_attempts::return_to,
            ))
            .get_result(conn)
            .await
            .optional()?)
        }
        .boxed()
    })
    .await?;
    let Some((nonce, verifier, return_to)) = attempt else {
        tracing::warn!("sign-in refused: unknown, used or expired state");
        return Err(Error::BadRequest(
            "state mismatch: this sign-in is unknown, already used or expired; start again".into(),
        ));
    };
    let identity = oidc.finish(code, &verifier, &nonce).await?;
    let bootstrap = state.config.bootstrap.sysadmins.clone();
    let opened = open(state, ip, "oidc", move |conn| {
        async move { users::sign_in(conn, &identity, &bootstrap).await }.boxed()
    })
    .await?;
    Ok(Opened {
        return_to,
        ..opened
    })
}

/// `dev` only (no provider configured): opens a session for the user an API token names.
pub async fn with_token(
    state: &AppState,
    token: &str,
    ip: Option<std::net::IpAddr>,
) -> Result<Opened> {
    if state.oidc.is_some() {
        return Err(Error::BadRequest(
            "sign in through the identity provider (GET /v1/auth/login)".into(),
        ));
    }
    let claims = state.tokens.verify(token)?;
    if state.denylist.is_revoked(&state.db, claims.jti).await? {
        return Err(Error::Unauthorized("token is revoked".into()));
    }
    let user: UserId = claims
        .sub
        .parse()
        .map_err(|_| Error::BadRequest("this token names no user (usr_…)".into()))?;
    open(state, ip, "token", move |conn| {
        async move {
            let exists = diesel::select(diesel::dsl::exists(
                crate::db::schema::users::table.find(user.uuid()),
            ))
            .get_result::<bool>(conn)
            .await?;
            if !exists {
                return Err(Error::Unauthorized("no such user".into()));
            }
            Ok(user)
        }
        .boxed()
    })
    .await
}

/// Resolves the user with `who` and opens a session for them, audited.
async fn open<F>(
    state: &AppState,
    ip: Option<std::net::IpAddr>,
    how: &'static str,
    who: F,
) -> Result<Opened>
where
    F: for<'c> FnOnce(
            &'c mut diesel_async::AsyncPgConnection,
        ) -> futures_util::future::BoxFuture<'c, Result<UserId>>
        + Send
        + 'static,
{
    let ttl = state.config.auth.session.ttl;
    system_tx(&state.db, move |conn| {
        async move {
            let user = who(conn).await?;
            let secret = session::create(conn, user, ttl).await?;
            audit::record(
                conn,
                AuditEntry::new(user.to_string(), "session.create", user.to_string())
                    .source_ip(ip)
                    .details(json!({ "via": how })),
            )
            .await?;
            Ok(Opened {
                secret,
                user,
                return_to: "/".into(),
            })
        }
        .boxed()
    })
    .await
}

/// Ends the session behind `secret`, audited.
pub async fn logout(state: &AppState, secret: &str, ip: Option<std::net::IpAddr>) -> Result<()> {
    let secret = secret.to_string();
    system_tx(&state.db, |conn| {
        async move {
            if let Some(live) = session::find(conn, &secret).await? {
                session::revoke(conn, &secret).await?;
                audit::record(
                    conn,
                    AuditEntry::new(
                        live.user.to_string(),
                        "session.revoke",
                        live.user.to_string(),
                    )
                    .source_ip(ip),
                )
                .await?;
            }
            Ok(())
        }
        .boxed()
    })
    .await
}

fn not_configured() -> Error {
    Error::NotFound("sign-in is not configured (auth.authentik.issuer)".into())
}

#[cfg(test)]
mod tests {
    use super::safe_return_to;

    #[test]
    fn only_local_paths_are_returned_to() {
        assert_eq!(safe_return_to(Some("/pins?x=1")), "/pins?x=1");
        for evil in [
            "//evil.example/",
            "https://evil.example/",
            "\\\\evil",
            "/\\evil",
        ] {
            assert_eq!(safe_return_to(Some(evil)), "/", "{evil}");
        }
        assert_eq!(safe_return_to(None), "/");
    }
}
