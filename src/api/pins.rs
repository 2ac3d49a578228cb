//! The Pinning Services API: `/v1/pins` and `/v1/pins/{requestid}`. Handlers authenticate
//! first (so a bad token is a 401 whatever else is wrong), then parse, then call
//! `pins::service`.

use actix_web::{web, HttpRequest, HttpResponse};

use super::body::read_json;
use crate::{
    auth::{Caller, Scope},
    error::{Error, Result},
    ids::RequestId,
    pins::{
        filter::ListQuery,
        model::{PinBody, PinSpec},
        service,
    },
    state::AppState,
};

/// `GET /v1/pins`
pub async fn list(
    state: web::Data<AppState>,
    caller: Caller,
    req: HttpRequest,
) -> Result<HttpResponse> {
    caller.require(Scope::PinRead)?;
    let query = ListQuery::parse(req.query_string())?;
    Ok(HttpResponse::Ok().json(service::list(&state, caller.org, query).await?))
}

/// `POST /v1/pins`
pub async fn add(
    state: web::Data<AppState>,
    caller: Caller,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse> {
    caller.require(Scope::PinWrite)?;
    let spec = read_pin(&state, &req, payload).await?;
    Ok(HttpResponse::Accepted().json(service::add(&state, caller.org, spec).await?))
}

/// `GET /v1/pins/{requestid}`
pub async fn get(
    state: web::Data<AppState>,
    caller: Caller,
    req: HttpRequest,
) -> Result<HttpResponse> {
    caller.require(Scope::PinRead)?;
    let id = request_id(&req)?;
    Ok(HttpResponse::Ok().json(service::get(&state, caller.org, id).await?))
}

/// `POST /v1/pins/{requestid}`
pub async fn replace(
    state: web::Data<AppState>,
    caller: Caller,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse> {
    caller.require(Scope::PinWrite)?;
    let id = request_id(&req)?;
    let spec = read_pin(&state, &req, payload).await?;
    Ok(HttpResponse::Accepted().json(service::replace(&state, caller.org, id, spec).await?))
}

/// `DELETE /v1/pins/{requestid}`
pub async fn delete(
    state: web::Data<AppState>,
    caller: Caller,
    req: HttpRequest,
) -> Result<HttpResponse> {
    caller.require(Scope::PinWrite)?;
    let id = request_id(&req)?;
    service::remove(&state, caller.org, id).await?;
    Ok(HttpResponse::Accepted().finish())
}

/// A malformed request id names no pin request: 404, like an unknown one.
fn request_id(req: &HttpRequest) -> Result<RequestId> {
    req.match_info()
        .get("requestid")
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| Error::NotFound("The specified resource was not found".into()))
}

/// Reads and validates a `Pin` body.
async fn read_pin(state: &AppState, req: &HttpRequest, payload: web::Payload) -> Result<PinSpec> {
    let body: PinBody = read_json(req, payload, state.config.server.max_body_bytes).await?;
    PinSpec::from_body(body)
}
