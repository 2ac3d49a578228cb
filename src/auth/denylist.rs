//! Revoked token ids, read through a mini-moka cache so a valid token costs no database
//! read on the hot path once its jti has been seen. A revocation on this node takes
//! effect at once (it writes the cache too); on other nodes within [`CACHE_TTL`].

use std::{
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
    time::Duration,
};

use diesel::{sql_types::Bool, sql_types::Uuid as SqlUuid, QueryableByName};
use mini_moka::sync::Cache;
use uuid::Uuid;

use crate::{
    db::{pool, DbPool},
    error::Result,
    ids::TokenId,
};

/// How long a jti's revoked/valid verdict is trusted before it is read again.
pub const CACHE_TTL: Duration = Duration::from_secs(30);

/// The cached denylist.
#[derive(Clone)]
pub struct Denylist {
    cache: Cache<Uuid, bool>,
    hits: Arc<AtomicU64>,
    misses: Arc<AtomicU64>,
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
            cache: Cache::builder()
                .time_to_live(ttl)
                .max_capacity(capacity)
                .build(),
            hits: Arc::default(),
            misses: Arc::default(),
        }
    }

    /// Whether `jti` is revoked.
    pub async fn is_revoked(&self, db: &DbPool, jti: TokenId) -> Result<bool> {
        if let Some(revoked) = self.cache.get(&jti.uuid()) {
            self.hits.fetch_add(1, Ordering::Relaxed);
            return Ok(revoked);
        }
        self.misses.fetch_add(1, Ordering::Relaxed);
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

    /// (hits, misses) since start.
    pub fn stats(&self) -> (u64, u64) {
        (
            self.hits.load(Ordering::Relaxed),
            self.misses.load(Ordering::Relaxed),
        )
    }

    /// Hits, misses and entries, as the heartbeat reports them.
    pub fn cache_stats(&self) -> crate::cluster::nodes::CacheStats {
        let (hits, misses) = self.stats();
        crate::cluster::nodes::CacheStats {
            hits,
            misses,
            entries: self.cache.entry_count(),
        }
    }

    /// Forgets the verdict on `jti` (it was revoked on another node).
    pub fn invalidate(&self, jti: Uuid) {
        self.cache.invalidate(&jti);
    }

    /// Forgets every verdict (the invalidation feed was interrupted).
    pub fn clear(&self) {
        self.cache.invalidate_all();
    }
}
