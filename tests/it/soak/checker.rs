//! The soak's verdict: the ledger against the database (through the API, as each org)
//! and every IPFS node's recursive pin set.

use std::{
    collections::{BTreeMap, HashMap, HashSet},
    fmt::Write,
    time::Duration,
};

use anchorage::ids::OrgId;
use reqwest::Method;

use super::{
    faults::{Kind, Window},
    ledger::{Ledger, Op},
};
use crate::harness::{
    cluster::{canonical, TestCluster},
    send,
};

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
    let live_nodes: Vec<String> = (0..c.len()).map(|i| c.name(i).to_string()).collect();
    let mut wrong_state = Vec::new();
    let mut wrong_copies = Vec::new();
    let mut still_there = Vec::new();
    for (id, (org, cid)) in &cid_of {
        if unknown.contains(id) {
            continue;
        }
        let token = &orgs[*org].1;
        let (status, body) = send(c.req(0, Method::GET, &format!("/v1/pins/{id}"), token)).await;
        let placements = c.placements(cid).await;
        if deleted.contains(id) {
            if status != 404 {
                still_there.push(format!("{id} ({cid}) deleted but answers {status}"));
            }
            let holders = c.kubo_holders(cid).await;
            if !placements.is_empty() || !holders.is_empty() {
                still_there.push(format!(
                    "{id} ({cid}) deleted: placements {placements:?}, Kubo holders {holders:?}"
                ));
            }
            continue;
        }
        if status != 200 || body["status"] != "pinned" {
            wrong_state.push(format!("{id} ({cid}): {status} {}", body["status"]));
            continue;
        }
        let pinned: Vec<&String> = placements
            .iter()
            .filter(|(node, state)| state == "pinned" && live_nodes.contains(node))
            .map(|(node, _)| node)
            .collect();
        let holders = c.kubo_holders(cid).await;
        if pinned.len() != 2 || holders.len() != 2 {
            wrong_copies.push(format!(
                "{id} ({cid}): placements {placements:?}, Kubo holders {holders:?}"
            ));
        }
    }
    invariants.push(("every accepted pin not deleted is pinned", wrong_state));
    invariants.push((
        "...on exactly minReplicas nodes, in their Kubo",
        wrong_copies,
    ));
    invariants.push((
        "every deleted pin is gone from the API and every Kubo",
        still_there,
    ));

    // No IPFS node holds a recursive pin that no placement wants.
    let mut unwanted = Vec::new();
    for i in 0..c.len() {
        let wanted: HashSet<String> = c
            .sql()
            .query(
                "SELECT p.cid FROM placements p JOIN nodes n ON n.id = p.node_id WHERE n.name = $1",
                &[&c.name(i)],
            )
            .await
            .unwrap()
            .iter()
            .map(|r| r.get::<_, String>(0))
            .collect();
        for pin in c.kubo_pins(i).await {
            if !wanted.contains(&canonical(&pin)) {
                unwanted.push(format!("{} holds {pin}", c.name(i)));
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
