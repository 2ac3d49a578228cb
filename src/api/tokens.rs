//! `/v1/tokens`: mint, list and revoke API tokens.

use actix_web::{web, HttpRequest, HttpResponse};

use super::body::read_json;
use crate::{
    auth::Caller,
    error::{Error, Result},
    ids::TokenId,
    state::AppState,
    tenancy::tokens::{self, NewToken},
};

/// `POST /v1/tokens`: 201 with the JWT (shown once) and its metadata.
pub async fn create(
    state: web::Data<AppState>,
    caller: Caller,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse> {
    let body: NewToken = read_json(&req, payload, state.config.server.max_body_bytes).await?;
    let created = tokens::create(&state, &caller, body, req.peer_addr().map(|a| a.ip())).await?;
    Ok(HttpResponse::Created().json(created))
}

/// `GET /v1/tokens`: metadata only, newest first.
pub async fn list(state: web::Data<AppState>, caller: Caller) -> Result<HttpResponse> {
    let tokens = tokens::list(&state, &caller).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "count": tokens.len(), "results": tokens })))
}

/// `DELETE /v1/tokens/{jti}`: 204; the token is refused from the next request on.
pub async fn revoke(
    state: web::Data<AppState>,
    caller: Caller,
    req: HttpRequest,
) -> Result<HttpResponse> {
    let jti: TokenId = req
        .match_info()
        .get("jti")
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| Error::NotFound("no such token".into()))?;
    tokens::revoke(&state, &caller, jti, req.peer_addr().map(|a| a.ip())).await?;
    Ok(HttpResponse::NoContent().finish())
}
