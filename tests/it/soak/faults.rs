//! The seeded fault schedule. Every kind is used once (in a seeded order) before any
//! repeats; each fault is checked to have really happened (a new pid, a new
//! `pg_postmaster_start_time()`, the IPFS node down then up), and its window runs from
//! the fault until the cluster answers `/v1/ready` everywhere again.

use std::time::{Duration, Instant};

use rand::{rngs::StdRng, seq::SliceRandom, Rng, SeedableRng};

use crate::harness::{
    cluster::{Backend, TestCluster},
    pg::cluster_dir,
};

/// What was done.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    KillNode,
    FreezeLeader,
    RestartPostgres,
    StopIpfs,
    KillNats,
}

/// One fault: when it began, and when the cluster was whole again.
#[derive(Debug, Clone)]
pub struct Window {
    pub kind: Kind,
    pub started: Instant,
    pub recovered: Instant,
    /// From the end of the fault (the restart, thaw or start issued) to every node
    /// ready again with a leader.
    pub recovery: Duration,
}

/// Pause between faults.
const GAP: std::ops::Range<u64> = 8..16;

/// Runs faults until `run_for` has passed; returns their windows.
pub async fn run(c: &mut TestCluster, seed: u64, run_for: Duration) -> Vec<Window> {
    let mut rng = StdRng::seed_from_u64(seed ^ 0x5eed_fa17);
    let mut kinds = vec![
        Kind::KillNode,
        Kind::RestartPostgres,
        Kind::StopIpfs,
        Kind::FreezeLeader,
    ];
    if c.backend() == Backend::Nats {
        kinds.push(Kind::KillNats);
    }
    let started = Instant::now();
    let mut windows = Vec::new();
    let mut order = Vec::new();
    loop {
        tokio::time::sleep(Duration::from_secs(rng.random_range(GAP))).await;
        if started.elapsed() + Duration::from_secs(20) > run_for {
            break;
        }
        if order.is_empty() {
            order = kinds.clone();
            order.shuffle(&mut rng);
        }
        let kind = order.remove(0);
        let window = inject(c, kind, &mut rng).await;
        eprintln!(
            "soak: {kind:?} at {:.0} s, recovered {:?} after it ended",
            (window.started - started).as_secs_f64(),
            window.recovery
        );
        windows.push(window);
    }
    let used: Vec<Kind> = windows.iter().map(|w| w.kind).collect();
    assert!(!used.is_empty(), "the soak injected no fault (run longer)");
    windows
}

async fn inject(c: &mut TestCluster, kind: Kind, rng: &mut StdRng) -> Window {
    let started = Instant::now();
    // When the fault ends: the restart, thaw or start is issued.
    let restored = match kind {
        Kind::KillNode => {
            let i = rng.random_range(0..c.len());
            let before = c.pid(i);
            c.kill(i);
            tokio::time::sleep(Duration::from_secs(rng.random_range(5..12))).await;
            let restored = Instant::now();
            c.restart(i).await;
            assert_ne!(c.pid(i), before, "{} was really restarted", c.name(i));
            restored
        }
        Kind::FreezeLeader => {
            let (name, fence) = c.leader().await.expect("a leader to freeze");
            let i = c.index(&name);
            c.stop(i);
            tokio::time::sleep(Duration::from_secs(6)).await;
            let restored = Instant::now();
            c.cont(i);
            let after = c.leader().await.map(|(_, f)| f).unwrap_or(fence);
            assert!(after > fence, "the frozen leader {name} was replaced");
            restored
        }
        Kind::RestartPostgres => {
            let before = postmaster_start(c).await;
            let restored = Instant::now();
            tokio::task::spawn_blocking(|| {
                anchorage::devstack::postgres::restart_dir(&cluster_dir())
            })
            .await
            .unwrap()
            .unwrap_or_else(|e| panic!("restarting Postgres: {e}"));
            c.reconnect_sql().await;
            assert_ne!(
                postmaster_start(c).await,
                before,
                "Postgres really restarted"
            );
            restored
        }
        Kind::StopIpfs => {
            let i = rng.random_range(0..c.len());
            c.kill_kubo(i).await;
            assert!(!c.kubo_running(i));
            tokio::time::sleep(Duration::from_secs(rng.random_range(5..12))).await;
            let restored = Instant::now();
            c.restart_kubo(i).await;
            assert!(c.kubo_running(i), "{}'s IPFS node is back", c.name(i));
            restored
        }
        Kind::KillNats => {
            let before = c.nats().pid();
            c.nats().kill();
            tokio::time::sleep(Duration::from_secs(rng.random_range(3..8))).await;
            let restored = Instant::now();
            c.nats().restart();
            assert_ne!(c.nats().pid(), before, "nats-server really restarted");
            restored
        }
    };
    wait_whole(c).await;
    Window {
        kind,
        started,
        recovered: Instant::now(),
        recovery: restored.elapsed(),
    }
}

/// Until every node answers `/v1/ready` 200 and a leader holds the lease.
async fn wait_whole(c: &TestCluster) {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let mut ready = c.leader().await.is_some();
        for i in 0..c.len() {
            if !ready {
                break;
            }
            ready = reqwest::get(c.url(i, "/v1/ready"))
                .await
                .map(|r| r.status() == 200)
                .unwrap_or(false);
        }
        if ready {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the cluster did not recover within 90 s"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Brings back anything a fault left down (nothing, normally) before settling.
pub async fn heal(c: &mut TestCluster) {
    for i in 0..c.len() {
        if !c.kubo_running(i) {
            c.restart_kubo(i).await;
        }
        if !c.is_running(i) {
            c.restart(i).await;
        }
    }
    wait_whole(c).await;
}

async fn postmaster_start(c: &TestCluster) -> String {
    let row = c
        .db()
        .superuser_query_one("SELECT pg_postmaster_start_time()::text")
        .await;
    row.get(0)
}
