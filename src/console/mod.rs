//! The admin console: server-rendered pages (askama templates in `templates/console/`,
//! CSS and a little JS in `static/console/`, all compiled into the binary) over the same
//! domain functions the JSON API uses. A page needs a signed-in session; it acts in the
//! org named by `?org=` (or the person's only org) with their role there — so a member
//! never sees another org or the cluster pages. Every form carries a CSRF token derived
//! from the session secret, and the authn middleware also checks the `Origin` of every
//! cookie-authenticated POST.

mod pages;
mod views;

use actix_web::{
    cookie::Cookie,
    http::{header, StatusCode},
    web, HttpRequest, HttpResponse,
};
use askama::Template;
use futures_util::FutureExt;
use sha2::{Digest, Sha256};

use crate::{
    api::authn::Caller,
    api::client_ip::ClientIp,
    auth::{session, Claims},
    db::system_tx,
    error::{Error, Result},
    ids::{OrgId, UserId},
    state::AppState,
    tenancy::users::{self, Me},
};

/// Everything a console page knows about who is looking.
pub struct Viewer {
    pub claims: Claims,
    pub user: UserId,
    pub me: Me,
    /// The org the page acts in, if the person has one.
    pub org: Option<OrgId>,
    pub csrf: String,
    pub secret: String,
}

impl Viewer {
    pub fn sysadmin(&self) -> bool {
        self.me.sysadmin
    }

    pub fn role_in_org(&self) -> Option<&str> {
        let org = self.org?;
        self.me
            .orgs
            .iter()
            .find(|o| o.id == org)
            .map(|o| o.role.as_str())
    }

    /// A `Caller` for the domain functions, acting in the page's org.
    pub fn caller(&self) -> Result<Caller> {
        let org = self
            .org
            .ok_or_else(|| Error::NotFound("you belong to no org yet".into()))?;
        Ok(Caller {
            claims: self.claims.clone(),
            org,
        })
    }

    /// The domain's view of the person, acting in the page's org from `ip`.
    pub fn actor(&self, ip: Option<std::net::IpAddr>) -> crate::auth::Actor {
        crate::auth::Actor::new(self.claims.clone(), self.org, ip)
    }

    pub fn org_query(&self) -> String {
        self.org.map(|o| format!("?org={o}")).unwrap_or_default()
    }
}

/// What a page request resolves to: a viewer, or the response to send instead.
pub enum Resolved {
    Viewer(Box<Viewer>),
    Respond(HttpResponse),
}

/// The CSRF token of a session: derived from its secret, which only the browser holds.
pub fn csrf_for(secret: &str) -> String {
    let digest = Sha256::digest(format!("anchorage-console-csrf:{secret}").as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// Resolves the signed-in person behind `req` (redirecting to sign-in when there is
/// none) and the org `?org=` names (404 when they may not see it).
pub async fn viewer(state: &AppState, req: &HttpRequest) -> Resolved {
    let Some(cookie) = req.cookie(session::COOKIE) else {
        return Resolved::Respond(redirect("/console/sign-in"));
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
    let (live, me, claims) = match found {
        Ok(Some(found)) => found,
        Ok(None) => return Resolved::Respond(redirect("/console/sign-in")),
        Err(e) => return Resolved::Respond(refusal(e)),
    };
    let signed_in = live.signed_in();
    // Opened with a token: the token's claims as its user stands now, and only what the
    // token sees.
    let (me, claims) = match live.token {
        None => (me, claims),
        Some(_) => match state.standings.effective(&state.db, claims).await {
            Ok(claims) => (me.as_seen_by(&claims), claims),
            Err(e) => return Resolved::Respond(refusal(e)),
        },
    };
    let org = named
        .or(claims.org)
        .or_else(|| me.orgs.first().map(|o| o.id));
    let claims = match org {
        // Another org than the claims': only a sysadmin, audited as for a token.
        Some(org) if claims.org != Some(org) => {
            if !crate::tenancy::access::sees_every_org(claims.role) {
                return Resolved::Respond(not_found());
            }
            let what = format!("{} {}", req.method(), req.path());
            if let Err(e) =
                crate::tenancy::access::enter_org(state, &claims, org, ClientIp::of(req), &what)
                    .await
            {
                return Resolved::Respond(refusal(e));
            }
            Claims {
                org: Some(org),
                ..claims
            }
        }
        _ => claims,
    };
    Resolved::Viewer(Box::new(Viewer {
        org: claims.org,
        claims,
        user: live.user,
        me: me.with_session(Some(signed_in)),
        csrf: csrf_for(&secret),
        secret,
    }))
}

/// What a person sees when their session cannot act: sign-in again, or `Not found`.
fn refusal(e: Error) -> HttpResponse {
    match e {
        Error::Unauthorized(_) | Error::KeyRefused(_) => redirect("/console/sign-in"),
        Error::Forbidden(_) | Error::NotFound(_) => not_found(),
        e => error_page(&e),
    }
}

/// A 303 to `to`.
pub fn redirect(to: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, to))
        .finish()
}

/// A 303 back to `to` with a message for the person.
pub fn redirect_with(to: &str, message: &str) -> HttpResponse {
    let sep = if to.contains('?') { '&' } else { '?' };
    let encoded = serde_urlencoded::to_string([("flash", message)]).unwrap_or_default();
    redirect(&format!("{to}{sep}{encoded}"))
}

/// Back to `to` with what was done, or with `failed` and why.
pub fn back_to(to: &str, outcome: Result<String>, failed: &str) -> HttpResponse {
    match outcome {
        Ok(done) => redirect_with(to, &done),
        Err(e) => redirect_with(to, &format!("{failed}: {}", e.public_details())),
    }
}

/// Renders `page` as HTML with `status`.
pub fn render(status: StatusCode, page: &impl Template) -> HttpResponse {
    match page.render() {
        Ok(html) => HttpResponse::build(status)
            .content_type("text/html; charset=utf-8")
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .insert_header(("X-Frame-Options", "DENY"))
            .insert_header(("Referrer-Policy", "same-origin"))
            .body(html),
        Err(e) => {
            tracing::error!(error = %e, "rendering a console page");
            HttpResponse::InternalServerError().body("The page could not be rendered.")
        }
    }
}

/// The `Not found` page (also for things the person may not see).
pub fn not_found() -> HttpResponse {
    render(
        StatusCode::NOT_FOUND,
        &views::Message::new(
            "Not found",
            "There is nothing here, or you do not have access to it.",
        ),
    )
}

/// A form posted without a valid CSRF token.
pub fn refused() -> HttpResponse {
    render(
        StatusCode::FORBIDDEN,
        &views::Message::new(
            "Refused",
            "This form has expired or did not come from this site. Reload the page and try again.",
        ),
    )
}

/// An error as a page a person understands.
pub fn error_page(e: &Error) -> HttpResponse {
    use actix_web::ResponseError;
    let status = e.status_code();
    if status == StatusCode::NOT_FOUND || status == StatusCode::FORBIDDEN {
        return not_found();
    }
    render(
        status,
        &views::Message::new("Something went wrong", &e.public_details()),
    )
}

/// The session cookie cleared.
pub fn cleared_cookie() -> Cookie<'static> {
    let mut c = Cookie::build(session::COOKIE, "").path("/").finish();
    c.make_removal();
    c
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    pages::configure(cfg);
}
