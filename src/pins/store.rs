//! Queries on `pins`, `cid_refs` and `cid_origins`. Every function runs inside the
//! caller's transaction (an `org_tx` for request paths) and also filters by org itself.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use diesel::{
    prelude::*,
    sql_types::{BigInt, Text},
};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use super::{
    cid::Cid,
    filter::{ListQuery, NameMatch},
    model::{PinRecord, PinSpec, PinState},
};
use crate::{
    db::{
        schema::{cid_origins, cid_refs, pins},
        sql::{Bind, Statement},
    },
    error::{Error, Result},
    ids::{OrgId, RequestId},
};

/// How often an insert retries when another request took the same `created` millisecond.
const CREATED_RETRIES: usize = 100;

/// The columns every pin query returns: the row and the nodes holding its CID.
const PIN_COLUMNS: &str = "id, cid, requested_cid, name, origins, meta, status, info, created, \
     ARRAY(SELECT node_id FROM placements pl WHERE pl.cid = pins.cid \
           AND pl.state <> 'unpinning' AND pl.replaced_at IS NULL ORDER BY node_id) AS holders";

#[derive(QueryableByName)]
struct PinRow {
    #[diesel(sql_type = diesel::sql_types::Uuid)]
    id: Uuid,
    #[diesel(sql_type = Text)]
    cid: String,
    #[diesel(sql_type = Text)]
    requested_cid: String,
    #[diesel(sql_type = diesel::sql_types::Nullable<Text>)]
    name: Option<String>,
    #[diesel(sql_type = diesel::sql_types::Array<Text>)]
    origins: Vec<String>,
    #[diesel(sql_type = diesel::sql_types::Jsonb)]
    meta: serde_json::Value,
    #[diesel(sql_type = Text)]
    status: PinState,
    #[diesel(sql_type = diesel::sql_types::Jsonb)]
    info: serde_json::Value,
    #[diesel(sql_type = diesel::sql_types::Timestamptz)]
    created: DateTime<Utc>,
    #[diesel(sql_type = diesel::sql_types::Array<diesel::sql_types::Uuid>)]
    holders: Vec<Uuid>,
}

impl PinRow {
    fn into_record(self) -> Result<PinRecord> {
        Ok(PinRecord {
            id: RequestId::from_uuid(self.id),
            cid: Cid::from_stored(self.cid, self.requested_cid),
            name: self.name,
            origins: self.origins,
            meta: string_map(self.meta),
            status: self.status,
            info: string_map(self.info),
            created: self.created,
            holders: self.holders,
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
        let mut st = Statement::new();
        st.sql("INSERT INTO pins (id, org_id, cid, requested_cid, name, origins, meta, status, info, created) SELECT ")
            .bind(Bind::Uuid(id.uuid()))
            .sql(", ")
            .bind(Bind::Uuid(org.uuid()))
            .sql(", ")
            .bind(Bind::Text(spec.cid.canonical().to_string()))
            .sql(", ")
            .bind(Bind::Text(spec.cid.given().to_string()))
            .sql(", ")
            .bind(Bind::OptText(spec.name.clone()))
            .sql(", ")
            .bind(Bind::Texts(spec.origins.clone()))
            .sql(", ")
            .bind(Bind::Json(meta.clone()))
            .sql(", ")
            .bind(Bind::Text(status.as_str().to_string()))
            .sql(", ")
            .bind(Bind::Json(info.clone()))
            .sql(
                ", GREATEST(date_trunc('milliseconds', clock_timestamp()), \
                 (SELECT max(created) + interval '1 millisecond' FROM pins WHERE org_id = ",
            )
            .bind(Bind::Uuid(org.uuid()))
            .sql(
                ")) ON CONFLICT (org_id, created) DO NOTHING \
                 RETURNING ",
            )
            .sql(PIN_COLUMNS);
        let row: Option<PinRow> = st.get_result(conn).await.optional()?;
        if let Some(row) = row {
            return row.into_record();
        }
    }
    Err(Error::Unavailable(
        "too many concurrent pin requests; retry shortly".into(),
    ))
}

/// One pin request of `org`.
pub async fn get(conn: &AsyncPgConnection, org: OrgId, id: RequestId) -> Result<Option<PinRecord>> {
    let mut st = Statement::new();
    st.sql(&format!("SELECT {PIN_COLUMNS} FROM pins WHERE org_id = "))
        .bind(Bind::Uuid(org.uuid()))
        .sql(" AND id = ")
        .bind(Bind::Uuid(id.uuid()));
    st.get_result::<PinRow>(&mut &*conn)
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

/// The matching pins of `org`, newest first, and how many match in all. Both statements
/// are sent at once (pipelined) so a read transaction costs one round trip; see
/// [`crate::db::org_read`].
pub async fn list(
    conn: &AsyncPgConnection,
    org: OrgId,
    q: &ListQuery,
) -> Result<(i64, Vec<PinRecord>)> {
    let count_st = count_statement(org, q);
    let page_st = page_statement(org, q);
    let (count, rows) = futures_util::try_join!(
        count_st.get_result::<CountRow>(&mut &*conn),
        page_st.load::<PinRow>(&mut &*conn),
    )?;
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
        .prefixed(prefix)
        .get_result(conn)
        .await?;
    let count: Plan = count_statement(org, q)
        .prefixed(prefix)
        .get_result(conn)
        .await?;
    Ok((page.plan, count.plan))
}

#[derive(QueryableByName)]
struct CountRow {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

/// Appends the `WHERE` conditions of a listing. Every condition has an index to use:
/// (org_id, created), (org_id, status, created), (cid), and `pin_search` for names and
/// meta.
fn push_filter(st: &mut Statement, org: OrgId, q: &ListQuery) {
    st.sql("org_id = ").bind(Bind::Uuid(org.uuid()));
    if !q.cids.is_empty() {
        st.sql(" AND cid = ANY(")
            .bind(Bind::Texts(q.cids.clone()))
            .sql(")");
    }
    if let Some(name) = &q.name {
        st.sql(" AND ");
        push_name_condition(st, org, name, q.name_match);
    }
    match q.statuses.as_slice() {
        // One status: plain equality, so (org_id, status, created) yields rows in order.
        [one] => {
            st.sql(" AND status = ")
                .bind(Bind::Text(one.as_str().to_string()));
        }
        some if some.len() < PinState::ALL.len() => {
            st.sql(" AND status = ANY(")
                .bind(Bind::Texts(status_texts(q)))
                .sql(")");
        }
        _ => {}
    }
    if let Some(before) = q.before {
        st.sql(" AND created < ").bind(Bind::Time(before));
    }
    if let Some(after) = q.after {
        st.sql(" AND created > ").bind(Bind::Time(after));
    }
    if !q.meta.is_empty() {
        let meta = Bind::Json(serde_json::to_value(&q.meta).unwrap_or_default());
        st.sql(" AND ");
        push_all_terms(st, org, "anchorage_meta_terms", meta.clone());
        st.sql(" AND meta @> ").bind(meta);
    }
}

/// A name condition: candidates from `pin_search` by term (an index lookup even under
/// row-level security), rechecked on the pin row.
fn push_name_condition(st: &mut Statement, org: OrgId, name: &str, mode: NameMatch) {
    let name_bind = || Bind::Text(name.to_string());
    match mode {
        NameMatch::Exact => {
            push_one_term(st, org, "anchorage_exact_term", name_bind());
            st.sql(" AND name = ").bind(name_bind());
        }
        NameMatch::Iexact => {
            push_one_term(st, org, "anchorage_iexact_term", name_bind());
            st.sql(" AND lower(name) = lower(")
                .bind(name_bind())
                .sql(")");
        }
        NameMatch::Partial | NameMatch::Ipartial => {
            let op = if mode == NameMatch::Partial {
                " LIKE "
            } else {
                " ILIKE "
            };
            if name.chars().count() >= 3 {
                push_all_terms(st, org, "anchorage_name_terms", name_bind());
                st.sql(" AND ");
            }
            // Under 3 characters there is no 3-gram to look up: the recheck alone.
            st.sql("name").sql(op).bind(Bind::Text(like_pattern(name)));
        }
    }
}

/// `id IN (pins having the search term function(value))`.
fn push_one_term(st: &mut Statement, org: OrgId, function: &str, value: Bind) {
    st.sql("id IN (SELECT pin_id FROM pin_search WHERE org_id = ")
        .bind(Bind::Uuid(org.uuid()))
        .sql(&format!(" AND term = {function}("))
        .bind(value)
        .sql("))");
}

/// `id IN (pins having every search term of function(value))`.
fn push_all_terms(st: &mut Statement, org: OrgId, function: &str, value: Bind) {
    st.sql("id IN (SELECT pin_id FROM pin_search WHERE org_id = ")
        .bind(Bind::Uuid(org.uuid()))
        .sql(&format!(" AND term = ANY({function}("))
        .bind(value.clone())
        .sql(&format!(
            ")) GROUP BY pin_id HAVING count(*) = cardinality({function}("
        ))
        .bind(value)
        .sql(")))");
}

fn status_texts(q: &ListQuery) -> Vec<String> {
    q.statuses.iter().map(|s| s.as_str().to_string()).collect()
}

/// The page, newest first. `created` is unique within an org, so it alone is a total
/// order and the keyset for `before`/`after` paging.
fn page_statement(org: OrgId, q: &ListQuery) -> Statement {
    let mut st = Statement::new();
    st.sql(&format!("SELECT {PIN_COLUMNS} FROM pins WHERE "));
    push_filter(&mut st, org, q);
    st.sql(" ORDER BY created DESC LIMIT ")
        .bind(Bind::Int(q.limit));
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
        st.sql("SELECT COALESCE(sum(n), 0)::bigint AS n FROM pin_counts WHERE org_id = ")
            .bind(Bind::Uuid(org.uuid()))
            .sql(" AND status = ANY(")
            .bind(Bind::Texts(status_texts(q)))
            .sql(")");
    } else {
        st.sql("SELECT count(*) AS n FROM pins WHERE ");
        push_filter(&mut st, org, q);
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
