//! Browser sessions: an opaque random secret in an HttpOnly cookie, mapped to a
//! `sessions` row by its SHA-256 (the table alone cannot sign anyone in). A request with
//! a live session acts as its user, in the org it names (`X-Anchorage-Org`) or the only
//! org the user belongs to, with the user's role there — the same [`Claims`] shape a
//! bearer token carries, so every authorization check is shared. A session opened with
//! an API token (`dev`, no provider) acts with that token's claims and nothing more.

use std::time::Duration;

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use chrono::{DateTime, SubsecRound, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use rand::RngCore;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::{Claims, Role};
use crate::{
    db::schema::{memberships, sessions, token_denylist, users},
    error::{Error, Result},
    ids::{OrgId, TokenId, UserId},
};

/// The cookie's name.
pub const COOKIE: &str = "anchorage_session";

/// `iss` of the claims a session acts with (they are never signed or sent anywhere).
pub const SESSION_ISSUER: &str = "anchorage-session";

/// The SHA-256 of a cookie secret: all that is stored, so the table alone signs no one in.
pub(crate) fn hash(secret: &str) -> Vec<u8> {
    Sha256::digest(secret.as_bytes()).to_vec()
}

/// A fresh cookie secret: 32 random bytes, base64url.
pub(crate) fn new_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A session just created: the cookie value and when it ends.
#[derive(Debug, Clone)]
pub struct Created {
    pub secret: String,
    pub expires_at: DateTime<Utc>,
}

/// A new session for `user`, valid for `ttl`. A session opened with an API token keeps
/// that token's verified `claims`: it acts with exactly them, ends no later than the
/// token, and ends when the token is revoked.
pub async fn create(
    conn: &mut AsyncPgConnection,
    user: UserId,
    ttl: Duration,
    token: Option<&Claims>,
) -> Result<Created> {
    let secret = new_secret();
    let mut expires_at = Utc::now() + chrono::Duration::from_std(ttl).unwrap_or_default();
    if let Some(claims) = token {
        expires_at = expires_at.min(claims.expires_at());
    }
    // Whole seconds: what is stored is what the cookie and `/v1/users/me` show.
    let expires_at = expires_at.trunc_subsecs(0);
    let token_claims = token
        .map(serde_json::to_value)
        .transpose()
        .map_err(|e| Error::Internal(format!("token claims: {e}")))?;
    diesel::insert_into(sessions::table)
        .values((
            sessions::id.eq(Uuid::now_v7()),
            sessions::secret_hash.eq(hash(&secret)),
            sessions::user_id.eq(user.uuid()),
            sessions::expires_at.eq(expires_at),
            sessions::token_jti.eq(token.map(|c| c.jti.uuid())),
            sessions::token_claims.eq(token_claims),
        ))
        .execute(conn)
        .await?;
    Ok(Created { secret, expires_at })
}

/// A live session: its id, its user, when it ends.
#[derive(Debug, Clone)]
pub struct LiveSession {
    pub id: Uuid,
    pub user: UserId,
    pub sysadmin: bool,
    pub expires_at: DateTime<Utc>,
    /// The claims of the API token the session was opened with, if it was.
    pub token: Option<Claims>,
}

impl LiveSession {
    /// How it was opened, for `/v1/users/me`.
    pub fn signed_in(&self) -> SignedIn {
        SignedIn {
            via: if self.token.is_some() {
                "token"
            } else {
                "oidc"
            }
            .into(),
            token: self.token.as_ref().map(|c| c.jti.to_string()),
            expires_at: self.expires_at,
        }
    }
}

/// How a session was opened: through the identity provider (`oidc`) or with an API
/// token (`token`, naming it), and when it ends.
#[derive(
    Debug, Clone, PartialEq, Eq, serde::Serialize, schemars::JsonSchema, apistos::ApiComponent,
)]
pub struct SignedIn {
    pub via: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    pub expires_at: DateTime<Utc>,
}

/// The live (unexpired, unrevoked) session behind `secret`. A session opened with a
/// token whose jti is on the denylist is not live.
pub async fn find(conn: &mut AsyncPgConnection, secret: &str) -> Result<Option<LiveSession>> {
    type Row = (Uuid, Uuid, bool, DateTime<Utc>, Option<serde_json::Value>);
    let row: Option<Row> = sessions::table
        .inner_join(users::table)
        .filter(sessions::secret_hash.eq(hash(secret)))
        .filter(sessions::revoked_at.is_null())
        .filter(sessions::expires_at.gt(diesel::dsl::now))
        .filter(diesel::dsl::not(diesel::dsl::exists(
            token_denylist::table.filter(token_denylist::jti.nullable().eq(sessions::token_jti)),
        )))
        .select((
            sessions::id,
            sessions::user_id,
            users::is_sysadmin,
            sessions::expires_at,
            sessions::token_claims,
        ))
        .first(conn)
        .await
        .optional()?;
    let Some((id, user, sysadmin, expires_at, token)) = row else {
        return Ok(None);
    };
    let token = token
        .map(serde_json::from_value::<Claims>)
        .transpose()
        .map_err(|e| Error::Internal(format!("a session's token claims: {e}")))?;
    Ok(Some(LiveSession {
        id,
        user: UserId::from_uuid(user),
        sysadmin,
        expires_at,
        token,
    }))
}

/// Ends the session behind `secret` (idempotent).
pub async fn revoke(conn: &mut AsyncPgConnection, secret: &str) -> Result<bool> {
    Ok(diesel::update(
        sessions::table
            .filter(sessions::secret_hash.eq(hash(secret)))
            .filter(sessions::revoked_at.is_null()),
    )
    .set(sessions::revoked_at.eq(diesel::dsl::now))
    .execute(conn)
    .await?
        > 0)
}

/// Ends every session of `user` (removed from an org); returns how many.
pub async fn revoke_all_of(conn: &mut AsyncPgConnection, user: UserId) -> Result<usize> {
    Ok(diesel::update(
        sessions::table
            .filter(sessions::user_id.eq(user.uuid()))
            .filter(sessions::revoked_at.is_null()),
    )
    .set(sessions::revoked_at.eq(diesel::dsl::now))
    .execute(conn)
    .await?)
}

/// The claims `session` acts with. A session opened with a token acts with that
/// token's claims (the caller lowers them to the user's current standing). Otherwise
/// the user's role in `named` org (or their only org); a sysadmin acts in an org they
/// are not a member of only through `X-Anchorage-Org`, audited like a token doing so,
/// so their claims name no org then. Must run in a transaction that sees memberships
/// across orgs (a system transaction).
pub async fn claims(
    conn: &mut AsyncPgConnection,
    session: &LiveSession,
    named: Option<OrgId>,
) -> Result<Claims> {
    if let Some(token) = &session.token {
        return Ok(token.clone());
    }
    let rows: Vec<(Uuid, String)> = memberships::table
        .filter(memberships::user_id.eq(session.user.uuid()))
        .select((memberships::org_id, memberships::role))
        .load(conn)
        .await?;
    let (org, role) = if session.sysadmin {
        let member_of_named = named.filter(|n| rows.iter().any(|(o, _)| *o == n.uuid()));
        (member_of_named, Role::Sysadmin)
    } else {
        let pick = match named {
            Some(org) => rows.iter().find(|(o, _)| *o == org.uuid()),
            None if rows.len() == 1 => <[_]>::first(&rows),
            None => None,
        };
        match pick {
            Some((org, role)) => (
                Some(OrgId::from_uuid(*org)),
                role.parse::<Role>()
                    .map_err(|_| Error::Internal(format!("membership role '{role}'")))?,
            ),
            None if named.is_some() => {
                return Err(Error::Forbidden("you are not a member of that org".into()))
            }
            // No org yet, or several: role member with no org; the Caller extractor asks
            // for X-Anchorage-Org where an org is needed.
            None => (None, Role::Member),
        }
    };
    Ok(Claims {
        sub: session.user.to_string(),
        org,
        role,
        scopes: None,
        jti: TokenId::from_uuid(session.id),
        iat: Utc::now().timestamp(),
        exp: session.expires_at.timestamp(),
        iss: SESSION_ISSUER.into(),
        aud: SESSION_ISSUER.into(),
    })
}

/// Deletes sessions that ended more than a day ago; returns how many.
pub async fn prune(conn: &mut AsyncPgConnection) -> Result<usize> {
    let day_ago = Utc::now() - chrono::Duration::days(1);
    Ok(diesel::delete(
        sessions::table.filter(
            sessions::expires_at
                .lt(day_ago)
                .or(sessions::revoked_at.lt(day_ago)),
        ),
    )
    .execute(conn)
    .await?)
}
