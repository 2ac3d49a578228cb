//! `cluster.backend`: which implementation of the job transport, the leader lease and
//! the invalidation bus this process uses. Postgres stays the source of truth with
//! either; every node of one cluster must use the same backend, so a node whose backend
//! differs from the live leader's refuses to start.

use std::sync::Arc;

use diesel::{
    prelude::*,
    sql_types::{Nullable, Text},
};
use diesel_async::RunQueryDsl;

use super::{
    invalidation::{InvalidationBus, PgNotify},
    kv_lease::KvLease,
    leader::{LeaderLease, PgLease},
    nats_bus::NatsBus,
};
use crate::{
    config::{ClusterBackend, Config},
    db::{pool, DbPool},
    error::{Error, Result},
    ids::NodeId,
    jobs::{JetStreamJobs, JobTransport, Jobs, Retries},
    nats::Nats,
};

/// This process's connection to its backend.
#[derive(Clone)]
pub enum Backend {
    Postgres,
    Nats(Box<Nats>),
}

impl Backend {
    /// Connects to NATS for `cluster.backend: nats` (retrying for
    /// `nats.connectTimeout`); nothing to do for Postgres.
    pub async fn connect(config: &Config, client_name: &str) -> Result<Self> {
        Ok(match config.cluster.backend {
            ClusterBackend::Postgres => Self::Postgres,
            ClusterBackend::Nats => {
                Self::Nats(Box::new(Nats::connect(&config.nats, client_name).await?))
            }
        })
    }

    /// The backend a node runs on, from its NATS connection (if any).
    pub fn from_nats(nats: Option<Nats>) -> Self {
        match nats {
            None => Self::Postgres,
            Some(nats) => Self::Nats(Box::new(nats)),
        }
    }

    /// The YAML spelling, as recorded on the node's row.
    pub fn name(&self) -> &'static str {
        self.kind().as_str()
    }

    fn kind(&self) -> ClusterBackend {
        match self {
            Self::Postgres => ClusterBackend::Postgres,
            Self::Nats(_) => ClusterBackend::Nats,
        }
    }

    /// The NATS connection, if this is the NATS backend.
    pub fn nats(&self) -> Option<&Nats> {
        match self {
            Self::Postgres => None,
            Self::Nats(nats) => Some(nats),
        }
    }

    /// The invalidation bus.
    pub fn bus(&self, config: &Config, db: &DbPool) -> Arc<dyn InvalidationBus> {
        match self {
            Self::Postgres => Arc::new(PgNotify::new(config.postgres.dsn.expose())),
            Self::Nats(nats) => Arc::new(NatsBus::new((**nats).clone(), db.clone())),
        }
    }

    /// The job transport, for `node`'s queue.
    pub async fn jobs(&self, config: &Config, node: NodeId) -> Result<Arc<dyn JobTransport>> {
        Ok(match self {
            Self::Postgres => Arc::new(Jobs::connect(config.postgres.dsn.expose(), node).await?),
            Self::Nats(nats) => {
                let retries = Retries {
                    max_attempts: config.ipfs.max_attempts,
                    base_delay: config.ipfs.retry_base_delay,
                };
                Arc::new(JetStreamJobs::connect((**nats).clone(), node, retries).await?)
            }
        })
    }

    /// The leader lease of `node`.
    pub fn lease(&self, config: &Config, db: &DbPool, node: NodeId) -> Box<dyn LeaderLease> {
        let ttl = config.cluster.lease_ttl;
        match self {
            Self::Postgres => Box::new(PgLease::new(
                config.postgres.dsn.expose(),
                db.clone(),
                node,
                ttl,
            )),
            Self::Nats(nats) => Box::new(KvLease::new((**nats).clone(), db.clone(), node, ttl)),
        }
    }

    /// Refuses to join a cluster whose live leader runs another backend.
    /// `own_name` is this node's `cluster.nodeID` (a lease left by its own previous
    /// process does not count).
    pub async fn check_agrees(&self, db: &DbPool, own_name: &str) -> Result<()> {
        let Some((leader, theirs)) = live_leader_backend(db).await? else {
            return Ok(());
        };
        if leader == own_name || theirs == self.name() {
            return Ok(());
        }
        Err(Error::config(
            "cluster.backend",
            format!(
                "this node is configured with `{}` but the cluster's live leader ({}) runs `{theirs}`: \
                 every node of a cluster must use the same backend",
                self.name(),
                leader
            ),
        ))
    }
}

/// The live leader's name and backend, if a leader is live and has recorded one.
async fn live_leader_backend(db: &DbPool) -> Result<Option<(String, String)>> {
    #[derive(QueryableByName)]
    struct Row {
        #[diesel(sql_type = Text)]
        name: String,
        #[diesel(sql_type = Nullable<Text>)]
        backend: Option<String>,
    }
    let mut conn = pool::get(db).await?;
    let row: Option<Row> = diesel::sql_query(
        "SELECT n.name, n.backend FROM leases l JOIN nodes n ON n.id = l.holder \
         WHERE l.name = 'leader' AND l.expires_at > now()",
    )
    .get_result(&mut conn)
    .await
    .optional()?;
    Ok(row.and_then(|r| Some((r.name, r.backend?))))
}
