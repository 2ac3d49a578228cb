//! Who is looking at a console page: the [`Viewer`] extractor, and what they may see and
//! do there — each decision in one small named method, so it has one place to change.

use actix_web::{dev::Payload, web, FromRequest, HttpRequest};
use futures_util::{future::LocalBoxFuture, FutureExt};
use sha2::{Digest, Sha256};

use super::{respond::PageError, views::Nav};
use crate::{
    api::client_ip::ClientIp,
    auth::{session, Actor, Claims, Role, Scope},
    db::system_tx,
    error::{Error, Result},
    ids::{OrgId, UserId},
    state::AppState,
    tenancy::{
        access,
        users::{self, Me},
    },
};

/// Everything a console page knows about who is looking. As an extractor it resolves the
/// signed-in person and the org `?org=` names; when there is none it answers in their
/// place (see [`PageError::session`]): the sign-in page, or `Not found` for an org they
/// may not see.
pub struct Viewer {
    pub claims: Claims,
    pub user: UserId,
    pub me: Me,
    /// The org the page acts in, if the person has one.
    pub org: Option<OrgId>,
    pub csrf: String,
    pub secret: String,
    /// The person's role in each of their orgs, parsed once; an unknown role is none.
    roles: Vec<(OrgId, Role)>,
}

impl Viewer {
    pub fn sysadmin(&self) -> bool {
        self.me.sysadmin
    }

    /// The person's role in the page's org.
    pub fn role(&self) -> Option<Role> {
        self.role_in(self.org?)
    }

    /// The person's role in `org`, if they belong to it.
    pub fn role_in(&self, org: OrgId) -> Option<Role> {
        self.roles
            .iter()
            .find(|(id, _)| *id == org)
            .map(|&(_, role)| role)
    }

    /// An org admin of `org`.
    pub fn administers(&self, org: OrgId) -> bool {
        self.role_in(org).is_some_and(access::manages_org)
    }

    /// An org admin of the page's org (the navigation shows them the audit page).
    pub fn manages_org(&self) -> bool {
        self.role().is_some_and(access::manages_org)
    }

    /// May see and change the members of `org` on the orgs page.
    pub fn manages_members_of(&self, org: OrgId) -> bool {
        self.sysadmin() || self.administers(org)
    }

    /// The page's org, when the viewer's token carries `scope` there.
    pub fn org_with_scope(&self, scope: Scope) -> Option<OrgId> {
        self.org.filter(|_| self.claims.has_scope(scope))
    }

    /// The domain's view of the person, acting in the page's org (if any) from `ip`.
    pub fn actor(&self, ip: Option<std::net::IpAddr>) -> Actor {
        Actor::new(self.claims.clone(), self.org, ip)
    }

    /// As [`Viewer::actor`], for pages that need an org: 404 when the person has none.
    pub fn actor_in_org(&self, ip: Option<std::net::IpAddr>) -> Result<Actor> {
        let actor = self.actor(ip);
        actor.acting_org()?;
        Ok(actor)
    }

    pub fn org_query(&self) -> String {
        self.org.map(|o| format!("?org={o}")).unwrap_or_default()
    }

    /// The header of a page whose navigation entry `current` is.
    pub fn nav(&self, current: &'static str) -> Option<Nav> {
        let org_name = self.org.and_then(|o| {
            self.me
                .orgs
                .iter()
                .find(|m| m.id == o)
                .map(|m| m.name.clone())
        });
        Some(Nav {
            current,
            sysadmin: self.sysadmin(),
            orgadmin: self.manages_org(),
            who: self
                .me
                .email
                .clone()
                .or_else(|| self.me.name.clone())
                .unwrap_or_else(|| self.user.to_string()),
            org_name,
            org_query: self.org_query(),
            csrf: self.csrf.clone(),
        })
    }
}

impl FromRequest for Viewer {
    type Error = PageError;
    type Future = LocalBoxFuture<'static, Result<Self, PageError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        async move {
            let state = req
                .app_data::<web::Data<AppState>>()
                .cloned()
                .ok_or_else(|| Error::Internal("application state missing".into()))?;
            resolve(&state, &req).await
        }
        .boxed_local()
    }
}

/// The CSRF token of a session: derived from its secret, which only the browser holds.
pub fn csrf_for(secret: &str) -> String {
    let digest = Sha256::digest(format!("anchorage-console-csrf:{secret}").as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// Resolves the signed-in person behind `req` (sign-in when there is none) and the org
/// `?org=` names (`Not found` when they may not see it).
async fn resolve(state: &AppState, req: &HttpRequest) -> Result<Viewer, PageError> {
    let Some(cookie) = req.cookie(session::COOKIE) else {
        return Err(PageError::SignIn);
    };
    let named: Option<OrgId> =
        web::Query::<std::collections::HashMap<String, String>>::from_query(req.query_string())
            .ok()
            .and_then(|q| q.get("org").and_then(|o| o.parse().ok()));
    let secret = cookie.value().to_string();
    let secret_in = secret.clone();
    let found = system_tx(&state.db, move |conn| {
        async move {
            let Some(live) = session::find(conn, &secret_in).await? else {
                return Ok(None);
            };
            let me = users::me(conn, live.user).await?;
            let hint = named.or_else(|| me.orgs.first().map(|o| o.id));
            let claims = session::claims(conn, &live, hint).await?;
            Ok(Some((live, me, claims)))
        }
        .boxed()
    })
    .await;
    let (live, me, claims) = found
        .map_err(PageError::session)?
        .ok_or(PageError::SignIn)?;
    let signed_in = live.signed_in();
    // Opened with a token: the token's claims as its user stands now, and only what the
    // token sees.
    let (me, claims) = match live.token {
        None => (me, claims),
        Some(_) => {
            let claims = state
                .standings
                .effective(&state.db, claims)
                .await
                .map_err(PageError::session)?;
            (me.as_seen_by(&claims), claims)
        }
    };
    let org = named
        .or(claims.org)
        .or_else(|| me.orgs.first().map(|o| o.id));
    let claims = match org {
        // Another org than the claims': only a sysadmin, audited as for a token.
        Some(org) if claims.org != Some(org) => {
            if !access::sees_every_org(claims.role) {
                return Err(PageError::NotFound);
            }
            let what = format!("{} {}", req.method(), req.path());
            access::enter_org(state, &claims, org, ClientIp::of(req), &what)
                .await
                .map_err(PageError::session)?;
            Claims {
                org: Some(org),
                ..claims
            }
        }
        _ => claims,
    };
    let roles = me.orgs.iter().map(|o| (o.id, o.role)).collect();
    Ok(Viewer {
        org: claims.org,
        claims,
        user: live.user,
        me: me.with_session(Some(signed_in)),
        csrf: csrf_for(&secret),
        secret,
        roles,
    })
}
