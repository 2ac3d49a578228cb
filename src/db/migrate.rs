//! Embedded schema migrations, run under a Postgres advisory lock so that N nodes
//! starting at once apply them exactly once. `migrate up` also sets up apalis-postgres's
//! job-queue schema and grants the server's role what it needs (and nothing more).

use diesel::{
    migration::{Migration, MigrationSource},
    pg::Pg,
    sql_types::{BigInt, Text},
    Connection, QueryableByName, RunQueryDsl,
};
use diesel_async::{async_connection_wrapper::AsyncConnectionWrapper, AsyncPgConnection};
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};

use crate::error::{Error, Result};

/// The migrations compiled into this binary.
pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations");

/// Two-integer advisory lock key for migrations.
const LOCK_KEY: (i32, i32) = super::locks::MIGRATIONS;

type SyncConn = AsyncConnectionWrapper<AsyncPgConnection>;

/// One migration and whether it is applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationState {
    pub version: String,
    pub name: String,
    pub applied: bool,
}

/// Versions (`YYYY-MM-DD-HHMMSS`-style) of every migration this binary carries, oldest first.
pub fn embedded_versions() -> Result<Vec<(String, String)>> {
    let migrations: Vec<Box<dyn Migration<Pg>>> = MigrationSource::<Pg>::migrations(&MIGRATIONS)
        .map_err(|e| Error::Migration(e.to_string()))?;
    let mut out: Vec<(String, String)> = migrations
        .iter()
        .map(|m| (m.name().version().to_string(), m.name().to_string()))
        .collect();
    out.sort();
    Ok(out)
}

/// Applies pending migrations and the job-queue schema, then grants `server_role`
/// (when it differs from the migrating role) access to the tables. Returns the names of
/// the migrations applied by this call.
pub async fn up(migration_dsn: &str, server_role: Option<&str>) -> Result<Vec<String>> {
    let dsn = migration_dsn.to_string();
    let role = server_role.map(str::to_string);
    let apalis_dsn = dsn.clone();
    run_locked(dsn, move |conn| {
        let applied = conn
            .run_pending_migrations(MIGRATIONS)
            .map_err(|e| Error::Migration(e.to_string()))?
            .iter()
            .map(|v| v.to_string())
            .collect::<Vec<_>>();
        // apalis-postgres uses sqlx; run its migrator on the current runtime while we
        // still hold the advisory lock on this connection.
        tokio::runtime::Handle::current().block_on(setup_job_queue(&apalis_dsn))?;
        if let Some(role) = role.as_deref() {
            grant_server_role(conn, role)?;
        }
        Ok(applied)
    })
    .await
}

/// Reverts the newest migration, or every migration with `all`. The job-queue schema
/// is left in place (it is versioned by apalis itself).
pub async fn down(migration_dsn: &str, all: bool) -> Result<Vec<String>> {
    run_locked(migration_dsn.to_string(), move |conn| {
        let reverted = if all {
            conn.revert_all_migrations(MIGRATIONS)
                .map_err(|e| Error::Migration(e.to_string()))?
                .iter()
                .map(|v| v.to_string())
                .collect()
        } else {
            match conn
                .applied_migrations()
                .map_err(|e| Error::Migration(e.to_string()))?
                .is_empty()
            {
                true => Vec::new(),
                false => vec![conn
                    .revert_last_migration(MIGRATIONS)
                    .map_err(|e| Error::Migration(e.to_string()))?
                    .to_string()],
            }
        };
        Ok(reverted)
    })
    .await
}

/// Every embedded migration with whether the database has it. Reads the migrations
/// table directly so it works for the server's role too (which may not create tables).
pub async fn status(dsn: &str) -> Result<Vec<MigrationState>> {
    let applied = applied_versions(dsn).await?;
    Ok(embedded_versions()?
        .into_iter()
        .map(|(version, name)| MigrationState {
            applied: applied.contains(&version),
            version,
            name,
        })
        .collect())
}

/// Fails with a message naming the command to run when the database lacks migrations
/// this binary carries (or has ones it does not know: a newer binary migrated it).
pub async fn ensure_current(dsn: &str) -> Result<()> {
    let applied = applied_versions(dsn).await?;
    let embedded = embedded_versions()?;
    let pending: Vec<_> = embedded
        .iter()
        .filter(|(v, _)| !applied.contains(v))
        .map(|(_, n)| n.clone())
        .collect();
    if !pending.is_empty() {
        return Err(Error::Migration(format!(
            "the database is behind this binary ({} pending: {}); run `anchorage migrate up` first",
            pending.len(),
            pending.join(", ")
        )));
    }
    let unknown: Vec<_> = applied
        .iter()
        .filter(|v| !embedded.iter().any(|(e, _)| e == *v))
        .cloned()
        .collect();
    if !unknown.is_empty() {
        tracing::warn!(
            versions = ?unknown,
            "the database has migrations this binary does not know; a newer anchorage migrated it"
        );
    }
    Ok(())
}

async fn applied_versions(dsn: &str) -> Result<Vec<String>> {
    #[derive(QueryableByName)]
    struct Row {
        #[diesel(sql_type = Text)]
        version: String,
    }
    #[derive(QueryableByName)]
    struct Exists {
        #[diesel(sql_type = diesel::sql_types::Bool)]
        exists: bool,
    }
    let mut conn = super::connect::establish(dsn).await?;
    let exists: Exists = diesel_async::RunQueryDsl::get_result(
        diesel::sql_query("SELECT to_regclass('__diesel_schema_migrations') IS NOT NULL AS exists"),
        &mut conn,
    )
    .await?;
    if !exists.exists {
        return Ok(Vec::new());
    }
    let rows: Vec<Row> = diesel_async::RunQueryDsl::load(
        diesel::sql_query("SELECT version FROM __diesel_schema_migrations"),
        &mut conn,
    )
    .await?;
    Ok(rows.into_iter().map(|r| r.version).collect())
}

/// Runs `work` on a blocking thread with a migration connection that holds the
/// migration advisory lock for the whole call.
async fn run_locked<T, F>(dsn: String, work: F) -> Result<T>
where
    F: FnOnce(&mut SyncConn) -> Result<T> + Send + 'static,
    T: Send + 'static,
{
    tokio::task::spawn_blocking(move || {
        // The blocking thread still belongs to the runtime: connect on it, then wrap.
        let handle = tokio::runtime::Handle::current();
        let mut conn = SyncConn::from(handle.block_on(super::connect::establish(&dsn))?);
        diesel::sql_query("SELECT pg_advisory_lock($1, $2)")
            .bind::<diesel::sql_types::Integer, _>(LOCK_KEY.0)
            .bind::<diesel::sql_types::Integer, _>(LOCK_KEY.1)
            .execute(&mut conn)?;
        let result = work(&mut conn);
        // Closing the session releases the lock too; unlock explicitly to be prompt.
        let _ = diesel::sql_query("SELECT pg_advisory_unlock($1, $2)")
            .bind::<diesel::sql_types::Integer, _>(LOCK_KEY.0)
            .bind::<diesel::sql_types::Integer, _>(LOCK_KEY.1)
            .execute(&mut conn);
        result
    })
    .await
    .map_err(|e| Error::Internal(format!("migration task failed: {e}")))?
}

async fn setup_job_queue(dsn: &str) -> Result<()> {
    let target = super::connect::Target::parse(dsn)?;
    let pool = apalis_postgres::PgPool::connect(target.job_queue_url())
        .await
        .map_err(|e| Error::Migration(format!("job queue: {e}")))?;
    let outcome = apalis_postgres::PostgresStorage::<()>::setup(&pool)
        .await
        .map_err(|e| Error::Migration(format!("job queue: {e}")));
    pool.close().await;
    outcome
}

/// Grants the server's role data access (never ownership, so it cannot alter tables or
/// policies) on our tables and the job queue's.
fn grant_server_role(conn: &mut SyncConn, role: &str) -> Result<()> {
    #[derive(QueryableByName)]
    struct Me {
        #[diesel(sql_type = Text)]
        me: String,
    }
    #[derive(QueryableByName)]
    struct Count {
        #[diesel(sql_type = BigInt)]
        n: i64,
    }
    let me: Me = diesel::sql_query("SELECT current_user::text AS me").get_result(conn)?;
    if me.me == role {
        tracing::warn!(
            role,
            "the server and migrations use the same Postgres role; the server owns its tables and could disable row-level security, so `serve` refuses it (unless --allow-owner-role). Set postgres.migrationDSN to a separate owner role"
        );
        return Ok(());
    }
    let exists: Count = diesel::sql_query("SELECT count(*) AS n FROM pg_roles WHERE rolname = $1")
        .bind::<Text, _>(role)
        .get_result(conn)?;
    if exists.n == 0 {
        return Err(Error::Migration(format!(
            "the server role '{role}' (the user in postgres.dsn) does not exist; create it first (CREATE ROLE {role} LOGIN)"
        )));
    }
    let r = quote_ident(role);
    let statements = [
        format!("GRANT USAGE ON SCHEMA public TO {r}"),
        format!("GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {r}"),
        format!("REVOKE INSERT, UPDATE, DELETE ON __diesel_schema_migrations FROM {r}"),
        format!("GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {r}"),
        format!("GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA public TO {r}"),
        format!("GRANT USAGE ON SCHEMA apalis TO {r}"),
        format!("GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA apalis TO {r}"),
        format!("GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA apalis TO {r}"),
        format!("GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA apalis TO {r}"),
    ];
    conn.transaction(|conn| {
        for sql in &statements {
            diesel::sql_query(sql.as_str()).execute(conn)?;
        }
        // sqlx's bookkeeping table lives in public too; the server only reads it.
        diesel::sql_query(format!(
            "DO $$ BEGIN IF to_regclass('_sqlx_migrations') IS NOT NULL THEN \
             EXECUTE 'REVOKE INSERT, UPDATE, DELETE ON _sqlx_migrations FROM {}'; END IF; END $$",
            r.replace('\'', "''")
        ))
        .execute(conn)?;
        Ok::<_, diesel::result::Error>(())
    })?;
    Ok(())
}

/// Quotes a Postgres identifier.
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// The login role named in a DSN (`postgres://user@…` or `user=… host=…`).
pub fn dsn_user(dsn: &str) -> Option<String> {
    dsn.parse::<tokio_postgres::Config>()
        .ok()
        .and_then(|c| c.get_user().map(str::to_string))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_migrations_are_ordered_and_named() {
        let versions = embedded_versions().unwrap();
        assert!(versions.len() >= 4);
        assert!(versions.windows(2).all(|w| w[0].0 < w[1].0));
    }

    #[test]
    fn reads_the_user_from_both_dsn_forms() {
        assert_eq!(
            dsn_user("postgres://app:pw@localhost:5432/db").as_deref(),
            Some("app")
        );
        assert_eq!(
            dsn_user("host=/tmp user=owner dbname=x").as_deref(),
            Some("owner")
        );
        assert_eq!(dsn_user("not a dsn ::"), None);
    }

    #[test]
    fn quotes_identifiers() {
        assert_eq!(quote_ident("a\"b"), "\"a\"\"b\"");
    }
}
