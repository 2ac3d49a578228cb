//! Where a person stands now — sysadmin or not, and their role in each org — read
//! through a mini-moka cache that every membership change empties on every node (the
//! invalidation bus). A token carries the role it was minted with, for up to a year;
//! [`Standings::effective`] lowers it to what its person holds today, so a demoted
//! member's token acts with the lower role and a removed member's token opens nothing.

use std::{collections::HashMap, sync::Arc, time::Duration};

use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use futures_util::FutureExt;
use uuid::Uuid;

use crate::{
    auth::{Claims, Role},
    cache::{CacheStats, CountedCache},
    db::{
        schema::{memberships, users},
        system_tx, DbPool,
    },
    error::{Error, Result},
    ids::UserId,
    metrics::CacheCounters,
};

/// How long a standing is trusted without a re-read, should an invalidation be lost
/// without the feed noticing.
pub const CACHE_TTL: Duration = Duration::from_secs(60);

/// One person's standing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Standing {
    pub sysadmin: bool,
    /// Role by org id.
    pub roles: HashMap<Uuid, Role>,
}

impl Standing {
    /// What the person holds in `org` (a sysadmin holds everything).
    pub fn role_in(&self, org: Uuid) -> Option<Role> {
        if self.sysadmin {
            Some(Role::Sysadmin)
        } else {
            self.roles.get(&org).copied()
        }
    }
}

/// The cache of standings, by user id; `None` caches "no such user".
#[derive(Clone)]
pub struct Standings {
    cache: CountedCache<Uuid, Option<Arc<Standing>>>,
}

impl Default for Standings {
    fn default() -> Self {
        Self {
            cache: CountedCache::new(CACHE_TTL, 100_000),
        }
    }
}

impl Standings {
    /// Counts hits and misses into `counters` (the server's registry).
    pub fn with_counters(mut self, counters: CacheCounters) -> Self {
        self.cache = self.cache.with_counters(counters);
        self
    }

    /// `user`'s standing, or `None` when there is no such user.
    pub async fn of(&self, db: &DbPool, user: UserId) -> Result<Option<Arc<Standing>>> {
        if let Some(found) = self.cache.get(&user.uuid()) {
            return Ok(found);
        }
        let found = read(db, user).await?.map(Arc::new);
        self.cache.insert(user.uuid(), found.clone());
        Ok(found)
    }

    /// `claims` as they stand now: unchanged for a token that names no user (a service
    /// token minted by the operator), lowered to the user's current role otherwise, and
    /// refused (401) when the user is gone, is no longer a sysadmin, or has left the org.
    pub async fn effective(&self, db: &DbPool, claims: Claims) -> Result<Claims> {
        let Ok(user) = claims.sub.parse::<UserId>() else {
            return Ok(claims);
        };
        let Some(standing) = self.of(db, user).await? else {
            return Err(Error::Unauthorized(
                "the token's user no longer exists".into(),
            ));
        };
        lower_to(claims, &standing)
    }

    /// Forgets `user` (their memberships changed, possibly on another node).
    pub fn invalidate(&self, user: Uuid) {
        self.cache.invalidate(&user);
    }

    pub fn clear(&self) {
        self.cache.clear();
    }

    pub fn stats(&self) -> CacheStats {
        self.cache.stats()
    }
}

/// The lower of the token's role and the person's current one, with the scopes that
/// role allows.
fn lower_to(mut claims: Claims, standing: &Standing) -> Result<Claims> {
    if claims.role == Role::Sysadmin {
        return if standing.sysadmin {
            Ok(claims)
        } else {
            Err(Error::Unauthorized(
                "the token's user is no longer a sysadmin".into(),
            ))
        };
    }
    let current = claims
        .org
        .and_then(|org| standing.role_in(org.uuid()))
        .ok_or_else(|| {
            Error::Unauthorized("the token's user is no longer a member of its org".into())
        })?;
    if current < claims.role {
        let allowed = current.default_scopes();
        let scopes = claims
            .effective_scopes()
            .into_iter()
            .filter(|s| allowed.contains(s))
            .collect();
        claims.role = current;
        claims.scopes = Some(scopes);
    }
    Ok(claims)
}

async fn read(db: &DbPool, user: UserId) -> Result<Option<Standing>> {
    // Memberships of every org: a system transaction.
    system_tx(db, move |conn| {
        async move {
            let sysadmin: Option<bool> = users::table
                .find(user.uuid())
                .select(users::is_sysadmin)
                .first(conn)
                .await
                .optional()?;
            let Some(sysadmin) = sysadmin else {
                return Ok(None);
            };
            let rows: Vec<(Uuid, String)> = memberships::table
                .filter(memberships::user_id.eq(user.uuid()))
                .select((memberships::org_id, memberships::role))
                .load(conn)
                .await?;
            let roles = rows
                .into_iter()
                .filter_map(|(org, role)| role.parse::<Role>().ok().map(|r| (org, r)))
                .collect();
            Ok(Some(Standing { sysadmin, roles }))
        }
        .boxed()
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        auth::Scope,
        ids::{OrgId, TokenId},
    };

    fn claims(org: OrgId, role: Role) -> Claims {
        Claims {
            sub: UserId::new().to_string(),
            org: Some(org),
            role,
            scopes: None,
            jti: TokenId::new(),
            iat: 0,
            exp: 0,
            iss: "i".into(),
            aud: "a".into(),
        }
    }

    fn standing(org: OrgId, role: Option<Role>, sysadmin: bool) -> Standing {
        Standing {
            sysadmin,
            roles: role.map(|r| (org.uuid(), r)).into_iter().collect(),
        }
    }

    #[test]
    fn the_lower_role_wins_with_its_scopes() {
        let org = OrgId::new();
        let demoted = lower_to(
            claims(org, Role::Orgadmin),
            &standing(org, Some(Role::Member), false),
        )
        .unwrap();
        assert_eq!(demoted.role, Role::Member);
        assert!(!demoted.has_scope(Scope::MembersWrite));
        assert!(demoted.has_scope(Scope::PinWrite));
        // A member token of an org admin stays a member token.
        let kept = lower_to(
            claims(org, Role::Member),
            &standing(org, Some(Role::Orgadmin), false),
        )
        .unwrap();
        assert_eq!(kept.role, Role::Member);
        assert_eq!(kept.scopes, None);
    }

    #[test]
    fn leaving_the_org_or_the_sysadmins_refuses_the_token() {
        let org = OrgId::new();
        assert!(lower_to(claims(org, Role::Member), &standing(org, None, false)).is_err());
        let other = OrgId::new();
        assert!(lower_to(
            claims(org, Role::Member),
            &standing(other, Some(Role::Orgadmin), false)
        )
        .is_err());
        assert!(lower_to(
            claims(org, Role::Sysadmin),
            &standing(org, Some(Role::Orgadmin), false)
        )
        .is_err());
        assert!(lower_to(claims(org, Role::Sysadmin), &standing(org, None, true)).is_ok());
        // A sysadmin holds every org.
        assert!(lower_to(claims(org, Role::Orgadmin), &standing(other, None, true)).is_ok());
    }
}
