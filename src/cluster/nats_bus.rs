//! The NATS invalidation bus: the same messages as `PgNotify`, on the core subject
//! `<prefix>.invalidate`.
//!
//! NOTIFY is delivered on commit and never for a rolled-back write; a NATS publish is
//! not part of the transaction. Publishing before the commit would let another node drop
//! its entry, re-read the old row and cache it again. So [`NatsBus::announce`] notes the
//! writer's transaction id, and a watcher publishes once Postgres reports that
//! transaction finished (`pg_xact_status`): after the commit, typically within a few
//! milliseconds. An aborted transaction publishes too: an extra invalidation only costs
//! a cache miss.
//!
//! A follower drops every cache when the connection goes down and again when it is back,
//! because core NATS does not replay what was published in between.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use diesel::sql_types::Text;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use futures_util::{future::BoxFuture, FutureExt, StreamExt};
use tokio::task::JoinHandle;

use super::invalidation::{Follower, Invalidation, InvalidationBus};
use crate::{
    db::{pool, DbPool},
    error::Result,
    nats::{Link, Nats},
};

/// Give up waiting for a transaction after this long and publish anyway.
const WAIT_FOR_COMMIT: Duration = Duration::from_secs(120);

/// The NATS backend of the bus.
pub struct NatsBus {
    nats: Nats,
    db: DbPool,
    /// Watchers still waiting for their transaction ([`InvalidationBus::flush`]).
    pending: Mutex<Vec<JoinHandle<()>>>,
}

impl NatsBus {
    pub fn new(nats: Nats, db: DbPool) -> Self {
        Self {
            nats,
            db,
            pending: Mutex::new(Vec::new()),
        }
    }
}

#[derive(diesel::QueryableByName)]
struct Xact {
    #[diesel(sql_type = Text)]
    xid: String,
}

#[derive(diesel::QueryableByName)]
struct XactStatus {
    #[diesel(sql_type = diesel::sql_types::Nullable<Text>)]
    status: Option<String>,
}

/// Waits until transaction `xid` is no longer in progress.
async fn finished(db: &DbPool, xid: &str) {
    let started = tokio::time::Instant::now();
    let mut pause = Duration::from_millis(2);
    while started.elapsed() < WAIT_FOR_COMMIT {
        tokio::time::sleep(pause).await;
        let status = match pool::get(db).await {
            Ok(mut conn) => diesel::sql_query("SELECT pg_xact_status($1::xid8) AS status")
                .bind::<Text, _>(xid)
                .get_result::<XactStatus>(&mut conn)
                .await
                .ok()
                .and_then(|s| s.status),
            Err(_) => None,
        };
        if matches!(status.as_deref(), Some("committed" | "aborted")) {
            return;
        }
        pause = (pause * 2).min(Duration::from_millis(200));
    }
    tracing::warn!(
        xid,
        "a transaction stayed open; publishing its invalidation anyway"
    );
}

impl InvalidationBus for NatsBus {
    fn announce<'c>(
        &'c self,
        conn: &'c mut AsyncPgConnection,
        what: Invalidation,
    ) -> BoxFuture<'c, Result<()>> {
        async move {
            let xact: Xact = diesel::sql_query("SELECT pg_current_xact_id()::text AS xid")
                .get_result(conn)
                .await?;
            let (db, client) = (self.db.clone(), self.nats.client.clone());
            let subject = self.nats.names.invalidate();
            let watcher = tokio::spawn(async move {
                finished(&db, &xact.xid).await;
                if let Err(e) = client.publish(subject, what.encode().into()).await {
                    tracing::warn!(error = %e, "publishing a cache invalidation failed");
                }
                let _ = client.flush().await;
            });
            let mut pending = self.pending.lock().expect("not poisoned");
            pending.retain(|w| !w.is_finished());
            pending.push(watcher);
            Ok(())
        }
        .boxed()
    }

    fn follow(&self, follower: Arc<dyn Follower>) -> BoxFuture<'static, ()> {
        let nats = self.nats.clone();
        async move {
            let mut link = nats.link();
            loop {
                let mut heard = match nats.client.subscribe(nats.names.invalidate()).await {
                    Ok(sub) => sub,
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot subscribe to cache invalidations; retrying");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                        continue;
                    }
                };
                follower.clear();
                loop {
                    tokio::select! {
                        message = heard.next() => match message {
                            Some(m) => match std::str::from_utf8(&m.payload).ok().and_then(Invalidation::decode) {
                                Some(what) => follower.apply(what),
                                None => tracing::warn!("unknown cache invalidation ignored"),
                            },
                            None => break,
                        },
                        changed = link.changed() => {
                            if changed.is_err() {
                                return;
                            }
                            // Messages may be missed from the moment the link drops until
                            // the subscription is back: drop everything at both ends.
                            let now = *link.borrow_and_update();
                            if now == Link::Down {
                                tracing::warn!("cache invalidations may be missed; dropped every cache");
                            }
                            follower.clear();
                        }
                    }
                }
            }
        }
        .boxed()
    }

    fn flush(&self) -> BoxFuture<'_, ()> {
        async move {
            let pending = std::mem::take(&mut *self.pending.lock().expect("not poisoned"));
            for watcher in pending {
                let _ = watcher.await;
            }
        }
        .boxed()
    }
}
