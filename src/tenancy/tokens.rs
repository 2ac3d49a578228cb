//! API tokens managed over the API: minted by an authenticated caller (never with more
//! role or scopes than the caller has), listed as metadata only, revoked through the
//! denylist. The signed JWT is returned once and never stored.

use std::{sync::Arc, time::Duration};

use apistos::ApiComponent;
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use futures_util::FutureExt;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::json;
use uuid::Uuid;

use super::access;
use crate::{
    audit::{self, AuditEntry},
    auth::{session::SESSION_ISSUER, Actor, MintRequest, Role, Scope},
    cluster::invalidation::{Invalidation, InvalidationBus},
    db::{
        org_tx,
        schema::{api_tokens, token_denylist},
        system_tx, DbPool,
    },
    error::{Error, Result},
    ids::{OrgId, TokenId, UserId},
    state::AppState,
};

/// Longest label, in characters.
pub const MAX_LABEL_CHARS: usize = 100;

/// `POST /v1/tokens` body.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema, ApiComponent)]
#[serde(deny_unknown_fields)]
pub struct NewToken {
    #[serde(default)]
    pub label: String,
    /// Defaults to the caller's own scopes (never wider).
    pub scopes: Option<Vec<Scope>>,
    /// Defaults to `auth.apiToken.defaultTTL`; at most `auth.apiToken.maxTTL`.
    pub ttl_hours: Option<u64>,
    /// Defaults to the caller's role; never above it.
    pub role: Option<Role>,
}

/// A token's metadata as listed.
#[derive(Debug, Clone, Serialize, Queryable, Selectable, JsonSchema, ApiComponent)]
#[diesel(table_name = api_tokens)]
pub struct TokenRecord {
    /// `tok_…`
    #[serde(serialize_with = "as_token_id")]
    #[schemars(with = "String")]
    pub jti: Uuid,
    #[serde(skip)]
    pub org_id: Option<Uuid>,
    pub subject: String,
    pub label: String,
    #[schemars(with = "String")]
    pub role: Role,
    #[schemars(with = "Vec<String>")]
    pub scopes: Vec<Scope>,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

fn as_token_id<S: serde::Serializer>(jti: &Uuid, s: S) -> std::result::Result<S::Ok, S::Error> {
    s.collect_str(&TokenId::from_uuid(*jti))
}

/// A freshly minted token: the JWT (shown once) and its metadata.
#[derive(Debug, Clone, Serialize, JsonSchema, ApiComponent)]
pub struct CreatedToken {
    pub token: String,
    #[serde(flatten)]
    pub record: TokenRecord,
}

/// `GET /v1/tokens` response.
#[derive(Debug, Clone, Serialize, JsonSchema, ApiComponent)]
pub struct TokenList {
    pub count: usize,
    pub results: Vec<TokenRecord>,
}

/// Mints a token for the caller's org and principal, records its metadata and audits it.
pub async fn create(state: &AppState, by: &Actor, req: NewToken) -> Result<CreatedToken> {
    by.require(Scope::TokensWrite)?;
    let org = by.acting_org()?;
    let ip = by.ip;
    let label = req.label.trim().to_string();
    if label.chars().count() > MAX_LABEL_CHARS {
        return Err(Error::BadRequest(format!(
            "label is longer than {MAX_LABEL_CHARS} characters"
        )));
    }
    let role = req.role.unwrap_or(by.role());
    if !access::may_grant(by.role(), role) {
        return Err(Error::Forbidden(format!(
            "a {} token cannot mint a {role} token",
            by.role()
        )));
    }
    let own = by.claims.effective_scopes();
    let scopes = match req.scopes {
        Some(requested) => {
            if let Some(wider) = requested.iter().find(|s| !own.contains(s)) {
                return Err(Error::Forbidden(format!(
                    "this token lacks {wider}, so it cannot grant it"
                )));
            }
            if let Some(beyond) = requested
                .iter()
                .find(|s| !role.default_scopes().contains(s))
            {
                return Err(Error::BadRequest(format!(
                    "a {role} token cannot carry {beyond}"
                )));
            }
            requested
        }
        // Explicit, so a narrowly scoped caller never mints a broader child by omission.
        None => own
            .into_iter()
            .filter(|s| role.default_scopes().contains(s))
            .collect(),
    };
    let api = &state.config.auth.api_token;
    let ttl = match req.ttl_hours {
        None => api.default_ttl,
        Some(0) => return Err(Error::BadRequest("ttl_hours must be at least 1".into())),
        Some(h) => Duration::from_secs(h.saturating_mul(3600)),
    };
    if ttl > api.max_ttl {
        return Err(Error::BadRequest(format!(
            "ttl_hours exceeds the maximum of {} hours",
            api.max_ttl.as_secs() / 3600
        )));
    }
    // A token minted by a token is its child: it never outlives its parent, and dies
    // with it. (A browser session signed in through the provider is no token.)
    let parent = (by.claims.iss != SESSION_ISSUER).then_some(by.claims.jti);
    let ttl = match parent {
        None => ttl,
        Some(_) => {
            let left = by.claims.exp - Utc::now().timestamp();
            if left <= 0 {
                return Err(Error::Unauthorized("this token has expired".into()));
            }
            ttl.min(Duration::from_secs(left as u64))
        }
    };
    let minted = state.tokens.mint(MintRequest {
        sub: by.claims.sub.clone(),
        org: Some(org),
        role,
        scopes: Some(scopes.clone()),
        ttl,
    })?;
    let claims = minted.claims.clone();
    let actor = by.name();
    let record = org_tx(&state.db, org, |conn| {
        async move {
            let user = claims.sub.parse::<UserId>().ok().map(|u| u.uuid());
            let record: TokenRecord = diesel::insert_into(api_tokens::table)
                .values((
                    api_tokens::jti.eq(claims.jti.uuid()),
                    api_tokens::org_id.eq(org.uuid()),
                    api_tokens::user_id.eq(user),
                    api_tokens::subject.eq(&claims.sub),
                    api_tokens::label.eq(&label),
                    api_tokens::role.eq(claims.role.as_str()),
                    api_tokens::scopes.eq(scopes.iter().map(|s| s.as_str()).collect::<Vec<_>>()),
                    api_tokens::expires_at.eq(claims.expires_at()),
                    api_tokens::parent_jti.eq(parent.map(|p| p.uuid())),
                ))
                .returning(TokenRecord::as_returning())
                .get_result(conn)
                .await
                .map_err(|e| match e {
                    // The user in `sub` may have been deleted meanwhile.
                    diesel::result::Error::DatabaseError(diesel::result::DatabaseErrorKind::ForeignKeyViolation, _) => {
                        Error::Forbidden("the token's user no longer exists".into())
                    }
                    other => other.into(),
                })?;
            audit::record(
                conn,
                AuditEntry::new(actor, "token.create", claims.jti.to_string())
                    .org(org)
                    .source_ip(ip)
                    .details(json!({ "label": label, "role": claims.role, "scopes": scopes, "expires_at": claims.expires_at(), "parent": parent.map(|p| p.to_string()) })),
            )
            .await?;
            Ok(record)
        }
        .boxed()
    })
    .await?;
    Ok(CreatedToken {
        token: minted.jwt,
        record,
    })
}

/// The tokens the caller may see: its own, or every token of the org for org admins.
pub async fn list(state: &AppState, by: &Actor) -> Result<Vec<TokenRecord>> {
    by.require(Scope::TokensRead)?;
    let org = by.acting_org()?;
    let all = access::manages_every_token(by.role());
    let subject = by.claims.sub.clone();
    org_tx(&state.db, org, |conn| {
        async move {
            let mut query = api_tokens::table
                .filter(api_tokens::org_id.eq(org.uuid()))
                .order(api_tokens::created_at.desc())
                .select(TokenRecord::as_select())
                .into_boxed();
            if !all {
                query = query.filter(api_tokens::subject.eq(subject));
            }
            Ok(query.load(conn).await?)
        }
        .boxed()
    })
    .await
}

/// Revokes a token of the caller's org (its own, or any for org admins), and every
/// token minted from it, in one transaction: writes each jti to the denylist until the
/// token's natural expiry, effective on this node at once and on the others as the
/// announcement arrives.
pub async fn revoke(state: &AppState, by: &Actor, jti: TokenId) -> Result<()> {
    by.require(Scope::TokensWrite)?;
    let org = by.acting_org()?;
    let ip = by.ip;
    let any = access::manages_every_token(by.role());
    let subject = by.claims.sub.clone();
    let actor = by.name();
    let bus = state.bus.clone();
    // A sysadmin's token may have children in several orgs, so the descendants are
    // found across orgs; the token itself must be this org's (filtered explicitly).
    let revoked = system_tx(&state.db, |conn| {
        async move {
            let found: Option<TokenRecord> = api_tokens::table
                .filter(api_tokens::org_id.eq(org.uuid()))
                .filter(api_tokens::jti.eq(jti.uuid()))
                .select(TokenRecord::as_select())
                .first(conn)
                .await
                .optional()?;
            let token = match found {
                Some(t) if any || t.subject == subject => t,
                _ => {
                    return Err(Error::NotFound(format!(
                        "no token {jti} made over the API that you may revoke; a token from \
                         `anchorage admin mint-token` is revoked with `anchorage admin revoke-token {jti}`"
                    )))
                }
            };
            diesel::update(api_tokens::table.find(token.jti))
                .set(api_tokens::revoked_at.eq(diesel::dsl::now))
                .execute(conn)
                .await?;
            deny(conn, bus.as_ref(), jti, token.expires_at).await?;
            let descendants = deny_descendants(conn, bus.as_ref(), jti).await?;
            audit::record(
                conn,
                AuditEntry::new(actor, "token.revoke", jti.to_string())
                    .org(org)
                    .source_ip(ip)
                    .details(json!({ "descendants": descendants.iter().map(|d| d.to_string()).collect::<Vec<_>>() })),
            )
            .await?;
            Ok(descendants)
        }
        .boxed()
    })
    .await?;
    for jti in std::iter::once(jti).chain(revoked) {
        state.denylist.mark_revoked(jti);
    }
    Ok(())
}

/// Revokes every token minted, directly or not, from `parent`; returns their ids.
pub async fn deny_descendants(
    conn: &mut AsyncPgConnection,
    bus: &dyn InvalidationBus,
    parent: TokenId,
) -> Result<Vec<TokenId>> {
    #[derive(QueryableByName)]
    struct Descendant {
        #[diesel(sql_type = diesel::sql_types::Uuid)]
        jti: Uuid,
        #[diesel(sql_type = diesel::sql_types::Timestamptz)]
        expires_at: DateTime<Utc>,
    }
    // UNION (not UNION ALL) stops at a cycle, should one ever be written.
    let found: Vec<Descendant> = diesel::sql_query(
        "WITH RECURSIVE tree (jti) AS ( \
             SELECT jti FROM api_tokens WHERE parent_jti = $1 \
             UNION SELECT t.jti FROM api_tokens t JOIN tree ON t.parent_jti = tree.jti) \
         UPDATE api_tokens a SET revoked_at = coalesce(a.revoked_at, now()) \
         FROM tree WHERE a.jti = tree.jti \
         RETURNING a.jti, a.expires_at",
    )
    .bind::<diesel::sql_types::Uuid, _>(parent.uuid())
    .load(conn)
    .await?;
    let mut ids = Vec::with_capacity(found.len());
    for d in found {
        let id = TokenId::from_uuid(d.jti);
        deny(conn, bus, id, d.expires_at).await?;
        ids.push(id);
    }
    Ok(ids)
}

/// Adds `jti` to the denylist until `expires_at` (idempotent).
pub async fn deny(
    conn: &mut AsyncPgConnection,
    bus: &dyn InvalidationBus,
    jti: TokenId,
    expires_at: DateTime<Utc>,
) -> Result<()> {
    diesel::insert_into(token_denylist::table)
        .values((
            token_denylist::jti.eq(jti.uuid()),
            token_denylist::expires_at.eq(expires_at),
        ))
        .on_conflict_do_nothing()
        .execute(conn)
        .await?;
    // Other nodes drop their cached verdict on this jti when the transaction commits.
    bus.announce(conn, Invalidation::Token(jti.uuid())).await
}

/// Revokes any token by jti (CLI-minted ones included) and every token minted from it,
/// audited against the token's org when anchorage knows it.
pub async fn revoke_by_jti(
    db: &DbPool,
    bus: Arc<dyn InvalidationBus>,
    actor: String,
    jti: TokenId,
    expires_at: DateTime<Utc>,
) -> Result<()> {
    system_tx(db, |conn| {
        async move {
            deny(conn, bus.as_ref(), jti, expires_at).await?;
            let descendants = deny_descendants(conn, bus.as_ref(), jti).await?;
            let org: Option<Option<Uuid>> = diesel::update(api_tokens::table.find(jti.uuid()))
                .set(api_tokens::revoked_at.eq(diesel::dsl::now))
                .returning(api_tokens::org_id)
                .get_result(conn)
                .await
                .optional()?;
            let mut entry =
                AuditEntry::new(actor, "token.revoke", jti.to_string()).details(json!({
                    "expires_at": expires_at,
                    "source": "cli",
                    "descendants": descendants.iter().map(|d| d.to_string()).collect::<Vec<_>>(),
                }));
            if let Some(org) = org.flatten() {
                entry = entry.org(OrgId::from_uuid(org));
            }
            audit::record(conn, entry).await
        }
        .boxed()
    })
    .await
}

/// Refuses every token of `kid` issued up to `cutoff`, on every node, until
/// `expires_at` (when none of them can still be valid); audited.
pub async fn revoke_key(
    db: &DbPool,
    bus: Arc<dyn InvalidationBus>,
    actor: String,
    kid: &str,
    cutoff: DateTime<Utc>,
    expires_at: DateTime<Utc>,
) -> Result<()> {
    let kid = kid.to_string();
    system_tx(db, |conn| {
        async move {
            diesel::sql_query(
                "INSERT INTO key_cutoffs (kid, cutoff, expires_at) VALUES ($1, $2, $3) \
                 ON CONFLICT (kid) DO UPDATE SET cutoff = greatest(key_cutoffs.cutoff, EXCLUDED.cutoff), \
                 expires_at = greatest(key_cutoffs.expires_at, EXCLUDED.expires_at)",
            )
            .bind::<diesel::sql_types::Text, _>(&kid)
            .bind::<diesel::sql_types::Timestamptz, _>(cutoff)
            .bind::<diesel::sql_types::Timestamptz, _>(expires_at)
            .execute(conn)
            .await?;
            bus.announce(conn, Invalidation::KeyCutoffs).await?;
            audit::record(
                conn,
                AuditEntry::new(actor, "token.revoke_key", kid.clone()).details(json!({
                    "kid": kid,
                    "issued_up_to": cutoff,
                    "kept_until": expires_at,
                    "source": "cli",
                })),
            )
            .await
        }
        .boxed()
    })
    .await
}

/// Deletes denylist entries whose tokens have expired anyway; returns how many.
pub async fn prune_denylist(db: &DbPool) -> Result<usize> {
    system_tx(db, |conn| {
        async move {
            Ok(diesel::delete(
                token_denylist::table.filter(token_denylist::expires_at.lt(diesel::dsl::now)),
            )
            .execute(conn)
            .await?)
        }
        .boxed()
    })
    .await
}

/// Prunes the denylist every `every` until aborted, on the leader only and with its
/// fence, so the cluster does it once.
pub async fn prune_loop(state: AppState, every: Duration) {
    loop {
        tokio::time::sleep(every).await;
        let Some(fence) = state.leadership.fence() else {
            continue;
        };
        let pruned = crate::cluster::leader::fenced_tx(&state.db, state.node, fence, |conn| {
            async move {
                // Ended sessions go in the same sweep.
                crate::auth::session::prune(conn).await?;
                Ok(diesel::delete(
                    token_denylist::table.filter(token_denylist::expires_at.lt(diesel::dsl::now)),
                )
                .execute(conn)
                .await?)
            }
            .boxed()
        })
        .await;
        match pruned {
            Ok(0) => {}
            Ok(n) => tracing::info!(removed = n, "pruned expired denylist entries"),
            Err(e) => tracing::warn!(error = %e, "pruning the denylist failed; will retry"),
        }
    }
}
