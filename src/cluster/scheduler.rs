//! Where new replicas go: distinct live, `active` nodes, least-loaded first.
//!
//! The live set is read from `nodes` (live = heartbeat within `cluster.nodeTTL` and a
//! healthy Kubo) with each node's placement count, and cached for a heartbeat interval;
//! replicas this process places meanwhile are added to the cached loads so a burst of
//! new pins spreads out instead of piling onto the node that was emptiest a second ago.
//! Another node changing state invalidates the cache through [`super::invalidation`].

use std::{
    sync::{
        atomic::{AtomicI64, Ordering},
        Arc,
    },
    time::Duration,
};

use diesel::{
    sql_types::{Array, BigInt, Double, Text, Uuid as SqlUuid},
    QueryableByName,
};
use diesel_async::AsyncPgConnection;
use uuid::Uuid;

use crate::{
    cache::{CacheStats, CountedCache},
    error::Result,
    metrics::CacheCounters,
};

/// A node that can take replicas now.
#[derive(Debug)]
pub struct LiveNode {
    pub id: Uuid,
    pub name: String,
    pub addrs: Vec<String>,
    /// Placements it holds (not counting ones being removed), plus the ones this
    /// process gave it since the set was read.
    pub load: AtomicI64,
}

#[derive(QueryableByName)]
struct LiveRow {
    #[diesel(sql_type = SqlUuid)]
    id: Uuid,
    #[diesel(sql_type = Text)]
    name: String,
    #[diesel(sql_type = Array<Text>)]
    multiaddrs: Vec<String>,
    #[diesel(sql_type = BigInt)]
    load: i64,
}

/// Live, `active` nodes with their loads, straight from the database.
pub async fn read_live(conn: &mut AsyncPgConnection, node_ttl: Duration) -> Result<Vec<LiveNode>> {
    // Scoped: diesel-async's `load` would otherwise shadow the atomics' `load` below.
    use diesel_async::RunQueryDsl;
    let rows: Vec<LiveRow> = diesel::sql_query(
        "SELECT n.id, n.name, n.multiaddrs, \
                (SELECT count(*) FROM placements p WHERE p.node_id = n.id \
                  AND p.state <> 'unpinning' AND p.replaced_at IS NULL) AS load \
         FROM nodes n \
         WHERE n.state = 'active' AND n.kubo_healthy \
           AND n.last_seen > now() - make_interval(secs => $1) \
         ORDER BY n.id",
    )
    .bind::<Double, _>(node_ttl.as_secs_f64())
    .load(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| LiveNode {
            id: r.id,
            name: r.name,
            addrs: r.multiaddrs,
            load: AtomicI64::new(r.load),
        })
        .collect())
}

/// Picks up to `n` of `nodes` not in `exclude`, least-loaded first (ties by id, so the
/// choice is deterministic), and counts the new replicas into their loads.
pub fn choose(nodes: &[LiveNode], exclude: &[Uuid], n: usize) -> Vec<Uuid> {
    let mut candidates: Vec<&LiveNode> =
        nodes.iter().filter(|c| !exclude.contains(&c.id)).collect();
    candidates.sort_by_key(|c| (c.load.load(Ordering::Relaxed), c.id));
    candidates
        .into_iter()
        .take(n)
        .map(|c| {
            c.load.fetch_add(1, Ordering::Relaxed);
            c.id
        })
        .collect()
}

/// The cached live set (mini-moka, one entry, expiring after a heartbeat interval).
#[derive(Clone)]
pub struct LiveNodes {
    cache: CountedCache<(), Arc<Vec<LiveNode>>>,
    node_ttl: Duration,
}

impl LiveNodes {
    pub fn new(refresh: Duration, node_ttl: Duration) -> Self {
        Self {
            cache: CountedCache::new(refresh, 1),
            node_ttl,
        }
    }

    /// Counts hits and misses into `counters` (the server's registry).
    pub fn with_counters(mut self, counters: CacheCounters) -> Self {
        self.cache = self.cache.with_counters(counters);
        self
    }

    /// The live set, from the cache or read through `conn`.
    pub async fn get(&self, conn: &mut AsyncPgConnection) -> Result<Arc<Vec<LiveNode>>> {
        if let Some(set) = self.cache.get(&()) {
            return Ok(set);
        }
        let set = Arc::new(read_live(conn, self.node_ttl).await?);
        self.cache.insert((), set.clone());
        Ok(set)
    }

    /// The cached set without touching the database (read paths: delegates).
    pub fn cached(&self) -> Option<Arc<Vec<LiveNode>>> {
        self.cache.get(&())
    }

    /// Re-reads the set (the heartbeat does, so read paths find it cached); returns
    /// how many nodes are live.
    pub async fn refresh(&self, conn: &mut AsyncPgConnection) -> Result<usize> {
        let set = Arc::new(read_live(conn, self.node_ttl).await?);
        let live = set.len();
        self.cache.insert((), set);
        Ok(live)
    }

    /// Drops the cached set (a node changed state somewhere).
    pub fn invalidate(&self) {
        self.cache.clear();
    }

    pub fn stats(&self) -> CacheStats {
        self.cache.stats()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(id: u128, load: i64) -> LiveNode {
        LiveNode {
            id: Uuid::from_u128(id),
            name: format!("n{id}"),
            addrs: Vec::new(),
            load: AtomicI64::new(load),
        }
    }

    #[test]
    fn least_loaded_distinct_nodes_first_and_loads_count_new_replicas() {
        let nodes = vec![node(1, 5), node(2, 0), node(3, 0), node(4, 9)];
        assert_eq!(
            choose(&nodes, &[], 2),
            vec![Uuid::from_u128(2), Uuid::from_u128(3)]
        );
        // 2 and 3 now carry 1 each, still below 1's 5.
        assert_eq!(
            choose(&nodes, &[Uuid::from_u128(2)], 2),
            vec![Uuid::from_u128(3), Uuid::from_u128(1)]
        );
        assert_eq!(choose(&nodes, &[], 10).len(), 4, "never more than exist");
        assert!(choose(&[], &[], 2).is_empty());
    }
}
