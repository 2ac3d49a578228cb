//! Which orgs exist, cached (mini-moka) so a sysadmin acting in an org through
//! `X-Anchorage-Org` costs no lookup per request. Only "exists" is cached: a new org can
//! never be hidden by a stale "absent", and a removed org is announced to every node
//! through the invalidation bus.

use std::time::Duration;

use diesel_async::AsyncPgConnection;
use mini_moka::sync::Cache;
use uuid::Uuid;

use super::orgs;
use crate::{cluster::nodes::CacheStats, error::Result, ids::OrgId, metrics::CacheCounters};

/// How long an org's existence is trusted without a re-read.
pub const CACHE_TTL: Duration = Duration::from_secs(300);

#[derive(Clone)]
pub struct OrgCache {
    cache: Cache<Uuid, ()>,
    counters: CacheCounters,
}

impl Default for OrgCache {
    fn default() -> Self {
        Self {
            cache: Cache::builder()
                .time_to_live(CACHE_TTL)
                .max_capacity(100_000)
                .build(),
            counters: CacheCounters::detached(),
        }
    }
}

impl OrgCache {
    /// Counts hits and misses into `counters` (the server's registry).
    pub fn with_counters(mut self, counters: CacheCounters) -> Self {
        self.counters = counters;
        self
    }

    /// Whether `org` exists, read through `conn` (a transaction that can see it) on a miss.
    pub async fn exists(&self, conn: &mut AsyncPgConnection, org: OrgId) -> Result<bool> {
        if self.cache.get(&org.uuid()).is_some() {
            self.counters.hits.inc();
            return Ok(true);
        }
        self.counters.misses.inc();
        let found = orgs::find(conn, org).await?.is_some();
        if found {
            self.cache.insert(org.uuid(), ());
        }
        Ok(found)
    }

    /// Forgets `org` (it was removed, possibly on another node).
    pub fn invalidate(&self, org: Uuid) {
        self.cache.invalidate(&org);
    }

    pub fn clear(&self) {
        self.cache.invalidate_all();
    }

    pub fn stats(&self) -> CacheStats {
        CacheStats {
            hits: self.counters.hits.get(),
            misses: self.counters.misses.get(),
            entries: self.cache.entry_count(),
        }
    }
}
