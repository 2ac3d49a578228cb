//! Pin requests: add, get, list, replace, delete — one org-scoped transaction each.
//! The HTTP API and (later) the console call these; nothing else writes pins.

use futures_util::FutureExt;

use super::{
    filter::ListQuery,
    model::{PinResults, PinSpec, PinStatusView},
    store,
};
use crate::{
    db::org_tx,
    error::{Error, Result},
    ids::{OrgId, RequestId},
    state::AppState,
};

/// Where clients should send the data; refusing a new pin we could not tell them that
/// for is more honest than accepting it with an empty (spec-invalid) list.
fn delegates_for_new_pin(state: &AppState) -> Result<Vec<String>> {
    let delegates = state.delegates.current();
    if delegates.is_empty() {
        return Err(Error::Unavailable(
            "no IPFS node address is known yet (its Kubo has not answered); retry shortly".into(),
        ));
    }
    Ok(delegates)
}

/// `POST /pins`.
pub async fn add(state: &AppState, org: OrgId, spec: PinSpec) -> Result<PinStatusView> {
    let delegates = delegates_for_new_pin(state)?;
    let record = org_tx(&state.db, org, |conn| {
        async move {
            let record = store::insert(conn, org, &spec).await?;
            store::add_ref(conn, spec.cid.canonical(), 1).await?;
            store::add_origins(conn, spec.cid.canonical(), &spec.origins).await?;
            Ok(record)
        }
        .boxed()
    })
    .await?;
    Ok(PinStatusView::new(record, delegates))
}

/// `GET /pins/{requestid}`: another org's request is as absent as a missing one.
pub async fn get(state: &AppState, org: OrgId, id: RequestId) -> Result<PinStatusView> {
    let record = org_tx(&state.db, org, |conn| store::get(conn, org, id).boxed())
        .await?
        .ok_or_else(not_found)?;
    Ok(PinStatusView::new(record, state.delegates.current()))
}

/// `GET /pins`.
pub async fn list(state: &AppState, org: OrgId, query: ListQuery) -> Result<PinResults> {
    let (count, records) = org_tx(&state.db, org, |conn| {
        async move { store::list(conn, org, &query).await }.boxed()
    })
    .await?;
    let delegates = state.delegates.current();
    Ok(PinResults {
        count,
        results: records
            .into_iter()
            .map(|r| PinStatusView::new(r, delegates.clone()))
            .collect(),
    })
}

/// `POST /pins/{requestid}`: the old request goes away and a new one (new id, new
/// `created`) takes its place, atomically.
pub async fn replace(
    state: &AppState,
    org: OrgId,
    id: RequestId,
    spec: PinSpec,
) -> Result<PinStatusView> {
    let delegates = delegates_for_new_pin(state)?;
    let record = org_tx(&state.db, org, |conn| {
        async move {
            let old_cid = store::delete(conn, org, id).await?.ok_or_else(not_found)?;
            store::add_ref(conn, &old_cid, -1).await?;
            let record = store::insert(conn, org, &spec).await?;
            store::add_ref(conn, spec.cid.canonical(), 1).await?;
            store::add_origins(conn, spec.cid.canonical(), &spec.origins).await?;
            Ok(record)
        }
        .boxed()
    })
    .await?;
    Ok(PinStatusView::new(record, delegates))
}

/// `DELETE /pins/{requestid}`.
pub async fn remove(state: &AppState, org: OrgId, id: RequestId) -> Result<()> {
    org_tx(&state.db, org, |conn| {
        async move {
            let cid = store::delete(conn, org, id).await?.ok_or_else(not_found)?;
            store::add_ref(conn, &cid, -1).await?;
            Ok(())
        }
        .boxed()
    })
    .await
}

fn not_found() -> Error {
    Error::NotFound("The specified resource was not found".into())
}
