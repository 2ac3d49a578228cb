//! Postgres over TLS: the suite's cluster runs with `ssl=on` and a certificate from a
//! test CA that names only `localhost`. All three clients (the diesel pool, the LISTEN
//! connections, sqlx under the job queue) honour `sslmode` and `sslrootcert`.

use std::time::Duration;

use anchorage::db::{self, connect::Target, PoolOptions};
use serde_json::json;

use crate::{
    harness::{kubo::random_bytes, pg, sql::db_count, TestDb},
    kubo::pinning::{app_on, org_token, post_pin, start_nodes, wait_status},
};

fn verify(mode: &str, ca: &std::path::Path) -> String {
    format!("sslmode={mode}&sslrootcert={}", ca.display())
}

/// Whether a connection opened with `dsn` by each of the three clients is encrypted,
/// or the first client's error.
async fn connect_all_three(dsn: &str) -> Result<(), String> {
    let target = Target::parse(dsn).map_err(|e| e.to_string())?;
    // diesel-async, as the pool and the leader/presence connections open it.
    let pool = db::build_pool(
        dsn,
        &PoolOptions {
            max_connections: 1,
            ..Default::default()
        },
    )
    .map_err(|e| e.to_string())?;
    let mut conn = db::pool::get(&pool).await.map_err(|e| e.to_string())?;
    assert!(ssl_of(&mut conn).await, "the pool connection is encrypted");
    drop(conn);
    // tokio-postgres, as the NOTIFY feeds open it.
    let (client, connection) = target.connect().await.map_err(|e| e.to_string())?;
    let driver = tokio::spawn(connection);
    let row = client
        .query_one(
            "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            &[],
        )
        .await
        .unwrap();
    assert!(
        row.get::<_, bool>(0),
        "the LISTEN-style connection is encrypted"
    );
    drop(client);
    let _ = driver.await;
    // sqlx, as the job queue opens it.
    let jobs = apalis_postgres::PgPool::connect(target.job_queue_url())
        .await
        .map_err(|e| format!("job queue: {e}"))?;
    jobs.close().await;
    Ok(())
}

async fn ssl_of(conn: &mut db::pool::PooledConn) -> bool {
    use diesel_async::RunQueryDsl;
    #[derive(diesel::QueryableByName)]
    struct Ssl {
        #[diesel(sql_type = diesel::sql_types::Bool)]
        ssl: bool,
    }
    diesel::sql_query("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
        .get_result::<Ssl>(conn)
        .await
        .unwrap()
        .ssl
}

#[tokio::test]
async fn verify_full_encrypts_the_pool_the_notify_feeds_and_the_job_queue_of_a_running_server() {
    let db = TestDb::migrated().await;
    let ca = pg::pki().ca();
    let dsn = db.app_dsn_via("localhost", &verify("verify-full", &ca));
    let node = start_nodes(1).await.remove(0);
    let cid = node.add(random_bytes(4096)).await;
    let app = app_on(&db, node.api(), vec![("postgres.dsn", json!(dsn))]).await;
    let (_, token) = org_token(&app, "acme").await;
    let id = post_pin(&app, &token, json!({ "cid": cid })).await;
    wait_status(&app, &token, &id, "pinned", Duration::from_secs(60)).await;

    // Every session the server holds in its database, by what it last ran.
    macro_rules! sessions_where {
        ($filter:literal) => {
            concat!(
                "SELECT count(*) AS n FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid) \
                 WHERE a.datname = current_database() AND a.pid <> pg_backend_pid() AND ",
                $filter
            )
        };
    }
    assert_eq!(
        db_count(&app, sessions_where!("NOT s.ssl"), &[]).await,
        0,
        "a plaintext session"
    );
    for (what, sql, pattern) in [
        (
            "the invalidation feed",
            sessions_where!("s.ssl AND a.query LIKE $1"),
            "LISTEN anchorage_invalidate%",
        ),
        (
            "the pin event feed",
            sessions_where!("s.ssl AND a.query LIKE $1"),
            "LISTEN anchorage_pin_events%",
        ),
        (
            "the job queue (sqlx)",
            sessions_where!("s.ssl AND a.query ILIKE $1"),
            "%apalis%",
        ),
    ] {
        assert!(
            db_count(&app, sql, &[pattern.into()]).await >= 1,
            "{what}: no encrypted session"
        );
    }
}

#[tokio::test]
async fn each_client_connects_with_verify_full_verify_ca_require_and_prefer() {
    let db = TestDb::migrated().await;
    let ca = pg::pki().ca();
    for dsn in [
        db.app_dsn_via("localhost", &verify("verify-full", &ca)),
        // verify-ca checks the chain only: the certificate does not name 127.0.0.1.
        db.app_dsn_via("127.0.0.1", &verify("verify-ca", &ca)),
        // require without a CA encrypts without checking (libpq's meaning).
        db.app_dsn_via("127.0.0.1", "sslmode=require"),
        // No sslmode is libpq's prefer: encrypted when the server offers it.
        db.app_dsn(),
    ] {
        connect_all_three(&dsn)
            .await
            .unwrap_or_else(|e| panic!("{dsn}: {e}"));
    }
}

#[tokio::test]
async fn sslmode_disable_stays_plaintext() {
    let db = TestDb::migrated().await;
    let pool = db::build_pool(
        &db.app_dsn_via("127.0.0.1", "sslmode=disable"),
        &PoolOptions::default(),
    )
    .unwrap();
    let mut conn = db::pool::get(&pool).await.unwrap();
    assert!(!ssl_of(&mut conn).await);
}

#[tokio::test]
async fn a_certificate_from_another_ca_or_for_another_name_is_refused_by_every_client() {
    let db = TestDb::migrated().await;
    let pki = pg::pki();
    let cases = [
        (
            db.app_dsn_via("localhost", &verify("verify-full", &pki.other_ca())),
            "UnknownIssuer",
        ),
        (
            db.app_dsn_via("127.0.0.1", &verify("verify-full", &pki.ca())),
            "not valid for name",
        ),
    ];
    for (dsn, why) in cases {
        // The pool (as `serve` opens it) reports the cause and the settings behind it.
        let pool = db::build_pool(&dsn, &PoolOptions::default()).unwrap();
        let e = db::pool::ping(&pool).await.unwrap_err().to_string();
        for part in [
            "error performing TLS handshake",
            "invalid peer certificate",
            why,
            "sslmode=verify-full",
            "sslrootcert=",
        ] {
            assert!(e.contains(part), "{dsn}: {part:?} missing from: {e}");
        }
        // The NOTIFY feeds' client and the job queue's refuse it too.
        let target = Target::parse(&dsn).unwrap();
        let e = target.connect().await.map(|_| ()).unwrap_err().to_string();
        assert!(e.contains(why), "{dsn}: {e}");
        let e = apalis_postgres::PgPool::connect(target.job_queue_url())
            .await
            .map(|_| ())
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("certificate") || e.contains("Certificate"),
            "{dsn}: job queue: {e}"
        );
    }
}

#[tokio::test]
async fn the_cli_names_the_refused_certificate() {
    let db = TestDb::migrated().await;
    let dsn = db.app_dsn_via("localhost", &verify("verify-full", &pg::pki().other_ca()));
    let out = tokio::task::spawn_blocking(move || {
        crate::harness::bin::anchorage()
            .args(["migrate", "status"])
            .env("ANCHORAGE_POSTGRES__DSN", &dsn)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("invalid peer certificate: UnknownIssuer")
            && stderr.contains("sslrootcert="),
        "{stderr}"
    );
}
