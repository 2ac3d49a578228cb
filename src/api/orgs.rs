//! `/v1/users/me`, `/v1/orgs` and `/v1/orgs/{id}/members`: who am I, which orgs exist,
//! and who belongs to them. Sysadmins create orgs; org admins manage their members.

use actix_web::{web, HttpMessage, HttpRequest, HttpResponse};
use apistos::{api_operation, ApiComponent};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{
    body::read_json,
    client_ip::ClientIp,
    openapi::{Doc, Reply},
};
use crate::{
    api::authn::Principal,
    auth::Role,
    error::{Error, Result},
    ids::OrgId,
    state::AppState,
    tenancy::{members, orgs, users},
};

/// `{count, results}` of any listing here.
#[derive(Debug, Serialize, JsonSchema, ApiComponent)]
pub struct Listing {
    pub count: usize,
    #[schemars(with = "Vec<serde_json::Value>")]
    pub results: Vec<serde_json::Value>,
}

fn listing<T: Serialize>(items: Vec<T>) -> Result<Listing> {
    let results = items
        .into_iter()
        .map(|i| serde_json::to_value(i).map_err(|e| Error::Internal(e.to_string())))
        .collect::<Result<Vec<_>>>()?;
    Ok(Listing {
        count: results.len(),
        results,
    })
}

/// `POST /v1/orgs`.
#[derive(Debug, Deserialize, JsonSchema, ApiComponent)]
#[serde(deny_unknown_fields)]
pub struct NewOrg {
    /// Lowercase letters, digits and dashes; at most 63.
    pub name: String,
}

/// `POST /v1/orgs/{id}/members`.
#[derive(Debug, Deserialize, JsonSchema, ApiComponent)]
#[serde(deny_unknown_fields)]
pub struct NewMember {
    pub email: String,
    /// `member` or `orgadmin`.
    #[schemars(with = "String")]
    pub role: Role,
}

/// `PATCH /v1/orgs/{id}/members/{member}`.
#[derive(Debug, Deserialize, JsonSchema, ApiComponent)]
#[serde(deny_unknown_fields)]
pub struct MemberRole {
    #[schemars(with = "String")]
    pub role: Role,
}

fn path_org(req: &HttpRequest) -> Result<OrgId> {
    req.match_info()
        .get("org")
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| Error::NotFound("no such org".into()))
}

fn path_member(req: &HttpRequest) -> Result<Uuid> {
    req.match_info()
        .get("member")
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| Error::NotFound("no such member".into()))
}

#[api_operation(
    operation_id = "me",
    tag = "users",
    summary = "Who am I",
    description = "The signed-in user (or the user an API token names), with their orgs and roles. A token, or a session opened with one, sees only its own org and the role it acts with; `session` says how a browser session was opened"
)]
pub async fn me(
    state: web::Data<AppState>,
    principal: Principal,
    req: HttpRequest,
) -> Result<Reply<200, users::Me>> {
    let signed_in = req
        .extensions()
        .get::<crate::auth::session::SignedIn>()
        .cloned();
    let me = users::whoami(&state, &principal.actor(None))
        .await?
        .with_session(signed_in);
    Ok(HttpResponse::Ok().json(me).into())
}

#[api_operation(
    operation_id = "listOrgs",
    tag = "orgs",
    summary = "List orgs",
    description = "Every org for a sysadmin; otherwise the caller's own"
)]
pub async fn list(
    state: web::Data<AppState>,
    principal: Principal,
    req: HttpRequest,
) -> Result<Reply<200, Listing>> {
    let visible = orgs::visible(&state, &principal.actor(ClientIp::of(&req))).await?;
    Ok(HttpResponse::Ok().json(listing(visible)?).into())
}

#[api_operation(
    operation_id = "createOrg",
    tag = "orgs",
    summary = "Create an org",
    description = "Sysadmins only",
    skip_args = "payload"
)]
pub async fn create(
    state: web::Data<AppState>,
    principal: Principal,
    req: HttpRequest,
    payload: web::Payload,
    _body: Doc<web::Json<NewOrg>>,
) -> Result<Reply<201, orgs::Org>> {
    let body: NewOrg = read_json(&req, payload, state.config.server.max_body_bytes).await?;
    let org = orgs::create(&state, &principal.actor(ClientIp::of(&req)), body.name).await?;
    Ok(HttpResponse::Created().json(org).into())
}

#[api_operation(
    operation_id = "listMembers",
    tag = "orgs",
    summary = "List an org's members",
    description = "Members and pending invitations; for the org's admins and sysadmins"
)]
pub async fn members(
    state: web::Data<AppState>,
    principal: Principal,
    req: HttpRequest,
) -> Result<Reply<200, Listing>> {
    let by = principal.actor(ClientIp::of(&req));
    let list = members::list(&state, &by, path_org(&req)?).await?;
    Ok(HttpResponse::Ok().json(listing(list)?).into())
}

#[api_operation(
    operation_id = "addMember",
    tag = "orgs",
    summary = "Add a member by email",
    description = "Binds at once when that email has signed in before, otherwise when it first does",
    skip_args = "payload"
)]
pub async fn add_member(
    state: web::Data<AppState>,
    principal: Principal,
    req: HttpRequest,
    payload: web::Payload,
    _body: Doc<web::Json<NewMember>>,
) -> Result<Reply<201, members::Member>> {
    let org = path_org(&req)?;
    let body: NewMember = read_json(&req, payload, state.config.server.max_body_bytes).await?;
    let by = principal.actor(ClientIp::of(&req));
    let member = members::add(&state, &by, org, body.email, body.role).await?;
    Ok(HttpResponse::Created().json(member).into())
}

#[api_operation(
    operation_id = "setMemberRole",
    tag = "orgs",
    summary = "Change a member's role",
    skip_args = "payload"
)]
pub async fn set_role(
    state: web::Data<AppState>,
    principal: Principal,
    req: HttpRequest,
    payload: web::Payload,
    _body: Doc<web::Json<MemberRole>>,
) -> Result<Reply<204>> {
    let (org, member) = (path_org(&req)?, path_member(&req)?);
    let body: MemberRole = read_json(&req, payload, state.config.server.max_body_bytes).await?;
    let by = principal.actor(ClientIp::of(&req));
    members::set_role(&state, &by, org, member, body.role).await?;
    Ok(HttpResponse::NoContent().finish().into())
}

#[api_operation(
    operation_id = "removeMember",
    tag = "orgs",
    summary = "Remove a member"
)]
pub async fn remove_member(
    state: web::Data<AppState>,
    principal: Principal,
    req: HttpRequest,
) -> Result<Reply<204>> {
    let (org, member) = (path_org(&req)?, path_member(&req)?);
    let by = principal.actor(ClientIp::of(&req));
    members::remove(&state, &by, org, member).await?;
    Ok(HttpResponse::NoContent().finish().into())
}
