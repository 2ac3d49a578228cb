//! `/v1/admin/…`: views for operators. A sysadmin sees the whole cluster; an org admin
//! sees only their own org.

use actix_web::{web, HttpRequest, HttpResponse};
use apistos::{api_operation, ApiComponent};
use schemars::JsonSchema;
use serde::Serialize;

use serde_json::json;

use super::{
    client_ip::ClientIp,
    openapi::{Doc, Reply},
};
use crate::{
    api::authn::Principal,
    audit::{AuditQuery, AuditView},
    auth::Scope,
    cluster::ops,
    error::{Error, Result},
    state::AppState,
    tenancy::{access, audit_log},
};

/// A page of audit entries, newest first.
#[derive(Debug, Serialize, JsonSchema, ApiComponent)]
pub struct AuditPage {
    /// Entries on this page.
    pub count: usize,
    #[schemars(with = "Vec<serde_json::Value>")]
    pub results: Vec<AuditView>,
    /// Pass as `before` for the next page; absent on the last one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
}

#[api_operation(
    operation_id = "listAudit",
    tag = "admin",
    summary = "Audit log",
    description = "Audit entries newest first, filtered by actor, action, target, org and time range (since inclusive, until exclusive), paged with limit (1-1000, default 100) and before (the previous page's next). A sysadmin (cluster:read) sees every entry; an org admin (members:read) only their org's."
)]
pub async fn audit(
    state: web::Data<AppState>,
    principal: Principal,
    req: HttpRequest,
) -> Result<Reply<200, AuditPage>> {
    let query: AuditQuery = serde_urlencoded::from_str(req.query_string())
        .map_err(|e| Error::BadRequest(format!("audit query: {e}")))?;
    let limit = query.page_size()?;
    let by = principal.actor(ClientIp::of(&req));
    let results = audit_log::search(&state, &by, query).await?;
    // A full page may have a successor; a short one is the last.
    let next = (results.len() as i64 == limit)
        .then(|| results.last().map(|r| r.id.to_string()))
        .flatten();
    Ok(HttpResponse::Ok()
        .json(AuditPage {
            count: results.len(),
            results: results.into_iter().map(AuditView::from).collect(),
            next,
        })
        .into())
}

/// Any admin answer (documented as a JSON object).
#[derive(Debug, Serialize, JsonSchema, ApiComponent)]
#[serde(transparent)]
pub struct AdminJson(
    #[schemars(with = "serde_json::Map<String, serde_json::Value>")] serde_json::Value,
);

fn admin_json(value: impl Serialize) -> Result<AdminJson> {
    serde_json::to_value(value)
        .map(AdminJson)
        .map_err(|e| Error::Internal(e.to_string()))
}

/// Cluster administration is for sysadmins only.
/// Fails unless the caller may administer the cluster with `scope`: for the views, and
/// before a body is read (so a refusal is a 403 whatever the body holds); the operator
/// commands check it again themselves.
fn sysadmin(principal: &Principal, scope: Scope) -> Result<()> {
    access::administers_cluster(&principal.actor(None), scope)
}

#[api_operation(
    operation_id = "listNodes",
    tag = "admin",
    summary = "Cluster nodes",
    description = "Every node: name, id, state, liveness, leader, last seen, Kubo peer id, placements per state, cache stats"
)]
pub async fn nodes(
    state: web::Data<AppState>,
    principal: Principal,
) -> Result<Reply<200, AdminJson>> {
    sysadmin(&principal, Scope::ClusterRead)?;
    let list = crate::cluster::presences::list(&state.db, state.config.cluster.node_ttl).await?;
    Ok(HttpResponse::Ok()
        .json(admin_json(json!({ "count": list.len(), "results": list }))?)
        .into())
}

async fn node_state(
    state: &AppState,
    principal: &Principal,
    req: &HttpRequest,
    to: ops::NodeState,
) -> Result<HttpResponse> {
    let which = req.match_info().get("node").unwrap_or_default().to_string();
    let node = ops::set_node_state(
        &state.db,
        state.bus.clone(),
        &which,
        to,
        &principal.actor(ClientIp::of(req)),
    )
    .await?;
    Ok(HttpResponse::Ok().json(node))
}

#[api_operation(
    operation_id = "drainNode",
    tag = "admin",
    summary = "Drain a node",
    description = "No new placements; its replicas are copied elsewhere, then removed from it once the copies are pinned"
)]
pub async fn drain(
    state: web::Data<AppState>,
    principal: Principal,
    req: HttpRequest,
) -> Result<Reply<200, AdminJson>> {
    Ok(
        node_state(&state, &principal, &req, ops::NodeState::Draining)
            .await?
            .into(),
    )
}

#[api_operation(
    operation_id = "cordonNode",
    tag = "admin",
    summary = "Cordon a node",
    description = "No new placements; nothing is moved"
)]
pub async fn cordon(
    state: web::Data<AppState>,
    principal: Principal,
    req: HttpRequest,
) -> Result<Reply<200, AdminJson>> {
    Ok(
        node_state(&state, &principal, &req, ops::NodeState::Cordoned)
            .await?
            .into(),
    )
}

#[api_operation(
    operation_id = "uncordonNode",
    tag = "admin",
    summary = "Return a node to active"
)]
pub async fn uncordon(
    state: web::Data<AppState>,
    principal: Principal,
    req: HttpRequest,
) -> Result<Reply<200, AdminJson>> {
    Ok(node_state(&state, &principal, &req, ops::NodeState::Active)
        .await?
        .into())
}

/// `PUT /v1/admin/maintenance`.
#[derive(Debug, serde::Deserialize, JsonSchema, ApiComponent)]
#[serde(deny_unknown_fields)]
pub struct MaintenanceOn {
    pub reason: String,
    /// e.g. `30m`.
    pub ttl: String,
}

#[api_operation(
    operation_id = "getMaintenance",
    tag = "admin",
    summary = "Maintenance mode"
)]
pub async fn get_maintenance(
    state: web::Data<AppState>,
    principal: Principal,
) -> Result<Reply<200, AdminJson>> {
    sysadmin(&principal, Scope::ClusterRead)?;
    let mut conn = crate::db::pool::get(&state.db).await?;
    Ok(HttpResponse::Ok()
        .json(admin_json(ops::maintenance(&mut conn).await?)?)
        .into())
}

#[api_operation(
    operation_id = "maintenanceOn",
    tag = "admin",
    summary = "Turn maintenance on",
    description = "Pauses re-placement and rebalancing until turned off or the TTL passes",
    skip_args = "payload"
)]
pub async fn put_maintenance(
    state: web::Data<AppState>,
    principal: Principal,
    req: HttpRequest,
    payload: web::Payload,
    _body: Doc<web::Json<MaintenanceOn>>,
) -> Result<Reply<200, AdminJson>> {
    sysadmin(&principal, Scope::ClusterWrite)?;
    let body: MaintenanceOn =
        crate::api::body::read_json(&req, payload, state.config.server.max_body_bytes).await?;
    let ttl = humantime::parse_duration(&body.ttl)
        .map_err(|e| Error::BadRequest(format!("ttl '{}': {e}", body.ttl)))?;
    let m = ops::maintenance_on(
        &state.db,
        body.reason,
        ttl,
        &principal.actor(ClientIp::of(&req)),
    )
    .await?;
    Ok(HttpResponse::Ok().json(admin_json(m)?).into())
}

#[api_operation(
    operation_id = "maintenanceOff",
    tag = "admin",
    summary = "Turn maintenance off"
)]
pub async fn delete_maintenance(
    state: web::Data<AppState>,
    principal: Principal,
    req: HttpRequest,
) -> Result<Reply<200, AdminJson>> {
    let m = ops::maintenance_off(&state.db, &principal.actor(ClientIp::of(&req))).await?;
    Ok(HttpResponse::Ok().json(admin_json(m)?).into())
}

#[api_operation(
    operation_id = "rebalancePlan",
    tag = "admin",
    summary = "Rebalance plan",
    description = "The moves the leader would start now, how many are in flight, and whether an apply is running"
)]
pub async fn rebalance_plan(
    state: web::Data<AppState>,
    principal: Principal,
) -> Result<Reply<200, AdminJson>> {
    sysadmin(&principal, Scope::ClusterRead)?;
    let mut conn = crate::db::pool::get(&state.db).await?;
    let status = ops::rebalance_status(&mut conn, state.config.cluster.node_ttl).await?;
    Ok(HttpResponse::Ok().json(admin_json(status)?).into())
}

#[api_operation(
    operation_id = "rebalanceApply",
    tag = "admin",
    summary = "Apply the rebalance plan",
    description = "The leader applies it round by round, copy then remove, until nothing is left to move"
)]
pub async fn rebalance_apply(
    state: web::Data<AppState>,
    principal: Principal,
    req: HttpRequest,
) -> Result<Reply<202, AdminJson>> {
    ops::request_rebalance(&state.db, &principal.actor(ClientIp::of(&req))).await?;
    Ok(HttpResponse::Accepted()
        .json(admin_json(json!({ "requested": true }))?)
        .into())
}

#[api_operation(
    operation_id = "cacheStats",
    tag = "admin",
    summary = "Cache statistics per node"
)]
pub async fn cache_stats(
    state: web::Data<AppState>,
    principal: Principal,
) -> Result<Reply<200, AdminJson>> {
    sysadmin(&principal, Scope::ClusterRead)?;
    let list = crate::cluster::presences::list(&state.db, state.config.cluster.node_ttl).await?;
    let stats: serde_json::Map<String, serde_json::Value> = list
        .into_iter()
        .map(|n| {
            (
                n.node_id,
                serde_json::to_value(n.caches).unwrap_or_default(),
            )
        })
        .collect();
    Ok(HttpResponse::Ok().json(admin_json(stats)?).into())
}

#[api_operation(
    operation_id = "requeue",
    tag = "admin",
    summary = "Re-queue placements",
    description = "Gives matching placements (by cid, node, status: failed by default) a fresh job",
    skip_args = "payload"
)]
pub async fn requeue(
    state: web::Data<AppState>,
    principal: Principal,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<Reply<200, AdminJson>> {
    sysadmin(&principal, Scope::ClusterWrite)?;
    let filter: ops::RequeueFilter =
        crate::api::body::read_json(&req, payload, state.config.server.max_body_bytes).await?;
    let n = ops::requeue(
        &state.db,
        state.jobs.as_ref(),
        filter,
        &principal.actor(ClientIp::of(&req)),
    )
    .await?;
    Ok(HttpResponse::Ok()
        .json(admin_json(json!({ "requeued": n }))?)
        .into())
}
