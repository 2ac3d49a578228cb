//! The audit page, `/console/audit`: the log filtered by actor, action and target, with
//! paging — every entry for sysadmins, their own org's for org admins.

use actix_web::{http::StatusCode, web, HttpRequest};

use super::{
    query::{flash, next_page, query},
    respond::{render, Page, PageError},
    viewer::Viewer,
    views::{Audit, AuditFilter, AuditRow},
};
use crate::{audit::AuditQuery, error::Error, state::AppState, tenancy::audit_log};

/// Entries per page.
const PAGE: usize = 50;

pub async fn page(state: web::Data<AppState>, req: HttpRequest, v: Viewer) -> Page {
    let q = query(&req);
    let text = |k: &str| q.get(k).cloned().filter(|s| !s.is_empty());
    let filter = AuditQuery {
        actor: text("actor"),
        action: text("action"),
        target: text("target"),
        before: q.get("before").and_then(|b| b.parse().ok()),
        limit: Some(PAGE as i64),
        ..Default::default()
    };
    // The same rule as the API's (tenancy::audit_log); a page that may not be read is
    // as absent as one that does not exist.
    let entries = match audit_log::search(&state, &v.actor(None), filter.clone()).await {
        Ok(entries) => entries,
        Err(Error::Forbidden(_) | Error::NotFound(_)) => return Err(PageError::NotFound),
        Err(e) => return Err(e.into()),
    };
    let next = (entries.len() == PAGE)
        .then(|| entries.last())
        .flatten()
        .map(|last| next_page(&q, &[("before", last.id.to_string())]));
    Ok(render(
        StatusCode::OK,
        &Audit {
            nav: v.nav("audit"),
            flash: flash(&req),
            org: v.org.map(|o| o.to_string()),
            filter: AuditFilter {
                actor: filter.actor.unwrap_or_default(),
                action: filter.action.unwrap_or_default(),
                target: filter.target.unwrap_or_default(),
            },
            entries: entries
                .into_iter()
                .map(|e| AuditRow {
                    at: e.at.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
                    actor: e.actor,
                    action: e.action,
                    target: e.target,
                    ip: e
                        .source_ip
                        .map(|n| n.addr().to_string())
                        .unwrap_or_default(),
                })
                .collect(),
            next,
        },
    ))
}
