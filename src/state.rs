//! The one shared context handed to handlers, jobs and loops. Cheap to clone; no globals.

use std::sync::Arc;

use crate::{
    auth::{denylist::Denylist, TokenService},
    cluster::delegates::Delegates,
    config::Config,
    db::DbPool,
    kubo::KuboClient,
};

/// Everything a request or job needs.
#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub db: DbPool,
    pub kubo: KuboClient,
    pub tokens: Arc<TokenService>,
    pub denylist: Denylist,
    pub delegates: Delegates,
}
