//! Queries on `pins`, `cid_refs` and `cid_origins`. Every function runs inside the
//! caller's transaction (an `org_tx` for request paths) and also filters by org itself.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use diesel::{
    pg::Pg,
    prelude::*,
    sql_types::{Array, Jsonb, Nullable, Text, Uuid as SqlUuid},
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
        functions::lower,
        schema::{cid_origins, cid_refs, pins},
    },
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
pub async fn insert(conn: &mut AsyncPgConnection, org: OrgId, spec: &PinSpec) -> Result<PinRecord> {
    let id = RequestId::new();
    let meta = serde_json::to_value(&spec.meta).map_err(|e| Error::Internal(e.to_string()))?;
    for _ in 0..CREATED_RETRIES {
        let row: Option<PinRow> = diesel::sql_query(
            "INSERT INTO pins (id, org_id, cid, requested_cid, name, origins, meta, status, created) \
             SELECT $1, $2, $3, $4, $5, $6, $7, 'queued', \
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
    let count: i64 = filtered(org, q).count().get_result(conn).await?;
    let rows: Vec<PinRow> = filtered(org, q)
        .order((pins::created.desc(), pins::id.desc()))
        .limit(q.limit)
        .select(PinRow::as_select())
        .load(conn)
        .await?;
    let records = rows
        .into_iter()
        .map(PinRow::into_record)
        .collect::<Result<Vec<_>>>()?;
    Ok((count, records))
}

fn filtered(org: OrgId, q: &ListQuery) -> pins::BoxedQuery<'_, Pg> {
    let mut query = pins::table.filter(pins::org_id.eq(org.uuid())).into_boxed();
    if !q.cids.is_empty() {
        query = query.filter(pins::cid.eq_any(&q.cids));
    }
    if let Some(name) = &q.name {
        query = match q.name_match {
            NameMatch::Exact => query.filter(pins::name.eq(name)),
            NameMatch::Iexact => query.filter(lower(pins::name).eq(lower(Some(name.as_str())))),
            NameMatch::Partial => query.filter(pins::name.like(like_pattern(name)).escape('\\')),
            NameMatch::Ipartial => query.filter(pins::name.ilike(like_pattern(name)).escape('\\')),
        };
    }
    let statuses: Vec<&'static str> = q.statuses.iter().map(|s| s.as_str()).collect();
    if statuses.len() < PinState::ALL.len() {
        query = query.filter(pins::status.eq_any(statuses));
    }
    if let Some(before) = q.before {
        query = query.filter(pins::created.lt(before));
    }
    if let Some(after) = q.after {
        query = query.filter(pins::created.gt(after));
    }
    if !q.meta.is_empty() {
        let meta = serde_json::to_value(&q.meta).unwrap_or_default();
        query = query.filter(pins::meta.contains(meta));
    }
    query
}

/// `%text%` with LIKE's wildcards escaped, so a name search for `50%` means the text.
fn like_pattern(text: &str) -> String {
    let escaped = text
        .replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_");
    format!("%{escaped}%")
}

/// Adds `delta` to the number of live pin requests wanting `cid` (across all orgs) and
/// returns the new count.
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
