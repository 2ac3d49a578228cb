//! Cross-node cache invalidation, behind [`InvalidationBus`] so a NATS backend can stand
//! in. A writer announces what changed as part of its own transaction; every node follows
//! the announcements and drops the stale entries, so a token revoked on node 1 is refused
//! by node 2 within milliseconds instead of after a cache TTL.
//!
//! [`PgNotify`] is the Postgres backend: `NOTIFY anchorage_invalidate` (delivered on
//! commit, never for a rolled-back write) and a `LISTEN`ing connection per node. When
//! that connection is lost, notifications may have been missed, so every cache is
//! dropped before listening again.

use diesel::sql_types::Text;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use futures_util::{future::BoxFuture, FutureExt};
use uuid::Uuid;

use crate::{
    auth::{denylist::Denylist, key_cutoffs::KeyCutoffs},
    cluster::scheduler::LiveNodes,
    db::{
        listen::{self, Heard},
        DbPool,
    },
    error::Result,
    events::{Affected, EventHub},
    tenancy::{org_cache::OrgCache, standing::Standings},
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
    fn encode(self) -> String {
        match self {
            Self::Token(jti) => format!("token:{jti}"),
            Self::Nodes => "nodes".to_string(),
            Self::Org(id) => format!("org:{id}"),
            Self::User(id) => format!("user:{id}"),
            Self::Session(id) => format!("session:{id}"),
            Self::KeyCutoffs => "key-cutoffs".to_string(),
        }
    }

    fn decode(payload: &str) -> Option<Self> {
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
    /// it if, and only once, the transaction commits.
    fn announce<'c>(
        &'c self,
        conn: &'c mut AsyncPgConnection,
        what: Invalidation,
    ) -> BoxFuture<'c, Result<()>>;

    /// Applies every announcement, from any node, to `caches` until aborted; drops every
    /// cache whenever announcements may have been missed.
    fn follow(&self, caches: Caches) -> BoxFuture<'static, ()>;
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

    fn follow(&self, caches: Caches) -> BoxFuture<'static, ()> {
        listen_loop(self.dsn.clone(), caches).boxed()
    }
}

/// The caches a node keeps that other nodes' writes can make stale.
#[derive(Clone)]
pub struct Caches {
    pub denylist: Denylist,
    pub live_nodes: LiveNodes,
    pub orgs: OrgCache,
    pub standings: Standings,
    /// Not a cache, but held by what the caches say: open event sockets are checked
    /// again once the caches have dropped what changed.
    pub events: EventHub,
    /// Reloaded from `db` when a key's tokens are revoked.
    pub key_cutoffs: KeyCutoffs,
    pub db: DbPool,
}

impl Caches {
    fn apply(&self, what: Invalidation) {
        match what {
            Invalidation::Token(jti) => self.denylist.invalidate(jti),
            Invalidation::Nodes => self.live_nodes.invalidate(),
            Invalidation::Org(id) => self.orgs.invalidate(id),
            Invalidation::User(id) => self.standings.invalidate(id),
            Invalidation::Session(_) => {}
            Invalidation::KeyCutoffs => {
                // Sockets re-check their tokens once the new cutoffs are in.
                let (cutoffs, db, events) = (
                    self.key_cutoffs.clone(),
                    self.db.clone(),
                    self.events.clone(),
                );
                tokio::spawn(async move {
                    if let Err(e) = cutoffs.reload(&db).await {
                        tracing::warn!(error = %e, "reloading signing-key cutoffs failed");
                    }
                    events.recheck(Affected::Everyone);
                });
                return;
            }
        }
        let affected = match what {
            Invalidation::Token(jti) => Affected::Token(jti),
            Invalidation::User(id) => Affected::User(id),
            Invalidation::Session(id) => Affected::Session(id),
            Invalidation::Org(id) => Affected::Org(id),
            Invalidation::Nodes | Invalidation::KeyCutoffs => return,
        };
        self.events.recheck(affected);
    }

    fn clear(&self) {
        self.denylist.clear();
        self.live_nodes.invalidate();
        self.orgs.clear();
        self.standings.clear();
        self.key_cutoffs.reload_soon(&self.db);
        self.events.recheck(Affected::Everyone);
    }
}

/// Follows the channel on `dsn` until aborted, applying every invalidation to `caches`
/// and dropping every cache whenever listening (re)starts.
async fn listen_loop(dsn: String, caches: Caches) {
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
