//! `/metrics` (at the root, not under `/v1`): the Prometheus text exposition, only for
//! clients in `server.metrics.allowCIDRs` (an empty list turns the endpoint off); and
//! the middleware that counts every response by method and status class.

use actix_web::{
    body::MessageBody,
    dev::{ServiceRequest, ServiceResponse},
    middleware::Next,
    web, HttpResponse,
};

use super::client_ip::ClientIp;
use crate::{
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

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/metrics", web::get().to(scrape));
}
