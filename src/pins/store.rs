//! Queries on `pins`, `cid_refs` and `cid_origins`. Every function runs inside the
//! caller's transaction (an `org_tx` for request paths) and also filters by org itself.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use diesel::{
    pg::Pg,
    prelude::*,
    sql_types::{Array, BigInt, Jsonb, Nullable, Text, Timestamptz, Uuid as SqlUuid},
};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use super::{
    cid::Cid,
    filter::{ListQuery, NameMatch},
    model::{PinRecord, PinSpec, PinState},
};
use crate::{
    db::schema::{cid_origins, cid_refs, pins},
    error::{Error, Result},
    ids::{OrgId, RequestId},
};

/// How often an insert retries when another request took the same `created` millisecond.
const CREATED_RETRIES: usize = 100;

#[derive(Queryable, Selectable, QueryableByName)]
#[diesel(table_name = pins)]
struct PinRow {
    id: Uuid,
    cid: String,
    requested_cid: String,
    name: Option<String>,
    origins: Vec<String>,
    meta: serde_json::Value,
    status: String,
    info: serde_json::Value,
    created: DateTime<Utc>,
}

impl PinRow {
    fn into_record(self) -> Result<PinRecord> {
        Ok(PinRecord {
            id: RequestId::from_uuid(self.id),
            cid: Cid::from_stored(self.cid, self.requested_cid),
            name: self.name,
            origins: self.origins,
            meta: string_map(self.meta),
            status: self.status.parse().map_err(|_| {
                Error::Internal(format!("pin {} has status '{}'", self.id, self.status))
            })?,
            info: string_map(self.info),
            created: self.created,
        })
    }
}

fn string_map(value: serde_json::Value) -> BTreeMap<String, String> {
    match value {
        serde_json::Value::Object(map) => map
            .into_iter()
            .filter_map(|(k, v)| match v {
                serde_json::Value::String(s) => Some((k, s)),
                _ => None,
            })
            .collect(),
        _ => BTreeMap::new(),
    }
}

/// Inserts a pin request. `created` is the current millisecond, or one past the org's
/// newest pin when that is later, so it is unique within the org and strictly increasing;
/// a concurrent insert that takes the same millisecond makes us retry.
pub async fn insert(
    conn: &mut AsyncPgConnection,
    org: OrgId,
    spec: &PinSpec,
    status: PinState,
    info: &BTreeMap<String, String>,
) -> Result<PinRecord> {
    let id = RequestId::new();
    let meta = serde_json::to_value(&spec.meta).map_err(|e| Error::Internal(e.to_string()))?;
    let info = serde_json::to_value(info).map_err(|e| Error::Internal(e.to_string()))?;
    for _ in 0..CREATED_RETRIES {
        let row: Option<PinRow> = diesel::sql_query(
            "INSERT INTO pins (id, org_id, cid, requested_cid, name, origins, meta, status, info, created) \
             SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, \
                    GREATEST(date_trunc('milliseconds', clock_timestamp()), \
                             (SELECT max(created) + interval '1 millisecond' FROM pins WHERE org_id = $2)) \
             ON CONFLICT (org_id, created) DO NOTHING \
             RETURNING id, cid, requested_cid, name, origins, meta, status, info, created",
        )
        .bind::<SqlUuid, _>(id.uuid())
        .bind::<SqlUuid, _>(org.uuid())
        .bind::<Text, _>(spec.cid.canonical())
        .bind::<Text, _>(spec.cid.given())
        .bind::<Nullable<Text>, _>(spec.name.as_deref())
        .bind::<Array<Text>, _>(&spec.origins)
        .bind::<Jsonb, _>(&meta)
        .bind::<Text, _>(status.as_str())
        .bind::<Jsonb, _>(&info)
        .get_result(conn)
        .await
        .optional()?;
        if let Some(row) = row {
            return row.into_record();
        }
    }
    Err(Error::Unavailable(
        "too many concurrent pin requests; retry shortly".into(),
    ))
}

/// One pin request of `org`.
pub async fn get(
    conn: &mut AsyncPgConnection,
    org: OrgId,
    id: RequestId,
) -> Result<Option<PinRecord>> {
    pins::table
        .filter(pins::org_id.eq(org.uuid()))
        .filter(pins::id.eq(id.uuid()))
        .select(PinRow::as_select())
        .first(conn)
        .await
        .optional()?
        .map(PinRow::into_record)
        .transpose()
}

/// Deletes a pin request, returning its canonical CID if it existed.
pub async fn delete(
    conn: &mut AsyncPgConnection,
    org: OrgId,
    id: RequestId,
) -> Result<Option<String>> {
    Ok(diesel::delete(
        pins::table
            .filter(pins::org_id.eq(org.uuid()))
            .filter(pins::id.eq(id.uuid())),
    )
    .returning(pins::cid)
    .get_result(conn)
    .await
    .optional()?)
}

/// The matching pins of `org`, newest first, and how many match in all.
pub async fn list(
    conn: &mut AsyncPgConnection,
    org: OrgId,
    q: &ListQuery,
) -> Result<(i64, Vec<PinRecord>)> {
    let count: CountRow = count_statement(org, q).query("").get_result(conn).await?;
    let rows: Vec<PinRow> = page_statement(org, q).query("").load(conn).await?;
    let records = rows
        .into_iter()
        .map(PinRow::into_record)
        .collect::<Result<Vec<_>>>()?;
    Ok((count.n, records))
}

/// `EXPLAIN (FORMAT JSON)` of the page and count statements [`list`] runs for `q`, so
/// tests can check on a large table that both stay index-backed.
pub async fn explain_list(
    conn: &mut AsyncPgConnection,
    org: OrgId,
    q: &ListQuery,
) -> Result<(String, String)> {
    #[derive(QueryableByName)]
    struct Plan {
        #[diesel(sql_type = Text, column_name = "QUERY PLAN")]
        plan: String,
    }
    let prefix = "EXPLAIN (FORMAT JSON) ";
    let page: Plan = page_statement(org, q)
        .query(prefix)
        .get_result(conn)
        .await?;
    let count: Plan = count_statement(org, q)
        .query(prefix)
        .get_result(conn)
        .await?;
    Ok((page.plan, count.plan))
}

#[derive(QueryableByName)]
struct CountRow {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

/// One bind parameter of a hand-built statement.
enum Bind {
    Uuid(Uuid),
    Text(String),
    Texts(Vec<String>),
    Time(DateTime<Utc>),
    Json(serde_json::Value),
    Int(i64),
}

/// SQL text with `$n` placeholders and their values. Listing is built by hand so the
/// very statement the API runs can also be EXPLAINed.
struct Statement {
    sql: String,
    binds: Vec<Bind>,
}

type BoxedSql = diesel::query_builder::BoxedSqlQuery<'static, Pg, diesel::query_builder::SqlQuery>;

impl Statement {
    fn new() -> Self {
        Self {
            sql: String::new(),
            binds: Vec::new(),
        }
    }

    /// Adds a bind and returns its placeholder.
    fn bind(&mut self, value: Bind) -> String {
        self.binds.push(value);
        format!("${}", self.binds.len())
    }

    fn query(self, prefix: &str) -> BoxedSql {
        let mut query = diesel::sql_query(format!("{prefix}{}", self.sql)).into_boxed();
        for bind in self.binds {
            query = match bind {
                Bind::Uuid(v) => query.bind::<SqlUuid, _>(v),
                Bind::Text(v) => query.bind::<Text, _>(v),
                Bind::Texts(v) => query.bind::<Array<Text>, _>(v),
                Bind::Time(v) => query.bind::<Timestamptz, _>(v),
                Bind::Json(v) => query.bind::<Jsonb, _>(v),
                Bind::Int(v) => query.bind::<BigInt, _>(v),
            };
        }
        query
    }
}

/// `WHERE …` for a listing. Every condition has an index to use: (org_id, created),
/// (org_id, status, created), (cid), and `pin_search` for names and meta. The org is
/// always `$1`.
fn where_clause(org: OrgId, q: &ListQuery, st: &mut Statement) -> String {
    let mut conditions = vec![format!("org_id = {}", st.bind(Bind::Uuid(org.uuid())))];
    if !q.cids.is_empty() {
        conditions.push(format!(
            "cid = ANY({})",
            st.bind(Bind::Texts(q.cids.clone()))
        ));
    }
    if let Some(name) = &q.name {
        conditions.push(name_condition(name, q.name_match, st));
    }
    match q.statuses.as_slice() {
        // One status: plain equality, so (org_id, status, created) yields rows in order.
        [one] => conditions.push(format!(
            "status = {}",
            st.bind(Bind::Text(one.as_str().to_string()))
        )),
        some if some.len() < PinState::ALL.len() => conditions.push(format!(
            "status = ANY({})",
            st.bind(Bind::Texts(status_texts(q)))
        )),
        _ => {}
    }
    if let Some(before) = q.before {
        conditions.push(format!("created < {}", st.bind(Bind::Time(before))));
    }
    if let Some(after) = q.after {
        conditions.push(format!("created > {}", st.bind(Bind::Time(after))));
    }
    if !q.meta.is_empty() {
        let meta = st.bind(Bind::Json(
            serde_json::to_value(&q.meta).unwrap_or_default(),
        ));
        conditions.push(format!(
            "{} AND meta @> {meta}",
            all_terms(&format!("anchorage_meta_terms({meta})"))
        ));
    }
    conditions.join(" AND ")
}

/// A name condition: candidates from `pin_search` by term (an index lookup even under
/// row-level security), rechecked on the pin row.
fn name_condition(name: &str, mode: NameMatch, st: &mut Statement) -> String {
    match mode {
        NameMatch::Exact => {
            let n = st.bind(Bind::Text(name.to_string()));
            format!(
                "{} AND name = {n}",
                one_term(&format!("anchorage_exact_term({n})"))
            )
        }
        NameMatch::Iexact => {
            let n = st.bind(Bind::Text(name.to_string()));
            format!(
                "{} AND lower(name) = lower({n})",
                one_term(&format!("anchorage_iexact_term({n})"))
            )
        }
        NameMatch::Partial | NameMatch::Ipartial => {
            let op = if mode == NameMatch::Partial {
                "LIKE"
            } else {
                "ILIKE"
            };
            let pattern = st.bind(Bind::Text(like_pattern(name)));
            if name.chars().count() < 3 {
                // No 3-gram to look up: the recheck alone, over the org's pins.
                return format!("name {op} {pattern}");
            }
            let n = st.bind(Bind::Text(name.to_string()));
            format!(
                "{} AND name {op} {pattern}",
                all_terms(&format!("anchorage_name_terms({n})"))
            )
        }
    }
}

/// Pins having the search term `term` (SQL expression).
fn one_term(term: &str) -> String {
    format!("id IN (SELECT pin_id FROM pin_search WHERE org_id = $1 AND term = {term})")
}

/// Pins having every search term of `terms` (SQL array expression).
fn all_terms(terms: &str) -> String {
    format!(
        "id IN (SELECT pin_id FROM pin_search WHERE org_id = $1 AND term = ANY({terms}) \
         GROUP BY pin_id HAVING count(*) = cardinality({terms}))"
    )
}

fn status_texts(q: &ListQuery) -> Vec<String> {
    q.statuses.iter().map(|s| s.as_str().to_string()).collect()
}

/// The page, newest first. `created` is unique within an org, so it alone is a total
/// order and the keyset for `before`/`after` paging.
fn page_statement(org: OrgId, q: &ListQuery) -> Statement {
    let mut st = Statement::new();
    let filter = where_clause(org, q, &mut st);
    let limit = st.bind(Bind::Int(q.limit));
    st.sql = format!(
        "SELECT id, cid, requested_cid, name, origins, meta, status, info, created FROM pins \
         WHERE {filter} ORDER BY created DESC LIMIT {limit}"
    );
    st
}

/// The total: from the per-status counters when only statuses filter (what
/// `ipfs pin remote service ls --stat` asks, once per status), else counted through
/// the index the filter uses.
fn count_statement(org: OrgId, q: &ListQuery) -> Statement {
    let mut st = Statement::new();
    let only_status = q.cids.is_empty()
        && q.name.is_none()
        && q.meta.is_empty()
        && q.before.is_none()
        && q.after.is_none();
    if only_status {
        let org_p = st.bind(Bind::Uuid(org.uuid()));
        let statuses = st.bind(Bind::Texts(status_texts(q)));
        st.sql = format!(
            "SELECT COALESCE(sum(n), 0)::bigint AS n FROM pin_counts \
             WHERE org_id = {org_p} AND status = ANY({statuses})"
        );
    } else {
        let filter = where_clause(org, q, &mut st);
        st.sql = format!("SELECT count(*) AS n FROM pins WHERE {filter}");
    }
    st
}

/// `text` with LIKE's wildcards escaped, so a search for `50%` means the text.
fn like_escape(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}

/// `%text%`, escaped.
fn like_pattern(text: &str) -> String {
    format!("%{}%", like_escape(text))
}

/// The canonical CID of one pin request of `org`, without locking it.
pub async fn cid_of(
    conn: &mut AsyncPgConnection,
    org: OrgId,
    id: RequestId,
) -> Result<Option<String>> {
    Ok(pins::table
        .filter(pins::org_id.eq(org.uuid()))
        .filter(pins::id.eq(id.uuid()))
        .select(pins::cid)
        .first(conn)
        .await
        .optional()?)
}

/// Adds `delta` to the number of live pin requests wanting `cid` (across all orgs) and
/// returns the new count. The upsert locks the refcount row for the rest of the
/// transaction: every path that changes a CID's references or placements takes this lock
/// first, then placements, then pin rows — one order everywhere, so concurrent requests
/// and jobs never deadlock.
pub async fn add_ref(conn: &mut AsyncPgConnection, cid: &str, delta: i32) -> Result<i32> {
    Ok(diesel::insert_into(cid_refs::table)
        .values((cid_refs::cid.eq(cid), cid_refs::refcount.eq(delta.max(0))))
        .on_conflict(cid_refs::cid)
        .do_update()
        .set((
            cid_refs::refcount.eq(cid_refs::refcount + delta),
            cid_refs::updated_at.eq(diesel::dsl::now),
        ))
        .returning(cid_refs::refcount)
        .get_result(conn)
        .await?)
}

/// Remembers where `cid` may be fetched from.
pub async fn add_origins(
    conn: &mut AsyncPgConnection,
    cid: &str,
    origins: &[String],
) -> Result<()> {
    if origins.is_empty() {
        return Ok(());
    }
    let rows: Vec<_> = origins
        .iter()
        .map(|o| (cid_origins::cid.eq(cid), cid_origins::origin.eq(o)))
        .collect();
    diesel::insert_into(cid_origins::table)
        .values(rows)
        .on_conflict_do_nothing()
        .execute(conn)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::like_pattern;

    #[test]
    fn like_wildcards_are_escaped() {
        assert_eq!(like_pattern("50%_off\\"), "%50\\%\\_off\\\\%");
    }
}
