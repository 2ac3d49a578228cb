//! Faults only a running NATS-backed cluster has: the server killed under load, its
//! store lost, and a leader cut off from NATS. (The in-process lease under the same
//! faults is in `leader.rs`, the invalidation bus losing its link in `invalidation.rs`;
//! everything both backends share runs twice, in the other files of this folder.)

use std::{collections::HashSet, time::Duration};

use anchorage::auth::Role;
use futures_util::{stream, StreamExt};
use reqwest::Method;
use serde_json::{json, Value};

use crate::harness::{
    cluster::{canonical, eventually, timed, Backend, TestCluster},
    fixtures::cid,
    send,
};

/// `cluster.leaseTTL` the harness runs with.
const LEASE_TTL: Duration = Duration::from_secs(3);

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
