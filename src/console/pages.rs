//! The console's routes. Handlers resolve the viewer, call the same domain functions as
//! the JSON API, and render a template or redirect back with a message.

use std::collections::HashMap;

use actix_web::{http::StatusCode, web, HttpRequest, HttpResponse};
use futures_util::FutureExt;

use super::{
    back_to, cleared_cookie, error_page, not_found, redirect, redirect_with, refused, render,
    viewer, views::*, Resolved, Viewer,
};
use crate::{
    api::client_ip::ClientIp,
    audit::{self, AuditQuery},
    auth::{oidc::public_url, Role, Scope},
    cluster::{ops, presences},
    db::{org_tx, system_tx},
    error::{Error, Result},
    ids::{RequestId, TokenId},
    pins::{
        filter::ListQuery,
        model::{format_created, PinBody, PinSpec},
        service,
    },
    state::AppState,
    tenancy::{members, orgs, signin, tokens},
};

/// Pins per page.
const PAGE: i64 = 20;

macro_rules! viewer_or_return {
    ($state:expr, $req:expr) => {
        match viewer(&$state, &$req).await {
            Resolved::Viewer(v) => v,
            Resolved::Respond(r) => return r,
        }
    };
}

/// A posted form: every field, repeats kept (scope checkboxes).
struct Form(Vec<(String, String)>);

impl Form {
    fn parse(body: &[u8]) -> Self {
        Self(serde_urlencoded::from_bytes(body).unwrap_or_default())
    }

    fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.trim())
            .filter(|v| !v.is_empty())
    }

    fn all(&self, key: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
            .collect()
    }

    /// The CSRF field matches the session's token.
    fn csrf_ok(&self, v: &Viewer) -> bool {
        self.get("csrf").is_some_and(|t| csrf_matches(t, &v.csrf))
    }
}

/// Compares a posted CSRF token with the session's in constant time, so response
/// timing tells an attacker nothing about how much of a guess was right.
fn csrf_matches(posted: &str, expected: &str) -> bool {
    use subtle::ConstantTimeEq;
    posted.len() == expected.len() && bool::from(posted.as_bytes().ct_eq(expected.as_bytes()))
}

fn query(req: &HttpRequest) -> HashMap<String, String> {
    serde_urlencoded::from_str(req.query_string()).unwrap_or_default()
}

fn flash(req: &HttpRequest) -> Option<String> {
    query(req).remove("flash")
}

fn actor(v: &Viewer) -> String {
    format!("{}:{}", v.claims.sub, v.claims.jti)
}

fn nav(v: &Viewer, current: &'static str) -> Option<Nav> {
    let org_name = v
        .org
        .and_then(|o| v.me.orgs.iter().find(|m| m.id == o).map(|m| m.name.clone()));
    Some(Nav {
        current,
        sysadmin: v.sysadmin(),
        orgadmin: v.role_in_org() == Some("orgadmin"),
        who: v
            .me
            .email
            .clone()
            .or_else(|| v.me.name.clone())
            .unwrap_or_else(|| v.user.to_string()),
        org_name,
        org_query: v.org_query(),
        csrf: v.csrf.clone(),
    })
}

/// `/console` → pins when signed in, else sign-in.
async fn index(state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    match viewer(&state, &req).await {
        Resolved::Viewer(_) => redirect("/console/pins"),
        Resolved::Respond(r) => r,
    }
}

async fn sign_in_page(state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    render(
        StatusCode::OK,
        &SignIn {
            nav: None,
            flash: flash(&req),
            provider: state.oidc.is_some(),
        },
    )
}

/// Without an identity provider (`dev`): sign in with an API token.
async fn sign_in_token(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Bytes,
) -> HttpResponse {
    // No session yet, so no CSRF token: the form must come from this site, or another
    // site could sign the browser into the attacker's account (login CSRF).
    if !crate::api::authn::same_origin(&req, &state) {
        return refused();
    }
    let form = Form::parse(&body);
    let Some(token) = form.get("token") else {
        return redirect_with("/console/sign-in", "Paste an API token to sign in.");
    };
    match signin::with_token(&state, token, ClientIp::of(&req)).await {
        Ok(opened) => {
            let max_age = opened.max_age_secs();
            let cookie = crate::api::auth::session_cookie(&state, opened.secret, max_age);
            let mut res = redirect("/console/pins");
            let _ = res.add_cookie(&cookie);
            res
        }
        Err(e) => redirect_with(
            "/console/sign-in",
            &format!("Sign-in failed: {}", e.public_details()),
        ),
    }
}

async fn sign_out(state: web::Data<AppState>, req: HttpRequest, body: web::Bytes) -> HttpResponse {
    let v = viewer_or_return!(state, req);
    if !Form::parse(&body).csrf_ok(&v) {
        return refused();
    }
    if let Err(e) = signin::logout(&state, &v.secret, ClientIp::of(&req)).await {
        return error_page(&e);
    }
    let mut res = redirect("/console/sign-in");
    let _ = res.add_cookie(&cleared_cookie());
    res
}

async fn pins_page(state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    let v = viewer_or_return!(state, req);
    let q = query(&req);
    let wanted = PinsQuery {
        cid: q.get("cid").cloned().unwrap_or_default(),
        name: q.get("name").cloned().unwrap_or_default(),
        status: q.get("status").cloned().unwrap_or_else(|| "any".into()),
    };
    let Some(org) = v.org else {
        return render(StatusCode::OK, &empty_pins(&v, &req, wanted));
    };
    let mut api_query: Vec<(&str, String)> = vec![("limit", PAGE.to_string())];
    if !wanted.cid.is_empty() {
        api_query.push(("cid", wanted.cid.clone()));
    }
    if !wanted.name.is_empty() {
        api_query.push(("name", wanted.name.clone()));
        api_query.push(("match", "ipartial".into()));
    }
    let statuses = if wanted.status == "any" {
        "queued,pinning,pinned,failed".to_string()
    } else {
        wanted.status.clone()
    };
    api_query.push(("status", statuses));
    if let Some(before) = q.get("before") {
        api_query.push(("before", before.clone()));
    }
    let parsed = serde_urlencoded::to_string(&api_query)
        .map_err(|e| Error::BadRequest(e.to_string()))
        .and_then(|s| ListQuery::parse(&s));
    let listed = match parsed {
        Ok(lq) => service::list(&state, &v.actor(None), lq).await,
        Err(e) => Err(e),
    };
    let results = match listed {
        Ok(r) => r,
        Err(e @ Error::BadRequest(_)) => {
            let mut page = empty_pins(&v, &req, wanted);
            page.flash = Some(e.public_details());
            return render(StatusCode::BAD_REQUEST, &page);
        }
        Err(e) => return error_page(&e),
    };
    let next = (results.results.len() as i64 == PAGE)
        .then(|| results.results.last())
        .flatten()
        .map(|last| {
            let mut next: Vec<(String, String)> = q
                .iter()
                .filter(|(k, _)| *k != "before" && *k != "flash")
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            next.push(("org".into(), org.to_string()));
            next.push(("before".into(), format_created(&last.created)));
            serde_urlencoded::to_string(next).unwrap_or_default()
        });
    let pins = results
        .results
        .iter()
        .map(|p| PinRow {
            requestid: p.requestid.to_string(),
            name: p.pin.name.clone().unwrap_or_default(),
            cid: p.pin.cid.clone(),
            status: p.status.as_str().to_string(),
            created: format_created(&p.created),
            label: p.pin.name.clone().unwrap_or_else(|| p.pin.cid.clone()),
        })
        .collect();
    render(
        StatusCode::OK,
        &Pins {
            nav: nav(&v, "pins"),
            flash: flash(&req),
            org: Some(org.to_string()),
            csrf: v.csrf.clone(),
            query: wanted,
            statuses: vec!["any", "queued", "pinning", "pinned", "failed"],
            count: results.count,
            pins,
            next,
        },
    )
}

fn empty_pins(v: &Viewer, req: &HttpRequest, query: PinsQuery) -> Pins {
    Pins {
        nav: nav(v, "pins"),
        flash: flash(req),
        org: v.org.map(|o| o.to_string()),
        csrf: v.csrf.clone(),
        query,
        statuses: vec!["any", "queued", "pinning", "pinned", "failed"],
        count: 0,
        pins: Vec::new(),
        next: None,
    }
}

fn pins_url(v: &Viewer) -> String {
    format!("/console/pins{}", v.org_query())
}

fn spec(cid: &str, name: Option<&str>, origins: Vec<String>) -> Result<PinSpec> {
    PinSpec::from_body(PinBody {
        cid: Some(serde_json::Value::String(cid.to_string())),
        name: name.map(|n| serde_json::Value::String(n.to_string())),
        origins: Some(serde_json::Value::Array(
            origins.into_iter().map(serde_json::Value::String).collect(),
        )),
        meta: None,
    })
}

/// Checks the form's CSRF token and the viewer's pin scope; returns the response to
/// send instead when either fails.
fn pin_form_guard(v: &Viewer, form: &Form, scope: Scope) -> Option<HttpResponse> {
    if !form.csrf_ok(v) {
        return Some(refused());
    }
    if !v.claims.has_scope(scope) || v.org.is_none() {
        return Some(not_found());
    }
    None
}

async fn pins_add(state: web::Data<AppState>, req: HttpRequest, body: web::Bytes) -> HttpResponse {
    let v = viewer_or_return!(state, req);
    let form = Form::parse(&body);
    if let Some(r) = pin_form_guard(&v, &form, Scope::PinWrite) {
        return r;
    }
    let origins: Vec<String> = form
        .get("origins")
        .unwrap_or_default()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect();
    let outcome = match spec(
        form.get("cid").unwrap_or_default(),
        form.get("name"),
        origins,
    ) {
        Ok(spec) => service::add(&state, &v.actor(ClientIp::of(&req)), spec)
            .await
            .map(|_| ()),
        Err(e) => Err(e),
    };
    back_to(
        &pins_url(&v),
        outcome.map(|()| "Pin added.".to_string()),
        "The pin was not added",
    )
}

fn path_request(req: &HttpRequest) -> Option<RequestId> {
    req.match_info().get("id").and_then(|s| s.parse().ok())
}

async fn pins_delete(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Bytes,
) -> HttpResponse {
    let v = viewer_or_return!(state, req);
    let form = Form::parse(&body);
    if let Some(r) = pin_form_guard(&v, &form, Scope::PinWrite) {
        return r;
    }
    let Some(id) = path_request(&req) else {
        return not_found();
    };
    back_to(
        &pins_url(&v),
        service::remove(&state, &v.actor(ClientIp::of(&req)), id)
            .await
            .map(|()| "Pin deleted.".to_string()),
        "Not deleted",
    )
}

async fn pins_replace(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Bytes,
) -> HttpResponse {
    let v = viewer_or_return!(state, req);
    let form = Form::parse(&body);
    if let Some(r) = pin_form_guard(&v, &form, Scope::PinWrite) {
        return r;
    }
    let Some(id) = path_request(&req) else {
        return not_found();
    };
    let outcome = match spec(form.get("cid").unwrap_or_default(), None, Vec::new()) {
        Ok(spec) => service::replace(&state, &v.actor(ClientIp::of(&req)), id, spec)
            .await
            .map(|_| ()),
        Err(e) => Err(e),
    };
    back_to(
        &pins_url(&v),
        outcome.map(|()| "Pin replaced.".to_string()),
        "Not replaced",
    )
}

async fn tokens_view(
    state: &AppState,
    v: &Viewer,
    flash_text: Option<String>,
    created: Option<NewTokenView>,
) -> HttpResponse {
    let caller = match v.caller() {
        Ok(c) => c,
        Err(_) => {
            return render(
                StatusCode::OK,
                &Tokens {
                    nav: nav(v, "tokens"),
                    flash: flash_text,
                    org: None,
                    csrf: v.csrf.clone(),
                    created: None,
                    scopes: Vec::new(),
                    tokens: Vec::new(),
                },
            )
        }
    };
    let list = match tokens::list(state, &caller.actor(None)).await {
        Ok(l) => l,
        Err(e) => return error_page(&e),
    };
    let now = chrono::Utc::now();
    let rows = list
        .into_iter()
        .map(|t| {
            let state = if t.revoked_at.is_some() {
                "revoked"
            } else if t.expires_at <= now {
                "expired"
            } else {
                "active"
            };
            TokenRow {
                jti: TokenId::from_uuid(t.jti).to_string(),
                label: t.label,
                scopes: t.scopes.join(", "),
                expires: t.expires_at.format("%Y-%m-%d %H:%M UTC").to_string(),
                revocable: state == "active",
                state: state.into(),
            }
        })
        .collect();
    let scopes = caller
        .claims
        .effective_scopes()
        .into_iter()
        .map(|s| s.as_str())
        .collect();
    render(
        StatusCode::OK,
        &Tokens {
            nav: nav(v, "tokens"),
            flash: flash_text,
            org: v.org.map(|o| o.to_string()),
            csrf: v.csrf.clone(),
            created,
            scopes,
            tokens: rows,
        },
    )
}

async fn tokens_page(state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    let v = viewer_or_return!(state, req);
    tokens_view(&state, &v, flash(&req), None).await
}

async fn tokens_create(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Bytes,
) -> HttpResponse {
    let v = viewer_or_return!(state, req);
    let form = Form::parse(&body);
    if !form.csrf_ok(&v) {
        return refused();
    }
    let Ok(caller) = v.caller() else {
        return not_found();
    };
    let scopes: Result<Vec<Scope>> = form
        .all("scope")
        .iter()
        .map(|s| {
            s.parse::<Scope>()
                .map_err(|_| Error::BadRequest(format!("unknown scope '{s}'")))
        })
        .collect();
    let ttl = form.get("ttl_hours").map(|t| t.parse::<u64>());
    let request = match (scopes, ttl) {
        (Ok(scopes), None | Some(Ok(_))) => tokens::NewToken {
            label: form.get("label").unwrap_or_default().to_string(),
            scopes: (!scopes.is_empty()).then_some(scopes),
            ttl_hours: form.get("ttl_hours").and_then(|t| t.parse().ok()),
            role: None,
        },
        (Err(e), _) => return tokens_view(&state, &v, Some(e.public_details()), None).await,
        (_, Some(Err(_))) => {
            return tokens_view(
                &state,
                &v,
                Some("TTL must be a whole number of hours.".into()),
                None,
            )
            .await
        }
    };
    match tokens::create(&state, &caller.actor(ClientIp::of(&req)), request).await {
        Ok(created) => {
            let endpoint = format!("{}/v1", public_url(&state.config));
            tokens_view(
                &state,
                &v,
                None,
                Some(NewTokenView {
                    jwt: created.token,
                    endpoint,
                }),
            )
            .await
        }
        Err(e) => {
            tokens_view(
                &state,
                &v,
                Some(format!("No token was created: {}", e.public_details())),
                None,
            )
            .await
        }
    }
}

async fn tokens_revoke(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Bytes,
) -> HttpResponse {
    let v = viewer_or_return!(state, req);
    if !Form::parse(&body).csrf_ok(&v) {
        return refused();
    }
    let (Ok(caller), Some(jti)) = (
        v.caller(),
        req.match_info()
            .get("jti")
            .and_then(|s| s.parse::<TokenId>().ok()),
    ) else {
        return not_found();
    };
    let back = format!("/console/tokens{}", v.org_query());
    back_to(
        &back,
        tokens::revoke(&state, &caller.actor(ClientIp::of(&req)), jti)
            .await
            .map(|()| "Token revoked.".to_string()),
        "Not revoked",
    )
}

async fn orgs_page(state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    let v = viewer_or_return!(state, req);
    let mut cards = Vec::new();
    let visible: Vec<(crate::ids::OrgId, String, String)> = if v.sysadmin() {
        match system_tx(&state.db, |conn| orgs::store::list(conn).boxed()).await {
            Ok(all) => all
                .into_iter()
                .map(|o| {
                    let role =
                        v.me.orgs
                            .iter()
                            .find(|m| m.id == o.id)
                            .map_or("sysadmin".to_string(), |m| m.role.clone());
                    (o.id, o.name, role)
                })
                .collect(),
            Err(e) => return error_page(&e),
        }
    } else {
        v.me.orgs
            .iter()
            .map(|o| (o.id, o.name.clone(), o.role.clone()))
            .collect()
    };
    for (id, name, role) in visible {
        let manage = v.sysadmin() || role == "orgadmin";
        let members = if manage {
            match org_tx(&state.db, id, move |conn| {
                members::store::list(conn, id).boxed()
            })
            .await
            {
                Ok(list) => list
                    .into_iter()
                    .map(|m| MemberRow {
                        id: m.id.to_string(),
                        email: m.email.unwrap_or_default(),
                        role: m.role,
                        pending: m.pending,
                    })
                    .collect(),
                Err(e) => return error_page(&e),
            }
        } else {
            Vec::new()
        };
        cards.push(OrgCard {
            id: id.to_string(),
            name,
            role,
            manage,
            members,
        });
    }
    render(
        StatusCode::OK,
        &Orgs {
            nav: nav(&v, "orgs"),
            flash: flash(&req),
            csrf: v.csrf.clone(),
            sysadmin: v.sysadmin(),
            orgs: cards,
        },
    )
}

async fn orgs_create(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Bytes,
) -> HttpResponse {
    let v = viewer_or_return!(state, req);
    let form = Form::parse(&body);
    if !form.csrf_ok(&v) {
        return refused();
    }
    if !v.sysadmin() {
        return not_found();
    }
    let name = form.get("name").unwrap_or_default().to_string();
    back_to(
        "/console/orgs",
        orgs::create(&state, &v.actor(ClientIp::of(&req)), name)
            .await
            .map(|org| format!("Org {} created.", org.name)),
        "No org was created",
    )
}

/// The org in the path, when the viewer may manage its members.
async fn managed_org(state: &AppState, v: &Viewer, req: &HttpRequest) -> Option<crate::ids::OrgId> {
    let org: crate::ids::OrgId = req.match_info().get("org")?.parse().ok()?;
    crate::tenancy::access::require(state, &v.claims, org, Role::Orgadmin, Scope::MembersWrite)
        .await
        .ok()
        .map(|()| org)
}

async fn members_post(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Bytes,
) -> HttpResponse {
    let v = viewer_or_return!(state, req);
    let form = Form::parse(&body);
    if !form.csrf_ok(&v) {
        return refused();
    }
    let Some(org) = managed_org(&state, &v, &req).await else {
        return not_found();
    };
    let by = v.actor(ClientIp::of(&req));
    let member: Option<uuid::Uuid> = req.match_info().get("member").and_then(|m| m.parse().ok());
    let action = req.match_info().get("action").unwrap_or("add");
    let role = || {
        form.get("role")
            .unwrap_or("member")
            .parse::<Role>()
            .map_err(|_| Error::BadRequest("unknown role".into()))
    };
    let outcome = match (action, member) {
        ("add", None) => match role() {
            Ok(role) => members::add(
                &state,
                &by,
                org,
                form.get("email").unwrap_or_default().to_string(),
                role,
            )
            .await
            .map(|m| {
                if m.pending {
                    "Invitation sent."
                } else {
                    "Member added."
                }
            }),
            Err(e) => Err(e),
        },
        ("role", Some(m)) => match role() {
            Ok(role) => members::set_role(&state, &by, org, m, role)
                .await
                .map(|_| "Role changed."),
            Err(e) => Err(e),
        },
        ("remove", Some(m)) => members::remove(&state, &by, org, m)
            .await
            .map(|_| "Member removed."),
        _ => return not_found(),
    };
    back_to(
        "/console/orgs",
        outcome.map(|done| done.to_string()),
        "Nothing changed",
    )
}

async fn cluster_page(state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    let v = viewer_or_return!(state, req);
    if !v.sysadmin() {
        return not_found();
    }
    let ttl = state.config.cluster.node_ttl;
    let nodes = match presences::list(&state.db, ttl).await {
        Ok(n) => n,
        Err(e) => return error_page(&e),
    };
    let (maintenance, status) = {
        let mut conn = match crate::db::pool::get(&state.db).await {
            Ok(c) => c,
            Err(e) => return error_page(&e),
        };
        let m = ops::maintenance(&mut conn).await;
        let s = ops::rebalance_status(&mut conn, ttl).await;
        match (m, s) {
            (Ok(m), Ok(s)) => (m, s),
            (Err(e), _) | (_, Err(e)) => return error_page(&e),
        }
    };
    let names: HashMap<String, String> = nodes
        .iter()
        .map(|n| (n.id.to_string(), n.node_id.clone()))
        .collect();
    let maintenance_text = match (&maintenance.reason, maintenance.expires_at) {
        (Some(reason), Some(until)) => format!("{reason} (until {})", until.format("%H:%M UTC")),
        _ => String::new(),
    };
    render(
        StatusCode::OK,
        &Cluster {
            nav: nav(&v, "cluster"),
            flash: flash(&req),
            csrf: v.csrf.clone(),
            nodes: nodes
                .iter()
                .map(|n| NodeRow {
                    name: n.node_id.clone(),
                    state: n.state.clone(),
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
                    from: names
                        .get(&m.from.to_string())
                        .cloned()
                        .unwrap_or_else(|| m.from.to_string()),
                    to: names
                        .get(&m.to.to_string())
                        .cloned()
                        .unwrap_or_else(|| m.to.to_string()),
                })
                .collect(),
            rebalancing: status.requested,
        },
    )
}

/// Guards a cluster form: CSRF, then sysadmin.
fn cluster_guard(v: &Viewer, form: &Form) -> Option<HttpResponse> {
    if !form.csrf_ok(v) {
        return Some(refused());
    }
    (!v.sysadmin()).then(not_found)
}

async fn cluster_node(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Bytes,
) -> HttpResponse {
    let v = viewer_or_return!(state, req);
    if let Some(r) = cluster_guard(&v, &Form::parse(&body)) {
        return r;
    }
    let to = match req.match_info().get("action") {
        Some("drain") => ops::NodeState::Draining,
        Some("cordon") => ops::NodeState::Cordoned,
        Some("uncordon") => ops::NodeState::Active,
        _ => return not_found(),
    };
    let which = req.match_info().get("node").unwrap_or_default().to_string();
    back_to(
        "/console/cluster",
        ops::set_node_state(
            &state.db,
            state.bus.clone(),
            &which,
            to,
            actor(&v),
            ClientIp::of(&req),
        )
        .await
        .map(|node| format!("{} is now {}.", node.name, node.state)),
        "Nothing changed",
    )
}

async fn cluster_maintenance(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Bytes,
) -> HttpResponse {
    let v = viewer_or_return!(state, req);
    let form = Form::parse(&body);
    if let Some(r) = cluster_guard(&v, &form) {
        return r;
    }
    let outcome = if form.get("on") == Some("true") {
        match humantime::parse_duration(form.get("ttl").unwrap_or("30m")) {
            Ok(ttl) => ops::maintenance_on(
                &state.db,
                form.get("reason").unwrap_or_default().to_string(),
                ttl,
                actor(&v),
                ClientIp::of(&req),
            )
            .await
            .map(|_| "Maintenance is on."),
            Err(e) => Err(Error::BadRequest(format!(
                "“For” must be a duration like 30m: {e}"
            ))),
        }
    } else {
        ops::maintenance_off(&state.db, actor(&v), ClientIp::of(&req))
            .await
            .map(|_| "Maintenance is off.")
    };
    back_to(
        "/console/cluster",
        outcome.map(|done| done.to_string()),
        "Nothing changed",
    )
}

async fn cluster_rebalance(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Bytes,
) -> HttpResponse {
    let v = viewer_or_return!(state, req);
    if let Some(r) = cluster_guard(&v, &Form::parse(&body)) {
        return r;
    }
    back_to(
        "/console/cluster",
        ops::request_rebalance(&state.db, actor(&v), ClientIp::of(&req))
            .await
            .map(|()| "Rebalance requested; the leader applies it.".to_string()),
        "Nothing changed",
    )
}

async fn audit_page(state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    let v = viewer_or_return!(state, req);
    let q = query(&req);
    let text = |k: &str| q.get(k).cloned().filter(|s| !s.is_empty());
    let mut filter = AuditQuery {
        actor: text("actor"),
        action: text("action"),
        target: text("target"),
        before: q.get("before").and_then(|b| b.parse().ok()),
        limit: Some(50),
        ..Default::default()
    };
    let entries = if v.sysadmin() {
        let f = filter.clone();
        system_tx(&state.db, move |conn| {
            async move { audit::query(conn, &f).await }.boxed()
        })
        .await
    } else if v.role_in_org() == Some("orgadmin") {
        let org = v.org.expect("an org admin has an org");
        filter.org = Some(org);
        let f = filter.clone();
        org_tx(&state.db, org, move |conn| {
            async move { audit::query(conn, &f).await }.boxed()
        })
        .await
    } else {
        return not_found();
    };
    let entries = match entries {
        Ok(e) => e,
        Err(e) => return error_page(&e),
    };
    let next = (entries.len() == 50)
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
    render(
        StatusCode::OK,
        &Audit {
            nav: nav(&v, "audit"),
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
    )
}

async fn asset(req: HttpRequest) -> HttpResponse {
    let (body, kind) = match req.match_info().get("file") {
        Some("console.css") => (
            include_str!("../../static/console/console.css"),
            "text/css; charset=utf-8",
        ),
        Some("console.js") => (
            include_str!("../../static/console/console.js"),
            "text/javascript; charset=utf-8",
        ),
        _ => return not_found(),
    };
    HttpResponse::Ok()
        .content_type(kind)
        .insert_header(("Cache-Control", "public, max-age=3600"))
        .body(body)
}

async fn fallback() -> HttpResponse {
    not_found()
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/console")
            .route("", web::get().to(index))
            .route("/", web::get().to(index))
            .route("/sign-in", web::get().to(sign_in_page))
            .route("/sign-in", web::post().to(sign_in_token))
            .route("/sign-out", web::post().to(sign_out))
            .route("/pins", web::get().to(pins_page))
            .route("/pins", web::post().to(pins_add))
            .route("/pins/{id}/delete", web::post().to(pins_delete))
            .route("/pins/{id}/replace", web::post().to(pins_replace))
            .route("/tokens", web::get().to(tokens_page))
            .route("/tokens", web::post().to(tokens_create))
            .route("/tokens/{jti}/revoke", web::post().to(tokens_revoke))
            .route("/orgs", web::get().to(orgs_page))
            .route("/orgs", web::post().to(orgs_create))
            .route("/orgs/{org}/members", web::post().to(members_post))
            .route(
                "/orgs/{org}/members/{member}/{action}",
                web::post().to(members_post),
            )
            .route("/cluster", web::get().to(cluster_page))
            .route(
                "/cluster/nodes/{node}/{action}",
                web::post().to(cluster_node),
            )
            .route("/cluster/maintenance", web::post().to(cluster_maintenance))
            .route("/cluster/rebalance", web::post().to(cluster_rebalance))
            .route("/audit", web::get().to(audit_page))
            .route("/static/{file}", web::get().to(asset))
            .default_service(web::to(fallback)),
    );
}

#[cfg(test)]
mod tests {
    use super::csrf_matches;

    #[test]
    fn csrf_tokens_match_exactly() {
        let token = super::super::csrf_for("secret");
        assert!(csrf_matches(&token, &token));
        assert!(!csrf_matches(&token[..10], &token));
        assert!(!csrf_matches("", &token));
        let mut other = token.clone().into_bytes();
        other[0] = if other[0] == b'0' { b'1' } else { b'0' };
        assert!(!csrf_matches(&String::from_utf8(other).unwrap(), &token));
    }
}
