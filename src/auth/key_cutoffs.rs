//! Per-key revocation: every token a signing key issued up to a moment is refused, for
//! when the key may have leaked and its tokens cannot be listed (standalone tokens are
//! never stored). The cutoffs are few and read on every verification, so each node
//! keeps them all in memory, loads them at start and reloads them whenever one is
//! announced (`Invalidation::KeyCutoffs`) or announcements may have been missed.

use std::{
    collections::HashMap,
    sync::{Arc, RwLock},
};

use diesel::{
    sql_types::{BigInt, Text},
    QueryableByName,
};
use diesel_async::RunQueryDsl;
use futures_util::FutureExt;

use crate::{
    db::{system_tx, DbPool},
    error::Result,
};

/// Each revoked key's cutoff, in Unix seconds.
#[derive(Clone, Default)]
pub struct KeyCutoffs {
    by_kid: Arc<RwLock<HashMap<String, i64>>>,
}

impl KeyCutoffs {
    /// The cutoff that refuses a token of `kid` issued at `iat`, if any.
    pub fn refusing(&self, kid: &str, iat: i64) -> Option<i64> {
        let by_kid = self.by_kid.read().unwrap_or_else(|e| e.into_inner());
        by_kid.get(kid).copied().filter(|cutoff| iat <= *cutoff)
    }

    /// Replaces the cutoffs with the database's current ones.
    pub async fn reload(&self, db: &DbPool) -> Result<()> {
        #[derive(QueryableByName)]
        struct Row {
            #[diesel(sql_type = Text)]
            kid: String,
            #[diesel(sql_type = BigInt)]
            cutoff: i64,
        }
        let rows: Vec<Row> = system_tx(db, |conn| {
            async move {
                Ok(diesel::sql_query(
                    "SELECT kid, floor(extract(epoch FROM cutoff))::bigint AS cutoff \
                     FROM key_cutoffs WHERE expires_at > now()",
                )
                .load(conn)
                .await?)
            }
            .boxed()
        })
        .await?;
        let fresh = rows.into_iter().map(|r| (r.kid, r.cutoff)).collect();
        *self.by_kid.write().unwrap_or_else(|e| e.into_inner()) = fresh;
        Ok(())
    }

    /// Reloads in the background (from the invalidation follower), logging failures.
    pub fn reload_soon(&self, db: &DbPool) {
        let (cutoffs, db) = (self.clone(), db.clone());
        tokio::spawn(async move {
            if let Err(e) = cutoffs.reload(&db).await {
                tracing::warn!(error = %e, "reloading signing-key cutoffs failed");
            }
        });
    }
}
