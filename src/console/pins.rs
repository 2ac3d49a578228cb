//! The pins page, `/console/pins`: add a pin, search, the list with paging, and replace
//! and delete per pin.

use actix_web::{http::StatusCode, web, HttpRequest};
use serde::Deserialize;

use super::{
    form::{self, CsrfForm},
    query::{flash, next_page, query},
    respond::{back_to, render, Page, PageError},
    viewer::Viewer,
    views::{PinRow, Pins, PinsQuery},
};
use crate::{
    auth::Scope,
    error::{Error, Result},
    ids::{OrgId, RequestId},
    pins::{
        filter::ListQuery,
        model::{format_created, PinBody, PinSpec},
        service,
    },
    state::AppState,
};

/// Pins per page.
const PAGE: i64 = 20;

/// The statuses to filter by.
const STATUSES: [&str; 5] = ["any", "queued", "pinning", "pinned", "failed"];

/// The list, searched by `?cid=`, `?name=` and `?status=`, from `?before=`.
pub async fn page(state: web::Data<AppState>, req: HttpRequest, v: Viewer) -> Page {
    let q = query(&req);
    let wanted = PinsQuery {
        cid: q.get("cid").cloned().unwrap_or_default(),
        name: q.get("name").cloned().unwrap_or_default(),
        status: q.get("status").cloned().unwrap_or_else(|| "any".into()),
    };
    let Some(org) = v.org else {
        return Ok(render(StatusCode::OK, &empty(&v, &req, wanted)));
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
            let mut page = empty(&v, &req, wanted);
            page.flash = Some(e.public_details());
            return Ok(render(StatusCode::BAD_REQUEST, &page));
        }
        Err(e) => return Err(e.into()),
    };
    let next = (results.results.len() as i64 == PAGE)
        .then(|| results.results.last())
        .flatten()
        .map(|last| {
            next_page(
                &q,
                &[
                    ("org", org.to_string()),
                    ("before", format_created(&last.created)),
                ],
            )
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
    Ok(render(
        StatusCode::OK,
        &Pins {
            nav: v.nav("pins"),
            flash: flash(&req),
            org: Some(org.to_string()),
            csrf: v.csrf.clone(),
            query: wanted,
            statuses: STATUSES.to_vec(),
            count: results.count,
            pins,
            next,
        },
    ))
}

/// The page without pins: no org yet, or a search that could not be read.
fn empty(v: &Viewer, req: &HttpRequest, query: PinsQuery) -> Pins {
    Pins {
        nav: v.nav("pins"),
        flash: flash(req),
        org: v.org.map(|o| o.to_string()),
        csrf: v.csrf.clone(),
        query,
        statuses: STATUSES.to_vec(),
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

/// The org a pin form acts in: the viewer's, when their token may write pins there.
fn writable_org(v: &Viewer) -> Result<OrgId, PageError> {
    v.org_with_scope(Scope::PinWrite).ok_or(PageError::NotFound)
}

/// The pin in the path.
fn path_request(req: &HttpRequest) -> Result<RequestId, PageError> {
    req.match_info()
        .get("id")
        .and_then(|s| s.parse().ok())
        .ok_or(PageError::NotFound)
}

#[derive(Deserialize)]
pub struct AddPin {
    #[serde(default, deserialize_with = "form::text")]
    cid: Option<String>,
    #[serde(default, deserialize_with = "form::text")]
    name: Option<String>,
    /// One per line.
    #[serde(default, deserialize_with = "form::text")]
    origins: Option<String>,
}

pub async fn add(state: web::Data<AppState>, form: CsrfForm<AddPin>) -> Page {
    let CsrfForm { viewer: v, fields } = form;
    writable_org(&v)?;
    let origins: Vec<String> = fields
        .origins
        .unwrap_or_default()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect();
    let outcome = match spec(
        fields.cid.as_deref().unwrap_or_default(),
        fields.name.as_deref(),
        origins,
    ) {
        Ok(spec) => service::add(&state, &v.actor(None), spec).await.map(|_| ()),
        Err(e) => Err(e),
    };
    Ok(back_to(
        &pins_url(&v),
        outcome.map(|()| "Pin added.".to_string()),
        "The pin was not added",
    ))
}

pub async fn delete(state: web::Data<AppState>, req: HttpRequest, form: CsrfForm) -> Page {
    let v = form.viewer;
    writable_org(&v)?;
    let id = path_request(&req)?;
    Ok(back_to(
        &pins_url(&v),
        service::remove(&state, &v.actor(None), id)
            .await
            .map(|()| "Pin deleted.".to_string()),
        "Not deleted",
    ))
}

#[derive(Deserialize)]
pub struct ReplacePin {
    #[serde(default, deserialize_with = "form::text")]
    cid: Option<String>,
}

pub async fn replace(
    state: web::Data<AppState>,
    req: HttpRequest,
    form: CsrfForm<ReplacePin>,
) -> Page {
    let CsrfForm { viewer: v, fields } = form;
    writable_org(&v)?;
    let id = path_request(&req)?;
    let outcome = match spec(fields.cid.as_deref().unwrap_or_default(), None, Vec::new()) {
        Ok(spec) => service::replace(&state, &v.actor(None), id, spec)
            .await
            .map(|_| ()),
        Err(e) => Err(e),
    };
    Ok(back_to(
        &pins_url(&v),
        outcome.map(|()| "Pin replaced.".to_string()),
        "Not replaced",
    ))
}
