//! The async connection pool the server and its jobs share.

use std::{sync::Arc, time::Duration};

use diesel::ConnectionError;
use diesel_async::{
    pooled_connection::{deadpool::Pool, AsyncDieselConnectionManager, ManagerConfig},
    AsyncPgConnection, RunQueryDsl,
};

use super::connect::Target;

use crate::error::{Error, Result};

/// The pool type used everywhere.
pub type DbPool = Pool<AsyncPgConnection>;

/// A connection checked out of the pool.
pub type PooledConn = deadpool::managed::Object<AsyncDieselConnectionManager<AsyncPgConnection>>;

/// How the pool is sized and how long things may take.
#[derive(Debug, Clone)]
pub struct PoolOptions {
    pub max_connections: usize,
    /// How long to wait for a free connection (or a new one) before giving up with 503.
    pub acquire_timeout: Duration,
    /// Server-side cap on any one statement, so a runaway query cannot pin a connection.
    pub statement_timeout: Duration,
}

impl Default for PoolOptions {
    fn default() -> Self {
        Self {
            max_connections: 16,
            acquire_timeout: Duration::from_secs(5),
            statement_timeout: Duration::from_secs(30),
        }
    }
}

/// Builds a pool for `dsn`. Connections are opened lazily; call [`ping`] to check reachability.
pub fn build_pool(dsn: &str, opts: &PoolOptions) -> Result<DbPool> {
    let statement_timeout_ms = opts.statement_timeout.as_millis();
    // Parsed once: a bad sslmode or an unreadable sslrootcert fails here, at start-up.
    let target = Arc::new(Target::parse(dsn)?);
    let mut manager_config = ManagerConfig::<AsyncPgConnection>::default();
    manager_config.custom_setup = Box::new(move |_url| {
        let target = target.clone();
        Box::pin(async move {
            let mut conn = target.establish().await?;
            diesel::sql_query(format!("SET statement_timeout = {statement_timeout_ms}"))
                .execute(&mut conn)
                .await
                .map_err(ConnectionError::CouldntSetupConfiguration)?;
            Ok(conn)
        })
    });
    let manager =
        AsyncDieselConnectionManager::<AsyncPgConnection>::new_with_config(dsn, manager_config);
    Pool::builder(manager)
        .max_size(opts.max_connections)
        .wait_timeout(Some(opts.acquire_timeout))
        .create_timeout(Some(opts.acquire_timeout))
        .recycle_timeout(Some(opts.acquire_timeout))
        .runtime(deadpool::Runtime::Tokio1)
        .build()
        .map_err(|e| Error::Pool(Box::new(e)))
}

/// Checks a connection out of the pool, mapping exhaustion and connect failures to
/// [`Error::Pool`] (503 over HTTP).
pub async fn get(pool: &DbPool) -> Result<PooledConn> {
    pool.get().await.map_err(|e| Error::Pool(Box::new(e)))
}

/// Runs `SELECT 1` on a pooled connection.
pub async fn ping(pool: &DbPool) -> Result<()> {
    let mut conn = get(pool).await?;
    diesel::sql_query("SELECT 1").execute(&mut conn).await?;
    Ok(())
}
