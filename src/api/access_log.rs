//! One log line per request: method, route pattern (never the raw path, which may carry
//! ids), status, latency, org, request id and client IP. Headers are never logged, so no
//! token, cookie or key can reach the log.

use std::time::Instant;

use actix_web::{
    body::MessageBody,
    dev::{ServiceRequest, ServiceResponse},
    middleware::Next,
    HttpMessage,
};

use super::client_ip::ClientIp;
use crate::ids::OrgId;

/// The org a request acted in, recorded by the `Caller` extractor for this log line.
#[derive(Debug, Clone, Copy)]
pub struct LoggedOrg(pub OrgId);

/// Middleware: logs the request when its response is ready.
pub async fn middleware(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    let method = req.method().clone();
    let res = next.call(req).await?;
    let req = res.request();
    let route = req.match_pattern().unwrap_or_else(|| "UNMATCHED".into());
    let org = req.extensions().get::<LoggedOrg>().map(|o| o.0.to_string());
    let client = ClientIp::of(req).map(|ip| ip.to_string());
    let requestid = req.match_info().get("requestid").map(str::to_string);
    tracing::info!(
        target: "anchorage::access",
        method = %method,
        route = %route,
        status = res.status().as_u16(),
        latency_ms = started.elapsed().as_secs_f64() * 1000.0,
        org = org.as_deref().unwrap_or("-"),
        requestid = requestid.as_deref().unwrap_or("-"),
        client_ip = client.as_deref().unwrap_or("-"),
        "request"
    );
    Ok(res)
}
