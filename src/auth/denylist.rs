//! Revoked token ids, read through a mini-moka cache so a valid token costs no database
//! read on the hot path once its jti has been seen. A revocation on this node takes
//! effect at once (it writes the cache too); on other nodes within [`CACHE_TTL`].

use std::time::Duration;

use diesel::{sql_types::Bool, sql_types::Uuid as SqlUuid, QueryableByName};
use uuid::Uuid;

use crate::{
    cache::{CacheStats, CountedCache},
    db::{pool, DbPool},
    error::Result,
    ids::TokenId,
    metrics::CacheCounters,
};

/// How long a jti's revoked/valid verdict is trusted before it is read again.
pub const CACHE_TTL: Duration = Duration::from_secs(30);

/// The cached denylist.
#[derive(Clone)]
pub struct Denylist {
    cache: CountedCache<Uuid, bool>,
}

impl Default for Denylist {
    fn default() -> Self {
        Self::new(CACHE_TTL, 100_000)
    }
}

impl Denylist {
    /// A cache holding up to `capacity` verdicts for `ttl` each.
    pub fn new(ttl: Duration, capacity: u64) -> Self {
        Self {
            cache: CountedCache::new(ttl, capacity),
        }
    }

    /// Counts hits and misses into `counters` (the server's registry).
    pub fn with_counters(mut self, counters: CacheCounters) -> Self {
        self.cache = self.cache.with_counters(counters);
        self
    }

    /// Whether `jti` is revoked.
    pub async fn is_revoked(&self, db: &DbPool, jti: TokenId) -> Result<bool> {
        if let Some(revoked) = self.cache.get(&jti.uuid()) {
            return Ok(revoked);
        }
        #[derive(QueryableByName)]
        struct Row {
            #[diesel(sql_type = Bool)]
            revoked: bool,
        }
        use diesel_async::RunQueryDsl;
        // token_denylist holds no tenant data, so no scoped transaction is needed.
        let mut conn = pool::get(db).await?;
        let row: Row = diesel::sql_query(
            "SELECT EXISTS (SELECT 1 FROM token_denylist WHERE jti = $1) AS revoked",
        )
        .bind::<SqlUuid, _>(jti.uuid())
        .get_result(&mut conn)
        .await?;
        self.cache.insert(jti.uuid(), row.revoked);
        Ok(row.revoked)
    }

    /// Records a revocation made on this node so it applies at once.
    pub fn mark_revoked(&self, jti: TokenId) {
        self.cache.insert(jti.uuid(), true);
    }

    /// Hits, misses and entries, as the heartbeat reports them.
    pub fn stats(&self) -> CacheStats {
        self.cache.stats()
    }

    /// Forgets the verdict on `jti` (it was revoked on another node).
    pub fn invalidate(&self, jti: Uuid) {
        self.cache.invalidate(&jti);
    }

    /// Forgets every verdict (the invalidation feed was interrupted).
    pub fn clear(&self) {
        self.cache.clear();
    }
}
