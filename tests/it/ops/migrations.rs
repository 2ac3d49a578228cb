//! Migrations: up, down, up again on an empty database; concurrent `up`s; the server
//! refusing a database that is behind; the diesel schema matching the database.

use anchorage::{
    db::{migrate, pool, schema::*},
    server,
};
use diesel::{sql_types::Bool, QueryDsl, QueryableByName};
use diesel_async::RunQueryDsl;
use tempfile::TempDir;

use crate::harness::{pg::APP_ROLE, sql, test_config, TestDb};

#[derive(QueryableByName)]
struct Exists {
    #[diesel(sql_type = Bool)]
    present: bool,
}

async fn table_exists(db: &TestDb, table: &str) -> bool {
    let pool = db.app_pool();
    let mut conn = pool::get(&pool).await.unwrap();
    sql::query(
        "SELECT to_regclass($1) IS NOT NULL AS present",
        &[table.into()],
    )
    .get_result::<Exists>(&mut conn)
    .await
    .unwrap()
    .present
}

#[tokio::test]
async fn up_down_up_on_an_empty_database() {
    let db = TestDb::empty().await;
    let total = migrate::embedded_versions().unwrap().len();

    let applied = migrate::up(&db.owner_dsn(), Some(APP_ROLE)).await.unwrap();
    assert_eq!(applied.len(), total);
    assert!(migrate::status(&db.owner_dsn())
        .await
        .unwrap()
        .iter()
        .all(|m| m.applied));
    assert!(table_exists(&db, "pins").await);
    assert!(
        table_exists(&db, "apalis.jobs").await,
        "the job queue schema is set up too"
    );
    migrate::ensure_current(&db.app_dsn()).await.unwrap();

    let one = migrate::down(&db.owner_dsn(), false).await.unwrap();
    assert_eq!(one.len(), 1);
    let status = migrate::status(&db.owner_dsn()).await.unwrap();
    assert!(
        !status.last().unwrap().applied && status[..total - 1].iter().all(|m| m.applied),
        "exactly the newest migration was reverted"
    );
    assert!(
        migrate::ensure_current(&db.app_dsn()).await.is_err(),
        "the server refuses a database one migration behind"
    );
    assert!(table_exists(&db, "pin_counts").await);
    assert!(table_exists(&db, "pins").await);

    let rest = migrate::down(&db.owner_dsn(), true).await.unwrap();
    assert_eq!(rest.len(), total - 1);
    assert!(!table_exists(&db, "orgs").await);
    assert!(migrate::status(&db.owner_dsn())
        .await
        .unwrap()
        .iter()
        .all(|m| !m.applied));

    let again = migrate::up(&db.owner_dsn(), Some(APP_ROLE)).await.unwrap();
    assert_eq!(again.len(), total);
    assert!(migrate::up(&db.owner_dsn(), Some(APP_ROLE))
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test]
async fn concurrent_ups_apply_each_migration_once() {
    let db = TestDb::empty().await;
    let dsn = db.owner_dsn();
    let runs =
        futures_util::future::join_all((0..3).map(|_| migrate::up(&dsn, Some(APP_ROLE)))).await;
    let mut applied: Vec<String> = Vec::new();
    for run in runs {
        applied.extend(run.expect("every concurrent `migrate up` succeeds"));
    }
    applied.sort();
    let mut expected: Vec<String> = migrate::embedded_versions()
        .unwrap()
        .into_iter()
        .map(|(v, _)| v)
        .collect();
    expected.sort();
    assert_eq!(
        applied, expected,
        "each migration applied exactly once across the runs"
    );
}

#[tokio::test]
async fn serve_refuses_a_database_behind_the_binary() {
    let db = TestDb::empty().await;
    let err = migrate::ensure_current(&db.app_dsn()).await.unwrap_err();
    assert!(err.to_string().contains("anchorage migrate up"), "{err}");

    let keys = TempDir::new().unwrap();
    let config = test_config(&db, "http://127.0.0.1:9", &keys);
    let err = server::build_state(config)
        .await
        .err()
        .expect("build_state must refuse");
    assert!(err.to_string().contains("anchorage migrate up"), "{err}");

    // One migration behind is refused too, naming what is missing.
    migrate::up(&db.owner_dsn(), Some(APP_ROLE)).await.unwrap();
    migrate::down(&db.owner_dsn(), false).await.unwrap();
    let err = migrate::ensure_current(&db.app_dsn()).await.unwrap_err();
    assert!(err.to_string().contains("1 pending"), "{err}");
}

#[tokio::test]
async fn schema_matches_database() {
    let db = TestDb::migrated().await;
    let pool = db.app_pool();
    let mut conn = pool::get(&pool).await.unwrap();
    // Selecting every column diesel knows fails if the database lacks one of them.
    macro_rules! check {
        ($($t:ident),*) => {$(
            $t::table.select($t::all_columns).limit(0).execute(&mut conn).await
                .unwrap_or_else(|e| panic!("{}: {e}", stringify!($t)));
        )*};
    }
    check!(
        orgs,
        users,
        memberships,
        api_tokens,
        token_denylist,
        pins,
        pin_counts,
        cid_refs,
        cid_origins,
        nodes,
        placements,
        leases,
        cluster_state,
        audit_log
    );
}
