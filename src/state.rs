//! The one shared context handed to handlers, jobs and loops. Cheap to clone; no globals.

use std::sync::Arc;

use crate::{
    auth::{denylist::Denylist, TokenService},
    cluster::{
        delegates::Delegates,
        invalidation::{Follower, Invalidation, InvalidationBus},
        leader::Leadership,
        nodes::Presence,
        scheduler::LiveNodes,
    },
    config::Config,
    db::DbPool,
    events::{Affected, EventHub},
    ids::NodeId,
    jobs::JobTransport,
    kubo::Kubo,
    metrics::Metrics,
    tenancy::{org_cache::OrgCache, standing::Standings},
};

/// Everything a request or job needs.
#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub db: DbPool,
    pub kubo: Arc<dyn Kubo>,
    /// This node's row in `nodes`.
    pub node: NodeId,
    /// Pushes placement jobs to the nodes that run them.
    pub jobs: Arc<dyn JobTransport>,
    pub tokens: Arc<TokenService>,
    /// The identity provider, when sign-in is configured.
    pub oidc: Option<Arc<crate::auth::oidc::Oidc>>,
    pub denylist: Denylist,
    /// Orgs known to exist.
    pub orgs: OrgCache,
    /// Where each person stands now (sysadmin, role per org): tokens act with no more.
    pub standings: Standings,
    pub delegates: Delegates,
    /// This node's `/v1/events` subscribers.
    pub events: EventHub,
    /// Every Prometheus series this node exports.
    pub metrics: Metrics,
    /// Announces cache invalidations to every node, and follows them.
    pub bus: Arc<dyn InvalidationBus>,
    /// The NATS connection with `cluster.backend: nats` (jobs, lease and bus run on it).
    pub nats: Option<crate::nats::Nats>,
    /// Live, `active` nodes (placement and delegates), refreshed by the heartbeat.
    pub live_nodes: LiveNodes,
    /// Whether this node leads the cluster, with its fence.
    pub leadership: Leadership,
    /// Publishes leadership; the election loop owns the sending side's use.
    pub leadership_tx: Arc<tokio::sync::watch::Sender<Option<i64>>>,
    /// The CIDs this node's Kubo is fetching right now.
    pub fetching: crate::placements::fetching::Fetching,
    /// The claim on this node's name, kept by the heartbeat.
    pub presence: Arc<tokio::sync::Mutex<Presence>>,
}

/// The node's caches, which other nodes' writes can make stale, follow the
/// invalidation bus's announcements; open event sockets are checked again once the
/// caches have dropped what changed.
impl Follower for AppState {
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
                    self.tokens.cutoffs().clone(),
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
        self.tokens.cutoffs().reload_soon(&self.db);
        self.events.recheck(Affected::Everyone);
    }
}
