//! The only two ways to open a transaction that touches tenant tables.
//!
//! Row-level security admits a tenant row when it belongs to the org named by the
//! transaction-local `anchorage.org_id` setting, or when `anchorage.system` is on.
//! [`org_tx`] sets the first and is what every request path uses; [`system_tx`] sets the
//! second and is reserved for code that must work across orgs (cluster, jobs, login,
//! sysadmin views). Both settings are `SET LOCAL`-scoped, so nothing leaks to the next
//! user of a pooled connection.

use diesel_async::{AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};
use futures_util::future::BoxFuture;

use super::{
    pool::{self, DbPool, PooledConn},
    sql::{Bind, Statement},
};
use crate::{error::Result, ids::OrgId};

/// Which rows a transaction may see.
#[derive(Debug, Clone, Copy)]
pub enum Scope {
    /// One org's rows.
    Org(OrgId),
    /// Every org's rows (cluster-wide code only).
    System,
}

/// Runs `f` in a transaction scoped to `org`: it sees and may write only that org's rows.
pub async fn org_tx<R, F>(db: &DbPool, org: OrgId, f: F) -> Result<R>
where
    F: for<'c> FnOnce(&'c mut AsyncPgConnection) -> BoxFuture<'c, Result<R>> + Send,
    R: Send,
{
    scoped_tx(pool::get(db).await?, Scope::Org(org), f).await
}

/// Runs `f` in a transaction that sees every org's rows. Use only where the work is
/// inherently cross-org; request handlers use [`org_tx`].
pub async fn system_tx<R, F>(db: &DbPool, f: F) -> Result<R>
where
    F: for<'c> FnOnce(&'c mut AsyncPgConnection) -> BoxFuture<'c, Result<R>> + Send,
    R: Send,
{
    scoped_tx(pool::get(db).await?, Scope::System, f).await
}

/// Runs the reads of `f` in a transaction scoped to `org`, pipelined: `BEGIN` and the
/// scope, `f`'s statements and `COMMIT` go to Postgres back to back, so the whole read
/// costs one round trip instead of three or more.
///
/// `f` must send every statement on its first poll — build the query futures and join
/// them (`try_join!`), never await one before starting the next — because `COMMIT` is
/// queued right behind them. A statement sent after `COMMIT` would run outside the
/// transaction, where row-level security shows no tenant rows at all: a mistake here
/// loses rows, it cannot show another org's.
pub async fn org_read<R, F>(db: &DbPool, org: OrgId, f: F) -> Result<R>
where
    F: for<'c> FnOnce(&'c AsyncPgConnection) -> BoxFuture<'c, Result<R>> + Send,
    R: Send,
{
    let mut guard = TxGuard {
        conn: Some(pool::get(db).await?),
        ended: false,
    };
    let conn: &AsyncPgConnection = guard.conn.as_ref().expect("connection present");
    let mut begin = Statement::new();
    begin.sql("BEGIN READ ONLY");
    let mut scope = Statement::new();
    scope
        .sql("SELECT set_config('anchorage.org_id', ")
        .bind(Bind::Text(org.uuid().hyphenated().to_string()))
        .sql(", true)");
    let mut commit = Statement::new();
    commit.sql("COMMIT");
    // Every statement is a prepared one, sent in the order the statements take diesel's
    // statement-cache lock (a fair, FIFO lock), which is the order try_join first polls
    // them in — even when a statement must be parsed first on a fresh connection.
    let ((), outcome, ()) = futures_util::try_join!(
        async {
            futures_util::try_join!(begin.execute(&mut &*conn), scope.execute(&mut &*conn))?;
            Ok(())
        },
        f(conn),
        async {
            commit.execute(&mut &*conn).await?;
            Ok(())
        },
    )?;
    guard.ended = true;
    Ok(outcome)
}

/// Opens the transaction and sets its scope in one round trip, runs `f`, commits. If the
/// future is dropped half-way (a client went away) or the end of the transaction fails,
/// the connection is taken out of the pool and closed — Postgres then rolls back — so no
/// later user can ever run inside this transaction or its scope.
async fn scoped_tx<R, F>(conn: PooledConn, scope: Scope, f: F) -> Result<R>
where
    F: for<'c> FnOnce(&'c mut AsyncPgConnection) -> BoxFuture<'c, Result<R>> + Send,
    R: Send,
{
    let mut guard = TxGuard {
        conn: Some(conn),
        ended: false,
    };
    let conn: &mut AsyncPgConnection = guard.conn.as_mut().expect("connection present");
    conn.batch_execute(&begin_sql(scope)).await?;
    let outcome = f(conn).await;
    let end = if outcome.is_ok() {
        "COMMIT"
    } else {
        "ROLLBACK"
    };
    conn.batch_execute(end).await?;
    guard.ended = true;
    outcome
}

/// `BEGIN` plus the scope setting. The value is a UUID we formatted (or a constant), so
/// it is safe to inline; one simple-protocol round trip instead of two.
fn begin_sql(scope: Scope) -> String {
    match scope {
        Scope::Org(org) => format!(
            "BEGIN; SELECT set_config('anchorage.org_id', '{}', true)",
            org.uuid().hyphenated()
        ),
        Scope::System => "BEGIN; SELECT set_config('anchorage.system', 'on', true)".to_string(),
    }
}

/// Returns the connection to the pool only if its transaction ended cleanly.
struct TxGuard {
    conn: Option<PooledConn>,
    ended: bool,
}

impl Drop for TxGuard {
    fn drop(&mut self) {
        if !self.ended {
            if let Some(conn) = self.conn.take() {
                // Detached from the pool and dropped: the socket closes, Postgres rolls back.
                drop(deadpool::managed::Object::take(conn));
                tracing::debug!("closed a connection whose transaction did not end cleanly");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scope_is_set_in_the_same_round_trip_as_begin() {
        let org = OrgId::new();
        let sql = begin_sql(Scope::Org(org));
        assert!(sql.starts_with("BEGIN; SELECT set_config('anchorage.org_id', '"));
        assert!(sql.contains(&org.uuid().to_string()));
        assert!(begin_sql(Scope::System).contains("'anchorage.system', 'on'"));
    }
}
