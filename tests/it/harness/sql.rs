//! SQL in tests: the one `Count` row, and statements whose values are bound parameters
//! (`$1`, `$2`, …). Statement text is `&'static str`, so a value can never be pasted
//! into it with `format!`.

use anchorage::db::{system_tx, DbPool};
use diesel::{
    pg::Pg,
    query_builder::{BoxedSqlQuery, SqlQuery},
    sql_types::{BigInt, Text, Uuid as SqlUuid},
    QueryableByName,
};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use futures_util::FutureExt;

use super::TestApp;

/// The row of a statement that selects one bigint named `n` (`SELECT count(*) AS n …`).
#[derive(QueryableByName)]
pub struct Count {
    #[diesel(sql_type = BigInt)]
    pub n: i64,
}

/// A value for one of a statement's `$n`.
#[derive(Clone, Debug)]
pub enum Param {
    Text(String),
    Uuid(uuid::Uuid),
    BigInt(i64),
}

impl From<&str> for Param {
    fn from(v: &str) -> Self {
        Param::Text(v.to_string())
    }
}

impl From<String> for Param {
    fn from(v: String) -> Self {
        Param::Text(v)
    }
}

impl From<&String> for Param {
    fn from(v: &String) -> Self {
        Param::Text(v.clone())
    }
}

impl From<uuid::Uuid> for Param {
    fn from(v: uuid::Uuid) -> Self {
        Param::Uuid(v)
    }
}

impl From<i64> for Param {
    fn from(v: i64) -> Self {
        Param::BigInt(v)
    }
}

/// `sql` with `params` bound to `$1`, `$2`, … in order.
pub fn query(sql: &'static str, params: &[Param]) -> BoxedSqlQuery<'static, Pg, SqlQuery> {
    params
        .iter()
        .cloned()
        .fold(diesel::sql_query(sql).into_boxed(), |q, p| match p {
            Param::Text(v) => q.bind::<Text, _>(v),
            Param::Uuid(v) => q.bind::<SqlUuid, _>(v),
            Param::BigInt(v) => q.bind::<BigInt, _>(v),
        })
}

/// Runs `sql` (one bigint column `n`) on `conn`, in whatever scope its transaction has.
pub async fn count(conn: &mut AsyncPgConnection, sql: &'static str, params: &[Param]) -> i64 {
    query(sql, params)
        .get_result::<Count>(conn)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .n
}

/// `count` in a system transaction on `pool`: every org's rows.
pub async fn count_in(pool: &DbPool, sql: &'static str, params: &[Param]) -> i64 {
    let q = query(sql, params);
    system_tx(pool, |conn| {
        async move { Ok(q.get_result::<Count>(conn).await?.n) }.boxed()
    })
    .await
    .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

/// `count_in` on the app's pool.
pub async fn db_count(app: &TestApp, sql: &'static str, params: &[Param]) -> i64 {
    count_in(&app.state.db, sql, params).await
}

/// Runs `sql` in a system transaction on `pool`; the number of rows it affected.
pub async fn exec_in(pool: &DbPool, sql: &'static str, params: &[Param]) -> usize {
    let q = query(sql, params);
    system_tx(pool, |conn| {
        async move { Ok(q.execute(conn).await?) }.boxed()
    })
    .await
    .unwrap_or_else(|e| panic!("{sql}: {e}"))
}
