//! `/v1/tokens`: mint, list and revoke API tokens.

use actix_web::{web, HttpRequest, HttpResponse};
use apistos::api_operation;

use super::{
    body::read_json,
    client_ip::ClientIp,
    openapi::{Doc, Reply},
};
use crate::{
    api::authn::Caller,
    error::{Error, Result},
    ids::TokenId,
    state::AppState,
    tenancy::tokens::{self, CreatedToken, NewToken, TokenList},
};

#[api_operation(
    operation_id = "createToken",
    tag = "tokens",
    summary = "Mint an API token",
    description = "Mints a token for the caller's org with at most the caller's role and scopes; the JWT is returned once and never stored",
    skip_args = "payload"
)]
pub async fn create(
    state: web::Data<AppState>,
    caller: Caller,
    req: HttpRequest,
    payload: web::Payload,
    _body: Doc<web::Json<NewToken>>,
) -> Result<Reply<201, CreatedToken>> {
    let body: NewToken = read_json(&req, payload, state.config.server.max_body_bytes).await?;
    let created = tokens::create(&state, &caller.actor(ClientIp::of(&req)), body).await?;
    Ok(HttpResponse::Created().json(created).into())
}

#[api_operation(
    operation_id = "listTokens",
    tag = "tokens",
    summary = "List API tokens",
    description = "The caller's own tokens (every token of the org for org admins), metadata only"
)]
pub async fn list(state: web::Data<AppState>, caller: Caller) -> Result<Reply<200, TokenList>> {
    let results = tokens::list(&state, &caller.actor(None)).await?;
    Ok(HttpResponse::Ok()
        .json(TokenList {
            count: results.len(),
            results,
        })
        .into())
}

#[api_operation(
    operation_id = "revokeToken",
    tag = "tokens",
    summary = "Revoke an API token",
    description = "Denylists the token until its natural expiry; the next request with it is refused"
)]
pub async fn revoke(
    state: web::Data<AppState>,
    caller: Caller,
    req: HttpRequest,
    _jti: Doc<web::Path<String>>,
) -> Result<Reply<204>> {
    let jti: TokenId = req
        .match_info()
        .get("jti")
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| Error::NotFound("no such token".into()))?;
    tokens::revoke(&state, &caller.actor(ClientIp::of(&req)), jti).await?;
    Ok(HttpResponse::NoContent().finish().into())
}
