//! The one shared context handed to handlers, jobs and loops. Cheap to clone; no globals.

use std::sync::Arc;

use crate::{
    auth::{denylist::Denylist, TokenService},
    cluster::{delegates::Delegates, leader::Leadership, nodes::Presence, scheduler::LiveNodes},
    config::Config,
    db::DbPool,
    ids::NodeId,
    jobs::Jobs,
    kubo::Kubo,
};

/// Everything a request or job needs.
#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub db: DbPool,
    pub kubo: Arc<dyn Kubo>,
    /// This node's row in `nodes`.
    pub node: NodeId,
    pub jobs: Jobs,
    pub tokens: Arc<TokenService>,
    pub denylist: Denylist,
    pub delegates: Delegates,
    /// Live, `active` nodes (placement and delegates), refreshed by the heartbeat.
    pub live_nodes: LiveNodes,
    /// Whether this node leads the cluster, with its fence.
    pub leadership: Leadership,
    /// Publishes leadership; the election loop owns the sending side's use.
    pub leadership_tx: Arc<tokio::sync::watch::Sender<Option<i64>>>,
    /// The claim on this node's name, kept by the heartbeat.
    pub presence: Arc<tokio::sync::Mutex<Presence>>,
}
