//! The audit page, `/console/audit`: the log filtered by actor, action and target, with
//! paging — every entry for sysadmins, their own org's for org admins.

use actix_web::{http::StatusCode, web, HttpRequest};
use futures_util::FutureExt;

use super::{
    query::{flash, query},
    respond::{render, Page, PageError},
    viewer::{AuditScope, Viewer},
    views::{Audit, AuditFilter, AuditRow},
};
use crate::{
    audit::{self, AuditQuery},
    db::{org_tx, system_tx},
    state::AppState,
};

/// Entries per page.
const PAGE: usize = 50;

pub async fn page(state: web::Data<AppState>, req: HttpRequest, v: Viewer) -> Page {
    let q = query(&req);
    let text = |k: &str| q.get(k).cloned().filter(|s| !s.is_empty());
    let mut filter = AuditQuery {
        actor: text("actor"),
        action: text("action"),
        target: text("target"),
        before: q.get("before").and_then(|b| b.parse().ok()),
        limit: Some(PAGE as i64),
        ..Default::default()
    };
    let entries = match v.audit_scope().ok_or(PageError::NotFound)? {
        AuditScope::Everything => {
            let f = filter.clone();
            system_tx(&state.db, move |conn| {
                async move { audit::query(conn, &f).await }.boxed()
            })
            .await?
        }
        AuditScope::Org(org) => {
            filter.org = Some(org);
            let f = filter.clone();
            org_tx(&state.db, org, move |conn| {
                async move { audit::query(conn, &f).await }.boxed()
            })
            .await?
        }
    };
    let next = (entries.len() == PAGE)
        .then(|| entries.last())
        .flatten()
        .map(|last| {
            let mut next: Vec<(String, String)> = q
                .iter()
                .filter(|(k, _)| *k != "before" && *k != "flash")
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            next.push(("before".into(), last.id.to_string()));
            serde_urlencoded::to_string(next).unwrap_or_default()
        });
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
