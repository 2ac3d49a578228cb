//! Faults only the NATS backend has: its link to a node drops, the server is killed
//! under load, and a leader is cut off from NATS while Postgres still hears it.
//! (Everything both backends share runs twice, in the other files of this folder.)

use std::{collections::HashSet, time::Duration};

use anchorage::{
    auth::Role,
    cluster::{
        kv_lease::KvLease,
        leader::{fenced_tx, LeaderLease},
    },
    config,
    ids::NodeId,
    nats::Nats,
    Error,
};
use diesel_async::RunQueryDsl;
use futures_util::{stream, FutureExt, StreamExt};
use reqwest::Method;
use serde_json::{json, Value};

use crate::harness::{
    cluster::{canonical, eventually, timed, Backend, TestCluster},
    fixtures::cid,
    nats::NatsServer,
    send,
    sql::{self, db_count},
    tcp_proxy::TcpProxy,
    TestApp, TestDb,
};

/// `cluster.leaseTTL` the harness runs with.
const LEASE_TTL: Duration = Duration::from_secs(3);

/// The invalidation bus drops every cache when its NATS link drops: an invalidation
/// published in the gap would otherwise be missed.
#[tokio::test]
async fn losing_the_nats_link_drops_the_caches() {
    let db = TestDb::migrated().await;
    let server = tokio::task::spawn_blocking(NatsServer::start)
        .await
        .unwrap();
    let link = TcpProxy::start(server.port()).await;
    let app = TestApp::spawn_api_only(
        &db,
        "http://127.0.0.1:9",
        vec![
            ("cluster.backend".into(), json!("nats")),
            ("nats.url".into(), json!([link.nats_url()])),
            (
                "ipfs.delegates".into(),
                json!([format!(
                    "/ip4/198.51.99.7/tcp/4001/p2p/{}",
                    crate::harness::fixtures::PEER
                )]),
            ),
        ],
    )
    .await;
    let org = app.create_org("acme").await;
    let token = app.token(Some(org), Role::Member, None);
    // The follower drops every cache once subscribed: warm the cache only after.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (status, _) = send(app.req(Method::GET, "/v1/pins", &token)).await;
    assert_eq!(status, 200, "the token is now cached as valid");

    // Revoked behind the server's back: nothing published, so the cached verdict stands.
    let jti = app.state.tokens.verify(&token).unwrap().jti;
    {
        let mut conn = anchorage::db::pool::get(&app.state.db).await.unwrap();
        sql::query(
            "INSERT INTO token_denylist (jti, expires_at) VALUES ($1, now() + interval '1 hour')",
            &[jti.uuid().into()],
        )
        .execute(&mut conn)
        .await
        .unwrap();
    }
    let (status, _) = send(app.req(Method::GET, "/v1/pins", &token)).await;
    assert_eq!(status, 200, "still cached");

    link.cut();
    let (status, _) = timed(
        "the cached verdict dropped",
        Duration::from_secs(10),
        || async {
            let (status, _) = send(app.req(Method::GET, "/v1/pins", &token)).await;
            (status == 401).then_some(status)
        },
    )
    .await;
    assert_eq!(status, 401);
    let (_, ready) = app.get_json("/v1/ready").await;
    assert_eq!(ready["checks"]["nats"], "down", "{ready}");
    link.heal();
    eventually("nats: ok again", Duration::from_secs(10), || async {
        let (_, ready) = app.get_json("/v1/ready").await;
        (ready["checks"]["nats"] == "ok").then_some(())
    })
    .await;
    assert_eq!(
        db_count(&app, "SELECT count(*) AS n FROM token_denylist", &[]).await,
        1
    );
}

/// Kill -9 the NATS server while 500 pins are posted across three nodes, then start it
/// again: every accepted pin ends pinned on its two replicas, Kubo never gets a second
/// `pin/add` for a pinned generation (a redelivered job does nothing), and a leader is
/// back within the lease TTL + 2 s of NATS coming back.
#[tokio::test]
async fn a_nats_restart_under_load_loses_no_pin_and_repeats_no_pin_add() {
    const PINS: u32 = 500;
    let c = TestCluster::start_counting_kubo_calls(Backend::Nats, 3, (2, 2), &[]).await;
    let org = c.create_org("acme").await;
    let token = c.token(Some(org), Role::Member);
    eventually("a leader", Duration::from_secs(15), || async {
        c.leader().await.map(|_| ())
    })
    .await;

    let cr = &c;
    // Paced (about 100 a second) so that posting goes on across the whole outage.
    let posting = stream::iter(0..PINS)
        .map(|n| {
            let token = token.clone();
            async move {
                tokio::time::sleep(Duration::from_millis(40)).await;
                let node = n as usize % 3;
                let resp = cr
                    .req(node, Method::POST, "/v1/pins", &token)
                    .json(&json!({ "cid": cid(n) }))
                    .send()
                    .await;
                match resp {
                    Ok(r) if r.status() == 202 => Some(cid(n)),
                    _ => None,
                }
            }
        })
        .buffer_unordered(4)
        .collect::<Vec<_>>();
    let fault = async {
        // Let some pins through, then take NATS away while posting goes on.
        eventually("pins flowing", Duration::from_secs(60), || async {
            (cr.count("SELECT count(*) AS n FROM pins", &[]).await >= 100).then_some(())
        })
        .await;
        let old_pid = cr.nats().pid();
        cr.nats().kill();
        tokio::time::sleep(Duration::from_secs(3)).await;
        let posted = cr.count("SELECT count(*) AS n FROM pins", &[]).await;
        assert!(
            posted < i64::from(PINS),
            "posting ended while NATS was down"
        );
        cr.nats().restart();
        assert_ne!(cr.nats().pid(), old_pid, "nats-server really restarted");
        let (_, took) = timed("a leader after NATS came back", LEASE_TTL * 4, || async {
            cr.leader().await
        })
        .await;
        took
    };
    let (accepted, leader_back) = tokio::join!(posting, fault);
    let accepted: HashSet<String> = accepted.into_iter().flatten().collect();
    assert!(
        leader_back <= LEASE_TTL + Duration::from_secs(2),
        "a leader took {leader_back:?} after NATS was back"
    );
    eprintln!("nats restart: a leader {leader_back:?} after NATS was back");
    assert!(
        accepted.len() as u32 >= PINS * 9 / 10,
        "most posts accepted: {}",
        accepted.len()
    );

    eventually(
        "every accepted pin pinned twice",
        Duration::from_secs(180),
        || async {
            let pinned = c
                .count(
                    "SELECT count(*) AS n FROM placements WHERE state = 'pinned'",
                    &[],
                )
                .await;
            (pinned == 2 * accepted.len() as i64).then_some(())
        },
    )
    .await;
    let unsettled = c
        .count(
            "SELECT count(*) AS n FROM placements WHERE state <> 'pinned'",
            &[],
        )
        .await;
    assert_eq!(unsettled, 0);
    let (status, body) =
        send(c.req(0, Method::GET, "/v1/pins?status=pinned&limit=1", &token)).await;
    assert_eq!(status, 200);
    assert_eq!(body["count"], json!(accepted.len()), "{body}");

    let mut repeated = Vec::new();
    for cid in &accepted {
        let canonical = canonical(cid);
        let mut holders = 0;
        for i in 0..3 {
            let calls = c.kubo_calls(i, "/api/v0/pin/add", &canonical);
            if calls > 1 {
                repeated.push((canonical.clone(), i, calls));
            }
            holders += usize::from(calls > 0);
        }
        assert_eq!(holders, 2, "{canonical}: pin/add on {holders} nodes");
    }
    assert!(
        repeated.is_empty(),
        "second pin/add for a pinned generation: {repeated:?}"
    );
}

/// NATS comes back with an empty store while pins are in flight: the fence in Postgres
/// still only increases, and every accepted pin is pinned on its replicas (jobs lost with
/// the store are requeued by the sweeper).
#[tokio::test]
async fn nats_losing_its_store_is_repaired_and_the_fence_only_increases() {
    let c = TestCluster::start_with(Backend::Nats, 3, (2, 2), &[]).await;
    let org = c.create_org("acme").await;
    let token = c.token(Some(org), Role::Member);
    let (_, fence_before) = eventually("a leader", Duration::from_secs(15), || async {
        c.leader().await
    })
    .await;
    let post = |n: u32| {
        let token = token.clone();
        let c = &c;
        async move {
            let (status, body) = send(
                c.req(n as usize % 3, Method::POST, "/v1/pins", &token)
                    .json(&json!({ "cid": cid(10_000 + n) })),
            )
            .await;
            assert_eq!(status, 202, "{body}");
        }
    };
    stream::iter(0..60).for_each_concurrent(8, post).await;
    let old_pid = c.nats().pid();
    c.nats().restart_empty();
    assert_ne!(c.nats().pid(), old_pid);
    stream::iter(60..120).for_each_concurrent(8, post).await;

    eventually(
        "every pin pinned twice",
        Duration::from_secs(120),
        || async {
            let pinned = c
                .count(
                    "SELECT count(*) AS n FROM placements WHERE state = 'pinned'",
                    &[],
                )
                .await;
            (pinned == 240).then_some(())
        },
    )
    .await;
    let (_, fence_after) = eventually("a leader", Duration::from_secs(15), || async {
        c.leader().await.filter(|(_, fence)| *fence > fence_before)
    })
    .await;
    // The old leader's key went with the store, so the lease was taken anew: the fence
    // moved on in Postgres. (That the KV revision restarts while the fence does not is
    // checked in-process in `leader.rs`.)
    assert!(fence_after > fence_before, "{fence_after} > {fence_before}");
}

/// A leader cut off from NATS loses the lease to another node, and its fenced writes
/// fail in Postgres from then on, whatever it believes.
#[tokio::test]
async fn a_leader_cut_off_from_nats_is_replaced_and_cannot_write() {
    let db = TestDb::migrated().await;
    let server = tokio::task::spawn_blocking(NatsServer::start)
        .await
        .unwrap();
    let (link_a, link_b) = (
        TcpProxy::start(server.port()).await,
        TcpProxy::start(server.port()).await,
    );
    let (a, b) = (NodeId::new(), NodeId::new());
    for (node, name) in [(a, "a"), (b, "b")] {
        db.superuser_exec_with(
            "INSERT INTO nodes (id, name) VALUES ($1::text::uuid, $2)",
            &[&node.uuid().to_string(), &name],
        )
        .await;
    }
    let connect = |url: String| async move {
        let config = config::Nats {
            url: vec![url],
            connect_timeout: Duration::from_secs(10),
            ..Default::default()
        };
        Nats::connect(&config, "test").await.unwrap()
    };
    let ttl = Duration::from_secs(2);
    let mut lease_a = KvLease::new(connect(link_a.nats_url()).await, db.app_pool(), a, ttl);
    let mut lease_b = KvLease::new(connect(link_b.nats_url()).await, db.app_pool(), b, ttl);
    let fence_a = lease_a.round().await.unwrap().expect("a leads");
    assert_eq!(lease_b.round().await.unwrap(), None);

    link_a.cut();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let fence_b = loop {
        if let Ok(Some(fence)) = lease_b.round().await {
            break fence;
        }
        assert!(tokio::time::Instant::now() < deadline, "b never took over");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(fence_b > fence_a);

    // a still holds the fence it had; Postgres refuses it.
    let write = |node: NodeId, fence: i64| {
        let pool = db.app_pool();
        async move {
            fenced_tx(&pool, node, fence, |conn| {
                async move {
                    diesel::sql_query(
                        "UPDATE cluster_state SET maintenance_reason = 'split brain'",
                    )
                    .execute(conn)
                    .await?;
                    Ok(())
                }
                .boxed()
            })
            .await
        }
    };
    match write(a, fence_a).await {
        Err(Error::Conflict(msg)) => assert!(msg.contains("superseded"), "{msg}"),
        other => panic!("the cut-off leader wrote: {other:?}"),
    }
    write(b, fence_b).await.expect("the new leader writes");

    // a's link heals: it finds the key taken and stays a follower.
    link_a.heal();
    let mut a_led = false;
    for _ in 0..10 {
        a_led |= matches!(lease_a.round().await, Ok(Some(_)));
        assert_eq!(lease_b.round().await.unwrap(), Some(fence_b));
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert!(!a_led, "two leaders after the link healed");
}

/// The same cut in a running cluster: another node takes the lease within a few TTLs,
/// the cut-off node reports `nats: down` and stops leading, and once healed there is
/// still exactly one leader.
#[tokio::test]
async fn a_cluster_replaces_a_leader_cut_off_from_nats() {
    let c = TestCluster::start_with(Backend::Nats, 3, (1, 1), &[]).await;
    let (old, fence) = eventually("a leader", Duration::from_secs(15), || async {
        c.leader().await
    })
    .await;
    let i = c.index(&old);
    c.nats_link(i).cut();
    let ((new, new_fence), took) = timed("another leader", LEASE_TTL * 5, || async {
        c.leader().await.filter(|(name, _)| *name != old)
    })
    .await;
    assert!(new_fence > fence, "{new_fence} > {fence}");
    let cut_off = ready(&c, i).await;
    assert_eq!(cut_off["checks"]["nats"], "down", "{cut_off}");
    c.nats_link(i).heal();
    tokio::time::sleep(LEASE_TTL).await;
    let (holder, _) = c.leader().await.expect("a leader");
    assert_eq!(holder, new, "the lease stayed with {new}");
    let mut leading = Vec::new();
    for n in 0..c.len() {
        leading.push(ready(&c, n).await);
    }
    assert!(
        leading.iter().all(|b| b["checks"]["nats"] == "ok"),
        "{leading:?}"
    );
    eprintln!("nats: leader replaced {took:?} after its link was cut");
}

/// Node `i`'s `/v1/ready` body.
async fn ready(c: &TestCluster, i: usize) -> Value {
    reqwest::get(c.url(i, "/v1/ready"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}
