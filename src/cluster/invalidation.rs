//! Cross-node cache invalidation, behind [`InvalidationBus`]; the NATS backend is in
//! `nats_bus.rs`. A writer announces what changed as part of its own transaction; every node follows
//! the announcements and drops the stale entries, so a token revoked on node 1 is refused
//! by node 2 within milliseconds instead of after a cache TTL.
//!
//! [`PgNotify`] is the Postgres backend: `NOTIFY anchorage_invalidate` (delivered on
//! commit, never for a rolled-back write) and a `LISTEN`ing connection per node. When
//! that connection is lost, notifications may have been missed, so every cache is
//! dropped before listening again.

use std::sync::Arc;

use diesel::sql_types::Text;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use futures_util::{future::BoxFuture, FutureExt};
use uuid::Uuid;

use crate::{
    db::listen::{self, Heard},
    error::Result,
};

/// The NOTIFY channel.
pub const CHANNEL: &str = "anchorage_invalidate";

/// What changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Invalidation {
    /// A token was revoked.
    Token(Uuid),
    /// A node joined, left or changed state.
    Nodes,
    /// An org was removed.
    Org(Uuid),
    /// A person's memberships or sysadmin flag changed.
    User(Uuid),
    /// A session ended (logout).
    Session(Uuid),
    /// A signing key's tokens were revoked up to a moment.
    KeyCutoffs,
}

impl Invalidation {
    pub(super) fn encode(self) -> String {
        match self {
            Self::Token(jti) => format!("token:{jti}"),
            Self::Nodes => "nodes".to_string(),
            Self::Org(id) => format!("org:{id}"),
            Self::User(id) => format!("user:{id}"),
            Self::Session(id) => format!("session:{id}"),
            Self::KeyCutoffs => "key-cutoffs".to_string(),
        }
    }

    pub(super) fn decode(payload: &str) -> Option<Self> {
        match payload.split_once(':') {
            Some(("token", jti)) => jti.parse().ok().map(Self::Token),
            Some(("org", id)) => id.parse().ok().map(Self::Org),
            Some(("user", id)) => id.parse().ok().map(Self::User),
            Some(("session", id)) => id.parse().ok().map(Self::Session),
            None if payload == "nodes" => Some(Self::Nodes),
            None if payload == "key-cutoffs" => Some(Self::KeyCutoffs),
            _ => None,
        }
    }
}

/// How writers tell every node what changed, and how each node hears it.
pub trait InvalidationBus: Send + Sync {
    /// Announces `what` as part of the writer's transaction `conn`: every node hears
    /// it once the transaction commits, never before. (The NATS backend also announces
    /// a rolled-back write; an extra invalidation only costs a cache miss.)
    fn announce<'c>(
        &'c self,
        conn: &'c mut AsyncPgConnection,
        what: Invalidation,
    ) -> BoxFuture<'c, Result<()>>;

    /// Hands every announcement, from any node, to `follower` until aborted, and tells
    /// it to drop everything whenever announcements may have been missed.
    fn follow(&self, follower: Arc<dyn Follower>) -> BoxFuture<'static, ()>;

    /// Resolves once every announcement of committed transactions has been sent. A
    /// short-lived process (the CLI) calls it before exiting; NOTIFY needs nothing.
    fn flush(&self) -> BoxFuture<'_, ()> {
        async {}.boxed()
    }
}

/// What a node does with what it hears: drop its stale cache entries (`AppState`
/// implements it).
pub trait Follower: Send + Sync {
    /// Drops what `what` made stale.
    fn apply(&self, what: Invalidation);
    /// Drops everything: announcements may have been missed.
    fn clear(&self);
}

/// The Postgres backend: NOTIFY in the writer's transaction, LISTEN on each node.
pub struct PgNotify {
    dsn: String,
}

impl PgNotify {
    pub fn new(dsn: &str) -> Self {
        Self {
            dsn: dsn.to_string(),
        }
    }
}

impl InvalidationBus for PgNotify {
    fn announce<'c>(
        &'c self,
        conn: &'c mut AsyncPgConnection,
        what: Invalidation,
    ) -> BoxFuture<'c, Result<()>> {
        async move {
            diesel::sql_query("SELECT pg_notify($1, $2)")
                .bind::<Text, _>(CHANNEL)
                .bind::<Text, _>(what.encode())
                .execute(conn)
                .await?;
            Ok(())
        }
        .boxed()
    }

    fn follow(&self, follower: Arc<dyn Follower>) -> BoxFuture<'static, ()> {
        listen_loop(self.dsn.clone(), follower).boxed()
    }
}

/// Follows the channel on `dsn` until aborted, handing every invalidation to `caches`
/// and telling it to drop everything whenever listening (re)starts.
async fn listen_loop(dsn: String, caches: Arc<dyn Follower>) {
    listen::follow(dsn, &[CHANNEL], move |heard| match heard {
        // Notifications may be missed from the moment the feed is lost until LISTEN is
        // back in effect: drop everything at both ends of that gap.
        Heard::Lost | Heard::Listening => caches.clear(),
        Heard::Notification { payload, .. } => match Invalidation::decode(payload) {
            Some(what) => caches.apply(what),
            None => tracing::warn!(payload, "unknown cache invalidation ignored"),
        },
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_round_trip_and_junk_is_ignored() {
        let jti = Uuid::now_v7();
        for what in [
            Invalidation::Token(jti),
            Invalidation::Nodes,
            Invalidation::Org(jti),
            Invalidation::User(jti),
            Invalidation::Session(jti),
            Invalidation::KeyCutoffs,
        ] {
            assert_eq!(Invalidation::decode(&what.encode()), Some(what));
        }
        assert_eq!(Invalidation::decode("token:nope"), None);
        assert_eq!(Invalidation::decode("orgs"), None);
    }
}
