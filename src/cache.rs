//! The one shape of every in-process cache: a mini-moka cache that counts its own hits
//! and misses (mini-moka keeps no statistics) into the server's Prometheus registry,
//! and reports them with its size for the heartbeat and `anchorage admin cache-stats`.

use std::{hash::Hash, time::Duration};

use mini_moka::sync::Cache;
use serde::Serialize;

use crate::metrics::CacheCounters;

/// One cache's counters, as the heartbeat stores them.
#[derive(Debug, Clone, Default, Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct CacheStats {
    pub hits: u64,
    pub misses: u64,
    pub entries: u64,
}

/// A mini-moka cache whose lookups are counted.
#[derive(Clone)]
pub struct CountedCache<K, V> {
    cache: Cache<K, V>,
    counters: CacheCounters,
}

impl<K, V> CountedCache<K, V>
where
    K: Hash + Eq + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    /// Up to `capacity` entries, each trusted for `ttl`; counted nowhere until
    /// [`CountedCache::with_counters`].
    pub fn new(ttl: Duration, capacity: u64) -> Self {
        Self {
            cache: Cache::builder()
                .time_to_live(ttl)
                .max_capacity(capacity)
                .build(),
            counters: CacheCounters::detached(),
        }
    }

    /// Counts hits and misses into `counters` (the server's registry).
    pub fn with_counters(mut self, counters: CacheCounters) -> Self {
        self.counters = counters;
        self
    }

    /// The entry for `key`, counted as a hit or a miss.
    pub fn get(&self, key: &K) -> Option<V> {
        let found = self.cache.get(key);
        match found {
            Some(_) => self.counters.hits.inc(),
            None => self.counters.misses.inc(),
        }
        found
    }

    pub fn insert(&self, key: K, value: V) {
        self.cache.insert(key, value);
    }

    /// Forgets `key` (it changed, possibly on another node).
    pub fn invalidate(&self, key: &K) {
        self.cache.invalidate(key);
    }

    /// Forgets everything (announcements may have been missed).
    pub fn clear(&self) {
        self.cache.invalidate_all();
    }

    /// Hits, misses and entries, as the heartbeat reports them.
    pub fn stats(&self) -> CacheStats {
        CacheStats {
            hits: self.counters.hits.get(),
            misses: self.counters.misses.get(),
            entries: self.cache.entry_count(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookups_are_counted_and_entries_forgotten() {
        let cache = CountedCache::<u32, &str>::new(Duration::from_secs(60), 10);
        assert_eq!(cache.get(&1), None);
        cache.insert(1, "one");
        assert_eq!(cache.get(&1), Some("one"));
        cache.invalidate(&1);
        assert_eq!(cache.get(&1), None);
        cache.insert(2, "two");
        cache.clear();
        assert_eq!(cache.get(&2), None);
        let stats = cache.stats();
        assert_eq!((stats.hits, stats.misses), (1, 3));
    }
}
