//! Operating a running cluster: draining, cordoning and uncordoning a node, maintenance
//! mode and its TTL watchdog, rebalancing and re-queueing — through `anchorage admin …`
//! and the `/v1/admin/…` API — and the audit trail each leaves. Against N real
//! `anchorage serve` processes with real Kubo cores over one Postgres.
//!
//! "No CID ever has fewer pinned replicas than before" is checked the two ways it can
//! be seen: `pinned` placement rows (one statement, so one snapshot) and the recursive
//! pins of every Kubo. Kubos are read one after another, so they are read sources
//! first and destinations last: a copy is pinned before the original is removed, so
//! reading in that order never counts a replica short that is not.
//!
//! Timings (see `harness::cluster::DEFAULT_ENV`): heartbeat 1 s, node TTL 3 s, lease
//! TTL 3 s, repair delay 2 s.

use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    process::{Output, Stdio},
    time::{Duration, Instant},
};

use anchorage::{auth::Role, ids::NodeId};
use reqwest::Method;
use serde_json::{json, Value};

use crate::harness::{
    cluster::{canonical, eventually, timed, Backend, TestCluster},
    kubo::random_bytes,
    send,
};

/// How often the invariant samplers look.
const SAMPLE_EVERY: Duration = Duration::from_millis(200);

// ---- running the CLI -------------------------------------------------------------------

/// Runs `anchorage <args>` against the cluster's database without blocking the test's
/// runtime (the nodes keep being served and observed meanwhile).
async fn cli(c: &TestCluster, args: &[&str]) -> Output {
    tokio::process::Command::from(c.cli_command(args))
        .kill_on_drop(true)
        .output()
        .await
        .expect("running anchorage")
}

/// [`cli`] that must exit 0; returns its stdout.
async fn cli_ok(c: &TestCluster, args: &[&str]) -> String {
    let out = cli(c, args).await;
    assert!(
        out.status.success(),
        "anchorage {} exited {}\nstdout: {}\nstderr: {}",
        args.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `anchorage admin <verb> <node>` (drain, cordon, uncordon): exits 0 and prints one line.
async fn node_cmd(c: &TestCluster, verb: &str, node: &str) -> String {
    let out = cli_ok(c, &["admin", verb, node]).await;
    assert_eq!(
        out.lines().filter(|l| !l.trim().is_empty()).count(),
        1,
        "`admin {verb} {node}` prints one line: {out:?}"
    );
    out
}

/// `anchorage admin maintenance status --json`.
async fn maintenance_status(c: &TestCluster) -> Value {
    let out = cli_ok(c, &["admin", "maintenance", "status", "--json"]).await;
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("status --json: {e}: {out}"))
}

/// The actor the CLI records: `cli:<OS user>`, the user as the command sees it (the
/// test's environment reaches it unchanged apart from `ANCHORAGE_*`).
fn cli_actor() -> String {
    let user = std::env::var("SUDO_USER")
        .or_else(|_| std::env::var("USER"))
        .unwrap_or_else(|_| "unknown".into());
    format!("cli:{user}")
}

/// The actor the API records for `jwt`: `<sub>:<jti>`, read from its payload.
fn api_actor(jwt: &str) -> String {
    use base64::Engine;
    let payload = jwt.split('.').nth(1).expect("a JWT");
    let claims: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap();
    format!(
        "{}:{}",
        claims["sub"].as_str().unwrap(),
        claims["jti"].as_str().unwrap()
    )
}

// ---- the cluster as the database and the Kubos see it ----------------------------------

/// The `nod_…` id of the node called `name`.
async fn nod(c: &TestCluster, name: &str) -> String {
    NodeId::from_uuid(c.node_uuid(name).await).to_string()
}

/// `nodes.state` of the node called `name`.
async fn node_state(c: &TestCluster, name: &str) -> String {
    c.sql()
        .query_one("SELECT state FROM nodes WHERE name = $1", &[&name])
        .await
        .unwrap()
        .get(0)
}

/// Placements on the node called `name`, any CID, any state.
async fn placements_on(c: &TestCluster, name: &str) -> i64 {
    c.sql()
        .query_one(
            "SELECT count(*) FROM placements p JOIN nodes n ON n.id = p.node_id \
             WHERE n.name = $1",
            &[&name],
        )
        .await
        .unwrap()
        .get(0)
}

/// Per CID of `cids` (canonical): (`pinned` placements, all placements). One statement,
/// so one snapshot. A CID with no placement is absent.
async fn placement_counts(c: &TestCluster, cids: &[String]) -> HashMap<String, (i64, i64)> {
    c.sql()
        .query(
            "SELECT cid, count(*) FILTER (WHERE state = 'pinned'), count(*) FROM placements \
             WHERE cid = ANY($1) GROUP BY cid",
            &[&cids],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), (r.get(1), r.get(2))))
        .collect()
}

/// Node name → the CIDs of `cids` placed on it (any state). Nodes with none are absent.
async fn placed_sets(c: &TestCluster, cids: &[String]) -> BTreeMap<String, BTreeSet<String>> {
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for r in c
        .sql()
        .query(
            "SELECT n.name, p.cid FROM placements p JOIN nodes n ON n.id = p.node_id \
             WHERE p.cid = ANY($1)",
            &[&cids],
        )
        .await
        .unwrap()
    {
        out.entry(r.get(0)).or_default().insert(r.get(1));
    }
    out
}

/// Every node's name → how many of `cids` are placed on it (0 included).
async fn loads(c: &TestCluster, cids: &[String]) -> BTreeMap<String, usize> {
    let placed = placed_sets(c, cids).await;
    (0..c.len())
        .map(|i| {
            let name = c.name(i).to_string();
            let n = placed.get(&name).map_or(0, BTreeSet::len);
            (name, n)
        })
        .collect()
}

fn spread(loads: &BTreeMap<String, usize>) -> usize {
    loads.values().max().unwrap() - loads.values().min().unwrap()
}

/// Every placement row as (cid, node name, state, replaced), sorted.
async fn all_placements(c: &TestCluster) -> Vec<(String, String, String, bool)> {
    c.sql()
        .query(
            "SELECT p.cid, n.name, p.state, p.replaced_at IS NOT NULL FROM placements p \
             JOIN nodes n ON n.id = p.node_id ORDER BY p.cid, n.name",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
        .collect()
}

/// The CIDs of `cids` node `i`'s Kubo pins recursively (canonical).
async fn kubo_set(c: &TestCluster, i: usize, cids: &[String]) -> BTreeSet<String> {
    c.kubo_pins(i)
        .await
        .iter()
        .map(|p| canonical(p))
        .filter(|p| cids.contains(p))
        .collect()
}

/// Reads the Kubos of `order`, in that order; returns per node index the CIDs of `cids`
/// it pins, and per CID how many of them pin it.
async fn kubo_sample(
    c: &TestCluster,
    cids: &[String],
    order: &[usize],
) -> (HashMap<usize, BTreeSet<String>>, HashMap<String, usize>) {
    let mut sets = HashMap::new();
    for &i in order {
        sets.insert(i, kubo_set(c, i, cids).await);
    }
    let counts = cids
        .iter()
        .map(|cid| {
            let n = sets.values().filter(|s| s.contains(cid)).count();
            (cid.clone(), n)
        })
        .collect();
    (sets, counts)
}

/// Waits until each of `cids` has exactly `n` placements, all `pinned`, and every running
/// Kubo pins exactly the CIDs of `cids` placed on its node. Returns node name → CIDs.
async fn wait_settled(
    c: &TestCluster,
    cids: &[String],
    n: i64,
    within: Duration,
) -> BTreeMap<String, BTreeSet<String>> {
    eventually(
        &format!(
            "{} CIDs each pinned on exactly {n} nodes, Kubos matching placements",
            cids.len()
        ),
        within,
        || async move {
            let counts = placement_counts(c, cids).await;
            if cids.iter().any(|cid| counts.get(cid) != Some(&(n, n))) {
                return None;
            }
            let placed = placed_sets(c, cids).await;
            for i in 0..c.len() {
                if !c.kubo_running(i) {
                    continue;
                }
                let want = placed.get(c.name(i)).cloned().unwrap_or_default();
                if kubo_set(c, i, cids).await != want {
                    return None;
                }
            }
            Some(placed)
        },
    )
    .await
}

/// The placements of `cid` once they are exactly `n` rows, all `pinned`, on distinct
/// nodes whose Kubos (and only theirs) hold it. Returns the node names, sorted.
async fn wait_replicated(c: &TestCluster, cid: &str, n: usize, within: Duration) -> Vec<String> {
    eventually(
        &format!("{cid} pinned on exactly {n} nodes, Kubos matching placements"),
        within,
        || async move {
            let rows = c.placements(cid).await;
            if rows.len() != n || rows.iter().any(|(_, s)| s != "pinned") {
                return None;
            }
            let names: Vec<String> = rows.into_iter().map(|(name, _)| name).collect();
            (c.kubo_holders(cid).await == names).then_some(names)
        },
    )
    .await
}

/// Names of the nodes other than `dead` with a `pinned` placement of `cid`, sorted.
async fn pinned_on_others(c: &TestCluster, cid: &str, dead: &[&str]) -> Vec<String> {
    c.placements(cid)
        .await
        .into_iter()
        .filter(|(n, s)| !dead.contains(&n.as_str()) && s == "pinned")
        .map(|(n, _)| n)
        .collect()
}

// ---- pinning ----------------------------------------------------------------------------

/// POSTs a pin of `cid` from `origin`'s Kubo to node `i`; asserts 202.
async fn post_pin(c: &TestCluster, i: usize, token: &str, cid: &str, origin: usize) {
    let (code, body) = send(
        c.req(i, Method::POST, "/v1/pins", token)
            .json(&json!({"cid": cid, "origins": [c.swarm_addr(origin)]})),
    )
    .await;
    assert_eq!(code, 202, "{body}");
}

/// `n` new small files, the k-th added (unpinned) to the Kubo of `origins[k % len]` and
/// pinned through that node with its Kubo as the origin. Returns the canonical CIDs.
async fn pin_many(c: &TestCluster, token: &str, n: usize, origins: &[usize]) -> Vec<String> {
    let mut out = Vec::with_capacity(n);
    for k in 0..n {
        let i = origins[k % origins.len()];
        let cid = c.add_unpinned(i, random_bytes(4 * 1024)).await;
        post_pin(c, i, token, &cid, i).await;
        out.push(canonical(&cid));
    }
    out
}

// ---- HTTP -------------------------------------------------------------------------------

/// Status of `GET /v1/ready` on node `i`.
async fn ready(c: &TestCluster, i: usize) -> u16 {
    reqwest::get(c.url(i, "/v1/ready"))
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// `GET /v1/admin/nodes` through node `i`: the entry for `name`.
async fn admin_node(c: &TestCluster, i: usize, sysadmin: &str, name: &str) -> Value {
    let (code, body) = send(c.req(i, Method::GET, "/v1/admin/nodes", sysadmin)).await;
    assert_eq!(code, 200, "{body}");
    let results = body["results"].as_array().expect("results");
    assert_eq!(body["count"], results.len(), "{body}");
    results
        .iter()
        .find(|n| n["nodeID"] == name)
        .unwrap_or_else(|| panic!("{name} not listed by {}: {body}", c.name(i)))
        .clone()
}

/// Audit entries of `action` (newest first), read through node `i`.
async fn audit(c: &TestCluster, i: usize, sysadmin: &str, action: &str) -> Vec<Value> {
    let (code, body) = send(c.req(
        i,
        Method::GET,
        &format!("/v1/admin/audit?action={action}&limit=1000"),
        sysadmin,
    ))
    .await;
    assert_eq!(code, 200, "{body}");
    body["results"].as_array().expect("results").clone()
}

/// Waits for `action`'s entries to number `before + 1`, checks no second one follows,
/// and that the new one is by `actor`. Returns it.
async fn audited_once(
    c: &TestCluster,
    sysadmin: &str,
    action: &str,
    before: usize,
    actor: &str,
) -> Value {
    eventually(
        &format!("an audit entry for {action}"),
        Duration::from_secs(5),
        || async move { (audit(c, 0, sysadmin, action).await.len() > before).then_some(()) },
    )
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let entries = audit(c, 0, sysadmin, action).await;
    assert_eq!(
        entries.len(),
        before + 1,
        "{action} audited more than once: {entries:#?}"
    );
    let newest = entries[0].clone();
    assert_eq!(newest["action"], action, "{newest}");
    assert_eq!(newest["actor"], actor, "{newest}");
    newest
}

// ---- tests -------------------------------------------------------------------------------

async fn draining_a_node_keeps_every_replica_and_empties_it(backend: Backend) {
    const N: usize = 50;
    let c = TestCluster::start_with(backend, 3, (2, 2), &[]).await;
    let org = c.create_org("acme").await;
    let token = c.token(Some(org), Role::Member);
    let sysadmin = c.token(None, Role::Sysadmin);

    let cids = pin_many(&c, &token, N, &[0, 1, 2]).await;
    let (placed, took) = {
        let started = Instant::now();
        let placed = wait_settled(&c, &cids, 2, Duration::from_secs(120)).await;
        (placed, started.elapsed())
    };
    eprintln!("MEASURED {N} pins replicated on 2 of 3 nodes: {took:?}");
    let victim = (0..3)
        .max_by_key(|&i| placed.get(c.name(i)).map_or(0, BTreeSet::len))
        .unwrap();
    let name = c.name(victim).to_string();
    let replicas = placed[&name].len();
    assert!(replicas > 0, "{placed:?}");
    let others: Vec<String> = (0..3)
        .filter(|&i| i != victim)
        .map(|i| c.name(i).to_string())
        .collect();
    assert_eq!(ready(&c, victim).await, 200, "ready before the drain");

    node_cmd(&c, "drain", &name).await;
    assert_eq!(node_state(&c, &name).await, "draining");

    // The draining node's Kubo first: its copy goes only after another is pinned.
    let order: Vec<usize> = std::iter::once(victim)
        .chain((0..3).filter(|&i| i != victim))
        .collect();
    let started = Instant::now();
    let (mut samples, mut min_db, mut min_kubo) = (0usize, i64::MAX, usize::MAX);
    let mut first_503: Option<usize> = None;
    loop {
        let counts = placement_counts(&c, &cids).await;
        let (sets, held) = kubo_sample(&c, &cids, &order).await;
        let code = ready(&c, victim).await;
        samples += 1;
        for cid in &cids {
            let pinned = counts.get(cid).map_or(0, |x| x.0);
            assert!(
                pinned >= 2,
                "sample {samples}, {:?} into the drain: {cid} has {pinned} pinned placements: {:?}",
                started.elapsed(),
                c.placements(cid).await
            );
            assert!(
                held[cid] >= 2,
                "sample {samples}, {:?} into the drain: {cid} pinned by {} Kubos (placements {:?})",
                started.elapsed(),
                held[cid],
                c.placements(cid).await
            );
            min_db = min_db.min(pinned);
            min_kubo = min_kubo.min(held[cid]);
        }
        match (code, first_503) {
            (503, None) => first_503 = Some(samples),
            (503, Some(_)) => {}
            (code, Some(since)) => {
                panic!("/v1/ready on the draining node went back to {code} at sample {samples} (503 since sample {since})")
            }
            (code, None) => assert!(
                started.elapsed() < Duration::from_secs(2),
                "/v1/ready on the draining node still {code} after {:?}",
                started.elapsed()
            ),
        }
        let left = placements_on(&c, &name).await;
        if left == 0 && sets[&victim].is_empty() {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(90),
            "drain not done after {:?}: {left} placements left on {name}, its Kubo pins {} of the CIDs",
            started.elapsed(),
            sets[&victim].len()
        );
        tokio::time::sleep(SAMPLE_EVERY).await;
    }
    let took = started.elapsed();
    eprintln!(
        "MEASURED drain of {replicas} replicas: {took:?} ({samples} samples; fewest pinned \
         replicas of any CID seen: {min_db} in the database, {min_kubo} in Kubo)"
    );
    assert!(
        first_503.is_some(),
        "/v1/ready never said 503 while draining"
    );

    // Everything is on the two others now; the drained node stays drained (and unready).
    let placed = wait_settled(&c, &cids, 2, Duration::from_secs(30)).await;
    assert!(
        placed.get(&name).is_none_or(BTreeSet::is_empty),
        "{placed:?}"
    );
    for o in &others {
        assert_eq!(placed[o].len(), N, "{o} holds every CID: {placed:?}");
    }
    assert_eq!(node_state(&c, &name).await, "draining");
    assert_eq!(ready(&c, victim).await, 503);
    let listed = admin_node(&c, (victim + 1) % 3, &sysadmin, &name).await;
    assert_eq!(listed["state"], "draining", "{listed}");
    assert_eq!(listed["id"], nod(&c, &name).await, "{listed}");

    // Uncordoned, it is active and ready again, and as the emptiest node it takes the
    // next pin.
    node_cmd(&c, "uncordon", &name).await;
    assert_eq!(node_state(&c, &name).await, "active");
    let cr = &c;
    eventually(
        "/v1/ready 200 after uncordon",
        Duration::from_secs(5),
        || async move { (ready(cr, victim).await == 200).then_some(()) },
    )
    .await;
    let origin = (victim + 1) % 3;
    let cid = c.add_unpinned(origin, random_bytes(4 * 1024)).await;
    post_pin(&c, origin, &token, &cid, origin).await;
    let holders = wait_replicated(&c, &cid, 2, Duration::from_secs(60)).await;
    assert!(
        holders.contains(&name),
        "the uncordoned, empty node got no placement of a new pin: {holders:?}"
    );
}

async fn cordon_stops_new_placements_and_moves_nothing(backend: Backend) {
    let c = TestCluster::start_with(backend, 3, (2, 2), &[]).await;
    let org = c.create_org("acme").await;
    let token = c.token(Some(org), Role::Member);
    let sysadmin = c.token(None, Role::Sysadmin);

    let before = pin_many(&c, &token, 6, &[0, 1, 2]).await;
    let placed = wait_settled(&c, &before, 2, Duration::from_secs(60)).await;
    let victim = (0..3)
        .max_by_key(|&i| placed.get(c.name(i)).map_or(0, BTreeSet::len))
        .unwrap();
    let name = c.name(victim).to_string();
    let id = nod(&c, &name).await;
    let kept = placed[&name].clone();
    assert!(!kept.is_empty(), "{placed:?}");

    // Cordoned through the API, asked of another node, by name.
    let other = (victim + 1) % 3;
    let (code, body) = send(c.req(
        other,
        Method::POST,
        &format!("/v1/admin/nodes/{name}/cordon"),
        &sysadmin,
    ))
    .await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["nodeID"], name.as_str(), "{body}");
    assert_eq!(body["id"], id.as_str(), "{body}");
    assert_eq!(body["state"], "cordoned", "{body}");
    assert_eq!(node_state(&c, &name).await, "cordoned");
    for i in 0..3 {
        let listed = admin_node(&c, i, &sysadmin, &name).await;
        assert_eq!(listed["state"], "cordoned", "via {}: {listed}", c.name(i));
        assert_eq!(listed["live"], true, "a cordoned node stays live: {listed}");
    }

    // New pins, through every node (after one heartbeat, so no node can still be
    // working from a view of the cluster older than the cordon), avoid it.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let after = pin_many(&c, &token, 8, &[0, 1, 2]).await;
    let placed_after = wait_settled(&c, &after, 2, Duration::from_secs(60)).await;
    assert!(
        placed_after.get(&name).is_none_or(BTreeSet::is_empty),
        "new pins placed on the cordoned {name}: {placed_after:?}"
    );

    // Nothing moved, for longer than a node TTL and a repair delay: its replicas stay
    // placed, pinned and in its Kubo; nothing else of the old pins changed either.
    let until = Instant::now() + Duration::from_secs(6);
    while Instant::now() < until {
        assert_eq!(
            placed_sets(&c, &before).await,
            placed,
            "placements of the earlier pins"
        );
        assert!(placement_counts(&c, &before)
            .await
            .values()
            .all(|&x| x == (2, 2)));
        assert_eq!(kubo_set(&c, victim, &before).await, kept);
        assert_eq!(placements_on(&c, &name).await, kept.len() as i64);
        tokio::time::sleep(Duration::from_millis(300)).await;
    }

    // Uncordoned by its id: active again.
    let (code, body) = send(c.req(
        other,
        Method::POST,
        &format!("/v1/admin/nodes/{id}/uncordon"),
        &sysadmin,
    ))
    .await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["state"], "active", "{body}");
    assert_eq!(body["nodeID"], name.as_str(), "{body}");
    assert_eq!(node_state(&c, &name).await, "active");
}

async fn maintenance_pauses_repair_until_off_or_expiry(backend: Backend) {
    let mut c = TestCluster::start_with(backend, 4, (2, 2), &[]).await;
    let org = c.create_org("acme").await;
    let token = c.token(Some(org), Role::Member);
    let sysadmin = c.token(None, Role::Sysadmin);
    // Only node 0's blockstore has the content: it is never killed.
    let cid = c.add_unpinned(0, random_bytes(64 * 1024)).await;
    post_pin(&c, 0, &token, &cid, 0).await;
    let holders = wait_replicated(&c, &cid, 2, Duration::from_secs(60)).await;

    // ---- on (60 s), lose a holder: nothing is re-placed; off: repaired.
    cli_ok(
        &c,
        &[
            "admin",
            "maintenance",
            "on",
            "--reason",
            "kubo upgrade",
            "--ttl",
            "60s",
        ],
    )
    .await;
    let status = maintenance_status(&c).await;
    assert_eq!(status["maintenance"], true, "{status}");
    assert_eq!(status["reason"], "kubo upgrade", "{status}");
    let expires = chrono::DateTime::parse_from_rfc3339(status["expires_at"].as_str().unwrap())
        .unwrap_or_else(|e| panic!("expires_at: {e}: {status}"));
    let left = expires
        .signed_duration_since(chrono::Utc::now())
        .num_seconds();
    assert!((50..=61).contains(&left), "expires in {left}s: {status}");
    let (code, api) = send(c.req(1, Method::GET, "/v1/admin/maintenance", &sysadmin)).await;
    assert_eq!(code, 200, "{api}");
    assert_eq!(api["maintenance"], true, "{api}");
    assert_eq!(api["reason"], "kubo upgrade", "{api}");

    let victim = holders
        .iter()
        .map(|n| c.index(n))
        .find(|&i| i != 0)
        .unwrap();
    let victim_name = c.name(victim).to_string();
    c.kill(victim);
    c.kill_kubo(victim).await;
    let until = Instant::now() + Duration::from_secs(8);
    while Instant::now() < until {
        let names: Vec<String> = c
            .placements(&cid)
            .await
            .into_iter()
            .map(|(n, _)| n)
            .collect();
        assert_eq!(names, holders, "a replica was re-placed during maintenance");
        tokio::time::sleep(SAMPLE_EVERY).await;
    }
    // The pause was not for want of noticing: the node is seen dead.
    let listed = admin_node(&c, 0, &sysadmin, &victim_name).await;
    assert_eq!(listed["live"], false, "{listed}");

    let out = cli_ok(&c, &["admin", "maintenance", "off"]).await;
    assert!(!out.trim().is_empty(), "maintenance off says something");
    assert_eq!(maintenance_status(&c).await["maintenance"], false);
    let cr = &c;
    let dead = [victim_name.as_str()];
    let (live, took) = timed(
        "repaired onto 2 live nodes after maintenance off",
        Duration::from_secs(45),
        || {
            let (cid, dead) = (&cid, &dead);
            async move {
                let live = pinned_on_others(cr, cid, dead).await;
                (live.len() == 2 && cr.kubo_holders(cid).await == live).then_some(live)
            }
        },
    )
    .await;
    eprintln!("MEASURED repair after maintenance off: {took:?}");

    // ---- on with a short TTL, lose another holder: nothing until the watchdog ends it,
    // then repaired.
    let victim2 = live.iter().map(|n| c.index(n)).find(|&i| i != 0).unwrap();
    let victim2_name = c.name(victim2).to_string();
    let spare = (0..4)
        .find(|&i| i != victim && i != victim2 && !live.contains(&c.name(i).to_string()))
        .unwrap();
    let spare_name = c.name(spare).to_string();
    cli_ok(
        &c,
        &[
            "admin",
            "maintenance",
            "on",
            "--reason",
            "short window",
            "--ttl",
            "10s",
        ],
    )
    .await;
    let on = Instant::now();
    let status = maintenance_status(&c).await;
    assert_eq!(status["maintenance"], true, "{status}");
    let expires = chrono::DateTime::parse_from_rfc3339(status["expires_at"].as_str().unwrap())
        .unwrap()
        .timestamp_millis() as f64
        / 1000.0;
    c.kill(victim2);
    c.kill_kubo(victim2).await;
    while on.elapsed() < Duration::from_millis(8500) {
        let rows = c.placements(&cid).await;
        assert!(
            rows.iter().all(|(n, _)| *n != spare_name),
            "re-placed on {spare_name} before maintenance expired: {rows:?}"
        );
        tokio::time::sleep(SAMPLE_EVERY).await;
    }
    let cr = &c;
    let dead = [victim_name.as_str(), victim2_name.as_str()];
    let mut survivors: Vec<String> = (0..4)
        .filter(|&i| i != victim && i != victim2)
        .map(|i| cr.name(i).to_string())
        .collect();
    survivors.sort();
    let (_, took) = timed(
        "repaired onto the 2 survivors once maintenance expired",
        Duration::from_secs(45),
        || {
            let (cid, dead, survivors) = (&cid, &dead, &survivors);
            async move {
                (pinned_on_others(cr, cid, dead).await == *survivors
                    && cr.kubo_holders(cid).await == *survivors)
                    .then_some(())
            }
        },
    )
    .await;
    eprintln!(
        "MEASURED repair after maintenance expired: {:?} after it was turned on with a 10 s \
         TTL ({took:?} after the hold ended)",
        on.elapsed()
    );
    let created: f64 = c
        .sql()
        .query_one(
            "SELECT extract(epoch FROM p.created_at)::float8 FROM placements p \
             JOIN nodes n ON n.id = p.node_id WHERE p.cid = $1 AND n.name = $2",
            &[&canonical(&cid), &spare_name],
        )
        .await
        .unwrap()
        .get(0);
    assert!(
        created >= expires,
        "the replacement was placed {:.1}s before maintenance expired",
        expires - created
    );

    assert_eq!(maintenance_status(&c).await["maintenance"], false);
    let sys = &sysadmin;
    let expired = eventually(
        "maintenance.expire audited",
        Duration::from_secs(10),
        || async move {
            let e = audit(cr, 0, sys, "maintenance.expire").await;
            (!e.is_empty()).then_some(e)
        },
    )
    .await;
    assert_eq!(expired.len(), 1, "{expired:#?}");
    assert_eq!(expired[0]["actor"], "system:watchdog", "{}", expired[0]);
    let on_entries = audit(&c, 0, &sysadmin, "maintenance.on").await;
    assert_eq!(on_entries.len(), 2, "{on_entries:#?}");
    assert!(on_entries
        .iter()
        .all(|e| e["actor"] == cli_actor().as_str()));
    let off_entries = audit(&c, 0, &sysadmin, "maintenance.off").await;
    assert_eq!(
        off_entries.len(),
        1,
        "only the operator's: {off_entries:#?}"
    );
}

async fn rebalance_dry_run_changes_nothing_and_apply_evens_load(backend: Backend) {
    const N: usize = 30;
    let c = TestCluster::start_with(backend, 4, (2, 2), &[]).await;
    let org = c.create_org("acme").await;
    let token = c.token(Some(org), Role::Member);
    let sysadmin = c.token(None, Role::Sysadmin);
    let empty = "node-3";
    let empty_id = nod(&c, empty).await;
    let mut names_by_id = HashMap::new();
    for i in 0..4 {
        names_by_id.insert(nod(&c, c.name(i)).await, c.name(i).to_string());
    }

    // node-3 takes no part in the pins; then it joins, empty.
    node_cmd(&c, "cordon", empty).await;
    let cids = pin_many(&c, &token, N, &[0, 1, 2]).await;
    let placed = wait_settled(&c, &cids, 2, Duration::from_secs(120)).await;
    assert!(
        placed.get(empty).is_none_or(BTreeSet::is_empty),
        "{placed:?}"
    );
    node_cmd(&c, "uncordon", empty).await;
    let before = all_placements(&c).await;
    let loads_before = loads(&c, &cids).await;
    eprintln!("loads before the rebalance: {loads_before:?}");

    // ---- dry run: a plan onto node-3 that evens the load; nothing changes.
    let out = cli_ok(&c, &["admin", "rebalance", "--dry-run", "--json"]).await;
    let plan: Vec<Value> = serde_json::from_str(&out)
        .unwrap_or_else(|e| panic!("rebalance --dry-run --json: {e}: {out}"));
    assert!(!plan.is_empty(), "no moves onto the empty node");
    let mut planned_loads = loads_before.clone();
    let mut moved_cids = BTreeSet::new();
    for m in &plan {
        let cid = canonical(m["cid"].as_str().unwrap_or_else(|| panic!("{m}")));
        assert_eq!(m["to"], empty_id.as_str(), "every move goes to node-3: {m}");
        let from = names_by_id
            .get(m["from"].as_str().unwrap())
            .unwrap_or_else(|| panic!("from is not a nod_ id of the cluster: {m}"));
        assert!(placed[from].contains(&cid), "{from} holds no {cid}: {m}");
        assert!(
            moved_cids.insert(cid.clone()),
            "{cid} moved twice: {plan:?}"
        );
        *planned_loads.get_mut(from).unwrap() -= 1;
        *planned_loads.get_mut(empty).unwrap() += 1;
    }
    assert!(
        spread(&planned_loads) <= 1,
        "the plan leaves loads {planned_loads:?}"
    );
    assert_eq!(
        all_placements(&c).await,
        before,
        "a dry run changed placements"
    );
    let (code, api) = send(c.req(1, Method::GET, "/v1/admin/rebalance", &sysadmin)).await;
    assert_eq!(code, 200, "{api}");
    let key = |m: &Value| {
        (
            canonical(m["cid"].as_str().unwrap()),
            m["from"].as_str().unwrap().to_string(),
            m["to"].as_str().unwrap().to_string(),
        )
    };
    assert_eq!(
        api["moves"]
            .as_array()
            .unwrap_or_else(|| panic!("{api}"))
            .iter()
            .map(key)
            .collect::<BTreeSet<_>>(),
        plan.iter().map(key).collect::<BTreeSet<_>>(),
        "the API shows the CLI's plan"
    );
    // Nothing moves by itself either.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(all_placements(&c).await, before, "placements moved unasked");
    assert!(
        audit(&c, 0, &sysadmin, "rebalance.apply").await.is_empty(),
        "a dry run is not an apply"
    );

    // ---- apply and wait, watching every CID keep its two pinned replicas.
    let mut cmd =
        tokio::process::Command::from(c.cli_command(&["admin", "rebalance", "--wait", "120s"]));
    cmd.stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let started = Instant::now();
    let waiter = tokio::spawn(cmd.spawn().unwrap().wait_with_output());
    // Sources (node-0..2) before the destination (node-3).
    let order = [0, 1, 2, 3];
    let (mut samples, mut min_db, mut min_kubo) = (0usize, i64::MAX, usize::MAX);
    while !waiter.is_finished() {
        let counts = placement_counts(&c, &cids).await;
        let (_, held) = kubo_sample(&c, &cids, &order).await;
        samples += 1;
        for cid in &cids {
            let pinned = counts.get(cid).map_or(0, |x| x.0);
            assert!(
                pinned >= 2,
                "sample {samples}, {:?} into the rebalance: {cid} has {pinned} pinned placements: {:?}",
                started.elapsed(),
                c.placements(cid).await
            );
            assert!(
                held[cid] >= 2,
                "sample {samples}, {:?} into the rebalance: {cid} pinned by {} Kubos (placements {:?})",
                started.elapsed(),
                held[cid],
                c.placements(cid).await
            );
            min_db = min_db.min(pinned);
            min_kubo = min_kubo.min(held[cid]);
        }
        assert!(
            started.elapsed() < Duration::from_secs(150),
            "rebalance --wait 120s still running after {:?}",
            started.elapsed()
        );
        tokio::time::sleep(SAMPLE_EVERY).await;
    }
    let out = waiter.await.unwrap().unwrap();
    let took = started.elapsed();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "rebalance --wait exited {}\nstdout: {stdout}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let progress = stdout.lines().filter(|l| !l.trim().is_empty()).count();
    assert!(progress >= 1, "no progress printed");

    // Done when it says so: every CID on exactly 2 nodes, pinned, loads even.
    let counts = placement_counts(&c, &cids).await;
    for cid in &cids {
        assert_eq!(
            counts.get(cid),
            Some(&(2, 2)),
            "{cid} once rebalance --wait returned: {:?}",
            c.placements(cid).await
        );
    }
    let loads_after = loads(&c, &cids).await;
    assert!(spread(&loads_after) <= 1, "loads after: {loads_after:?}");
    assert_eq!(
        loads_after[empty],
        2 * N / 4,
        "node-3's share: {loads_after:?}"
    );
    wait_settled(&c, &cids, 2, Duration::from_secs(30)).await;
    let after = all_placements(&c).await;
    let before_keys: BTreeSet<(String, String)> =
        before.iter().map(|r| (r.0.clone(), r.1.clone())).collect();
    let moves = after
        .iter()
        .filter(|r| !before_keys.contains(&(r.0.clone(), r.1.clone())))
        .count();
    assert_eq!(
        moves, loads_after[empty],
        "every replica on node-3 moved there"
    );
    eprintln!(
        "MEASURED rebalance: {moves} moves ({} planned) in {took:?}, {progress} progress lines; \
         {samples} samples, fewest pinned replicas of any CID seen: {min_db} in the database, \
         {min_kubo} in Kubo",
        plan.len()
    );

    // Nothing left to do.
    let out = cli_ok(&c, &["admin", "rebalance", "--dry-run", "--json"]).await;
    let plan: Vec<Value> = serde_json::from_str(&out).unwrap();
    assert!(plan.is_empty(), "moves left after the rebalance: {out}");
    let applied = audit(&c, 0, &sysadmin, "rebalance.apply").await;
    assert_eq!(applied.len(), 1, "{applied:#?}");
    assert_eq!(applied[0]["actor"], cli_actor().as_str());
}

async fn each_admin_action_is_audited_once_with_its_actor(backend: Backend) {
    let c = TestCluster::start_with(backend, 2, (1, 1), &[]).await;
    let org = c.create_org("acme").await;
    let token = c.token(Some(org), Role::Member);
    let sysadmin = c.token(None, Role::Sysadmin);
    let (cli_who, api_who) = (cli_actor(), api_actor(&sysadmin));
    assert!(api_who.starts_with("usr_test:tok_"), "{api_who}");
    let ids = [nod(&c, "node-0").await, nod(&c, "node-1").await];
    let count = |action: &'static str| {
        let (c, sysadmin) = (&c, &sysadmin);
        async move { audit(c, 0, sysadmin, action).await.len() }
    };

    // ---- requeue: a placement forced to failed, requeued by the CLI then the API.
    let cid = c.add_unpinned(0, random_bytes(4 * 1024)).await;
    post_pin(&c, 0, &token, &cid, 0).await;
    wait_replicated(&c, &cid, 1, Duration::from_secs(60)).await;
    let canon = canonical(&cid);
    let fail = || {
        let (c, canon) = (&c, &canon);
        async move {
            let n = c
                .sql()
                .execute(
                    "UPDATE placements SET state = 'failed', info = 'failed by the test' \
                     WHERE cid = $1 AND state = 'pinned'",
                    &[canon],
                )
                .await
                .unwrap();
            assert_eq!(n, 1, "one pinned placement to fail");
        }
    };
    fail().await;
    let before = count("placements.requeue").await;
    let out = cli_ok(
        &c,
        &["admin", "requeue", "--cid", &cid, "--status", "failed"],
    )
    .await;
    assert_eq!(out.trim(), "requeued 1");
    audited_once(&c, &sysadmin, "placements.requeue", before, &cli_who).await;
    wait_replicated(&c, &cid, 1, Duration::from_secs(30)).await;
    fail().await;
    let (code, body) = send(
        c.req(1, Method::POST, "/v1/admin/requeue", &sysadmin)
            .json(&json!({"cid": cid, "status": "failed"})),
    )
    .await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["requeued"], 1, "{body}");
    audited_once(&c, &sysadmin, "placements.requeue", before + 1, &api_who).await;
    wait_replicated(&c, &cid, 1, Duration::from_secs(30)).await;

    // ---- maintenance, CLI then API.
    let before = count("maintenance.on").await;
    cli_ok(
        &c,
        &[
            "admin",
            "maintenance",
            "on",
            "--reason",
            "audit test",
            "--ttl",
            "30s",
        ],
    )
    .await;
    audited_once(&c, &sysadmin, "maintenance.on", before, &cli_who).await;
    let before = count("maintenance.off").await;
    cli_ok(&c, &["admin", "maintenance", "off"]).await;
    audited_once(&c, &sysadmin, "maintenance.off", before, &cli_who).await;

    let before = count("maintenance.on").await;
    let (code, body) = send(
        c.req(1, Method::PUT, "/v1/admin/maintenance", &sysadmin)
            .json(&json!({"reason": "api window", "ttl": "30m"})),
    )
    .await;
    assert!((200..300).contains(&code), "{code} {body}");
    audited_once(&c, &sysadmin, "maintenance.on", before, &api_who).await;
    let (code, got) = send(c.req(0, Method::GET, "/v1/admin/maintenance", &sysadmin)).await;
    assert_eq!(code, 200, "{got}");
    assert_eq!(got["maintenance"], true, "{got}");
    assert_eq!(got["reason"], "api window", "{got}");
    let expires = chrono::DateTime::parse_from_rfc3339(got["expires_at"].as_str().unwrap())
        .unwrap_or_else(|e| panic!("expires_at: {e}: {got}"));
    let left = expires
        .signed_duration_since(chrono::Utc::now())
        .num_seconds();
    assert!((1700..=1801).contains(&left), "expires in {left}s: {got}");
    let before = count("maintenance.off").await;
    let (code, body) = send(c.req(1, Method::DELETE, "/v1/admin/maintenance", &sysadmin)).await;
    assert!((200..300).contains(&code), "{code} {body}");
    audited_once(&c, &sysadmin, "maintenance.off", before, &api_who).await;
    let (_, got) = send(c.req(0, Method::GET, "/v1/admin/maintenance", &sysadmin)).await;
    assert_eq!(got["maintenance"], false, "{got}");

    // ---- rebalance apply, CLI then API (one replica on two nodes: nothing to move).
    let before = count("rebalance.apply").await;
    cli_ok(&c, &["admin", "rebalance", "--wait", "60s"]).await;
    audited_once(&c, &sysadmin, "rebalance.apply", before, &cli_who).await;
    let (code, body) = send(c.req(1, Method::POST, "/v1/admin/rebalance", &sysadmin)).await;
    assert_eq!(code, 202, "{body}");
    audited_once(&c, &sysadmin, "rebalance.apply", before + 1, &api_who).await;
    let (code, body) = send(c.req(0, Method::GET, "/v1/admin/rebalance", &sysadmin)).await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["moves"], json!([]), "{body}");

    // ---- node states: the CLI on node-1 (by name and by id), the API on node-0.
    let target_ok = |entry: &Value, i: usize| {
        let t = entry["target"].as_str().unwrap_or_default();
        assert!(
            t == ids[i] || t == c.name(i),
            "target names the node ({} / {}): {entry}",
            c.name(i),
            ids[i]
        );
    };
    let steps: [(&str, &str, &str); 4] = [
        ("cordon", "node.cordon", "node-1"),
        ("uncordon", "node.uncordon", "node-1"),
        ("drain", "node.drain", ids[1].as_str()),
        ("uncordon", "node.uncordon", ids[1].as_str()),
    ];
    for (verb, action, node) in steps {
        let before = audit(&c, 0, &sysadmin, action).await.len();
        node_cmd(&c, verb, node).await;
        let e = audited_once(&c, &sysadmin, action, before, &cli_who).await;
        target_ok(&e, 1);
    }
    assert_eq!(node_state(&c, "node-1").await, "active");
    let steps: [(&str, &str, &str, &str); 4] = [
        ("cordon", "node.cordon", "node-0", "cordoned"),
        ("uncordon", "node.uncordon", ids[0].as_str(), "active"),
        ("drain", "node.drain", ids[0].as_str(), "draining"),
        ("uncordon", "node.uncordon", "node-0", "active"),
    ];
    for (verb, action, node, state) in steps {
        let before = audit(&c, 0, &sysadmin, action).await.len();
        let (code, body) = send(c.req(
            1,
            Method::POST,
            &format!("/v1/admin/nodes/{node}/{verb}"),
            &sysadmin,
        ))
        .await;
        assert_eq!(code, 200, "{verb} {node}: {body}");
        assert_eq!(body["state"], state, "{body}");
        assert_eq!(body["nodeID"], "node-0", "{body}");
        let e = audited_once(&c, &sysadmin, action, before, &api_who).await;
        target_ok(&e, 0);
    }
    assert_eq!(node_state(&c, "node-0").await, "active");

    // ---- the whole tally: one entry per action taken, half by each actor.
    for (action, n) in [
        ("placements.requeue", 2),
        ("maintenance.on", 2),
        ("maintenance.off", 2),
        ("maintenance.expire", 0),
        ("rebalance.apply", 2),
        ("node.cordon", 2),
        ("node.drain", 2),
        ("node.uncordon", 4),
    ] {
        let entries = audit(&c, 0, &sysadmin, action).await;
        assert_eq!(entries.len(), n, "{action}: {entries:#?}");
        let by_cli = entries
            .iter()
            .filter(|e| e["actor"] == cli_who.as_str())
            .count();
        let by_api = entries
            .iter()
            .filter(|e| e["actor"] == api_who.as_str())
            .count();
        assert_eq!((by_cli, by_api), (n / 2, n / 2), "{action}: {entries:#?}");
    }
}

async fn admin_api_is_for_sysadmins(backend: Backend) {
    let c = TestCluster::start_with(backend, 1, (1, 1), &[]).await;
    let org = c.create_org("acme").await;
    let id = nod(&c, "node-0").await;
    let member = c.token(Some(org), Role::Member);
    let orgadmin = c.token(Some(org), Role::Orgadmin);
    let sysadmin = c.token(None, Role::Sysadmin);

    let calls: Vec<(Method, String, Option<Value>)> = vec![
        (Method::GET, "/v1/admin/nodes".into(), None),
        (Method::POST, "/v1/admin/nodes/node-0/drain".into(), None),
        (Method::POST, "/v1/admin/nodes/node-0/cordon".into(), None),
        (Method::POST, "/v1/admin/nodes/node-0/uncordon".into(), None),
        (Method::POST, format!("/v1/admin/nodes/{id}/drain"), None),
        (Method::GET, "/v1/admin/maintenance".into(), None),
        (
            Method::PUT,
            "/v1/admin/maintenance".into(),
            Some(json!({"reason": "nope", "ttl": "30m"})),
        ),
        (Method::DELETE, "/v1/admin/maintenance".into(), None),
        (Method::GET, "/v1/admin/rebalance".into(), None),
        (Method::POST, "/v1/admin/rebalance".into(), None),
        (Method::GET, "/v1/admin/cache-stats".into(), None),
        (
            Method::POST,
            "/v1/admin/requeue".into(),
            Some(json!({"status": "failed"})),
        ),
    ];
    for (who, token) in [("member", &member), ("orgadmin", &orgadmin)] {
        for (method, path, body) in &calls {
            let mut req = c.req(0, method.clone(), path, token);
            if let Some(b) = body {
                req = req.json(b);
            }
            let (code, got) = send(req).await;
            assert_eq!(code, 403, "{who} {method} {path}: {got}");
            assert_eq!(
                got["error"]["reason"], "FORBIDDEN",
                "{who} {method} {path}: {got}"
            );
        }
    }
    for (method, path, body) in &calls {
        let mut req = reqwest::Client::new().request(method.clone(), c.url(0, path));
        if let Some(b) = body {
            req = req.json(b);
        }
        let (code, got) = send(req).await;
        assert_eq!(code, 401, "anonymous {method} {path}: {got}");
    }

    // Nothing happened.
    assert_eq!(node_state(&c, "node-0").await, "active");
    assert_eq!(
        c.count(
            "SELECT count(*) AS n FROM cluster_state WHERE maintenance",
            &[]
        )
        .await,
        0
    );
    assert_eq!(
        c.count(
            "SELECT count(*) AS n FROM audit_log WHERE action LIKE 'node.%' \
             OR action LIKE 'maintenance.%' OR action IN ('rebalance.apply', 'placements.requeue')",
            &[]
        )
        .await,
        0
    );

    // A sysadmin sees the node.
    let cr = &c;
    let sys = &sysadmin;
    let node = eventually(
        "node-0 listed live and leading",
        Duration::from_secs(20),
        || async move {
            let (code, body) = send(cr.req(0, Method::GET, "/v1/admin/nodes", sys)).await;
            assert_eq!(code, 200, "{body}");
            assert_eq!(body["count"], 1, "{body}");
            let n = body["results"][0].clone();
            (n["live"] == true && n["leader"] == true).then_some(n)
        },
    )
    .await;
    assert_eq!(node["nodeID"], "node-0", "{node}");
    assert_eq!(node["id"], id.as_str(), "{node}");
    assert_eq!(node["state"], "active", "{node}");
    let (code, body) = send(c.req(0, Method::GET, "/v1/admin/cache-stats", &sysadmin)).await;
    assert_eq!(code, 200, "{body}");
    let (code, body) = send(c.req(0, Method::GET, "/v1/admin/maintenance", &sysadmin)).await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["maintenance"], false, "{body}");
}

crate::on_both_backends!(
    draining_a_node_keeps_every_replica_and_empties_it,
    cordon_stops_new_placements_and_moves_nothing,
    maintenance_pauses_repair_until_off_or_expiry,
    rebalance_dry_run_changes_nothing_and_apply_evens_load,
    each_admin_action_is_audited_once_with_its_actor,
    admin_api_is_for_sysadmins,
);
