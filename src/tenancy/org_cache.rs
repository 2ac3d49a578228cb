//! Which orgs exist, cached (mini-moka) so a sysadmin acting in an org through
//! `X-Anchorage-Org` costs no lookup per request. Only "exists" is cached: a new org can
//! never be hidden by a stale "absent", and a removed org is announced to every node
//! through the invalidation bus.

use std::time::Duration;

use diesel_async::AsyncPgConnection;
use uuid::Uuid;

use super::orgs::store;
use crate::{
    cache::{CacheStats, CountedCache},
    error::Result,
    ids::OrgId,
    metrics::CacheCounters,
};

/// How long an org's existence is trusted without a re-read.
pub const CACHE_TTL: Duration = Duration::from_secs(300);

#[derive(Clone)]
pub struct OrgCache {
    cache: CountedCache<Uuid, ()>,
}

impl Default for OrgCache {
    fn default() -> Self {
        Self {
            cache: CountedCache::new(CACHE_TTL, 100_000),
        }
    }
}

impl OrgCache {
    /// Counts hits and misses into `counters` (the server's registry).
    pub fn with_counters(mut self, counters: CacheCounters) -> Self {
        self.cache = self.cache.with_counters(counters);
        self
    }

    /// Whether `org` exists, read through `conn` (a transaction that can see it) on a miss.
    pub async fn exists(&self, conn: &mut AsyncPgConnection, org: OrgId) -> Result<bool> {
        if self.cache.get(&org.uuid()).is_some() {
            return Ok(true);
        }
        let found = store::find(conn, org).await?.is_some();
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
        self.cache.clear();
    }

    pub fn stats(&self) -> CacheStats {
        self.cache.stats()
    }
}
