//! Probes: `/v1/health` says the process runs; `/v1/ready` says this node can serve
//! (see [`crate::cluster::readiness`]).

use actix_web::{web, HttpResponse};
use apistos::api_operation;
use serde_json::json;

use crate::{cluster::readiness::Readiness, state::AppState};

/// `GET /v1/health`: 200 while the process runs.
#[api_operation(
    operation_id = "health",
    tag = "health",
    summary = "Liveness: 200 while the process runs",
    no_security
)]
pub async fn health() -> HttpResponse {
    HttpResponse::Ok().json(json!({ "status": "ok" }))
}

/// `GET /v1/ready`: 200 when Postgres and Kubo answer and the node is not draining,
/// else 503 naming what failed; one answer serves every probe for about a second.
#[api_operation(
    operation_id = "ready",
    tag = "health",
    summary = "Readiness: 200 when Postgres and this node's Kubo answer and it is not draining, else 503 naming what failed",
    no_security
)]
pub async fn ready(state: web::Data<AppState>, readiness: web::Data<Readiness>) -> HttpResponse {
    let verdict = readiness.verdict(&state).await;
    if verdict.ready {
        HttpResponse::Ok().json(verdict.body)
    } else {
        HttpResponse::ServiceUnavailable().json(verdict.body)
    }
}
