//! A private PostgreSQL cluster per test run (shared by every test, and by concurrent
//! test processes through a file lock), one migrated template database per migration
//! set, and a fresh database cloned from it per test.

use std::{
    collections::hash_map::DefaultHasher,
    fs,
    hash::{Hash, Hasher},
    os::fd::AsRawFd,
    path::{Path, PathBuf},
    sync::OnceLock,
};

use super::pg_tls::TestPki;
use anchorage::{
    db::{self, migrate, DbPool, PoolOptions},
    devstack::postgres::{self, PgCluster, StartOptions},
};

pub const OWNER_ROLE: &str = "anchorage_owner";
pub const APP_ROLE: &str = "anchorage_app";
/// Members of this role must give their password over TCP (SCRAM); everyone else is
/// trusted. Tests of password handling create a login role in it.
pub const PASSWORD_USERS: &str = "password_users";

/// The run's cluster and template.
pub struct Cluster {
    pub port: u16,
    pub template: String,
}

static CLUSTER: OnceLock<Cluster> = OnceLock::new();

/// Where the test cluster lives; `tests/run.sh` stops it after the run.
pub fn cluster_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("anchorage-test-pg")
}

fn pki_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("anchorage-test-tls")
}

/// The CA the cluster's certificate chains to (and one it does not).
pub fn pki() -> TestPki {
    cluster();
    TestPki::existing(&pki_dir())
}

pub fn cluster() -> &'static Cluster {
    CLUSTER.get_or_init(|| {
        // Set-up runs on its own thread and runtime so it is independent of whichever
        // test's runtime got here first.
        std::thread::spawn(|| {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(start_cluster())
        })
        .join()
        .expect("test cluster set-up panicked")
    })
}

async fn start_cluster() -> Cluster {
    let dir = cluster_dir();
    fs::create_dir_all(dir.parent().unwrap()).unwrap();
    let _lock = FileLock::acquire(&dir.with_extension("lock"));
    let mut settings: Vec<(String, String)> = vec![
        ("fsync".into(), "off".into()),
        ("synchronous_commit".into(), "off".into()),
        ("full_page_writes".into(), "off".into()),
        ("max_connections".into(), "400".into()),
    ];
    // TLS on, as a managed Postgres has it: DSNs without sslmode negotiate it (prefer).
    settings.extend(TestPki::ensure(&pki_dir()).server_settings());
    let pg = PgCluster::ensure_started(
        &dir,
        &StartOptions {
            preferred_port: None,
            settings,
        },
    )
    .unwrap_or_else(|e| panic!("starting the test PostgreSQL: {e}"));
    check_passwords_of(&dir, PASSWORD_USERS);
    let template = format!("tmpl_{:016x}", migrations_hash());
    let superuser = pg.dsn("postgres", "postgres");
    let (client, conn) = tokio_postgres::connect(&superuser, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    // DDL takes no parameters: these names are this file's constants and generated names.
    client
        .batch_execute(&format!(
            "DO $$ BEGIN CREATE ROLE {PASSWORD_USERS} NOLOGIN; \
             EXCEPTION WHEN duplicate_object THEN NULL; END $$; SELECT pg_reload_conf();"
        ))
        .await
        .unwrap();
    let exists = client
        .query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&template])
        .await
        .unwrap()
        .is_some();
    if !exists {
        // Build under a scratch name and rename, so a crash never leaves a
        // half-migrated template behind.
        let scratch = format!("{template}_build");
        // DDL with the generated template names, as above.
        client
            .batch_execute(&format!("DROP DATABASE IF EXISTS {scratch} WITH (FORCE)"))
            .await
            .unwrap();
        postgres::provision(&superuser, &scratch, OWNER_ROLE, APP_ROLE)
            .await
            .unwrap();
        migrate::up(&pg.dsn(OWNER_ROLE, &scratch), Some(APP_ROLE))
            .await
            .unwrap_or_else(|e| panic!("migrating the template: {e}"));
        client
            .batch_execute(&format!("ALTER DATABASE {scratch} RENAME TO {template}"))
            .await
            .unwrap();
    }
    Cluster {
        port: pg.port,
        template,
    }
}

/// Puts a SCRAM rule for members of `group` above initdb's trust rules (first match
/// wins); the reload after the role exists makes it effective.
fn check_passwords_of(data_dir: &Path, group: &str) {
    let hba = data_dir.join("pg_hba.conf");
    let text = fs::read_to_string(&hba).unwrap();
    let rule = format!("host all +{group} 127.0.0.1/32 scram-sha-256\n");
    if !text.contains(&rule) {
        fs::write(&hba, format!("{rule}{text}")).unwrap();
    }
}

fn migrations_hash() -> u64 {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
    let mut files: Vec<PathBuf> = walk(&dir);
    files.sort();
    let mut h = DefaultHasher::new();
    for f in files {
        f.strip_prefix(&dir).unwrap().hash(&mut h);
        fs::read(&f).unwrap().hash(&mut h);
    }
    h.finish()
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).unwrap().flatten() {
        let p = entry.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// A database for one test, dropped (forcibly) when the value is dropped.
pub struct TestDb {
    pub name: String,
    port: u16,
}

impl TestDb {
    /// A fresh database with every migration applied.
    pub async fn migrated() -> Self {
        let c = cluster();
        Self::create(c.port, Some(&c.template)).await
    }

    /// A fresh database with nothing in it (owned by the owner role).
    pub async fn empty() -> Self {
        let c = cluster();
        Self::create(c.port, None).await
    }

    async fn create(port: u16, template: Option<&str>) -> Self {
        let name = format!("t_{}", uuid::Uuid::now_v7().simple());
        // DDL takes no parameters: the database name is generated here, the rest constants.
        let sql = match template {
            Some(t) => format!("CREATE DATABASE {name} TEMPLATE {t} OWNER {OWNER_ROLE}"),
            None => format!("CREATE DATABASE {name} OWNER {OWNER_ROLE}"),
        };
        superuser_exec(port, "postgres", &sql).await;
        Self { name, port }
    }

    /// DSN of the server's role (no superuser, no BYPASSRLS, owns nothing).
    pub fn app_dsn(&self) -> String {
        format!(
            "postgres://{APP_ROLE}@127.0.0.1:{}/{}",
            self.port, self.name
        )
    }

    /// DSN of `role` (no password) over TCP.
    pub fn dsn_as(&self, role: &str) -> String {
        format!("postgres://{role}@127.0.0.1:{}/{}", self.port, self.name)
    }

    /// DSN of the server's role through `host` (e.g. `localhost`, which the server
    /// certificate names) with `query` (e.g. `sslmode=verify-full&sslrootcert=…`).
    pub fn app_dsn_via(&self, host: &str, query: &str) -> String {
        format!(
            "postgres://{APP_ROLE}@{host}:{}/{}?{query}",
            self.port, self.name
        )
    }

    /// DSN of the owner role that runs migrations.
    pub fn owner_dsn(&self) -> String {
        format!(
            "postgres://{OWNER_ROLE}@127.0.0.1:{}/{}",
            self.port, self.name
        )
    }

    /// A pool connecting as the server's role.
    pub fn app_pool(&self) -> DbPool {
        db::build_pool(
            &self.app_dsn(),
            &PoolOptions {
                max_connections: 4,
                ..Default::default()
            },
        )
        .unwrap()
    }

    /// Runs SQL in this database as the superuser (for set-up that needs it).
    pub async fn superuser_exec(&self, sql: &str) {
        superuser_exec(self.port, &self.name, sql).await;
    }

    /// Runs one statement in this database as the superuser with `params` bound to `$1`,
    /// `$2`, … (tokio_postgres types: `String` is text and `i64` bigint, so a uuid goes
    /// in as text and the statement casts it: `$1::text::uuid`).
    pub async fn superuser_exec_with(
        &self,
        sql: &'static str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> u64 {
        let dsn = format!("postgres://postgres@127.0.0.1:{}/{}", self.port, self.name);
        let (client, conn) = tokio_postgres::connect(&dsn, tokio_postgres::NoTls)
            .await
            .unwrap();
        let task = tokio::spawn(conn);
        let n = client
            .execute(sql, params)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
        drop(client);
        let _ = task.await;
        n
    }

    /// Takes this database away for `outage` as a Postgres restart would: every
    /// connection is cut and new ones are refused, then it accepts connections again.
    pub async fn outage(&self, outage: std::time::Duration) {
        // DDL takes no parameters: the name is the one `create` generated.
        let name = &self.name;
        superuser_exec(
            self.port,
            "postgres",
            &format!(
                "ALTER DATABASE {name} ALLOW_CONNECTIONS false; \
                 SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}';"
            ),
        )
        .await;
        tokio::time::sleep(outage).await;
        superuser_exec(
            self.port,
            "postgres",
            &format!("ALTER DATABASE {name} ALLOW_CONNECTIONS true"),
        )
        .await;
    }

    /// Every row `sql` returns, read as the superuser (past row-level security).
    pub async fn superuser_query(&self, sql: &str) -> Vec<tokio_postgres::Row> {
        let dsn = format!("postgres://postgres@127.0.0.1:{}/{}", self.port, self.name);
        let (client, conn) = tokio_postgres::connect(&dsn, tokio_postgres::NoTls)
            .await
            .unwrap();
        let task = tokio::spawn(conn);
        let rows = client
            .query(sql, &[])
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
        drop(client);
        let _ = task.await;
        rows
    }

    /// The one row `sql` returns, read as the superuser.
    pub async fn superuser_query_one(&self, sql: &str) -> tokio_postgres::Row {
        let dsn = format!("postgres://postgres@127.0.0.1:{}/{}", self.port, self.name);
        let (client, conn) = tokio_postgres::connect(&dsn, tokio_postgres::NoTls)
            .await
            .unwrap();
        let task = tokio::spawn(conn);
        let row = client
            .query_one(sql, &[])
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
        drop(client);
        let _ = task.await;
        row
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        // DDL takes no parameters: the name is the one `create` generated.
        let sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
        let port = self.port;
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(superuser_exec(port, "postgres", &sql));
        })
        .join();
    }
}

async fn superuser_exec(port: u16, db: &str, sql: &str) {
    let dsn = format!("postgres://postgres@127.0.0.1:{port}/{db}");
    let (client, conn) = tokio_postgres::connect(&dsn, tokio_postgres::NoTls)
        .await
        .unwrap();
    let task = tokio::spawn(conn);
    client
        .batch_execute(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    drop(client);
    let _ = task.await;
}

/// An exclusive `flock` held until dropped, so concurrent test processes start the
/// cluster and build the template once.
struct FileLock(fs::File);

impl FileLock {
    fn acquire(path: &Path) -> Self {
        let file = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)
            .unwrap();
        // SAFETY: flock on a descriptor we own.
        let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) };
        assert_eq!(rc, 0, "flock {}", path.display());
        Self(file)
    }
}

impl Drop for FileLock {
    fn drop(&mut self) {
        // SAFETY: unlocking the descriptor we locked.
        unsafe { libc::flock(self.0.as_raw_fd(), libc::LOCK_UN) };
    }
}
