//! The one shared context handed to handlers, jobs and loops. Cheap to clone; no globals.

use std::sync::Arc;

use crate::{
    auth::{denylist::Denylist, TokenService},
    cluster::delegates::Delegates,
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
}
