//! Several `anchorage serve` processes on one database: node-name claims, leader
//! election and failover, replicated placement with repair and trimming, one set of
//! replicas shared by every org, and token revocation reaching every node.
//!
//! Timings (see `harness::cluster::DEFAULT_ENV`): heartbeat 1 s, node TTL 3 s, lease
//! TTL 3 s, repair delay 2 s.

use std::time::{Duration, Instant};

use anchorage::auth::Role;
use reqwest::Method;
use serde_json::{json, Value};

use crate::harness::{
    cluster::{canonical, eventually, timed, Backend, TestCluster},
    kubo::random_bytes,
    nats::NatsServer,
    send,
};

/// `cluster.leaseTTL` the harness runs with.
const LEASE_TTL: Duration = Duration::from_secs(3);

/// Polls `GET /v1/pins/{id}` on node `i` until its status is `wanted`; returns the body.
async fn wait_status(
    c: &TestCluster,
    i: usize,
    token: &str,
    id: &str,
    wanted: &str,
    within: Duration,
) -> Value {
    let path = format!("/v1/pins/{id}");
    eventually(
        &format!("pin {id} {wanted} on {}", c.name(i)),
        within,
        || {
            let path = &path;
            async move {
                let (code, body) = send(c.req(i, Method::GET, path, token)).await;
                assert_eq!(code, 200, "{body}");
                (body["status"] == wanted).then_some(body)
            }
        },
    )
    .await
}

/// POSTs a pin of `cid` from `origin`'s Kubo to node `i`; asserts 202 and returns the body.
async fn post_pin(c: &TestCluster, i: usize, token: &str, cid: &str, origin: usize) -> Value {
    let (code, body) = send(
        c.req(i, Method::POST, "/v1/pins", token)
            .json(&json!({"cid": cid, "origins": [c.swarm_addr(origin)]})),
    )
    .await;
    assert_eq!(code, 202, "{body}");
    assert!(body["requestid"].is_string(), "{body}");
    body
}

/// The placements of `cid` once they are exactly `n` rows, all `pinned`, on distinct
/// nodes whose Kubos (and only theirs) hold the CID. Returns the node names, sorted.
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

async fn a_node_id_held_by_a_running_process_is_refused(backend: Backend) {
    let mut c = TestCluster::start_with(backend, 1, (1, 1), &[]).await;
    let id = c.node_uuid("node-0").await;

    let out = c.spawn_extra("node-0").await;
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        out.status.code().is_some(),
        "the duplicate did not exit by itself within 15 s ({}):\n{stderr}",
        out.status
    );
    assert!(!out.status.success(), "the duplicate exited 0:\n{stderr}");
    assert!(
        stderr.contains("is in use by another running anchorage process"),
        "{stderr}"
    );

    // The running holder is untouched: still serving, still the only row of that name.
    let health = reqwest::get(c.url(0, "/v1/health")).await.unwrap();
    assert_eq!(health.status(), 200);
    assert_eq!(
        c.count("SELECT count(*) AS n FROM nodes WHERE name = 'node-0'", &[])
            .await,
        1
    );
    assert_eq!(c.node_uuid("node-0").await, id);
    assert!(
        !c.log(0)
            .contains("is in use by another running anchorage process"),
        "{}",
        c.log(0)
    );

    // A crashed holder gives the name up at once: the same id starts again (a refused
    // claim would exit, which `restart` reports), as the same node row.
    c.kill(0);
    c.restart(0).await;
    assert_eq!(c.node_uuid("node-0").await, id);
    assert_eq!(c.count("SELECT count(*) AS n FROM nodes", &[]).await, 1);
}

async fn the_leader_fails_over_within_the_lease_ttl_after_sigkill(backend: Backend) {
    let mut c = TestCluster::start_with(backend, 3, (1, 1), &[]).await;
    let cr = &c;
    let (leader, fence) = eventually("a leader", Duration::from_secs(20), || async move {
        cr.leader().await
    })
    .await;
    assert_eq!(c.live_leader_rows().await, 1);

    // Leadership is stable while everyone is healthy, and only one node ever took it.
    let until = Instant::now() + Duration::from_secs(3);
    while Instant::now() < until {
        assert_eq!(
            c.leader().await,
            Some((leader.clone(), fence)),
            "leadership moved with every node healthy"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let claimed: Vec<usize> = (0..c.len())
        .filter(|&i| c.log(i).contains("this node is now the cluster leader"))
        .collect();
    assert_eq!(
        claimed,
        vec![c.index(&leader)],
        "nodes that logged taking the lead"
    );

    let li = c.index(&leader);
    c.kill(li);
    let cr = &c;
    let old = leader.clone();
    let ((new, new_fence), took) = timed(
        "another node takes the lead",
        LEASE_TTL + Duration::from_secs(20),
        || {
            let old = &old;
            async move {
                cr.leader()
                    .await
                    .filter(|(name, f)| name != old && *f > fence)
            }
        },
    )
    .await;
    eprintln!("MEASURED leader takeover after SIGKILL: {took:?}");
    assert!(
        took < LEASE_TTL + Duration::from_secs(5),
        "takeover took {took:?}"
    );
    assert_ne!(new, leader);
    assert!(new_fence > fence, "{new_fence} > {fence}");
    assert_eq!(c.live_leader_rows().await, 1);
    assert!(
        c.log(c.index(&new))
            .contains("this node is now the cluster leader"),
        "{}",
        c.log(c.index(&new))
    );

    // And it keeps it.
    let until = Instant::now() + Duration::from_secs(3);
    while Instant::now() < until {
        assert_eq!(c.leader().await, Some((new.clone(), new_fence)));
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn a_frozen_leader_is_replaced_and_steps_down_when_thawed(backend: Backend) {
    let c = TestCluster::start_with(backend, 2, (1, 1), &[]).await;
    let cr = &c;
    let (leader, fence) = eventually("a leader", Duration::from_secs(20), || async move {
        cr.leader().await
    })
    .await;
    let li = c.index(&leader);
    assert!(
        !c.log(li).contains("no longer the cluster leader"),
        "{}",
        c.log(li)
    );

    // SIGSTOP: the frozen holder keeps its sockets (and so any session lock) but cannot
    // renew; the lease expires and the other node takes it with a higher fence.
    c.stop(li);
    let old = leader.clone();
    let ((new, new_fence), took) = timed(
        "the other node takes the lead from the frozen one",
        LEASE_TTL + Duration::from_secs(20),
        || {
            let old = &old;
            async move {
                cr.leader()
                    .await
                    .filter(|(name, f)| name != old && *f > fence)
            }
        },
    )
    .await;
    eprintln!("MEASURED leader takeover after SIGSTOP: {took:?}");
    assert!(
        took < LEASE_TTL + Duration::from_secs(5),
        "takeover took {took:?}"
    );

    // SIGCONT: the old leader notices it lost the lease and says so.
    c.cont(li);
    let (_, stepped_down) = timed(
        "the thawed leader logs that it stepped down",
        Duration::from_secs(10),
        || async move {
            cr.log(li)
                .contains("no longer the cluster leader")
                .then_some(())
        },
    )
    .await;
    eprintln!("MEASURED thawed leader stepped down after SIGCONT: {stepped_down:?}");

    // The lease stays where it went: same holder, same fence, kept live.
    let until = Instant::now() + Duration::from_secs(4);
    while Instant::now() < until {
        assert_eq!(
            c.leader_row().await,
            Some((Some(new.clone()), new_fence, true)),
            "the lease after the old leader thawed"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn a_replicated_pin_is_repaired_after_node_loss_and_trimmed_when_the_node_returns(
    backend: Backend,
) {
    let mut c = TestCluster::start_with(backend, 3, (2, 2), &[]).await;
    let org = c.create_org("acme").await;
    let token = c.token(Some(org), Role::Member);
    // The content exists only in node 0's blockstore (not pinned there: no operator pin);
    // other nodes fetch it from node 0 as the pin's origin.
    let cid = c.add_unpinned(0, random_bytes(256 * 1024)).await;

    let created = post_pin(&c, 0, &token, &cid, 0).await;
    let delegates = created["delegates"].as_array().expect("delegates");
    assert!(!delegates.is_empty(), "{created}");
    assert!(
        delegates
            .iter()
            .all(|d| d.as_str().is_some_and(|d| d.contains("/p2p/"))),
        "{created}"
    );
    let id = created["requestid"].as_str().unwrap().to_string();
    // Read back through another node: one cluster, one view.
    wait_status(&c, 1, &token, &id, "pinned", Duration::from_secs(60)).await;
    let holders = wait_replicated(&c, &cid, 2, Duration::from_secs(60)).await;
    assert_ne!(holders[0], holders[1]);
    let third = (0..3)
        .find(|&i| !holders.contains(&c.name(i).to_string()))
        .unwrap();
    assert!(
        !c.kubo_has(third, &cid).await,
        "{} holds it too",
        c.name(third)
    );

    // Lose a holder, Kubo and all. (Not node 0: it is the content's only origin, and the
    // repair under test is re-placement, not fetching from another replica.)
    let victim = holders
        .iter()
        .map(|n| c.index(n))
        .find(|&i| i != 0)
        .unwrap();
    let survivors: Vec<String> = (0..3)
        .filter(|&i| i != victim)
        .map(|i| c.name(i).to_string())
        .collect();
    c.kill(victim);
    c.kill_kubo(victim).await;
    let cr = &c;
    let (cidr, survivors_r) = (&cid, &survivors);
    let (_, took) = timed(
        "re-replicated onto the live nodes",
        Duration::from_secs(60),
        || async move {
            let live_pinned: Vec<String> = cr
                .placements(cidr)
                .await
                .into_iter()
                .filter(|(n, s)| survivors_r.contains(n) && s == "pinned")
                .map(|(n, _)| n)
                .collect();
            (live_pinned == *survivors_r && cr.kubo_holders(cidr).await == *survivors_r)
                .then_some(())
        },
    )
    .await;
    eprintln!("MEASURED repair after node loss: {took:?}");
    let survivor = c.index(&survivors[0]);
    let (_, got) = send(c.req(survivor, Method::GET, &format!("/v1/pins/{id}"), &token)).await;
    assert_eq!(got["status"], "pinned", "{got}");

    // The lost node returns with its Kubo, which still holds its old copy: one copy too
    // many. The surplus is trimmed — the returning node's — and the placement gone.
    c.restart_kubo(victim).await;
    assert!(
        c.kubo_has(victim, &cid).await,
        "the restarted Kubo kept its pin"
    );
    c.restart(victim).await;
    let cr = &c;
    let (rows, took) = timed(
        "back to 2 placements, the returning node's copy trimmed",
        Duration::from_secs(60),
        || async move {
            let rows = cr.placements(cidr).await;
            let want: Vec<(String, String)> = survivors_r
                .iter()
                .map(|n| (n.clone(), "pinned".to_string()))
                .collect();
            (rows == want
                && !cr.kubo_has(victim, cidr).await
                && cr.kubo_holders(cidr).await == *survivors_r)
                .then_some(rows)
        },
    )
    .await;
    eprintln!("MEASURED surplus copy trimmed after the node returned: {took:?}");
    assert_eq!(rows.len(), 2);
    let (_, got) = send(c.req(victim, Method::GET, &format!("/v1/pins/{id}"), &token)).await;
    assert_eq!(got["status"], "pinned", "{got}");
    assert_eq!(got["pin"]["cid"], cid, "{got}");
}

async fn one_set_of_replicas_serves_every_org_until_the_last_unpins(backend: Backend) {
    let c = TestCluster::start_with(backend, 3, (2, 2), &[]).await;
    let (a, b) = (c.create_org("alpha").await, c.create_org("beta").await);
    let (ta, tb) = (
        c.token(Some(a), Role::Member),
        c.token(Some(b), Role::Member),
    );
    let cid = c.add_unpinned(0, random_bytes(64 * 1024)).await;
    let canon = canonical(&cid);

    let pa = post_pin(&c, 0, &ta, &cid, 0).await;
    let pa = pa["requestid"].as_str().unwrap().to_string();
    wait_status(&c, 0, &ta, &pa, "pinned", Duration::from_secs(60)).await;
    let holders = wait_replicated(&c, &cid, 2, Duration::from_secs(60)).await;

    // The second org's pin, through another node, uses the same replicas.
    let pb = post_pin(&c, 1, &tb, &cid, 0).await;
    let pb = pb["requestid"].as_str().unwrap().to_string();
    wait_status(&c, 1, &tb, &pb, "pinned", Duration::from_secs(30)).await;
    assert_eq!(
        wait_replicated(&c, &cid, 2, Duration::from_secs(10)).await,
        holders
    );
    assert_eq!(
        c.count(
            "SELECT refcount::bigint AS n FROM cid_refs WHERE cid = $1",
            &[canon.as_str().into()]
        )
        .await,
        2
    );

    // Org A lets go: B still has it everywhere it was, for longer than a repair delay
    // and an orphan grace period.
    let (code, body) = send(c.req(2, Method::DELETE, &format!("/v1/pins/{pa}"), &ta)).await;
    assert_eq!(code, 202, "{body}");
    let (code, _) = send(c.req(0, Method::GET, &format!("/v1/pins/{pa}"), &ta)).await;
    assert_eq!(code, 404);
    let until = Instant::now() + Duration::from_secs(6);
    while Instant::now() < until {
        let rows = c.placements(&cid).await;
        assert_eq!(
            rows,
            holders
                .iter()
                .map(|n| (n.clone(), "pinned".to_string()))
                .collect::<Vec<_>>(),
            "placements while org B still pins it"
        );
        assert_eq!(c.kubo_holders(&cid).await, holders);
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let (_, got) = send(c.req(2, Method::GET, &format!("/v1/pins/{pb}"), &tb)).await;
    assert_eq!(got["status"], "pinned", "{got}");

    // Org B lets go: gone from every Kubo and every placement.
    let (code, body) = send(c.req(0, Method::DELETE, &format!("/v1/pins/{pb}"), &tb)).await;
    assert_eq!(code, 202, "{body}");
    let (cr, cidr) = (&c, &cid);
    let (_, took) = timed(
        "unpinned everywhere",
        Duration::from_secs(45),
        || async move {
            (cr.placements(cidr).await.is_empty() && cr.kubo_holders(cidr).await.is_empty())
                .then_some(())
        },
    )
    .await;
    eprintln!("MEASURED unpinned from every node after the last delete: {took:?}");
    assert_eq!(
        c.count(
            "SELECT count(*) AS n FROM cid_refs WHERE cid = $1 AND refcount > 0",
            &[canon.as_str().into()]
        )
        .await,
        0
    );
}

async fn a_token_revoked_on_one_node_is_refused_by_another(backend: Backend) {
    let c = TestCluster::start_with(backend, 2, (1, 1), &[]).await;
    let org = c.create_org("acme").await;
    let member = c.token(Some(org), Role::Member);

    let (code, created) = send(
        c.req(0, Method::POST, "/v1/tokens", &member)
            .json(&json!({"label": "cluster revocation"})),
    )
    .await;
    assert_eq!(code, 201, "{created}");
    let jwt = created["token"].as_str().unwrap().to_string();
    let jti = created["jti"].as_str().unwrap().to_string();

    // Accepted by the other node (more than once, so whatever it caches is warm).
    for _ in 0..3 {
        let (code, list) = send(c.req(1, Method::GET, "/v1/pins", &jwt)).await;
        assert_eq!(code, 200, "{list}");
        assert_eq!(list["count"], 0, "{list}");
    }

    let resp = c
        .req(0, Method::DELETE, &format!("/v1/tokens/{jti}"), &member)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
    let revoked = Instant::now();
    let (code, body) = send(c.req(0, Method::GET, "/v1/pins", &jwt)).await;
    assert_eq!(code, 401, "the revoking node refuses it at once: {body}");

    let deadline = Duration::from_secs(30);
    let body = loop {
        let (code, body) = send(c.req(1, Method::GET, "/v1/pins", &jwt)).await;
        if code == 401 {
            break body;
        }
        assert_eq!(code, 200, "{body}");
        assert!(
            revoked.elapsed() < deadline,
            "node 1 still accepts the revoked token after {deadline:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    eprintln!(
        "MEASURED revocation reached node 1 after {:?}",
        revoked.elapsed()
    );
    assert!(body["error"]["reason"].is_string(), "{body}");

    // Only that token: the one that minted it still works on both nodes.
    for i in 0..2 {
        let (code, body) = send(c.req(i, Method::GET, "/v1/pins", &member)).await;
        assert_eq!(code, 200, "{body}");
    }
}

/// A node configured with the other backend refuses to join, naming both backends and
/// the leader, and changes nothing.
async fn a_node_on_the_other_backend_refuses_to_join(backend: Backend) {
    let mut c = TestCluster::start_with(backend, 1, (1, 1), &[]).await;
    eventually("a leader", Duration::from_secs(15), || async {
        c.leader().await.map(|_| ())
    })
    .await;
    let other = tokio::task::spawn_blocking(NatsServer::start)
        .await
        .unwrap();
    let url = other.url();
    let (env, ours, theirs): (Vec<(&str, &str)>, _, _) = match backend {
        Backend::Postgres => (
            vec![
                ("ANCHORAGE_CLUSTER__BACKEND", "nats"),
                ("ANCHORAGE_NATS__URL", url.as_str()),
            ],
            "nats",
            "postgres",
        ),
        Backend::Nats => (
            vec![("ANCHORAGE_CLUSTER__BACKEND", "postgres")],
            "postgres",
            "nats",
        ),
    };
    let out = c.spawn_extra_with("node-9", &env).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "the mixed node ran: {stderr}");
    assert!(
        stderr.contains(&format!("configured with `{ours}`"))
            && stderr.contains(&format!("live leader (node-0) runs `{theirs}`")),
        "{stderr}"
    );
    let joined = c
        .count("SELECT count(*) AS n FROM nodes WHERE name = 'node-9'", &[])
        .await;
    assert_eq!(joined, 0, "the refused node registered");
}

/// The database goes away for a few seconds, as in a Postgres restart (every connection
/// cut, new ones refused): the node's job workers come back by themselves and pins keep
/// completing.
/// Found by the soak: the apalis worker ended with its connection and was never
/// replaced, so the node took no job again.
async fn jobs_still_run_after_a_database_outage(backend: Backend) {
    let c = TestCluster::start_with(backend, 1, (1, 1), &[]).await;
    let org = c.create_org("acme").await;
    let token = c.token(Some(org), Role::Member);
    let pin = |n: u32| {
        let token = token.clone();
        let c = &c;
        async move {
            let (status, body) = send(
                c.req(0, Method::POST, "/v1/pins", &token)
                    .json(&json!({ "cid": crate::harness::fixtures::cid(n) })),
            )
            .await;
            assert_eq!(status, 202, "{body}");
            let id = body["requestid"].as_str().unwrap().to_string();
            eventually(&format!("pin {n} pinned"), Duration::from_secs(30), || {
                let (token, id) = (token.clone(), id.clone());
                async move {
                    let (_, body) =
                        send(c.req(0, Method::GET, &format!("/v1/pins/{id}"), &token)).await;
                    (body["status"] == "pinned").then_some(())
                }
            })
            .await;
        }
    };
    pin(1).await;
    c.db().outage(Duration::from_secs(4)).await;
    for n in 2..5 {
        pin(n).await;
    }
}

crate::on_both_backends!(
    jobs_still_run_after_a_database_outage,
    a_node_on_the_other_backend_refuses_to_join,
    a_node_id_held_by_a_running_process_is_refused,
    the_leader_fails_over_within_the_lease_ttl_after_sigkill,
    a_frozen_leader_is_replaced_and_steps_down_when_thawed,
    a_replicated_pin_is_repaired_after_node_loss_and_trimmed_when_the_node_returns,
    one_set_of_replicas_serves_every_org_until_the_last_unpins,
    a_token_revoked_on_one_node_is_refused_by_another,
);
