//! The row-level security belt, exercised as the server's own non-superuser role: a
//! transaction scoped to one org cannot see, change or delete another org's rows even
//! with queries that forget their `WHERE org_id`, an unscoped transaction sees nothing,
//! and the role cannot switch the policies off.

use anchorage::{
    audit::{self, AuditEntry},
    auth::Role,
    db::{org_tx, pool, system_tx, DbPool},
    ids::OrgId,
    tenancy::{orgs, users},
    Error,
};
use diesel::QueryableByName;
use diesel_async::{AsyncConnection, RunQueryDsl};
use futures_util::FutureExt;

use crate::harness::{
    sql::{self, count, Count},
    TestDb,
};

/// A table holding tenant data, with its count statements written out in full (a table
/// name cannot be a bound parameter, and no statement is assembled at run time).
struct TenantTable {
    name: &'static str,
    /// Every row the transaction can see.
    count_all: &'static str,
    /// The rows of the org in `$1` (`orgs` is scoped by its own id).
    count_of_org: &'static str,
}

macro_rules! tenant_table {
    ($table:literal, $org_column:literal) => {
        TenantTable {
            name: $table,
            count_all: concat!("SELECT count(*) AS n FROM ", $table),
            count_of_org: concat!(
                "SELECT count(*) AS n FROM ",
                $table,
                " WHERE ",
                $org_column,
                " = $1"
            ),
        }
    };
}

/// Tables holding tenant data.
static TENANT_TABLES: [TenantTable; 7] = [
    tenant_table!("pin_search", "org_id"),
    tenant_table!("orgs", "id"),
    tenant_table!("memberships", "org_id"),
    tenant_table!("api_tokens", "org_id"),
    tenant_table!("pins", "org_id"),
    tenant_table!("pin_counts", "org_id"),
    tenant_table!("audit_log", "org_id"),
];

/// The tenant table `name`.
fn tenant_table(name: &str) -> &'static TenantTable {
    TENANT_TABLES.iter().find(|t| t.name == name).unwrap()
}

/// Two orgs with one row of their own in every tenant table.
async fn seed(pool: &DbPool) -> (OrgId, OrgId) {
    system_tx(pool, |conn| {
        async move {
            let mut ids = Vec::new();
            for name in ["alpha", "beta"] {
                let org = orgs::create(conn, name).await?;
                let user = users::ensure_by_email(conn, &format!("{name}@example.com"), false).await?;
                users::set_membership(conn, org.id, user, Role::Member).await?;
                sql::query(
                    "INSERT INTO api_tokens (jti, org_id, user_id, subject, label, role, expires_at) \
                     VALUES (gen_random_uuid(), $1, $2, 'someone', 'ci', 'member', now() + interval '1 day')",
                    &[org.id.uuid().into(), user.uuid().into()],
                )
                .execute(conn)
                .await?;
                sql::query(
                    "INSERT INTO pins (id, org_id, cid, requested_cid, name, created) \
                     VALUES (gen_random_uuid(), $1, 'bafy' || $2, 'bafy' || $2, $2 || '-pin', date_trunc('milliseconds', now()))",
                    &[org.id.uuid().into(), name.into()],
                )
                .execute(conn)
                .await?;
                audit::record(conn, AuditEntry::new("test", "org.create", name).org(org.id)).await?;
                ids.push(org.id);
            }
            // A cluster-wide audit row, visible to system transactions only.
            audit::record(conn, AuditEntry::new("test", "node.drain", "nod_x")).await?;
            Ok((ids[0], ids[1]))
        }
        .boxed()
    })
    .await
    .unwrap()
}

#[tokio::test]
async fn org_scope_sees_only_its_own_rows_even_without_where() {
    let db = TestDb::migrated().await;
    let pool = db.app_pool();
    let (alpha, beta) = seed(&pool).await;

    for (org, other) in [(alpha, beta), (beta, alpha)] {
        // What the org owns, as seen by a system transaction.
        let owned = system_tx(&pool, |conn| {
            async move {
                let mut owned = Vec::new();
                for table in &TENANT_TABLES {
                    owned.push(count(conn, table.count_of_org, &[org.uuid().into()]).await);
                }
                Ok(owned)
            }
            .boxed()
        })
        .await
        .unwrap();
        org_tx(&pool, org, |conn| {
            async move {
                for (table, owned) in TENANT_TABLES.iter().zip(owned) {
                    let n = count(conn, table.count_all, &[]).await;
                    let table = table.name;
                    assert!(owned > 0, "{table}: the seed gives every org rows");
                    assert_eq!(n, owned, "{table} as {org}: exactly its own rows");
                }
                let other_rows = count(
                    conn,
                    "SELECT count(*) AS n FROM pins WHERE org_id = $1",
                    &[other.uuid().into()],
                )
                .await;
                assert_eq!(other_rows, 0, "naming the other org finds nothing");
                Ok(())
            }
            .boxed()
        })
        .await
        .unwrap();
    }

    // System scope sees everything, including the cluster-wide audit row.
    system_tx(&pool, |conn| {
        async move {
            assert_eq!(count(conn, "SELECT count(*) AS n FROM pins", &[]).await, 2);
            assert_eq!(
                count(conn, "SELECT count(*) AS n FROM audit_log", &[]).await,
                3
            );
            Ok(())
        }
        .boxed()
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn org_scope_cannot_update_or_delete_another_orgs_rows() {
    let db = TestDb::migrated().await;
    let pool = db.app_pool();
    let (alpha, beta) = seed(&pool).await;

    org_tx(&pool, alpha, |conn| {
        async move {
            // No WHERE at all: only alpha's rows may be touched.
            let updated = diesel::sql_query("UPDATE pins SET name = 'renamed'")
                .execute(conn)
                .await?;
            assert_eq!(updated, 1);
            let deleted = diesel::sql_query("DELETE FROM memberships")
                .execute(conn)
                .await?;
            assert_eq!(deleted, 1);
            let deleted = diesel::sql_query("DELETE FROM api_tokens")
                .execute(conn)
                .await?;
            assert_eq!(deleted, 1);
            let deleted = diesel::sql_query("DELETE FROM audit_log")
                .execute(conn)
                .await?;
            assert_eq!(deleted, 1);
            let renamed = diesel::sql_query("UPDATE orgs SET name = 'hijacked'")
                .execute(conn)
                .await?;
            assert_eq!(renamed, 1);
            Ok(())
        }
        .boxed()
    })
    .await
    .unwrap();

    system_tx(&pool, |conn| {
        async move {
            let beta_id = beta.uuid();
            let of_beta = [beta_id.into()];
            let q = |t: &str| tenant_table(t).count_of_org;
            assert_eq!(count(conn, q("memberships"), &of_beta).await, 1);
            assert_eq!(count(conn, q("api_tokens"), &of_beta).await, 1);
            assert_eq!(count(conn, q("audit_log"), &of_beta).await, 1);
            assert_eq!(
                count(
                    conn,
                    "SELECT count(*) AS n FROM pins WHERE org_id = $1 AND name = 'beta-pin'",
                    &[beta_id.into()]
                )
                .await,
                1,
                "beta's pin kept its name"
            );
            assert_eq!(
                count(
                    conn,
                    "SELECT count(*) AS n FROM orgs WHERE name = 'beta'",
                    &[]
                )
                .await,
                1
            );
            assert_eq!(
                count(
                    conn,
                    "SELECT count(*) AS n FROM audit_log WHERE org_id IS NULL",
                    &[]
                )
                .await,
                1
            );
            Ok(())
        }
        .boxed()
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn org_scope_cannot_write_rows_for_another_org() {
    let db = TestDb::migrated().await;
    let pool = db.app_pool();
    let (alpha, beta) = seed(&pool).await;

    let insert = sql::query(
        "INSERT INTO pins (id, org_id, cid, requested_cid, created) VALUES (gen_random_uuid(), $1, 'bafyx', 'bafyx', date_trunc('milliseconds', now()))",
        &[beta.uuid().into()],
    );
    let err = org_tx(&pool, alpha, |conn| {
        async move {
            insert.execute(conn).await?;
            Ok(())
        }
        .boxed()
    })
    .await
    .unwrap_err();
    assert!(err.to_string().contains("row-level security"), "{err}");

    // Moving one of our rows to the other org is refused too.
    let update = sql::query("UPDATE pins SET org_id = $1", &[beta.uuid().into()]);
    let err = org_tx(&pool, alpha, |conn| {
        async move {
            update.execute(conn).await?;
            Ok(())
        }
        .boxed()
    })
    .await
    .unwrap_err();
    assert!(err.to_string().contains("row-level security"), "{err}");
}

#[tokio::test]
async fn unscoped_transactions_see_no_tenant_rows() {
    let db = TestDb::migrated().await;
    let pool = db.app_pool();
    seed(&pool).await;

    let mut conn = pool::get(&pool).await.unwrap();
    conn.transaction::<_, Error, _>(async |conn| {
        for table in &TENANT_TABLES {
            assert_eq!(count(conn, table.count_all, &[]).await, 0, "{}", table.name);
        }
        // A garbage or empty org setting admits nothing either.
        diesel::sql_query("SELECT set_config('anchorage.org_id', '', true)")
            .execute(conn)
            .await?;
        assert_eq!(count(conn, "SELECT count(*) AS n FROM pins", &[]).await, 0);
        Ok(())
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn the_server_role_cannot_turn_row_security_off() {
    let db = TestDb::migrated().await;
    let pool = db.app_pool();
    seed(&pool).await;
    let mut conn = pool::get(&pool).await.unwrap();

    #[derive(QueryableByName)]
    struct RoleFlags {
        #[diesel(sql_type = diesel::sql_types::Bool)]
        rolsuper: bool,
        #[diesel(sql_type = diesel::sql_types::Bool)]
        rolbypassrls: bool,
    }
    let flags: RoleFlags = diesel::sql_query(
        "SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user",
    )
    .get_result(&mut conn)
    .await
    .unwrap();
    assert!(!flags.rolsuper && !flags.rolbypassrls);

    // row_security = off makes any query that RLS would filter fail, not bypass it.
    diesel::sql_query("SET row_security = off")
        .execute(&mut conn)
        .await
        .unwrap();
    let err = diesel::sql_query("SELECT count(*) AS n FROM pins")
        .get_result::<Count>(&mut conn)
        .await
        .err()
        .expect("querying pins with row_security off must fail");
    assert!(err.to_string().contains("row-level security"), "{err}");
    diesel::sql_query("RESET row_security")
        .execute(&mut conn)
        .await
        .unwrap();

    for table in TENANT_TABLES.iter().map(|t| t.name) {
        // DDL takes no parameters; `table` is one of this file's constant names.
        for sql in [
            format!("ALTER TABLE {table} DISABLE ROW LEVEL SECURITY"),
            format!("ALTER TABLE {table} NO FORCE ROW LEVEL SECURITY"),
            format!("ALTER POLICY {table}_tenant ON {table} USING (true)"),
            format!("DROP POLICY {table}_tenant ON {table}"),
            format!("CREATE POLICY sneaky ON {table} USING (true)"),
        ] {
            let err = diesel::sql_query(&sql)
                .execute(&mut conn)
                .await
                .err()
                .unwrap_or_else(|| panic!("{sql} must fail"));
            assert!(err.to_string().contains("must be owner"), "{sql}: {err}");
        }
    }
}

#[tokio::test]
async fn a_transaction_abandoned_half_way_never_reaches_the_next_user() {
    let db = TestDb::migrated().await;
    // One connection, so the next transaction would get the same one back.
    let pool = anchorage::db::build_pool(
        &db.app_dsn(),
        &anchorage::db::PoolOptions {
            max_connections: 1,
            ..Default::default()
        },
    )
    .unwrap();
    let (alpha, _) = seed(&pool).await;

    // A request that is dropped mid-transaction (its client went away).
    let abandoned = org_tx(&pool, alpha, |conn| {
        async move {
            diesel::sql_query("UPDATE pins SET name = 'half-written'")
                .execute(conn)
                .await?;
            futures_util::future::pending::<()>().await;
            Ok(())
        }
        .boxed()
    });
    assert!(
        tokio::time::timeout(std::time::Duration::from_millis(300), abandoned)
            .await
            .is_err()
    );

    // The next user sees neither its write nor its scope.
    let mut conn = pool::get(&pool).await.unwrap();
    #[derive(QueryableByName)]
    struct Setting {
        #[diesel(sql_type = diesel::sql_types::Text)]
        v: String,
    }
    let s: Setting =
        diesel::sql_query("SELECT COALESCE(current_setting('anchorage.org_id', true), '') AS v")
            .get_result(&mut conn)
            .await
            .unwrap();
    assert_eq!(s.v, "", "no org scope leaks to the next user");
    assert_eq!(
        count(&mut conn, "SELECT count(*) AS n FROM pins", &[]).await,
        0,
        "and no rows are visible"
    );
    drop(conn);
    system_tx(&pool, |conn| {
        async move {
            assert_eq!(
                count(
                    conn,
                    "SELECT count(*) AS n FROM pins WHERE name = 'half-written'",
                    &[]
                )
                .await,
                0
            );
            Ok(())
        }
        .boxed()
    })
    .await
    .unwrap();
}

/// `org_read` pipelines BEGIN, the scope, the reads and COMMIT in one round trip. On one
/// connection, alternating orgs, starting on a fresh connection (every statement is
/// parsed on first use), each read sees exactly its own org's rows; the transaction is
/// read-only; and the scope never outlives it.
#[tokio::test]
async fn pipelined_reads_see_only_their_own_org_and_leave_nothing_behind() {
    let db = TestDb::migrated().await;
    let pool = anchorage::db::build_pool(
        &db.app_dsn(),
        &anchorage::db::PoolOptions {
            max_connections: 1,
            ..Default::default()
        },
    )
    .unwrap();
    let (alpha, beta) = seed(&pool).await;
    let statement = |table: &str| {
        let mut st = anchorage::db::sql::Statement::new();
        st.sql(tenant_table(table).count_all);
        st
    };
    for org in [alpha, beta, alpha, beta] {
        let (pins, orgs, ids) = anchorage::db::org_read(&pool, org, |conn| {
            async move {
                let (pins, orgs, ids) = futures_util::try_join!(
                    statement("pins").get_result::<Count>(&mut &*conn),
                    statement("orgs").get_result::<Count>(&mut &*conn),
                    diesel::sql_query("SELECT count(*) AS n FROM pins WHERE org_id = $1")
                        .bind::<diesel::sql_types::Uuid, _>(org.uuid())
                        .get_result::<Count>(&mut &*conn),
                )?;
                Ok((pins.n, orgs.n, ids.n))
            }
            .boxed()
        })
        .await
        .unwrap();
        assert_eq!((pins, orgs, ids), (1, 1, 1), "{org} sees its own rows only");
    }

    let write = anchorage::db::org_read(&pool, alpha, |conn| {
        async move {
            diesel::sql_query("UPDATE pins SET name = 'changed'")
                .execute(&mut &*conn)
                .await?;
            Ok(())
        }
        .boxed()
    })
    .await;
    assert!(write.is_err(), "a read transaction cannot write");

    let mut conn = pool::get(&pool).await.unwrap();
    assert_eq!(
        count(&mut conn, "SELECT count(*) AS n FROM pins", &[]).await,
        0,
        "no scope outlives the read"
    );
    drop(conn);
    let changed = system_tx(&pool, |conn| {
        async move {
            Ok(count(
                conn,
                "SELECT count(*) AS n FROM pins WHERE name = 'changed'",
                &[],
            )
            .await)
        }
        .boxed()
    })
    .await
    .unwrap();
    assert_eq!(changed, 0, "the refused write left nothing");
}
