//! The tokens page, `/console/tokens`: create a token (shown once), list and revoke.

use actix_web::{http::StatusCode, web, HttpRequest};
use serde::Deserialize;

use super::{
    form::{self, CsrfForm},
    query::flash,
    respond::{back_to, render, Page, PageError},
    viewer::Viewer,
    views::{NewTokenView, TokenRow, Tokens},
};
use crate::{
    api::client_ip::ClientIp,
    auth::{oidc::public_url, Scope},
    error::{Error, Result},
    ids::TokenId,
    state::AppState,
    tenancy::tokens,
};

/// The page with `flash_text`, and the token just `created` if there is one.
async fn view(
    state: &AppState,
    v: &Viewer,
    flash_text: Option<String>,
    created: Option<NewTokenView>,
) -> Page {
    let Ok(caller) = v.actor_in_org(None) else {
        return Ok(render(
            StatusCode::OK,
            &Tokens {
                nav: v.nav("tokens"),
                flash: flash_text,
                org: None,
                csrf: v.csrf.clone(),
                created: None,
                scopes: Vec::new(),
                tokens: Vec::new(),
            },
        ));
    };
    let list = tokens::list(state, &caller).await?;
    let now = chrono::Utc::now();
    let rows = list
        .into_iter()
        .map(|t| {
            let state = if t.revoked_at.is_some() {
                "revoked"
            } else if t.expires_at <= now {
                "expired"
            } else {
                "active"
            };
            TokenRow {
                jti: TokenId::from_uuid(t.jti).to_string(),
                label: t.label,
                scopes: t
                    .scopes
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
                expires: t.expires_at.format("%Y-%m-%d %H:%M UTC").to_string(),
                revocable: state == "active",
                state: state.into(),
            }
        })
        .collect();
    let scopes = caller
        .claims
        .effective_scopes()
        .into_iter()
        .map(|s| s.as_str())
        .collect();
    Ok(render(
        StatusCode::OK,
        &Tokens {
            nav: v.nav("tokens"),
            flash: flash_text,
            org: v.org.map(|o| o.to_string()),
            csrf: v.csrf.clone(),
            created,
            scopes,
            tokens: rows,
        },
    ))
}

pub async fn page(state: web::Data<AppState>, req: HttpRequest, v: Viewer) -> Page {
    view(&state, &v, flash(&req), None).await
}

#[derive(Deserialize)]
pub struct TokenForm {
    #[serde(default, deserialize_with = "form::text")]
    label: Option<String>,
    #[serde(default, deserialize_with = "form::text")]
    ttl_hours: Option<String>,
    /// The scope checkboxes, one value each.
    #[serde(default)]
    scope: Vec<String>,
}

pub async fn create(
    state: web::Data<AppState>,
    req: HttpRequest,
    form: CsrfForm<TokenForm>,
) -> Page {
    let CsrfForm { viewer: v, fields } = form;
    let caller = v
        .actor_in_org(ClientIp::of(&req))
        .map_err(|_| PageError::NotFound)?;
    let scopes: Result<Vec<Scope>> = fields
        .scope
        .iter()
        .map(|s| {
            s.parse::<Scope>()
                .map_err(|_| Error::BadRequest(format!("unknown scope '{s}'")))
        })
        .collect();
    let ttl = fields.ttl_hours.as_deref().map(str::parse::<u64>);
    let request = match (scopes, ttl) {
        (Ok(scopes), None | Some(Ok(_))) => tokens::NewToken {
            label: fields.label.unwrap_or_default(),
            scopes: (!scopes.is_empty()).then_some(scopes),
            ttl_hours: fields.ttl_hours.and_then(|t| t.parse().ok()),
            role: None,
        },
        (Err(e), _) => return view(&state, &v, Some(e.public_details()), None).await,
        (_, Some(Err(_))) => {
            let text = "TTL must be a whole number of hours.".to_string();
            return view(&state, &v, Some(text), None).await;
        }
    };
    match tokens::create(&state, &caller, request).await {
        Ok(created) => {
            let endpoint = format!("{}/v1", public_url(&state.config));
            let shown = NewTokenView {
                jwt: created.token,
                endpoint,
            };
            view(&state, &v, None, Some(shown)).await
        }
        Err(e) => {
            let text = format!("No token was created: {}", e.public_details());
            view(&state, &v, Some(text), None).await
        }
    }
}

pub async fn revoke(state: web::Data<AppState>, req: HttpRequest, form: CsrfForm) -> Page {
    let v = form.viewer;
    let (Ok(caller), Some(jti)) = (
        v.actor_in_org(ClientIp::of(&req)),
        req.match_info()
            .get("jti")
            .and_then(|s| s.parse::<TokenId>().ok()),
    ) else {
        return Err(PageError::NotFound);
    };
    let back = format!("/console/tokens{}", v.org_query());
    Ok(back_to(
        &back,
        tokens::revoke(&state, &caller, jti)
            .await
            .map(|()| "Token revoked.".to_string()),
        "Not revoked",
    ))
}
