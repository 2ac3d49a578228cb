//! Signing in and out: `/console` itself, `/console/sign-in` (the page, and the API-token
//! form when no identity provider is configured) and `/console/sign-out`.

use actix_web::{http::StatusCode, web, HttpRequest, HttpResponse};
use serde::Deserialize;

use super::{
    form::{self, CsrfForm},
    query::flash,
    respond::{cleared_cookie, redirect, redirect_with, refused, render, Page},
    viewer::Viewer,
    views::SignIn,
};
use crate::{api::client_ip::ClientIp, state::AppState, tenancy::signin};

/// `/console` → pins when signed in, else sign-in.
pub async fn index(_: Viewer) -> HttpResponse {
    redirect("/console/pins")
}

/// The sign-in page.
pub async fn page(state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    render(
        StatusCode::OK,
        &SignIn {
            nav: None,
            flash: flash(&req),
            provider: state.oidc.is_some(),
        },
    )
}

#[derive(Default, Deserialize)]
struct TokenForm {
    #[serde(default, deserialize_with = "form::text")]
    token: Option<String>,
}

/// Without an identity provider (`dev`): sign in with an API token.
pub async fn with_token(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Bytes,
) -> HttpResponse {
    // No session yet, so no CSRF token: the form must come from this site, or another
    // site could sign the browser into the attacker's account (login CSRF).
    if !crate::api::authn::same_origin(&req, &state) {
        return refused();
    }
    let form: TokenForm = serde_html_form::from_bytes(&body).unwrap_or_default();
    let Some(token) = form.token else {
        return redirect_with("/console/sign-in", "Paste an API token to sign in.");
    };
    match signin::with_token(&state, &token, ClientIp::of(&req)).await {
        Ok(opened) => {
            let max_age = opened.max_age_secs();
            let cookie = crate::api::auth::session_cookie(&state, opened.secret, max_age);
            let mut res = redirect("/console/pins");
            let _ = res.add_cookie(&cookie);
            res
        }
        Err(e) => redirect_with(
            "/console/sign-in",
            &format!("Sign-in failed: {}", e.public_details()),
        ),
    }
}

/// Ends the session and clears its cookie.
pub async fn sign_out(state: web::Data<AppState>, req: HttpRequest, form: CsrfForm) -> Page {
    let v = form.viewer;
    signin::logout(&state, &v.secret, ClientIp::of(&req)).await?;
    let mut res = redirect("/console/sign-in");
    let _ = res.add_cookie(&cleared_cookie());
    Ok(res)
}
