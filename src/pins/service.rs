//! Pin requests: add, get, list, replace, delete — one org-scoped transaction each.
//! The HTTP API and the console call these; nothing else writes pins.

use futures_util::FutureExt;

use uuid::Uuid;

use super::{
    filter::ListQuery,
    model::{PinRecord, PinResults, PinSpec, PinStatusView},
    store,
};
use crate::{
    auth::{Actor, Scope},
    cluster::{delegates::MAX_DELEGATES, scheduler::LiveNode},
    db::{org_read, org_tx},
    error::{Error, Result},
    ids::{OrgId, RequestId},
    placements::lifecycle::{self, Targets},
    state::AppState,
};

/// Where clients should send the data; refusing a new pin we could not tell them that
/// for is more honest than accepting it with an empty (spec-invalid) list.
fn check_delegates_known(state: &AppState) -> Result<()> {
    if state.delegates.current().is_empty() {
        return Err(Error::Unavailable(
            "no IPFS node address is known yet (its Kubo has not answered); retry shortly".into(),
        ));
    }
    Ok(())
}

/// The delegates of a pin: the announced addresses of the live nodes that hold or will
/// hold its CID, else this node's own.
fn delegates_for(state: &AppState, live: Option<&[LiveNode]>, holders: &[Uuid]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for holder in holders {
        match live.and_then(|l| l.iter().find(|n| n.id == *holder)) {
            Some(node) => out.extend(node.addrs.iter().cloned()),
            None if *holder == state.node.uuid() => out.extend(state.delegates.current()),
            None => {}
        }
    }
    if out.is_empty() {
        out = state.delegates.current();
    }
    let mut seen = std::collections::HashSet::new();
    out.retain(|a| seen.insert(a.clone()));
    out.truncate(MAX_DELEGATES);
    out
}

/// The response for `record`, with delegates from the cached live set.
fn view(state: &AppState, record: PinRecord) -> PinStatusView {
    let live = state.live_nodes.cached();
    view_with(state, live.as_deref().map(Vec::as_slice), record)
}

fn view_with(state: &AppState, live: Option<&[LiveNode]>, record: PinRecord) -> PinStatusView {
    let delegates = delegates_for(state, live, &record.holders);
    PinStatusView::new(record, delegates)
}

/// The org `by` acts in, once its credential is found to carry `scope`. A refusal is
/// not a pin operation, so it is decided before the operation is counted.
fn acting(by: &Actor, scope: Scope) -> Result<OrgId> {
    by.require(scope)?;
    by.acting_org()
}

/// `POST /pins`: the request, its reference on the CID and (when the CID is not held or
/// wanted yet) its placements on `cluster.maxReplicas` live nodes, in one transaction;
/// the pin jobs after commit. Locks are taken refcount row → placements → pin rows, as
/// on every write path.
/// Counted in `anchorage_pin_ops_total`.
pub async fn add(state: &AppState, by: &Actor, spec: PinSpec) -> Result<PinStatusView> {
    let org = acting(by, Scope::PinWrite)?;
    let outcome = add_unmetered(state, org, spec).await;
    state.metrics.pin_op("add", outcome.is_ok());
    outcome
}

/// The work of [`add`].
async fn add_unmetered(state: &AppState, org: OrgId, spec: PinSpec) -> Result<PinStatusView> {
    check_delegates_known(state)?;
    let st = state.clone();
    let (record, jobs) = org_tx(&state.db, org, |conn| {
        async move {
            let cid = spec.cid.canonical();
            store::add_ref(conn, cid, 1).await?;
            let live = st.live_nodes.get(conn).await?;
            let targets = targets(&st, &live, Vec::new());
            let (jobs, placements) = lifecycle::on_ref_added(conn, cid, &targets).await?;
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
    Ok(view(state, record))
}

fn targets<'a>(state: &AppState, live: &'a [LiveNode], prefer: Vec<(Uuid, String)>) -> Targets<'a> {
    Targets {
        live,
        fallback: state.node.uuid(),
        replicas: state.config.cluster.max_replicas.max(1) as usize,
        prefer,
    }
}

/// `GET /pins/{requestid}`: another org's request is as absent as a missing one.
/// Counted in `anchorage_pin_ops_total`.
pub async fn get(state: &AppState, by: &Actor, id: RequestId) -> Result<PinStatusView> {
    let org = acting(by, Scope::PinRead)?;
    let outcome = get_unmetered(state, org, id).await;
    state.metrics.pin_op("get", outcome.is_ok());
    outcome
}

/// The work of [`get`].
async fn get_unmetered(state: &AppState, org: OrgId, id: RequestId) -> Result<PinStatusView> {
    let record = org_read(&state.db, org, |conn| store::get(conn, org, id).boxed())
        .await?
        .ok_or_else(not_found)?;
    Ok(view(state, record))
}

/// `GET /pins`.
/// Counted in `anchorage_pin_ops_total`.
pub async fn list(state: &AppState, by: &Actor, query: ListQuery) -> Result<PinResults> {
    let org = acting(by, Scope::PinRead)?;
    let outcome = list_unmetered(state, org, query).await;
    state.metrics.pin_op("list", outcome.is_ok());
    outcome
}

/// The work of [`list`].
async fn list_unmetered(state: &AppState, org: OrgId, query: ListQuery) -> Result<PinResults> {
    let (count, records) = org_read(&state.db, org, |conn| {
        async move { store::list(conn, org, &query).await }.boxed()
    })
    .await?;
    let live = state.live_nodes.cached();
    let live = live.as_deref().map(Vec::as_slice);
    Ok(PinResults {
        count,
        results: records
            .into_iter()
            .map(|r| view_with(state, live, r))
            .collect(),
    })
}

/// `POST /pins/{requestid}`: the old request goes away and a new one (new id, new
/// `created`) takes its place, atomically. When the old CID is pinned on this node, the
/// new one is pinned with `pin/update` from it (shared blocks are not fetched again) and
/// the old copy is removed only once the new one is pinned.
/// Counted in `anchorage_pin_ops_total`.
pub async fn replace(
    state: &AppState,
    by: &Actor,
    id: RequestId,
    spec: PinSpec,
) -> Result<PinStatusView> {
    let org = acting(by, Scope::PinWrite)?;
    let outcome = replace_unmetered(state, org, id, spec).await;
    state.metrics.pin_op("replace", outcome.is_ok());
    outcome
}

/// The work of [`replace`].
async fn replace_unmetered(
    state: &AppState,
    org: OrgId,
    id: RequestId,
    spec: PinSpec,
) -> Result<PinStatusView> {
    check_delegates_known(state)?;
    let st = state.clone();
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
            let mut prefer = Vec::new();
            if !same {
                // Nodes holding the old CID pin the new one with pin/update from it.
                prefer = lifecycle::pinned_nodes(conn, &old_cid)
                    .await?
                    .into_iter()
                    .map(|node| (node, old_cid.clone()))
                    .collect();
                jobs.extend(lifecycle::on_ref_dropped(conn, &old_cid, remaining_old).await?);
            }
            let live = st.live_nodes.get(conn).await?;
            let targets = targets(&st, &live, prefer);
            let (pins, placements) = lifecycle::on_ref_added(conn, &new_cid, &targets).await?;
            // Where the new CID is pinned with pin/update, the old copy goes after the new
            // one is pinned (the runner issues that unpin); elsewhere now.
            let updating: Vec<Uuid> = placements
                .iter()
                .filter(|p| p.update_from.as_deref() == Some(old_cid.as_str()))
                .map(|p| p.node_id)
                .collect();
            if !pins.is_empty() {
                jobs.retain(|j| j.cid != old_cid || !updating.contains(&j.node));
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
    Ok(view(state, record))
}

/// `DELETE /pins/{requestid}`: the request vanishes at once; when it was the CID's last
/// reference its placements go `unpinning` and unpin jobs follow the commit.
/// Counted in `anchorage_pin_ops_total`.
pub async fn remove(state: &AppState, by: &Actor, id: RequestId) -> Result<()> {
    let org = acting(by, Scope::PinWrite)?;
    let outcome = remove_unmetered(state, org, id).await;
    state.metrics.pin_op("remove", outcome.is_ok());
    outcome
}

/// The work of [`remove`].
async fn remove_unmetered(state: &AppState, org: OrgId, id: RequestId) -> Result<()> {
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
