//! `/v1/admin/…`: views for operators. A sysadmin sees the whole cluster; an org admin
//! sees only their own org.

use actix_web::{web, HttpRequest, HttpResponse};
use apistos::{api_operation, ApiComponent};
use futures_util::FutureExt;
use schemars::JsonSchema;
use serde::Serialize;

use super::openapi::Reply;
use crate::{
    audit::{self, AuditQuery, AuditView},
    auth::{Principal, Role, Scope},
    db::{org_tx, system_tx},
    error::{Error, Result},
    state::AppState,
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
    let mut query: AuditQuery = serde_urlencoded::from_str(req.query_string())
        .map_err(|e| Error::BadRequest(format!("audit query: {e}")))?;
    let limit = query.page_size()?;
    let claims = principal.0.clone();
    let results = match (claims.role, claims.org) {
        (Role::Sysadmin, _) => {
            principal.require(Scope::ClusterRead)?;
            system_tx(&state.db, |conn| {
                async move { audit::query(conn, &query).await }.boxed()
            })
            .await?
        }
        (Role::Orgadmin, Some(org)) => {
            principal.require(Scope::MembersRead)?;
            if query.org.is_some_and(|o| o != org) {
                return Err(Error::Forbidden(
                    "an org admin sees only their own org".into(),
                ));
            }
            query.org = Some(org);
            org_tx(&state.db, org, |conn| {
                async move { audit::query(conn, &query).await }.boxed()
            })
            .await?
        }
        _ => {
            return Err(Error::Forbidden(
                "the audit log is for sysadmins and org admins".into(),
            ))
        }
    };
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
