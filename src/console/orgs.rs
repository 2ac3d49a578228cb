//! The orgs page, `/console/orgs`: the person's orgs and roles; org admins manage
//! members, sysadmins create orgs.

use actix_web::{http::StatusCode, web, HttpRequest};
use serde::Deserialize;

use super::{
    form::{self, CsrfForm},
    query::flash,
    respond::{back_to, render, Page, PageError},
    viewer::Viewer,
    views::{MemberRow, OrgCard, Orgs},
};
use crate::{
    api::client_ip::ClientIp,
    auth::{Role, Scope},
    error::Error,
    ids::OrgId,
    state::AppState,
    tenancy::{access, members, orgs},
};

pub async fn page(state: web::Data<AppState>, req: HttpRequest, v: Viewer) -> Page {
    let by = v.actor(ClientIp::of(&req));
    let mut cards = Vec::new();
    for org in orgs::visible(&state, &by).await? {
        // Their own role where they are a member; a sysadmin's elsewhere.
        let role =
            v.me.orgs
                .iter()
                .find(|m| m.id == org.id)
                .map_or(Role::Sysadmin, |m| m.role);
        let members = match v.manages_members_of(org.id) {
            false => None,
            true => match members::list(&state, &by, org.id).await {
                Ok(list) => Some(list),
                // A token-backed session without members:read sees no member list.
                Err(Error::Forbidden(_) | Error::NotFound(_)) => None,
                Err(e) => return Err(e.into()),
            },
        };
        cards.push(OrgCard {
            id: org.id.to_string(),
            name: org.name,
            role: role.to_string(),
            manage: members.is_some(),
            members: members
                .unwrap_or_default()
                .into_iter()
                .map(|m| MemberRow {
                    id: m.id.to_string(),
                    email: m.email.unwrap_or_default(),
                    role: m.role.to_string(),
                    pending: m.pending,
                })
                .collect(),
        });
    }
    Ok(render(
        StatusCode::OK,
        &Orgs {
            nav: v.nav("orgs"),
            flash: flash(&req),
            csrf: v.csrf.clone(),
            sysadmin: v.sysadmin(),
            orgs: cards,
        },
    ))
}

#[derive(Deserialize)]
pub struct NewOrg {
    #[serde(default, deserialize_with = "form::text")]
    name: Option<String>,
}

/// Sysadmins only.
pub async fn create(state: web::Data<AppState>, req: HttpRequest, form: CsrfForm<NewOrg>) -> Page {
    let CsrfForm { viewer: v, fields } = form;
    if !v.sysadmin() {
        return Err(PageError::NotFound);
    }
    Ok(back_to(
        "/console/orgs",
        orgs::create(
            &state,
            &v.actor(ClientIp::of(&req)),
            fields.name.unwrap_or_default(),
        )
        .await
        .map(|org| format!("Org {} created.", org.name)),
        "No org was created",
    ))
}

/// The org in the path, when the viewer may manage its members.
async fn managed_org(state: &AppState, v: &Viewer, req: &HttpRequest) -> Result<OrgId, PageError> {
    let org: OrgId = req
        .match_info()
        .get("org")
        .and_then(|o| o.parse().ok())
        .ok_or(PageError::NotFound)?;
    access::require(state, &v.claims, org, Role::Orgadmin, Scope::MembersWrite)
        .await
        .map(|()| org)
        .map_err(|_| PageError::NotFound)
}

#[derive(Deserialize)]
pub struct MemberForm {
    #[serde(default, deserialize_with = "form::text")]
    email: Option<String>,
    #[serde(default, deserialize_with = "form::text")]
    role: Option<String>,
}

/// `/console/orgs/{org}/members` adds one; `…/members/{member}/{role|remove}` changes one.
pub async fn members(
    state: web::Data<AppState>,
    req: HttpRequest,
    form: CsrfForm<MemberForm>,
) -> Page {
    let CsrfForm { viewer: v, fields } = form;
    let org = managed_org(&state, &v, &req).await?;
    let by = v.actor(ClientIp::of(&req));
    let member: Option<uuid::Uuid> = req.match_info().get("member").and_then(|m| m.parse().ok());
    let action = req.match_info().get("action").unwrap_or("add");
    let role = || {
        fields
            .role
            .as_deref()
            .map_or(Ok(Role::Member), str::parse::<Role>)
            .map_err(|_| Error::BadRequest("unknown role".into()))
    };
    let outcome = match (action, member) {
        ("add", None) => match role() {
            Ok(role) => members::add(
                &state,
                &by,
                org,
                fields.email.clone().unwrap_or_default(),
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
        _ => return Err(PageError::NotFound),
    };
    Ok(back_to(
        "/console/orgs",
        outcome.map(|done| done.to_string()),
        "Nothing changed",
    ))
}
