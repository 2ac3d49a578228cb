//! Pins really get pinned: the API, the job queue and the runner against real Kubo cores.

use std::time::{Duration, Instant};

use anchorage::{auth::Role, ids::OrgId, pins::cid::Cid};
use reqwest::Method;
use serde_json::{json, Value};

use crate::harness::{
    fixtures::cid, kubo::random_bytes, send, sql::db_count, KuboNode, TestApp, TestDb,
};

/// An app on `node`'s Kubo that may dial loopback origins, with quick retries.
pub(crate) async fn app_on(db: &TestDb, rpc: &str, extra: Vec<(&str, Value)>) -> TestApp {
    let mut overrides: Vec<(String, Value)> = vec![
        ("ipfs.allowPrivateOrigins".into(), json!(true)),
        ("ipfs.retryBaseDelay".into(), json!("1s")),
    ];
    overrides.extend(extra.into_iter().map(|(k, v)| (k.to_string(), v)));
    TestApp::spawn_with(db, rpc, overrides).await
}

pub(crate) async fn start_nodes(n: usize) -> Vec<KuboNode> {
    tokio::task::spawn_blocking(move || {
        let handles: Vec<_> = (0..n)
            .map(|_| std::thread::spawn(KuboNode::start))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    })
    .await
    .unwrap()
}

/// Polls `GET /pins/{id}` until its status is `wanted`.
pub(crate) async fn wait_status(
    app: &TestApp,
    token: &str,
    id: &str,
    wanted: &str,
    within: Duration,
) -> Value {
    let deadline = Instant::now() + within;
    loop {
        let (code, body) = send(app.req(Method::GET, &format!("/v1/pins/{id}"), token)).await;
        assert_eq!(code, 200, "{body}");
        if body["status"] == wanted {
            return body;
        }
        assert!(
            Instant::now() < deadline,
            "still {} after {within:?}: {body}",
            body["status"]
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Waits until `check` holds.
pub(crate) async fn eventually<F, Fut>(what: &str, within: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + within;
    while !check().await {
        assert!(Instant::now() < deadline, "{what}: not within {within:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

pub(crate) async fn kubo_pins(node: &KuboNode) -> Vec<String> {
    let body = node
        .rpc("pin/ls", &[("type", "recursive"), ("stream", "true")])
        .await
        .text()
        .await
        .unwrap();
    body.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["Cid"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect()
}

pub(crate) fn canonical(cid: &str) -> String {
    Cid::parse(cid).unwrap().canonical().to_string()
}

pub(crate) async fn post_pin(app: &TestApp, token: &str, body: Value) -> String {
    let (code, pin) = send(app.req(Method::POST, "/v1/pins", token).json(&body)).await;
    assert_eq!(code, 202, "{pin}");
    pin["requestid"].as_str().unwrap().to_string()
}

pub(crate) async fn org_token(app: &TestApp, name: &str) -> (OrgId, String) {
    let org = app.create_org(name).await;
    (org, app.token(Some(org), Role::Member, None))
}

#[tokio::test]
async fn a_pin_from_an_origin_goes_pinned_and_outlives_the_origin() {
    let db = TestDb::migrated().await;
    let mut nodes = start_nodes(3).await;
    let (origin, ours, reader) = (nodes.remove(0), nodes.remove(0), nodes.remove(0));
    let cid = origin.add(random_bytes(1024 * 1024)).await;
    let app = app_on(&db, ours.api(), vec![]).await;
    let (_, token) = org_token(&app, "acme").await;

    let id = post_pin(
        &app,
        &token,
        json!({"cid": cid, "origins": [origin.swarm_addr()]}),
    )
    .await;
    let pinned = wait_status(&app, &token, &id, "pinned", Duration::from_secs(60)).await;
    assert_eq!(pinned["info"]["replicas"], "1/1");
    assert!(
        kubo_pins(&ours).await.contains(&canonical(&cid)),
        "anchorage's Kubo holds it"
    );
    assert_eq!(
        db_count(&app, "SELECT count(*) AS n FROM placements p JOIN owned_pins o USING (node_id, cid) WHERE p.state = 'pinned' AND NOT p.preexisting", &[]).await,
        1
    );
    // The worker's fetch and ack are counted.
    let metrics = app.state.metrics.render().unwrap();
    for series in [
        "anchorage_scheduler_fetch_total{node=\"anchor-1\",result=\"current\"} 1",
        "anchorage_scheduler_acks_total{node=\"anchor-1\",status=\"pinned\"} 1",
    ] {
        assert!(metrics.contains(series), "{series} missing:\n{metrics}");
    }

    // The origin goes away; anchorage's node still serves the blocks to a third node.
    drop(origin);
    let resp = reader
        .rpc("swarm/connect", &[("arg", ours.swarm_addr())])
        .await;
    assert!(resp.status().is_success());
    let resp = reader.rpc("pin/add", &[("arg", &cid)]).await;
    assert!(resp.status().is_success(), "{}", resp.text().await.unwrap());
}

#[tokio::test]
async fn a_cid_nobody_has_fails_after_the_stall_timeout_with_a_reason() {
    let db = TestDb::migrated().await;
    let mut nodes = start_nodes(2).await;
    let (elsewhere, ours) = (nodes.remove(0), nodes.remove(0));
    let cid = elsewhere.add(random_bytes(2048)).await;
    drop(elsewhere);
    let app = app_on(
        &db,
        ours.api(),
        vec![
            ("ipfs.pinStallTimeout", json!("2s")),
            ("ipfs.maxAttempts", json!(2)),
        ],
    )
    .await;
    let (_, token) = org_token(&app, "acme").await;

    let id = post_pin(&app, &token, json!({"cid": cid})).await;
    let failed = wait_status(&app, &token, &id, "failed", Duration::from_secs(60)).await;
    let details = failed["info"]["status_details"].as_str().unwrap();
    assert!(
        details.contains("stalled") && details.contains("2 attempt"),
        "{details}"
    );
    assert!(!kubo_pins(&ours).await.contains(&canonical(&cid)));
}

#[tokio::test]
async fn two_orgs_share_one_kubo_pin_until_the_last_reference_goes() {
    let db = TestDb::migrated().await;
    let mut nodes = start_nodes(2).await;
    let (origin, ours) = (nodes.remove(0), nodes.remove(0));
    let cid = origin.add(random_bytes(64 * 1024)).await;
    let app = app_on(&db, ours.api(), vec![]).await;
    let (_, ta) = org_token(&app, "alpha").await;
    let (_, tb) = org_token(&app, "beta").await;
    let body = json!({"cid": cid, "origins": [origin.swarm_addr()]});

    let a = post_pin(&app, &ta, body.clone()).await;
    wait_status(&app, &ta, &a, "pinned", Duration::from_secs(60)).await;
    let b = post_pin(&app, &tb, body).await;
    // Already held: pinned at once for the second org.
    let (_, got) = send(app.req(Method::GET, &format!("/v1/pins/{b}"), &tb)).await;
    assert_eq!(got["status"], "pinned", "{got}");
    assert_eq!(
        db_count(&app, "SELECT count(*) AS n FROM placements", &[]).await,
        1,
        "one placement for both"
    );

    send(app.req(Method::DELETE, &format!("/v1/pins/{a}"), &ta)).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        kubo_pins(&ours).await.contains(&canonical(&cid)),
        "still wanted by beta"
    );
    let (_, got) = send(app.req(Method::GET, &format!("/v1/pins/{b}"), &tb)).await;
    assert_eq!(got["status"], "pinned");

    send(app.req(Method::DELETE, &format!("/v1/pins/{b}"), &tb)).await;
    let want = canonical(&cid);
    eventually("Kubo unpins it", Duration::from_secs(30), || {
        let ours = &ours;
        let want = want.clone();
        async move { !kubo_pins(ours).await.contains(&want) }
    })
    .await;
    assert_eq!(
        db_count(&app, "SELECT count(*) AS n FROM placements", &[]).await,
        0
    );
    assert_eq!(
        db_count(&app, "SELECT count(*) AS n FROM cid_refs", &[]).await,
        0
    );
}

#[tokio::test]
async fn a_pin_the_operator_already_had_is_never_removed() {
    let db = TestDb::migrated().await;
    let ours = start_nodes(1).await.remove(0);
    // `add` pins it on the node itself: the operator's own pin.
    let cid = ours.add(random_bytes(4096)).await;
    let app = app_on(&db, ours.api(), vec![]).await;
    let (_, token) = org_token(&app, "acme").await;

    let id = post_pin(&app, &token, json!({"cid": canonical(&cid)})).await;
    wait_status(&app, &token, &id, "pinned", Duration::from_secs(30)).await;
    assert_eq!(
        db_count(
            &app,
            "SELECT count(*) AS n FROM placements WHERE preexisting AND NOT EXISTS (SELECT 1 FROM owned_pins)", &[]
        )
        .await,
        1
    );
    send(app.req(Method::DELETE, &format!("/v1/pins/{id}"), &token)).await;
    let app_ref = &app;
    eventually(
        "placement removed",
        Duration::from_secs(30),
        || async move { db_count(app_ref, "SELECT count(*) AS n FROM placements", &[]).await == 0 },
    )
    .await;
    assert!(
        kubo_pins(&ours).await.contains(&cid),
        "the operator's pin is still there"
    );
}

#[tokio::test]
async fn concurrent_delete_and_repin_ends_with_kubo_matching_the_database() {
    let db = TestDb::migrated().await;
    let mut nodes = start_nodes(2).await;
    let (origin, ours) = (nodes.remove(0), nodes.remove(0));
    let cid = origin.add(random_bytes(32 * 1024)).await;
    let app = app_on(&db, ours.api(), vec![]).await;
    let (_, token) = org_token(&app, "acme").await;
    let body = json!({"cid": cid, "origins": [origin.swarm_addr()]});

    let mut current = post_pin(&app, &token, body.clone()).await;
    for round in 0..50 {
        let delete = send(app.req(Method::DELETE, &format!("/v1/pins/{current}"), &token));
        let add = send(app.req(Method::POST, "/v1/pins", &token).json(&body));
        let ((dc, _), (ac, added)) = tokio::join!(delete, add);
        assert_eq!(dc, 202, "round {round}");
        assert_eq!(ac, 202, "round {round}: {added}");
        current = added["requestid"].as_str().unwrap().to_string();
    }
    // One request remains: the CID must end pinned, in the database and in Kubo.
    wait_status(&app, &token, &current, "pinned", Duration::from_secs(60)).await;
    let want = canonical(&cid);
    let app_ref = &app;
    eventually("quiescent", Duration::from_secs(60), || async move {
        db_count(
            app_ref,
            "SELECT count(*) AS n FROM placements WHERE state <> 'pinned'",
            &[],
        )
        .await
            == 0
    })
    .await;
    assert_eq!(
        db_count(&app, "SELECT refcount::bigint AS n FROM cid_refs", &[]).await,
        1
    );
    assert_eq!(
        db_count(&app, "SELECT count(*) AS n FROM pins", &[]).await,
        1
    );
    assert!(kubo_pins(&ours).await.contains(&want));

    // And the last delete leaves Kubo empty of it.
    send(app.req(Method::DELETE, &format!("/v1/pins/{current}"), &token)).await;
    eventually("unpinned", Duration::from_secs(30), || {
        let (ours, want) = (&ours, want.clone());
        async move { !kubo_pins(ours).await.contains(&want) }
    })
    .await;
}

#[tokio::test]
async fn pins_queue_while_kubo_is_down_and_drain_when_it_returns() {
    let db = TestDb::migrated().await;
    let origin = start_nodes(1).await.remove(0);
    let cid = origin.add(random_bytes(16 * 1024)).await;
    let port = anchorage::devstack::postgres::free_port().unwrap();
    let rpc = format!("http://127.0.0.1:{port}");
    let app = app_on(
        &db,
        &rpc,
        vec![
            ("ipfs.delegates", json!(["/ip4/127.0.0.1/tcp/4001/p2p/12D3KooWGRUVh1S3jiwVmGzeoWfxFcNn7MWzL9VXpdKrUZyWH8Qd"])),
            ("ipfs.maxAttempts", json!(30)),
        ],
    )
    .await;
    let (_, token) = org_token(&app, "acme").await;
    let id = post_pin(
        &app,
        &token,
        json!({"cid": cid, "origins": [origin.swarm_addr()]}),
    )
    .await;

    tokio::time::sleep(Duration::from_secs(2)).await;
    let (_, got) = send(app.req(Method::GET, &format!("/v1/pins/{id}"), &token)).await;
    assert!(
        got["status"] == "queued" || got["status"] == "pinning",
        "{got}"
    );
    let details = got["info"]["status_details"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let (ready, _) = app.get_json("/v1/ready").await;
    assert_eq!(ready, 503);

    // Kubo comes back on the same address: the backlog drains by itself.
    let node = tokio::task::spawn_blocking(move || {
        let dir = tempfile::TempDir::new().unwrap();
        let node = anchorage::devstack::kubo::LocalKubo::start(
            &dir.path().join("repo"),
            anchorage::devstack::kubo::KuboPorts {
                api: port,
                swarm: 0,
            },
        )
        .unwrap();
        (node, dir)
    })
    .await
    .unwrap();
    wait_status(&app, &token, &id, "pinned", Duration::from_secs(90)).await;
    let (ready, _) = app.get_json("/v1/ready").await;
    assert_eq!(ready, 200);
    assert!(
        details.is_empty()
            || details.contains("unreachable")
            || details.contains("queued")
            // an attempt caught in flight reports its progress
            || details.starts_with("pinning:"),
        "{details}"
    );
    drop(node);
}

/// The current job of a placement, read from the database (to drive the runner by hand).
async fn job_for(
    app: &TestApp,
    cid: &str,
    kind: anchorage::jobs::JobKind,
) -> anchorage::jobs::PlacementJob {
    let generation = db_count(
        app,
        "SELECT generation AS n FROM placements WHERE cid = $1",
        &[cid.into()],
    )
    .await;
    anchorage::jobs::PlacementJob {
        kind,
        cid: cid.to_string(),
        node: app.state.node.uuid(),
        generation,
    }
}

#[tokio::test]
async fn replace_on_the_same_node_uses_pin_update_and_keeps_the_old_cid_until_the_new_one_is_pinned(
) {
    use anchorage::{jobs::JobKind, placements::runner};
    let db = TestDb::migrated().await;
    let mut nodes = start_nodes(2).await;
    let (origin, ours) = (nodes.remove(0), nodes.remove(0));
    let old = origin.add(random_bytes(64 * 1024)).await;
    let new = origin.add(random_bytes(64 * 1024)).await;
    let (old_v1, new_v1) = (canonical(&old), canonical(&new));
    // No workers: this test runs each job itself, to observe the order of events.
    let app = TestApp::spawn_api_only(
        &db,
        ours.api(),
        vec![
            ("ipfs.allowPrivateOrigins".into(), json!(true)),
            ("ipfs.requeueAfter".into(), json!("1s")),
        ],
    )
    .await;
    let (_, token) = org_token(&app, "acme").await;

    let id = post_pin(
        &app,
        &token,
        json!({"cid": old, "origins": [origin.swarm_addr()]}),
    )
    .await;
    runner::run(&app.state, job_for(&app, &old_v1, JobKind::Pin).await)
        .await
        .unwrap();
    wait_status(&app, &token, &id, "pinned", Duration::from_secs(5)).await;

    let (code, replaced) = send(
        app.req(Method::POST, &format!("/v1/pins/{id}"), &token)
            .json(&json!({"cid": new, "origins": [origin.swarm_addr()]})),
    )
    .await;
    assert_eq!(code, 202, "{replaced}");
    assert_eq!(
        db_count(
            &app,
            "SELECT count(*) AS n FROM placements WHERE cid = $1 AND update_from = $2",
            &[new_v1.as_str().into(), old_v1.as_str().into()]
        )
        .await,
        1,
        "the new placement will pin/update from the old CID"
    );
    assert_eq!(
        db_count(
            &app,
            "SELECT count(*) AS n FROM placements WHERE cid = $1 AND state = 'unpinning'",
            &[old_v1.as_str().into()]
        )
        .await,
        1
    );

    // However long the new pin takes, the sweeper leaves the old copy alone meanwhile.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let old_generation = job_for(&app, &old_v1, JobKind::Unpin).await.generation;
    let fence = leader_fence(&app).await;
    anchorage::cluster::upkeep::sweep(&app.state, fence, &[app.state.node.uuid()])
        .await
        .unwrap();
    assert_eq!(
        job_for(&app, &old_v1, JobKind::Unpin).await.generation,
        old_generation
    );
    assert!(kubo_pins(&ours).await.contains(&old_v1));

    runner::run(&app.state, job_for(&app, &new_v1, JobKind::Pin).await)
        .await
        .unwrap();
    let new_id = replaced["requestid"].as_str().unwrap();
    wait_status(&app, &token, new_id, "pinned", Duration::from_secs(5)).await;
    let held = kubo_pins(&ours).await;
    assert!(
        held.contains(&new_v1) && held.contains(&old_v1),
        "old kept until the new one is pinned: {held:?}"
    );

    // Now the old copy goes.
    runner::run(&app.state, job_for(&app, &old_v1, JobKind::Unpin).await)
        .await
        .unwrap();
    let held = kubo_pins(&ours).await;
    assert!(
        held.contains(&new_v1) && !held.contains(&old_v1),
        "{held:?}"
    );
    assert_eq!(
        db_count(&app, "SELECT count(*) AS n FROM placements", &[]).await,
        1
    );
}

#[tokio::test]
async fn the_reconciler_repairs_removes_its_orphans_and_leaves_foreign_pins_alone() {
    use anchorage::placements::reconciler::reconcile;
    let db = TestDb::migrated().await;
    let mut nodes = start_nodes(2).await;
    let (origin, ours) = (nodes.remove(0), nodes.remove(0));
    let lost = origin.add(random_bytes(8 * 1024)).await;
    let orphan = origin.add(random_bytes(8 * 1024)).await;
    let foreign = ours.add(random_bytes(8 * 1024)).await;
    let app = app_on(
        &db,
        ours.api(),
        vec![("ipfs.orphanGracePeriod", json!("1s"))],
    )
    .await;
    let (_, token) = org_token(&app, "acme").await;
    let lost_id = post_pin(
        &app,
        &token,
        json!({"cid": lost, "origins": [origin.swarm_addr()]}),
    )
    .await;
    let orphan_id = post_pin(
        &app,
        &token,
        json!({"cid": orphan, "origins": [origin.swarm_addr()]}),
    )
    .await;
    wait_status(&app, &token, &lost_id, "pinned", Duration::from_secs(60)).await;
    wait_status(&app, &token, &orphan_id, "pinned", Duration::from_secs(60)).await;

    // Behind anchorage's back: one pin removed from Kubo, one forgotten by the database.
    let resp = ours.rpc("pin/rm", &[("arg", &canonical(&lost))]).await;
    assert!(resp.status().is_success());
    // One statement, so the three deletes stay one transaction as before.
    db.superuser_exec_with(
        "WITH gone_pins AS (DELETE FROM pins WHERE cid = $1), \
              gone_placements AS (DELETE FROM placements WHERE cid = $1) \
         DELETE FROM cid_refs WHERE cid = $1",
        &[&canonical(&orphan)],
    )
    .await;

    let first = reconcile(&app.state).await.unwrap();
    assert_eq!(first.requeued, 1, "{first:?}");
    assert_eq!(first.orphans_seen, 1, "{first:?}");
    assert_eq!(
        first.orphans_removed, 0,
        "not before the grace period: {first:?}"
    );
    wait_status(&app, &token, &lost_id, "pinned", Duration::from_secs(60)).await;
    assert!(
        kubo_pins(&ours).await.contains(&canonical(&lost)),
        "pinned again"
    );

    tokio::time::sleep(Duration::from_millis(1200)).await;
    let second = reconcile(&app.state).await.unwrap();
    assert_eq!(second.orphans_removed, 1, "{second:?}");
    let held = kubo_pins(&ours).await;
    assert!(
        !held.contains(&canonical(&orphan)),
        "the orphan it owned is gone"
    );
    assert!(held.contains(&foreign), "the operator's pin is untouched");
    assert_eq!(
        db_count(
            &app,
            "SELECT count(*) AS n FROM owned_pins WHERE cid = $1",
            &[canonical(&orphan).into()]
        )
        .await,
        0
    );
}

#[tokio::test]
async fn kubo_faults_retry_then_fail_with_the_reason_and_never_stop_the_worker() {
    use crate::harness::fake_kubo::FakeKubo;
    let db = TestDb::migrated().await;
    let behaviours = [
        "error500",
        "malformed",
        "truncated",
        "flat",
        "hang",
        "error-line",
    ];
    let cids: Vec<String> = (0..behaviours.len() as u32).map(cid).collect();
    let fake = FakeKubo::start_with(
        cids.iter()
            .zip(behaviours)
            .map(|(c, b)| (c.clone(), b.to_string()))
            .collect(),
    );
    let app = app_on(
        &db,
        &fake.url,
        vec![
            ("ipfs.delegates", json!(["/ip4/127.0.0.1/tcp/4001/p2p/12D3KooWGRUVh1S3jiwVmGzeoWfxFcNn7MWzL9VXpdKrUZyWH8Qd"])),
            ("ipfs.pinStallTimeout", json!("1s")),
            ("ipfs.maxAttempts", json!(2)),
        ],
    )
    .await;
    let (_, token) = org_token(&app, "acme").await;
    let mut ids = Vec::new();
    for c in &cids {
        ids.push(post_pin(&app, &token, json!({"cid": c})).await);
    }
    for ((id, behaviour), class) in ids.iter().zip(behaviours).zip([
        "rejected",
        "malformed",
        "malformed",
        "stalled",
        "stalled",
        "rejected",
    ]) {
        let failed = wait_status(&app, &token, id, "failed", Duration::from_secs(60)).await;
        let details = failed["info"]["status_details"].as_str().unwrap();
        assert!(details.contains(class), "{behaviour}: {details}");
    }
    // Rejections are not retried; transient faults used both attempts.
    assert_eq!(
        db_count(
            &app,
            "SELECT count(*) AS n FROM placements WHERE state = 'failed' AND attempts = 1",
            &[]
        )
        .await,
        2
    );
    assert_eq!(
        db_count(
            &app,
            "SELECT count(*) AS n FROM placements WHERE state = 'failed' AND attempts = 2",
            &[]
        )
        .await,
        4
    );
}

/// The fence of the test app once it has been elected (it is the only node).
async fn leader_fence(app: &TestApp) -> i64 {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(fence) = app.state.leadership.fence() {
            return fence;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the only node was never elected"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The leader reads its live set at the start of a round, so a node drained since is
/// still in it. The drain must not count that node's own copy as the replica that
/// replaces it: with nowhere else to go, the copy stays wanted (before the fix the
/// drain marked it replaced with no copy made anywhere).
#[tokio::test]
async fn a_drain_never_counts_the_copy_it_moves_as_its_replacement() {
    let db = TestDb::migrated().await;
    let ours = start_nodes(1).await.remove(0);
    let cid = ours.add(random_bytes(4096)).await;
    let app = app_on(&db, ours.api(), vec![]).await;
    let (_, token) = org_token(&app, "acme").await;
    let id = post_pin(&app, &token, json!({"cid": canonical(&cid)})).await;
    wait_status(&app, &token, &id, "pinned", Duration::from_secs(30)).await;

    let fence = leader_fence(&app).await;
    let stale_live = {
        let mut conn = anchorage::db::pool::get(&app.state.db).await.unwrap();
        anchorage::cluster::scheduler::read_live(&mut conn, app.state.config.cluster.node_ttl)
            .await
            .unwrap()
    };
    assert_eq!(stale_live.len(), 1, "the only node is live and active");
    anchorage::cluster::ops::set_node_state(
        &app.state.db,
        app.state.bus.clone(),
        &app.state.config.cluster.node_id,
        anchorage::cluster::ops::NodeState::Draining,
        &anchorage::auth::Actor::operator("test".into()),
    )
    .await
    .unwrap();
    let moved = anchorage::cluster::upkeep::drain_round(
        &app.state,
        fence,
        &std::sync::Arc::new(stale_live),
    )
    .await
    .unwrap();
    assert_eq!(moved, 0, "nowhere to copy to, so nothing moves");
    assert_eq!(
        db_count(
            &app,
            "SELECT count(*) AS n FROM placements WHERE replaced_at IS NULL",
            &[]
        )
        .await,
        1,
        "the only copy is still a wanted one"
    );
}
