//! The Pinning Services API: `/v1/pins` and `/v1/pins/{requestid}`. Handlers authenticate
//! first (so a bad token is a 401 whatever else is wrong), then parse, then call
//! `pins::service`, which checks the token's scope. `Doc<…>` arguments and `Reply<…>`
//! only feed the OpenAPI document.

use actix_web::{web, HttpRequest, HttpResponse};
use apistos::api_operation;

use super::{
    body::read_json,
    openapi::{params::ListPinsParams, schema, Doc, Reply},
};
use crate::{
    api::authn::Caller,
    error::{Error, Result},
    ids::RequestId,
    pins::{
        filter::ListQuery,
        model::{PinBody, PinSpec},
        service,
    },
    state::AppState,
};

#[api_operation(
    operation_id = "getPins",
    tag = "pins",
    summary = "List pin objects",
    description = "List all the pin objects, matching optional filters; when no filter is provided, only successful pins are returned"
)]
pub async fn list(
    state: web::Data<AppState>,
    caller: Caller,
    req: HttpRequest,
    _doc: Doc<ListPinsParams>,
) -> Result<Reply<200, schema::PinResults>> {
    let query = ListQuery::parse(req.query_string())?;
    Ok(HttpResponse::Ok()
        .json(service::list(&state, &caller.actor(None), query).await?)
        .into())
}

#[api_operation(
    operation_id = "addPin",
    tag = "pins",
    summary = "Add pin object",
    description = "Add a new pin object for the current access token",
    skip_args = "payload"
)]
pub async fn add(
    state: web::Data<AppState>,
    caller: Caller,
    req: HttpRequest,
    payload: web::Payload,
    _body: Doc<web::Json<schema::Pin>>,
) -> Result<Reply<202, schema::PinStatus>> {
    let spec = read_pin(&state, &req, payload).await?;
    Ok(HttpResponse::Accepted()
        .json(service::add(&state, &caller.actor(None), spec).await?)
        .into())
}

#[api_operation(
    operation_id = "getPinByRequestId",
    tag = "pins",
    summary = "Get pin object",
    description = "Get a pin object and its status"
)]
pub async fn get(
    state: web::Data<AppState>,
    caller: Caller,
    req: HttpRequest,
    _id: Doc<web::Path<String>>,
) -> Result<Reply<200, schema::PinStatus>> {
    let id = request_id(&req)?;
    Ok(HttpResponse::Ok()
        .json(service::get(&state, &caller.actor(None), id).await?)
        .into())
}

#[api_operation(
    operation_id = "replacePinByRequestId",
    tag = "pins",
    summary = "Replace pin object",
    description = "Replace an existing pin object (shortcut for executing remove and add operations in one step to avoid unnecessary garbage collection of blocks present in both recursive pins)",
    skip_args = "payload"
)]
pub async fn replace(
    state: web::Data<AppState>,
    caller: Caller,
    req: HttpRequest,
    payload: web::Payload,
    _id: Doc<web::Path<String>>,
    _body: Doc<web::Json<schema::Pin>>,
) -> Result<Reply<202, schema::PinStatus>> {
    let id = request_id(&req)?;
    let spec = read_pin(&state, &req, payload).await?;
    Ok(HttpResponse::Accepted()
        .json(service::replace(&state, &caller.actor(None), id, spec).await?)
        .into())
}

#[api_operation(
    operation_id = "deletePinByRequestId",
    tag = "pins",
    summary = "Remove pin object",
    description = "Remove a pin object"
)]
pub async fn delete(
    state: web::Data<AppState>,
    caller: Caller,
    req: HttpRequest,
    _id: Doc<web::Path<String>>,
) -> Result<Reply<202>> {
    let id = request_id(&req)?;
    service::remove(&state, &caller.actor(None), id).await?;
    Ok(HttpResponse::Accepted().finish().into())
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
