//! Browser sessions: an opaque random secret in an HttpOnly cookie, mapped to a
//! `sessions` row by its SHA-256 (the table alone cannot sign anyone in). A request with
//! a live session acts as its user, in the org it names (`X-Anchorage-Org`) or the only
//! org the user belongs to, with the user's role there — the same [`Claims`] shape a
//! bearer token carries, so every authorization check is shared.

use std::time::Duration;

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use rand::RngCore;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::{Claims, Role};
use crate::{
    db::schema::{memberships, sessions, users},
    error::{Error, Result},
    ids::{OrgId, TokenId, UserId},
};

/// The cookie's name.
pub const COOKIE: &str = "anchorage_session";

/// `iss` of the claims a session acts with (they are never signed or sent anywhere).
pub const SESSION_ISSUER: &str = "anchorage-session";

fn hash(secret: &str) -> Vec<u8> {
    Sha256::digest(secret.as_bytes()).to_vec()
}

/// A new session for `user`, valid for `ttl`; returns the cookie value.
pub async fn create(conn: &mut AsyncPgConnection, user: UserId, ttl: Duration) -> Result<String> {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let secret = URL_SAFE_NO_PAD.encode(bytes);
    let expires = Utc::now() + chrono::Duration::from_std(ttl).unwrap_or_default();
    diesel::insert_into(sessions::table)
        .values((
            sessions::id.eq(Uuid::now_v7()),
            sessions::secret_hash.eq(hash(&secret)),
            sessions::user_id.eq(user.uuid()),
            sessions::expires_at.eq(expires),
        ))
        .execute(conn)
        .await?;
    Ok(secret)
}

/// A live session: its id, its user, when it ends.
#[derive(Debug, Clone)]
pub struct LiveSession {
    pub id: Uuid,
    pub user: UserId,
    pub sysadmin: bool,
    pub expires_at: DateTime<Utc>,
}

/// The live (unexpired, unrevoked) session behind `secret`.
pub async fn find(conn: &mut AsyncPgConnection, secret: &str) -> Result<Option<LiveSession>> {
    let row: Option<(Uuid, Uuid, bool, DateTime<Utc>)> = sessions::table
        .inner_join(users::table)
        .filter(sessions::secret_hash.eq(hash(secret)))
        .filter(sessions::revoked_at.is_null())
        .filter(sessions::expires_at.gt(diesel::dsl::now))
        .select((
            sessions::id,
            sessions::user_id,
            users::is_sysadmin,
            sessions::expires_at,
        ))
        .first(conn)
        .await
        .optional()?;
    Ok(row.map(|(id, user, sysadmin, expires_at)| LiveSession {
        id,
        user: UserId::from_uuid(user),
        sysadmin,
        expires_at,
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

/// The claims `session` acts with in `named` org (or the user's only org). Must run in
/// a transaction that sees memberships across orgs (a system transaction).
pub async fn claims(
    conn: &mut AsyncPgConnection,
    session: &LiveSession,
    named: Option<OrgId>,
) -> Result<Claims> {
    let rows: Vec<(Uuid, String)> = memberships::table
        .filter(memberships::user_id.eq(session.user.uuid()))
        .select((memberships::org_id, memberships::role))
        .load(conn)
        .await?;
    let (org, role) = if session.sysadmin {
        (named, Role::Sysadmin)
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
