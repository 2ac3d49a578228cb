//! Sign-in over HTTP: `GET /v1/auth/login` sends the browser to the identity provider;
//! the provider sends it back to the site root (or `/auth/callback`, or
//! `auth.authentik.redirectPath`), a tiny page that posts the code and
//! state to `POST /v1/auth/session`, which sets the session cookie; `POST
//! /v1/auth/logout` ends it.

use actix_web::{
    cookie::{time::Duration as CookieDuration, Cookie, SameSite},
    http::header,
    web, HttpRequest, HttpResponse,
};
use apistos::{api_operation, ApiComponent};
use schemars::JsonSchema;
use serde::Deserialize;

use super::{
    body::read_json,
    client_ip::ClientIp,
    openapi::{Doc, Reply},
};
use crate::{
    auth::{oidc::public_url, session},
    error::{Error, Result},
    state::AppState,
    tenancy::{signin, users},
};

/// `POST /v1/auth/session`: the provider's `code` and `state`, or (without a provider,
/// in `dev`) an API `token`.
#[derive(Debug, Deserialize, JsonSchema, ApiComponent)]
#[serde(deny_unknown_fields)]
pub struct NewSession {
    pub code: Option<String>,
    pub state: Option<String>,
    pub token: Option<String>,
}

#[derive(Debug, Deserialize)]
struct LoginQuery {
    return_to: Option<String>,
}

#[api_operation(
    operation_id = "login",
    tag = "auth",
    summary = "Start signing in",
    description = "Redirects (302) to the identity provider's authorization endpoint (Authorization Code with PKCE); `return_to` is a local path to land on afterwards"
)]
pub async fn login(state: web::Data<AppState>, req: HttpRequest) -> Result<Reply<302>> {
    let query: LoginQuery = serde_urlencoded::from_str(req.query_string())
        .map_err(|e| Error::BadRequest(format!("login query: {e}")))?;
    let begun = signin::begin(&state, query.return_to.as_deref()).await?;
    let binding = site_cookie(
        &state,
        signin::LOGIN_COOKIE,
        begun.browser_secret,
        LOGIN_COOKIE_PATH,
        signin::ATTEMPT_TTL.as_secs() as i64,
    );
    Ok(HttpResponse::Found()
        .cookie(binding)
        .insert_header((header::LOCATION, begun.url))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .finish()
        .into())
}

#[api_operation(
    operation_id = "createSession",
    tag = "auth",
    summary = "Finish signing in",
    description = "Exchanges the provider's code (with the state from /v1/auth/login) for a session cookie and returns who signed in",
    skip_args = "payload"
)]
pub async fn create_session(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
    _body: Doc<web::Json<NewSession>>,
) -> Result<Reply<200, users::Me>> {
    let body: NewSession = read_json(&req, payload, state.config.server.max_body_bytes).await?;
    let ip = ClientIp::of(&req);
    let binding = req
        .cookie(signin::LOGIN_COOKIE)
        .map(|c| c.value().to_string());
    let opened = match (body.code, body.state, body.token) {
        (Some(code), Some(st), None) => {
            signin::complete(&state, &code, &st, binding.as_deref(), ip).await?
        }
        (None, None, Some(token)) => signin::with_token(&state, &token, ip).await?,
        _ => {
            return Err(Error::BadRequest(
                "send either code and state, or token".into(),
            ))
        }
    };
    let user = opened.user;
    let mut me = users::find(&state, user).await?;
    if let Some(claims) = &opened.token {
        me = me.as_seen_by(claims);
    }
    let me = me.with_session(Some(opened.signed_in.clone()));
    let cookie = session_cookie(&state, opened.secret.clone(), opened.max_age_secs());
    let mut used = site_cookie(
        &state,
        signin::LOGIN_COOKIE,
        String::new(),
        LOGIN_COOKIE_PATH,
        0,
    );
    used.make_removal();
    Ok(HttpResponse::Ok()
        .cookie(cookie)
        .cookie(used)
        .insert_header(("X-Anchorage-Return-To", opened.return_to))
        .json(me)
        .into())
}

#[api_operation(
    operation_id = "logout",
    tag = "auth",
    summary = "Sign out",
    description = "Ends the session of the session cookie (if any) and clears the cookie"
)]
pub async fn logout(state: web::Data<AppState>, req: HttpRequest) -> Result<Reply<204>> {
    if let Some(cookie) = req.cookie(session::COOKIE) {
        signin::logout(&state, cookie.value(), ClientIp::of(&req)).await?;
    }
    let mut gone = session_cookie(&state, String::new(), 0);
    gone.make_removal();
    Ok(HttpResponse::NoContent().cookie(gone).finish().into())
}

/// Where the login cookie is sent: only to the sign-in endpoints.
const LOGIN_COOKIE_PATH: &str = "/v1/auth/";

/// The session cookie, living `max_age_secs` (the session's own end).
pub fn session_cookie(state: &AppState, value: String, max_age_secs: i64) -> Cookie<'static> {
    site_cookie(state, session::COOKIE, value, "/", max_age_secs)
}

/// A cookie of ours: HttpOnly, SameSite=Lax, Secure unless the site is plain-http
/// localhost.
fn site_cookie(
    state: &AppState,
    name: &'static str,
    value: String,
    path: &'static str,
    max_age_secs: i64,
) -> Cookie<'static> {
    let public = public_url(&state.config);
    let local_http = public.starts_with("http://")
        && ["http://localhost", "http://127.0.0.1", "http://[::1]"]
            .iter()
            .any(|p| {
                public == *p
                    || public.starts_with(&format!("{p}:"))
                    || public.starts_with(&format!("{p}/"))
            });
    Cookie::build(name, value)
        .path(path)
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(!local_http)
        .max_age(CookieDuration::seconds(max_age_secs))
        .finish()
}

/// `/auth/callback`: the provider's redirect target. Posts code and state to
/// `/v1/auth/session` and moves on to where sign-in started.
pub async fn callback() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header(("Referrer-Policy", "no-referrer"))
        .body(CALLBACK_PAGE)
}

const CALLBACK_PAGE: &str = r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Signing in…</title></head>
<body><main><p id="status">Signing in…</p></main>
<script>
(async () => {
  const params = new URLSearchParams(location.search);
  const status = document.getElementById("status");
  if (params.get("error")) {
    status.textContent = "Sign-in failed: " + (params.get("error_description") || params.get("error"));
    return;
  }
  const res = await fetch("/v1/auth/session", {
    method: "POST",
    credentials: "same-origin",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ code: params.get("code"), state: params.get("state") }),
  });
  if (!res.ok) {
    const body = await res.json().catch(() => ({}));
    status.textContent = "Sign-in failed: " + ((body.error && body.error.details) || res.status);
    return;
  }
  location.replace(res.headers.get("X-Anchorage-Return-To") || "/");
})();
</script></body></html>"#;

/// `GET /`: the web UI lives at the site root, as the seed's walkthrough has it. With
/// `code` and `state` (or `error`) it is the provider coming back — the seed registers
/// the root as the redirect URI — and serves the callback page, which goes through the
/// same browser-bound check at `POST /v1/auth/session` as every sign-in; otherwise it
/// sends the browser on to the console.
pub async fn root(req: HttpRequest) -> HttpResponse {
    let query: Vec<(String, String)> =
        serde_urlencoded::from_str(req.query_string()).unwrap_or_default();
    let has = |name: &str| query.iter().any(|(k, _)| k == name);
    if (has("code") && has("state")) || has("error") {
        return callback().await;
    }
    HttpResponse::Found()
        .insert_header((header::LOCATION, "/console/"))
        .finish()
}

/// The sign-in return routes: `/` (above), `/auth/callback`, and
/// `auth.authentik.redirectPath` when it is another path.
pub fn configure(cfg: &mut web::ServiceConfig, redirect_path: &str) {
    cfg.route("/", web::get().to(root))
        .route("/auth/callback", web::get().to(callback));
    if !["/", "/auth/callback"].contains(&redirect_path) {
        cfg.route(redirect_path, web::get().to(callback));
    }
}
