//! The seeded soak (`bash tests/soak/run.sh --minutes N --seed S [--backend nats]`):
//! three `serve` nodes over one Postgres, replicas 2/2, clients of three orgs working
//! while a seeded schedule kills nodes, freezes the leader, restarts Postgres and stops
//! IPFS nodes. Every request and answer goes into a ledger; once the faults stop and the
//! cluster has settled, a checker compares the ledger, the database and every IPFS
//! node's recursive pin set. A violation fails the test with the seed, so the run replays.
//!
//! `#[ignore]`d: it runs only through `tests/soak/run.sh`, alone in its process, because
//! it restarts the test run's shared Postgres.

mod checker;
mod clients;
mod faults;
mod ledger;

use std::{sync::Arc, time::Duration};

use anchorage::auth::Role;

use crate::harness::cluster::{eventually, Backend, TestCluster};

/// What the soak is asked for, from `tests/soak/run.sh`'s environment.
struct Plan {
    minutes: f64,
    seed: u64,
    backend: Backend,
}

impl Plan {
    fn from_env() -> Self {
        let var = |k: &str| std::env::var(k).ok();
        Self {
            minutes: var("SOAK_MINUTES")
                .and_then(|m| m.parse().ok())
                .unwrap_or(2.0),
            seed: var("SOAK_SEED").and_then(|s| s.parse().ok()).unwrap_or(1),
            backend: match var("SOAK_BACKEND").as_deref() {
                Some("nats") => Backend::Nats,
                _ => Backend::Postgres,
            },
        }
    }
}

/// Cluster timings: short enough that a 2-minute soak sees failover, repair and the
/// orphan grace run out.
const ENV: &[(&str, &str)] = &[
    ("ANCHORAGE_IPFS__ORPHAN_GRACE_PERIOD", "20s"),
    ("ANCHORAGE_IPFS__RECONCILE_INTERVAL", "10s"),
    ("ANCHORAGE_POSTGRES__CONNECT_TIMEOUT", "3s"),
];

/// How long the checker waits after the last fault: past the orphan grace, the repair
/// delay and a few requeue rounds.
const SETTLE: Duration = Duration::from_secs(40);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "run by tests/soak/run.sh"]
async fn soak() {
    let plan = Plan::from_env();
    eprintln!(
        "soak: seed {} for {} min on {:?}",
        plan.seed, plan.minutes, plan.backend
    );
    let mut c = TestCluster::start_with(plan.backend, 3, (2, 2), ENV).await;
    let mut orgs = Vec::new();
    for name in ["alpha", "beta", "gamma"] {
        let org = c.create_org(name).await;
        orgs.push((org, c.token(Some(org), Role::Member)));
    }
    eventually("a leader", Duration::from_secs(20), || async {
        c.leader().await.map(|_| ())
    })
    .await;

    let ledger = Arc::new(ledger::Ledger::default());
    let urls: Vec<String> = (0..c.len()).map(|i| c.url(i, "")).collect();
    let run_for = Duration::from_secs_f64(plan.minutes * 60.0);
    let started = std::time::Instant::now();
    let clients = clients::start(plan.seed, &urls, &orgs, ledger.clone(), run_for);
    let faults = faults::run(&mut c, plan.seed, run_for).await;
    let held = clients::finish(clients, started).await;

    eprintln!("soak: faults over; settling for {SETTLE:?}");
    faults::heal(&mut c).await;
    tokio::time::sleep(SETTLE).await;
    let report = checker::check(&c, &ledger, &faults, &orgs).await;
    eprintln!(
        "soak report (seed {}):\n  requests: {} in {:.0} s ({:.1}/s held)\n{}",
        plan.seed,
        held.requests,
        held.seconds,
        held.requests as f64 / held.seconds,
        report.text()
    );
    if let Some(first) = report.first_violation() {
        panic!("soak seed {}: {first}", plan.seed);
    }
}
