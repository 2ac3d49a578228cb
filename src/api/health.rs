//! Probes: `/v1/health` says the process runs; `/v1/ready` says this node can serve
//! (Postgres answers and its Kubo answers `id`).

use std::time::Duration;

use actix_web::{web, HttpResponse};
use apistos::api_operation;
use serde_json::json;

use crate::{cluster::ops, state::AppState};

const PROBE_TIMEOUT: Duration = Duration::from_secs(3);

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
/// else 503 naming what failed.
#[api_operation(
    operation_id = "ready",
    tag = "health",
    summary = "Readiness: 200 when Postgres and this node's Kubo answer and it is not draining, else 503 naming what failed",
    no_security
)]
pub async fn ready(state: web::Data<AppState>) -> HttpResponse {
    let (node_state, kubo) = tokio::join!(
        tokio::time::timeout(PROBE_TIMEOUT, ops::own_state(&state.db, state.node)),
        tokio::time::timeout(PROBE_TIMEOUT, state.kubo.id()),
    );
    let (postgres, draining) = match node_state {
        Ok(Ok(s)) => (Ok(()), s == "draining"),
        Ok(Err(e)) => (Err(e.to_string()), false),
        Err(_) => (Err("timed out".to_string()), false),
    };
    let kubo = match kubo {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("timed out".to_string()),
    };
    let verdict = |r: &Result<(), String>| match r {
        Ok(()) => "ok".to_string(),
        Err(_) => "unavailable".to_string(),
    };
    let node = if draining {
        Err("draining".to_string())
    } else {
        Ok(())
    };
    let checks = json!({
        "postgres": verdict(&postgres),
        "kubo": verdict(&kubo),
        "node": if draining { "draining" } else { "ok" },
    });
    let failed: Vec<&str> = [("postgres", &postgres), ("kubo", &kubo), ("node", &node)]
        .iter()
        .filter(|(_, r)| r.is_err())
        .map(|(name, r)| {
            if let Err(e) = r {
                tracing::warn!(check = name, error = %e, "readiness check failed");
            }
            *name
        })
        .collect();
    if failed.is_empty() {
        HttpResponse::Ok().json(json!({ "status": "ready", "checks": checks }))
    } else {
        HttpResponse::ServiceUnavailable().json(json!({
            "error": {
                "reason": "NOT_READY",
                "details": format!("not ready: {} unavailable", failed.join(" and ")),
            },
            "checks": checks,
        }))
    }
}
