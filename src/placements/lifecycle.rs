//! How pin requests move placements, inside the request's own transaction: a new
//! reference places the CID (or revives failed and unpinning placements); the last
//! reference going marks them `unpinning`. Returns the jobs to push after commit.

use std::collections::BTreeMap;

use diesel_async::AsyncPgConnection;
use uuid::Uuid;

use super::{
    status::Replica,
    store::{self, Placement},
    PlacementState,
};
use crate::{
    cluster::scheduler::{self, LiveNode},
    error::Result,
    jobs::{JobKind, PlacementJob},
    pins::model::PinState,
};

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

/// Where a CID with no placements yet goes.
pub struct Targets<'a> {
    /// Live, `active` nodes with their loads.
    pub live: &'a [LiveNode],
    /// Used when no node is live (e.g. heartbeats not yet seen): the node serving the
    /// request, whose pins then queue until its Kubo answers.
    pub fallback: Uuid,
    /// How many replicas to place (`cluster.maxReplicas`).
    pub replicas: usize,
    /// Nodes to use first, with a CID each already holds to `pin/update` from (replace).
    pub prefer: Vec<(Uuid, String)>,
}

impl Targets<'_> {
    /// The nodes and their `update_from`, distinct, preferred ones first.
    fn pick(&self) -> Vec<(Uuid, Option<String>)> {
        let mut out: Vec<(Uuid, Option<String>)> = self
            .prefer
            .iter()
            .filter(|(id, _)| self.live.iter().any(|n| n.id == *id))
            .take(self.replicas)
            .map(|(id, from)| (*id, Some(from.clone())))
            .collect();
        let taken: Vec<Uuid> = out.iter().map(|(id, _)| *id).collect();
        let more = self.replicas.saturating_sub(out.len());
        out.extend(
            scheduler::choose(self.live, &taken, more)
                .into_iter()
                .map(|id| (id, None)),
        );
        if out.is_empty() {
            let from = self
                .prefer
                .iter()
                .find(|(id, _)| *id == self.fallback)
                .map(|(_, from)| from.clone());
            out.push((self.fallback, from));
        }
        out
    }
}

/// A pin request for `cid` was added (refcount already bumped, so locked). A CID with
/// no placements is placed on `targets`; failed placements and ones being removed come
/// back (not a replica being trimmed). Returns the jobs to push after commit and the
/// CID's placements as they now stand.
pub async fn on_ref_added(
    conn: &mut AsyncPgConnection,
    cid: &str,
    targets: &Targets<'_>,
) -> Result<(Vec<PlacementJob>, Vec<Placement>)> {
    let placements = store::lock_all(conn, cid).await?;
    if placements.is_empty() {
        let mut jobs = Vec::new();
        let mut now = Vec::new();
        for (node, update_from) in targets.pick() {
            let p = store::insert_queued(conn, cid, node, update_from.as_deref()).await?;
            jobs.push(p.job(JobKind::Pin));
            now.push(p);
        }
        return Ok((jobs, now));
    }
    let mut jobs = Vec::new();
    let mut now = Vec::new();
    for p in placements {
        let trimming = p.replaced_at.is_some();
        now.push(match p.state {
            // A new request gives failed placements a fresh set of attempts; and when the
            // unpin has not run yet the content stays (pinning what Kubo still holds is
            // an instant success).
            PlacementState::Failed | PlacementState::Unpinning if !trimming => {
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
    super::status::summarize(placements.iter().map(|p| Replica {
        state: p.state,
        info: p.info.as_deref(),
        progress: p.progress,
        replaced: p.replaced_at.is_some(),
    }))
}

/// Nodes where `cid` is pinned (for a replace to `pin/update` from there).
pub async fn pinned_nodes(conn: &mut AsyncPgConnection, cid: &str) -> Result<Vec<Uuid>> {
    Ok(store::lock_all(conn, cid)
        .await?
        .into_iter()
        .filter(|p| p.state == PlacementState::Pinned && p.replaced_at.is_none())
        .map(|p| p.node_id)
        .collect())
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
        if p.state != PlacementState::Unpinning {
            let p =
                store::transition(conn, &p, PlacementState::Unpinning, None, None, false).await?;
            jobs.push(p.job(JobKind::Unpin));
        }
    }
    Ok(jobs)
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
        .filter(|p| p.state == PlacementState::Unpinning)
        .map(|p| p.job(JobKind::Unpin))
        .into_iter()
        .collect())
}
