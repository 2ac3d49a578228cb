//! How pin requests move placements, inside the request's own transaction: a new
//! reference places the CID (or revives failed and unpinning placements); the last
//! reference going marks them `unpinning`. Returns the jobs to push after commit.

use std::collections::BTreeMap;

use diesel_async::AsyncPgConnection;
use uuid::Uuid;

use super::{
    store::{self, Placement},
    JobKind, PlacementJob, PlacementState,
};
use crate::{error::Result, pins::model::PinState};

/// Locks the placements of `cids` (after their refcount rows, before any pin row), so
/// every writer takes locks in the same order.
pub async fn lock(conn: &mut AsyncPgConnection, cids: &[&str]) -> Result<()> {
    let mut sorted: Vec<&str> = cids.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    for cid in sorted {
        store::lock_all(conn, cid).await?;
    }
    Ok(())
}

/// A pin request for `cid` was added (refcount already bumped, so locked). Returns the
/// jobs to push after commit and the CID's placements as they now stand.
pub async fn on_ref_added(
    conn: &mut AsyncPgConnection,
    cid: &str,
    node: Uuid,
    update_from: Option<&str>,
) -> Result<(Vec<PlacementJob>, Vec<Placement>)> {
    let placements = store::lock_all(conn, cid).await?;
    if placements.is_empty() {
        let p = store::insert_queued(conn, cid, node, update_from).await?;
        return Ok((vec![p.job(JobKind::Pin)], vec![p]));
    }
    let mut jobs = Vec::new();
    let mut now = Vec::new();
    for p in placements {
        now.push(match p.state() {
            // A new request gives failed placements a fresh set of attempts; and when the
            // unpin has not run yet the content stays (pinning what Kubo still holds is
            // an instant success).
            Some(PlacementState::Failed) | Some(PlacementState::Unpinning) => {
                let p =
                    store::transition(conn, &p, PlacementState::Queued, None, None, true).await?;
                jobs.push(p.job(JobKind::Pin));
                p
            }
            _ => p,
        });
    }
    Ok((jobs, now))
}

/// The status (and `info`) a new pin of a CID with these placements shows.
pub fn status_of(placements: &[Placement]) -> (PinState, BTreeMap<String, String>) {
    super::status::summarize(
        placements
            .iter()
            .map(|p| (p.state.as_str(), p.info.as_deref(), p.progress)),
    )
}

/// A pin request for `cid` went away; `remaining` is the refcount after it.
pub async fn on_ref_dropped(
    conn: &mut AsyncPgConnection,
    cid: &str,
    remaining: i32,
) -> Result<Vec<PlacementJob>> {
    if remaining > 0 {
        return Ok(Vec::new());
    }
    let mut jobs = Vec::new();
    for p in store::lock_all(conn, cid).await? {
        if p.state() != Some(PlacementState::Unpinning) {
            let p =
                store::transition(conn, &p, PlacementState::Unpinning, None, None, false).await?;
            jobs.push(p.job(JobKind::Unpin));
        }
    }
    Ok(jobs)
}

/// Whether `cid` is pinned on `node`.
pub async fn pinned_on(conn: &mut AsyncPgConnection, cid: &str, node: Uuid) -> Result<bool> {
    Ok(store::lock(conn, cid, node)
        .await?
        .is_some_and(|p| p.state() == Some(PlacementState::Pinned)))
}

/// After a `pin/update` from `from` succeeded on `node`: the unpin jobs for `from`'s
/// placement there, if it is still waiting to be removed.
pub async fn release_update_source(
    conn: &mut AsyncPgConnection,
    from: &str,
    node: Uuid,
) -> Result<Vec<PlacementJob>> {
    Ok(store::lock(conn, from, node)
        .await?
        .filter(|p| p.state() == Some(PlacementState::Unpinning))
        .map(|p| p.job(JobKind::Unpin))
        .into_iter()
        .collect())
}
