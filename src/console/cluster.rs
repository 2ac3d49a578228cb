//! The cluster page, `/console/cluster` (sysadmins): nodes, drain/cordon/uncordon,
//! maintenance, and the rebalance plan.

use std::collections::HashMap;

use actix_web::{http::StatusCode, web, HttpRequest};
use serde::Deserialize;

use super::{
    form::{self, CsrfForm},
    query::flash,
    respond::{back_to, render, Page, PageError},
    viewer::Viewer,
    views::{Cluster, MoveRow, NodeRow},
};
use crate::{
    api::client_ip::ClientIp,
    auth::Scope,
    cluster::{ops, presences},
    error::Error,
    state::AppState,
    tenancy::access,
};

/// Only sysadmins see the cluster (with `scope`: `tenancy::access`'s rule, as for the
/// API); to anyone else it is not there.
fn sysadmin_only(v: &Viewer, scope: Scope) -> Result<(), PageError> {
    access::administers_cluster(&v.actor(None), scope).map_err(|_| PageError::NotFound)
}

pub async fn page(state: web::Data<AppState>, req: HttpRequest, v: Viewer) -> Page {
    sysadmin_only(&v, Scope::ClusterRead)?;
    let ttl = state.config.cluster.node_ttl;
    let nodes = presences::list(&state.db, ttl).await?;
    let (maintenance, status) = {
        let mut conn = crate::db::pool::get(&state.db).await?;
        let m = ops::maintenance(&mut conn).await;
        let s = ops::rebalance_status(&mut conn, ttl).await;
        (m?, s?)
    };
    let names: HashMap<String, String> = nodes
        .iter()
        .map(|n| (n.id.to_string(), n.node_id.clone()))
        .collect();
    let name = |id: String| names.get(&id).cloned().unwrap_or(id);
    let maintenance_text = match (&maintenance.reason, maintenance.expires_at) {
        (Some(reason), Some(until)) => format!("{reason} (until {})", until.format("%H:%M UTC")),
        _ => String::new(),
    };
    Ok(render(
        StatusCode::OK,
        &Cluster {
            nav: v.nav("cluster"),
            flash: flash(&req),
            csrf: v.csrf.clone(),
            nodes: nodes
                .iter()
                .map(|n| NodeRow {
                    name: n.node_id.clone(),
                    state: n.state.to_string(),
                    live: n.live,
                    leader: n.leader,
                    peer: n.kubo_peer_id.clone().unwrap_or_else(|| "—".into()),
                    placements: if n.placements.is_empty() {
                        "none".into()
                    } else {
                        n.placements
                            .iter()
                            .map(|(s, c)| format!("{s} {c}"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    },
                })
                .collect(),
            maintenance,
            maintenance_text,
            moves: status
                .moves
                .iter()
                .map(|m| MoveRow {
                    cid: m.cid.clone(),
                    from: name(m.from.to_string()),
                    to: name(m.to.to_string()),
                })
                .collect(),
            rebalancing: status.requested,
        },
    ))
}

/// `/console/cluster/nodes/{node}/{drain|cordon|uncordon}`.
pub async fn node(state: web::Data<AppState>, req: HttpRequest, form: CsrfForm) -> Page {
    let v = form.viewer;
    sysadmin_only(&v, Scope::ClusterWrite)?;
    let to = match req.match_info().get("action") {
        Some("drain") => ops::NodeState::Draining,
        Some("cordon") => ops::NodeState::Cordoned,
        Some("uncordon") => ops::NodeState::Active,
        _ => return Err(PageError::NotFound),
    };
    let which = req.match_info().get("node").unwrap_or_default().to_string();
    Ok(back_to(
        "/console/cluster",
        ops::set_node_state(
            &state.db,
            state.bus.clone(),
            &which,
            to,
            &v.actor(ClientIp::of(&req)),
        )
        .await
        .map(|node| format!("{} is now {}.", node.name, node.state)),
        "Nothing changed",
    ))
}

#[derive(Deserialize)]
pub struct MaintenanceForm {
    /// `true` turns maintenance on; anything else off.
    #[serde(default, deserialize_with = "form::text")]
    on: Option<String>,
    #[serde(default, deserialize_with = "form::text")]
    reason: Option<String>,
    /// How long, as a duration like `30m`.
    #[serde(default, deserialize_with = "form::text")]
    ttl: Option<String>,
}

pub async fn maintenance(
    state: web::Data<AppState>,
    req: HttpRequest,
    form: CsrfForm<MaintenanceForm>,
) -> Page {
    let CsrfForm { viewer: v, fields } = form;
    sysadmin_only(&v, Scope::ClusterWrite)?;
    let outcome = if fields.on.as_deref() == Some("true") {
        match humantime::parse_duration(fields.ttl.as_deref().unwrap_or("30m")) {
            Ok(ttl) => ops::maintenance_on(
                &state.db,
                fields.reason.unwrap_or_default(),
                ttl,
                &v.actor(ClientIp::of(&req)),
            )
            .await
            .map(|_| "Maintenance is on."),
            Err(e) => Err(Error::BadRequest(format!(
                "“For” must be a duration like 30m: {e}"
            ))),
        }
    } else {
        ops::maintenance_off(&state.db, &v.actor(ClientIp::of(&req)))
            .await
            .map(|_| "Maintenance is off.")
    };
    Ok(back_to(
        "/console/cluster",
        outcome.map(|done| done.to_string()),
        "Nothing changed",
    ))
}

pub async fn rebalance(state: web::Data<AppState>, req: HttpRequest, form: CsrfForm) -> Page {
    let v = form.viewer;
    sysadmin_only(&v, Scope::ClusterWrite)?;
    Ok(back_to(
        "/console/cluster",
        ops::request_rebalance(&state.db, &v.actor(ClientIp::of(&req)))
            .await
            .map(|()| "Rebalance requested; the leader applies it.".to_string()),
        "Nothing changed",
    ))
}
