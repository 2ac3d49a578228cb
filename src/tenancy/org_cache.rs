//! Which orgs exist, cached (mini-moka) so a sysadmin acting in an org through
//! `X-Anchorage-Org` costs no lookup per request. Only "exists" is cached: a new org can
//! never be hidden by a stale "absent", and a removed org is announced to every node
//! through the invalidation bus.

use std::{
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
    time::Duration,
};

use diesel_async::AsyncPgConnection;
use mini_moka::sync::Cache;
use uuid::Uuid;

use super::orgs;
use crate::{cluster::nodes::CacheStats, error::Result, ids::OrgId};

/// How long an org's existence is trusted without a re-read.
pub const CACHE_TTL: Duration = Duration::from_secs(300);

#[derive(Clone)]
pub struct OrgCache {
    cache: Cache<Uuid, ()>,
    hits: Arc<AtomicU64>,
    misses: Arc<AtomicU64>,
}

impl Default for OrgCache {
    fn default() -> Self {
        Self {
            cache: Cache::builder()
                .time_to_live(CACHE_TTL)
                .max_capacity(100_000)
                .build(),
            hits: Arc::default(),
            misses: Arc::default(),
        }
    }
}

impl OrgCache {
    /// Whether `org` exists, read through `conn` (a transaction that can see it) on a miss.
    pub async fn exists(&self, conn: &mut AsyncPgConnection, org: OrgId) -> Result<bool> {
        if self.cache.get(&org.uuid()).is_some() {
            self.hits.fetch_add(1, Ordering::Relaxed);
            return Ok(true);
        }
        self.misses.fetch_add(1, Ordering::Relaxed);
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
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            entries: self.cache.entry_count(),
        }
    }
}
