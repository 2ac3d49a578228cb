//! `/metrics` (at the root, not under `/v1`): the Prometheus text exposition, only for
//! clients in `server.metrics.allowCIDRs` (an empty list turns the endpoint off); the
//! middleware that counts every response by method and status class; and the one that
//! keeps made-up HTTP methods out of every label.

use actix_web::{
    body::MessageBody,
    dev::{ServiceRequest, ServiceResponse},
    http::Method,
    middleware::Next,
    web, HttpResponse,
};

use ipnet::IpNet;

use super::client_ip::ClientIp;
use crate::{
    config::Config,
    error::{Error, Result},
    state::AppState,
};

/// `GET /metrics`.
pub async fn scrape(state: web::Data<AppState>, client: ClientIp) -> Result<HttpResponse> {
    let allowed = &state.config.server.metrics.allow_cidrs;
    if allowed.is_empty() {
        return Err(Error::NotFound("metrics are turned off".into()));
    }
    if !allowed.iter().any(|net| net.contains(&client.0)) {
        return Err(Error::Forbidden(format!(
            "{} may not read metrics (server.metrics.allowCIDRs)",
            client.0
        )));
    }
    Ok(HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(state.metrics.render()?))
}

/// A warning for `serve` to log when the metrics allowlist admits a private network
/// while no proxy is trusted: behind a load balancer on that network every client
/// appears to be the balancer, so everyone could read `/metrics`.
pub fn exposure_warning(config: &Config) -> Option<String> {
    let server = &config.server;
    let private = server.metrics.allow_cidrs.iter().find(|net| match net {
        IpNet::V4(v4) => v4.network().is_private(),
        IpNet::V6(v6) => (v6.network().segments()[0] & 0xfe00) == 0xfc00,
    })?;
    if !server.trusted_proxies.is_empty() {
        return None;
    }
    Some(format!(
        "server.metrics.allowCIDRs admits the private network {private} and server.trustedProxies is empty: \
         behind a load balancer on a private network every client appears to come from it and may read /metrics. \
         Set server.trustedProxies to the load balancer's addresses, or answer /metrics with 404 at the load balancer \
         (docs/operations.md, \"Metrics behind a load balancer\")"
    ))
}

/// Middleware: counts the response in `anchorage_http_requests_total`.
pub async fn count(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> std::result::Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let metrics = req
        .app_data::<web::Data<AppState>>()
        .map(|s| s.metrics.clone());
    let method = req.method().clone();
    let res = next.call(req).await?;
    if let Some(metrics) = metrics {
        metrics.http_request(method.as_str(), res.status().as_u16());
    }
    Ok(res)
}

/// The methods HTTP defines; any other token a client sends becomes `OTHER`.
const STANDARD_METHODS: [Method; 9] = [
    Method::GET,
    Method::HEAD,
    Method::POST,
    Method::PUT,
    Method::DELETE,
    Method::PATCH,
    Method::OPTIONS,
    Method::CONNECT,
    Method::TRACE,
];

/// Middleware, outside everything that labels or logs a request: a method HTTP does not
/// define is renamed `OTHER`, so a client cannot mint label values (each made-up method
/// used to become new series in every latency histogram). No route takes such a
/// method, so the answer (405) is the same.
pub async fn bound_method(
    mut req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> std::result::Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    if !STANDARD_METHODS.contains(req.method()) {
        if let Ok(other) = Method::from_bytes(b"OTHER") {
            req.head_mut().method = other;
        }
    }
    next.call(req).await
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/metrics", web::get().to(scrape));
}
