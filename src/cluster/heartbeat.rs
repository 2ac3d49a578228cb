//! The heartbeat: every `cluster.heartbeat` this node proves it is alive, re-checks its
//! Kubo (its identity and announced addresses, which become its delegates), reports its
//! cache counters and re-reads the live-node set for placement and delegates.

use std::{collections::BTreeMap, time::Duration};

use super::nodes::{self, Beat, HEARTBEAT_KUBO_TIMEOUT};
use crate::{db::pool, state::AppState};

/// One beat.
pub async fn beat(state: &AppState) -> crate::error::Result<()> {
    match state.presence.lock().await.keep().await {
        Ok(true) => {}
        Ok(false) => tracing::error!(
            node = %state.config.cluster.node_id,
            "another process now holds this node's name; two processes share a cluster.nodeID"
        ),
        Err(e) => tracing::warn!(error = %e, "could not re-check this node's name claim"),
    }
    let kubo = match tokio::time::timeout(HEARTBEAT_KUBO_TIMEOUT, state.kubo.id()).await {
        Ok(Ok(id)) => {
            state.delegates.learn(&id);
            Some((id.id, state.delegates.current()))
        }
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "Kubo is not healthy");
            None
        }
        Err(_) => {
            tracing::warn!("Kubo did not answer the heartbeat in time");
            None
        }
    };
    let mut cache_stats = BTreeMap::new();
    cache_stats.insert("denylist".to_string(), state.denylist.stats());
    cache_stats.insert("live_nodes".to_string(), state.live_nodes.stats());
    cache_stats.insert("orgs".to_string(), state.orgs.stats());
    cache_stats.insert("standings".to_string(), state.standings.stats());
    let backend = state.config.cluster.backend.as_str();
    nodes::heartbeat(
        &state.db,
        state.node,
        Beat {
            kubo,
            cache_stats,
            backend,
        },
    )
    .await?;
    let mut conn = pool::get(&state.db).await?;
    let live = state.live_nodes.refresh(&mut conn).await?;
    state.metrics.cluster_nodes_live.set(live as i64);
    let by_state = nodes::placements_by_state(&mut conn, state.node).await?;
    state.metrics.set_placements(&by_state);
    Ok(())
}

/// Beats every `every` until aborted.
pub async fn heartbeat_loop(state: AppState, every: Duration) {
    loop {
        if let Err(e) = beat(&state).await {
            tracing::warn!(error = %e, "heartbeat failed; will retry");
        }
        tokio::time::sleep(every).await;
    }
}
