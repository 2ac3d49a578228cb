//! Pin requests: add, get, list, replace, delete — one org-scoped transaction each.
//! The HTTP API and (later) the console call these; nothing else writes pins.

use futures_util::FutureExt;

use super::{
    filter::ListQuery,
    model::{PinResults, PinSpec, PinStatusView},
    store,
};
use crate::{
    db::{org_read, org_tx},
    error::{Error, Result},
    ids::{OrgId, RequestId},
    placements::lifecycle,
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

/// `POST /pins`: the request, its reference on the CID and (when the CID is not held or
/// wanted yet) a placement on this node, in one transaction; the pin job after commit.
/// Locks are taken refcount row → placements → pin rows, as on every write path.
pub async fn add(state: &AppState, org: OrgId, spec: PinSpec) -> Result<PinStatusView> {
    let delegates = delegates_for_new_pin(state)?;
    let node = state.node.uuid();
    let (record, jobs) = org_tx(&state.db, org, |conn| {
        async move {
            let cid = spec.cid.canonical();
            store::add_ref(conn, cid, 1).await?;
            let (jobs, placements) = lifecycle::on_ref_added(conn, cid, node, None).await?;
            // A CID already pinned for another request is pinned for this one at once.
            let (status, info) = lifecycle::status_of(&placements);
            let record = store::insert(conn, org, &spec, status, &info).await?;
            store::add_origins(conn, cid, &spec.origins).await?;
            Ok((record, jobs))
        }
        .boxed()
    })
    .await?;
    state.jobs.enqueue_all(&jobs).await;
    Ok(PinStatusView::new(record, delegates))
}

/// `GET /pins/{requestid}`: another org's request is as absent as a missing one.
pub async fn get(state: &AppState, org: OrgId, id: RequestId) -> Result<PinStatusView> {
    let record = org_read(&state.db, org, |conn| store::get(conn, org, id).boxed())
        .await?
        .ok_or_else(not_found)?;
    Ok(PinStatusView::new(record, state.delegates.current()))
}

/// `GET /pins`.
pub async fn list(state: &AppState, org: OrgId, query: ListQuery) -> Result<PinResults> {
    let (count, records) = org_read(&state.db, org, |conn| {
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
/// `created`) takes its place, atomically. When the old CID is pinned on this node, the
/// new one is pinned with `pin/update` from it (shared blocks are not fetched again) and
/// the old copy is removed only once the new one is pinned.
pub async fn replace(
    state: &AppState,
    org: OrgId,
    id: RequestId,
    spec: PinSpec,
) -> Result<PinStatusView> {
    let delegates = delegates_for_new_pin(state)?;
    let node = state.node.uuid();
    let (record, jobs) = org_tx(&state.db, org, |conn| {
        async move {
            let old_cid = store::cid_of(conn, org, id).await?.ok_or_else(not_found)?;
            let new_cid = spec.cid.canonical().to_string();
            let same = old_cid == new_cid;
            // Refcount rows in a fixed order, then placements, then pin rows.
            let mut remaining_old = 0;
            let mut deltas = [(old_cid.as_str(), -1), (new_cid.as_str(), 1)];
            deltas.sort_by(|a, b| a.0.cmp(b.0));
            for (cid, delta) in deltas {
                let n = store::add_ref(conn, cid, delta).await?;
                if cid == old_cid {
                    remaining_old = n;
                }
            }
            lifecycle::lock(conn, &[&old_cid, &new_cid]).await?;
            let mut jobs = Vec::new();
            let mut update_from = None;
            if !same {
                if lifecycle::pinned_on(conn, &old_cid, node).await? {
                    update_from = Some(old_cid.as_str());
                }
                jobs.extend(lifecycle::on_ref_dropped(conn, &old_cid, remaining_old).await?);
            }
            let (pins, placements) =
                lifecycle::on_ref_added(conn, &new_cid, node, update_from).await?;
            // With pin/update the old copy goes after the new one is pinned (the runner
            // issues those unpins); otherwise now.
            if update_from.is_some() && !pins.is_empty() {
                jobs.clear();
            }
            jobs.extend(pins);
            store::delete(conn, org, id).await?.ok_or_else(not_found)?;
            let (status, info) = lifecycle::status_of(&placements);
            let record = store::insert(conn, org, &spec, status, &info).await?;
            store::add_origins(conn, &new_cid, &spec.origins).await?;
            Ok((record, jobs))
        }
        .boxed()
    })
    .await?;
    state.jobs.enqueue_all(&jobs).await;
    Ok(PinStatusView::new(record, delegates))
}

/// `DELETE /pins/{requestid}`: the request vanishes at once; when it was the CID's last
/// reference its placements go `unpinning` and unpin jobs follow the commit.
pub async fn remove(state: &AppState, org: OrgId, id: RequestId) -> Result<()> {
    let jobs = org_tx(&state.db, org, |conn| {
        async move {
            let cid = store::cid_of(conn, org, id).await?.ok_or_else(not_found)?;
            let remaining = store::add_ref(conn, &cid, -1).await?;
            let jobs = lifecycle::on_ref_dropped(conn, &cid, remaining).await?;
            store::delete(conn, org, id).await?.ok_or_else(not_found)?;
            Ok(jobs)
        }
        .boxed()
    })
    .await?;
    state.jobs.enqueue_all(&jobs).await;
    Ok(())
}

fn not_found() -> Error {
    Error::NotFound("The specified resource was not found".into())
}
