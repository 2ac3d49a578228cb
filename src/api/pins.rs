//! The Pinning Services API: `/v1/pins` and `/v1/pins/{requestid}`. Handlers authenticate
//! first (so a bad token is a 401 whatever else is wrong), then parse, then call
//! `pins::service`.

use actix_web::{http::header, web, HttpRequest, HttpResponse};
use futures_util::StreamExt;

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

/// Reads and validates a `Pin` body: JSON content type, size cap, spec limits.
async fn read_pin(
    state: &AppState,
    req: &HttpRequest,
    mut payload: web::Payload,
) -> Result<PinSpec> {
    let is_json = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|mime| {
            let mime = mime.trim().to_ascii_lowercase();
            mime == "application/json" || mime.ends_with("+json")
        })
        .unwrap_or(false);
    if !is_json {
        return Err(Error::BadRequest(
            "Content-Type must be application/json".into(),
        ));
    }
    let limit = state.config.server.max_body_bytes;
    let mut body = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| Error::BadRequest(format!("reading the body: {e}")))?;
        if body.len() + chunk.len() > limit {
            return Err(Error::PayloadTooLarge(format!(
                "request body exceeds {limit} bytes"
            )));
        }
        body.extend_from_slice(&chunk);
    }
    let parsed: PinBody = serde_json::from_slice(&body)
        .map_err(|e| Error::BadRequest(format!("invalid JSON body: {e}")))?;
    PinSpec::from_body(parsed)
}
