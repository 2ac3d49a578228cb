//! The sign-in flow around [`crate::auth::oidc`]: an authorization request is remembered in
//! `login_attempts` (state → nonce, PKCE verifier, where to return, and the hash of a
//! secret the starting browser keeps in a cookie), so the provider's redirect may land
//! on any node but completes only in that browser; completing it consumes the row once,
//! verifies the ID token, records the user and opens a session. Without a provider
//! (`dev`), an API token of a known user may open a session that acts with exactly that
//! token, so the console stays usable.

use std::time::Duration;

use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use futures_util::FutureExt;
use serde_json::json;

use super::users;
use crate::{
    audit::{self, AuditEntry},
    auth::{
        oidc::public_url,
        return_to::safe_return_to,
        session::{self, SignedIn},
        Claims,
    },
    cluster::invalidation::Invalidation,
    db::{schema::login_attempts, system_tx},
    error::{Error, Result},
    ids::UserId,
    state::AppState,
};

/// How long an authorization request may take to come back.
pub const ATTEMPT_TTL: Duration = Duration::from_secs(600);

/// The cookie binding a sign-in to the browser that started it.
pub const LOGIN_COOKIE: &str = "anchorage_login";

/// A sign-in just started: where to send the browser, and the secret it must keep in
/// [`LOGIN_COOKIE`] to finish it.
#[derive(Debug, Clone)]
pub struct Begun {
    pub url: String,
    pub browser_secret: String,
}

/// Starts a sign-in. Only the hash of the browser's secret is stored with the attempt,
/// so the callback completes only in the browser that holds the secret: a victim who
/// opens an attacker's callback URL is not signed into the attacker's account.
pub async fn begin(state: &AppState, return_to: Option<&str>) -> Result<Begun> {
    let oidc = state.oidc.clone().ok_or_else(not_configured)?;
    let start = oidc.begin().await?;
    let return_to = safe_return_to(&public_url(&state.config), return_to);
    let browser_secret = session::new_secret();
    let browser_hash = session::hash(&browser_secret);
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
                    login_attempts::browser_hash.eq(&browser_hash),
                ))
                .execute(conn)
                .await?;
            Ok(Begun {
                url: start.url,
                browser_secret,
            })
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
    pub signed_in: SignedIn,
    /// For a session opened with a token: the claims it acts with.
    pub token: Option<Claims>,
}

impl Opened {
    /// Seconds until the session ends (for the cookie's `Max-Age`).
    pub fn max_age_secs(&self) -> i64 {
        (self.signed_in.expires_at - chrono::Utc::now())
            .num_seconds()
            .max(0)
    }
}

/// Completes the sign-in `state_param` with the provider's `code`, in the browser
/// that holds `browser_secret` (the [`LOGIN_COOKIE`]).
pub async fn complete(
    state: &AppState,
    code: &str,
    state_param: &str,
    browser_secret: Option<&str>,
    ip: Option<std::net::IpAddr>,
) -> Result<Opened> {
    let oidc = state.oidc.clone().ok_or_else(not_configured)?;
    let Some(browser_secret) = browser_secret else {
        tracing::warn!("sign-in refused: the callback came without the login cookie");
        return Err(Error::BadRequest(format!(
            "this sign-in was not started in this browser (no {LOGIN_COOKIE} cookie); start again from the sign-in page"
        )));
    };
    let ttl = ATTEMPT_TTL.as_secs_f64();
    let key = state_param.to_string();
    let browser_hash = session::hash(browser_secret);
    let attempt: Option<(String, String, String)> = system_tx(&state.db, |conn| {
        async move {
            Ok(diesel::delete(
                login_attempts::table
                    .filter(login_attempts::state.eq(&key))
                    .filter(login_attempts::browser_hash.eq(&browser_hash))
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
        tracing::warn!("sign-in refused: unknown, used, expired or another browser's state");
        return Err(Error::BadRequest(
            "state mismatch: this sign-in is unknown, already used, expired, or was started in another browser; start again".into(),
        ));
    };
    let identity = oidc.finish(code, &verifier, &nonce).await?;
    let bootstrap = state.config.bootstrap.sysadmins.clone();
    let trust_unverified = state.config.auth.authentik.trust_unverified_email;
    let bus = state.bus.clone();
    let subject = identity.subject.clone();
    let email = identity.email.clone().unwrap_or_default();
    let outcome = open(state, ip, "oidc", None, move |conn| {
        async move {
            let policy = users::EmailPolicy {
                bootstrap_sysadmins: &bootstrap,
                trust_unverified,
            };
            users::sign_in(conn, bus.as_ref(), &identity, policy).await
        }
        .boxed()
    })
    .await?;
    match outcome {
        Ok(opened) => Ok(Opened {
            return_to,
            ..opened
        }),
        Err(why) => {
            tracing::warn!(subject, email, cause = %why, "sign-in refused");
            Err(Error::SignIn(why))
        }
    }
}

/// `dev` only (no provider configured): opens a session with an API token of a known
/// user. The session acts with exactly that token's claims (org, role, scopes), lowered
/// to the user's current standing like the token itself; it ends no later than the
/// token, and when the token is revoked.
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
    // A removed member's token opens nothing.
    let acting = state.standings.effective(&state.db, claims.clone()).await?;
    let opened = open(state, ip, "token", Some(claims), move |conn| {
        async move {
            let exists = diesel::select(diesel::dsl::exists(
                crate::db::schema::users::table.find(user.uuid()),
            ))
            .get_result::<bool>(conn)
            .await?;
            if !exists {
                return Err(Error::Unauthorized("no such user".into()));
            }
            Ok(users::SignInOutcome::User(user))
        }
        .boxed()
    })
    .await?
    .map_err(Error::SignIn)?;
    Ok(Opened {
        token: Some(acting),
        ..opened
    })
}

/// Resolves the user with `who` and opens a session for them (with `token`'s claims,
/// when opened with one), audited; a refusal is audited with its cause instead.
async fn open<F>(
    state: &AppState,
    ip: Option<std::net::IpAddr>,
    how: &'static str,
    token: Option<Claims>,
    who: F,
) -> Result<std::result::Result<Opened, String>>
where
    F: for<'c> FnOnce(
            &'c mut diesel_async::AsyncPgConnection,
        ) -> futures_util::future::BoxFuture<'c, Result<users::SignInOutcome>>
        + Send
        + 'static,
{
    let ttl = state.config.auth.session.ttl;
    system_tx(&state.db, move |conn| {
        async move {
            let user = match who(conn).await? {
                users::SignInOutcome::User(user) => user,
                users::SignInOutcome::Refused(why) => {
                    audit::record(
                        conn,
                        AuditEntry::new(format!("signin:{how}"), "session.refuse", how)
                            .source_ip(ip)
                            .details(json!({ "via": how, "cause": why })),
                    )
                    .await?;
                    return Ok(Err(why));
                }
            };
            let created = session::create(conn, user, ttl, token.as_ref()).await?;
            audit::record(
                conn,
                AuditEntry::new(user.to_string(), "session.create", user.to_string())
                    .source_ip(ip)
                    .details(json!({
                        "via": how,
                        "token": token.as_ref().map(|c| c.jti.to_string()),
                        "expires_at": created.expires_at,
                    })),
            )
            .await?;
            Ok(Ok(Opened {
                secret: created.secret,
                user,
                return_to: "/".into(),
                signed_in: SignedIn {
                    via: how.into(),
                    token: token.as_ref().map(|c| c.jti.to_string()),
                    expires_at: created.expires_at,
                },
                token,
            }))
        }
        .boxed()
    })
    .await
}

/// Ends the session behind `secret`, audited.
pub async fn logout(state: &AppState, secret: &str, ip: Option<std::net::IpAddr>) -> Result<()> {
    let secret = secret.to_string();
    let bus = state.bus.clone();
    system_tx(&state.db, |conn| {
        async move {
            if let Some(live) = session::find(conn, &secret).await? {
                session::revoke(conn, &secret).await?;
                // Event sockets opened with the session close on every node.
                bus.announce(conn, Invalidation::Session(live.id)).await?;
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
