//! Whether this node can serve (`/v1/ready`): Postgres answers, its Kubo answers `id`,
//! NATS is connected (with that backend), and it is not draining. Load balancers poll this without limits, so one answer is
//! shared for [`FRESH_FOR`]: a burst of probes costs one check, and concurrent probes
//! wait for the check already running instead of starting their own.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use serde_json::{json, Value};
use tokio::sync::Mutex;

use super::ops;
use crate::state::AppState;

/// How long one check's answer is served.
pub const FRESH_FOR: Duration = Duration::from_secs(1);

/// Longest each dependency may take to answer.
const PROBE_TIMEOUT: Duration = Duration::from_secs(3);

/// The outcome of one check.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    pub ready: bool,
    /// `checks` (and, when not ready, the error naming what failed).
    pub body: Value,
}

/// The last verdict and when it was reached; shared by every HTTP worker.
#[derive(Clone, Default)]
pub struct Readiness {
    last: Arc<Mutex<Option<(Instant, Verdict)>>>,
}

impl Readiness {
    /// The current verdict: the last one while fresh, else a new check.
    pub async fn verdict(&self, state: &AppState) -> Verdict {
        let mut last = self.last.lock().await;
        if let Some((at, verdict)) = last.as_ref() {
            if at.elapsed() < FRESH_FOR {
                return verdict.clone();
            }
        }
        let verdict = check(state).await;
        *last = Some((Instant::now(), verdict.clone()));
        verdict
    }
}

async fn check(state: &AppState) -> Verdict {
    let (node_state, kubo) = tokio::join!(
        tokio::time::timeout(PROBE_TIMEOUT, ops::own_state(&state.db, state.node)),
        tokio::time::timeout(PROBE_TIMEOUT, state.kubo.id()),
    );
    let (postgres, draining) = match node_state {
        Ok(Ok(s)) => (Ok(()), s == ops::NodeState::Draining),
        Ok(Err(e)) => (Err(e.to_string()), false),
        Err(_) => (Err("timed out".to_string()), false),
    };
    let kubo = match kubo {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("timed out".to_string()),
    };
    let node = if draining {
        Err("draining".to_string())
    } else {
        Ok(())
    };
    let verdict = |r: &Result<(), String>| if r.is_ok() { "ok" } else { "unavailable" };
    let mut checks = json!({
        "postgres": verdict(&postgres),
        "kubo": verdict(&kubo),
        "node": if draining { "draining" } else { "ok" },
    });
    // With the NATS backend, a node cut off from NATS takes no jobs and cannot lead.
    let nats = match &state.nats {
        Some(nats) if nats.is_up() => Some(Ok(())),
        Some(_) => Some(Err("disconnected".to_string())),
        None => None,
    };
    if let Some(nats) = &nats {
        checks["nats"] = json!(if nats.is_ok() { "ok" } else { "down" });
    }
    let mut all = vec![("postgres", &postgres), ("kubo", &kubo), ("node", &node)];
    if let Some(nats) = &nats {
        all.push(("nats", nats));
    }
    let failed: Vec<&str> = all
        .iter()
        .filter_map(|(name, r)| {
            let e = r.as_ref().err()?;
            tracing::warn!(check = name, error = %e, "readiness check failed");
            Some(*name)
        })
        .collect();
    if failed.is_empty() {
        return Verdict {
            ready: true,
            body: json!({ "status": "ready", "checks": checks }),
        };
    }
    Verdict {
        ready: false,
        body: json!({
            "error": {
                "reason": "NOT_READY",
                "details": format!("not ready: {} unavailable", failed.join(" and ")),
            },
            "checks": checks,
        }),
    }
}
