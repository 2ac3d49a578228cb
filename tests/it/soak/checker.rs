//! The soak's verdict: the ledger against the database (pins and placements, read once)
//! and every IPFS node's recursive pin set.

use std::{
    collections::{BTreeMap, HashMap, HashSet},
    fmt::Write,
    time::Duration,
};

use anchorage::ids::{OrgId, RequestId};

use super::{
    faults::{Kind, Window},
    ledger::{Ledger, Op},
};
use crate::harness::cluster::{canonical, TestCluster};

/// Each invariant and what broke it (empty: held).
pub struct Report {
    invariants: Vec<(&'static str, Vec<String>)>,
    faults: BTreeMap<Kind, Vec<Duration>>,
    /// Requests answered 5xx or not at all (all inside fault windows if the invariant
    /// held).
    failed_in_windows: usize,
}

impl Report {
    pub fn first_violation(&self) -> Option<String> {
        self.invariants
            .iter()
            .find_map(|(name, broken)| broken.first().map(|b| format!("{name}: {b}")))
    }

    pub fn text(&self) -> String {
        let mut out = format!(
            "  requests failed (5xx or no answer), all during faults: {}\n  faults (count, recovery p50 / max):\n",
            self.failed_in_windows
        );
        for (kind, times) in &self.faults {
            let mut t = times.clone();
            t.sort();
            let _ = writeln!(
                out,
                "    {kind:?}: {} ({:.1} s / {:.1} s)",
                t.len(),
                t[t.len() / 2].as_secs_f64(),
                t[t.len() - 1].as_secs_f64()
            );
        }
        out.push_str("  invariants:\n");
        for (name, broken) in &self.invariants {
            let verdict = match broken.len() {
                0 => "held".to_string(),
                n => format!("BROKEN ({n}): {}", broken[0]),
            };
            let _ = writeln!(out, "    {name}: {verdict}");
        }
        out
    }
}

pub async fn check(
    c: &TestCluster,
    ledger: &Ledger,
    faults: &[Window],
    orgs: &[(OrgId, String)],
) -> Report {
    let entries = ledger.entries();
    let mut invariants = Vec::new();

    // The clients were really served: a run where nothing got through proves nothing.
    let answered = entries
        .iter()
        .filter(|e| e.status.is_some_and(|s| s < 500))
        .count();
    let mut unserved = Vec::new();
    if answered * 10 < entries.len() * 9 {
        unserved.push(format!(
            "only {answered} of {} requests answered below 500",
            entries.len()
        ));
    }
    for org in 0..orgs.len() {
        let accepted = entries
            .iter()
            .filter(|e| e.org == org && e.request_id.is_some())
            .count();
        if accepted == 0 {
            unserved.push(format!("org {org} got no pin accepted"));
        }
    }
    invariants.push((
        "the clients were served (≥ 90 % answered, every org pinned)",
        unserved,
    ));

    // No request id was issued twice.
    let mut seen = HashSet::new();
    let twice: Vec<String> = entries
        .iter()
        .filter_map(|e| e.request_id.clone())
        .filter(|id| !seen.insert(id.clone()))
        .collect();
    invariants.push(("no request id issued twice", twice));

    // What each accepted pin should be now. A delete whose answer was lost may or may
    // not have happened: its pin is checked for neither outcome.
    let mut cid_of: HashMap<String, (usize, String)> = HashMap::new();
    for e in &entries {
        if let (Op::Add { cid }, Some(id)) = (&e.op, &e.request_id) {
            cid_of.insert(id.clone(), (e.org, canonical(cid)));
        }
    }
    let mut deleted = HashSet::new();
    let mut unknown = HashSet::new();
    for e in &entries {
        if let Op::Delete { id } = &e.op {
            match e.status {
                Some(202) => {
                    deleted.insert(id.clone());
                }
                None => {
                    unknown.insert(id.clone());
                }
                _ => {}
            }
        }
    }
    // The truth, read once: every pin's status, every placement, every Kubo's pins.
    let statuses = pin_statuses(c).await;
    let mut placements: HashMap<String, Vec<(String, String)>> = HashMap::new();
    for row in c
        .sql()
        .query(
            "SELECT p.cid, n.name, p.state FROM placements p JOIN nodes n ON n.id = p.node_id",
            &[],
        )
        .await
        .unwrap()
    {
        placements
            .entry(row.get(0))
            .or_default()
            .push((row.get(1), row.get(2)));
    }
    let mut held_by: HashMap<String, Vec<String>> = HashMap::new();
    for i in 0..c.len() {
        for pin in c.kubo_pins(i).await {
            held_by
                .entry(canonical(&pin))
                .or_default()
                .push(c.name(i).to_string());
        }
    }
    let live_nodes: Vec<String> = (0..c.len()).map(|i| c.name(i).to_string()).collect();
    let mut wrong_state = Vec::new();
    let mut wrong_copies = Vec::new();
    let mut still_there = Vec::new();
    let (none, nobody) = (Vec::new(), Vec::new());
    for (id, (_, cid)) in &cid_of {
        if unknown.contains(id) {
            continue;
        }
        let uuid = id
            .parse::<RequestId>()
            .expect("a request id")
            .uuid()
            .to_string();
        let status = statuses.get(&uuid);
        let placed = placements.get(cid).unwrap_or(&none);
        let holders = held_by.get(cid).unwrap_or(&nobody);
        if deleted.contains(id) {
            if status.is_some() || !placed.is_empty() || !holders.is_empty() {
                still_there.push(format!(
                    "{id} ({cid}) deleted: status {status:?}, placements {placed:?}, Kubo holders {holders:?}"
                ));
            }
            continue;
        }
        if status.map(String::as_str) != Some("pinned") {
            wrong_state.push(format!("{id} ({cid}): {status:?}"));
            continue;
        }
        let pinned = placed
            .iter()
            .filter(|(node, state)| state == "pinned" && live_nodes.contains(node))
            .count();
        if pinned != 2 || holders.len() != 2 {
            wrong_copies.push(format!(
                "{id} ({cid}): placements {placed:?}, Kubo holders {holders:?}"
            ));
        }
    }
    invariants.push(("every accepted pin not deleted is pinned", wrong_state));
    invariants.push((
        "...on exactly minReplicas nodes, in their Kubo",
        wrong_copies,
    ));
    invariants.push((
        "every deleted pin is gone from the database and every Kubo",
        still_there,
    ));

    // No IPFS node holds a recursive pin that no placement wants.
    let mut unwanted = Vec::new();
    for (cid, nodes) in &held_by {
        let placed = placements.get(cid).unwrap_or(&none);
        for node in nodes {
            if !placed.iter().any(|(n, _)| n == node) {
                unwanted.push(format!("{node} holds {cid}"));
            }
        }
    }
    invariants.push(("no Kubo holds a pin nothing wants", unwanted));

    // No 5xx outside a fault window (a request overlapping one may fail).
    let stray: Vec<String> = entries
        .iter()
        .filter(|e| e.status.is_some_and(|s| s >= 500))
        .filter(|e| {
            !faults
                .iter()
                .any(|w| e.started <= w.recovered && e.ended >= w.started)
        })
        .map(|e| format!("{:?} on node-{} answered {:?}", e.op, e.node, e.status))
        .collect();
    invariants.push(("no 5xx outside a fault window", stray));
    let failed_in_windows = entries
        .iter()
        .filter(|e| e.status.is_none_or(|s| s >= 500))
        .count();

    let mut by_kind: BTreeMap<Kind, Vec<Duration>> = BTreeMap::new();
    for w in faults {
        by_kind.entry(w.kind).or_default().push(w.recovery);
    }
    Report {
        invariants,
        faults: by_kind,
        failed_in_windows,
    }
}

/// Every pin's status, as the system sees it (all orgs).
async fn pin_statuses(c: &TestCluster) -> HashMap<String, String> {
    c.db()
        .superuser_query("SELECT id::text, status FROM pins")
        .await
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect()
}
