//! Queries on `placements` (no tenant data), and the reads and clean-up of `cid_refs`
//! and `cid_origins` that the job runner needs. Callers hold a system transaction.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use super::PlacementState;
use crate::{
    db::schema::{cid_origins, placements},
    error::Result,
    jobs::{JobKind, PlacementJob},
};

/// One placement row.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = placements)]
pub struct Placement {
    pub cid: String,
    pub node_id: Uuid,
    pub state: PlacementState,
    pub attempts: i32,
    pub generation: i64,
    pub preexisting: bool,
    pub progress: i64,
    pub update_from: Option<String>,
    pub info: Option<String>,
    pub not_before: Option<DateTime<Utc>>,
    /// Set when the node died and another node took this replica over; the leader
    /// trims it once the replacement is pinned and the node is back.
    pub replaced_at: Option<DateTime<Utc>>,
}

impl Placement {
    pub fn job(&self, kind: JobKind) -> PlacementJob {
        PlacementJob {
            kind,
            cid: self.cid.clone(),
            node: self.node_id,
            generation: self.generation,
        }
    }
}

/// The refcount of `cid` (how many pin requests want it), locked for the rest of the
/// transaction; `None` when no row exists. Every path that changes a CID's placements
/// takes this lock first.
pub async fn lock_refcount(conn: &mut AsyncPgConnection, cid: &str) -> Result<Option<i32>> {
    #[derive(diesel::QueryableByName)]
    struct RefCount {
        #[diesel(sql_type = diesel::sql_types::Integer)]
        refcount: i32,
    }
    Ok(
        diesel::sql_query("SELECT refcount FROM cid_refs WHERE cid = $1 FOR UPDATE")
            .bind::<diesel::sql_types::Text, _>(cid)
            .get_result::<RefCount>(conn)
            .await
            .optional()?
            .map(|r| r.refcount),
    )
}

/// Removes the refcount row of `cid` once no pin request wants it and no placement is
/// left.
pub async fn delete_unused_ref(conn: &mut AsyncPgConnection, cid: &str) -> Result<()> {
    diesel::sql_query(
        "DELETE FROM cid_refs WHERE cid = $1 AND refcount = 0 \
         AND NOT EXISTS (SELECT 1 FROM placements WHERE cid = $1)",
    )
    .bind::<diesel::sql_types::Text, _>(cid)
    .execute(conn)
    .await?;
    Ok(())
}

/// The `max` most recently added origins of `cid`, newest first.
pub async fn recent_origins(
    conn: &mut AsyncPgConnection,
    cid: &str,
    max: i64,
) -> Result<Vec<String>> {
    Ok(cid_origins::table
        .filter(cid_origins::cid.eq(cid))
        .order(cid_origins::added_at.desc())
        .limit(max)
        .select(cid_origins::origin)
        .load(conn)
        .await?)
}

/// Every placement of `cid`, locked for the rest of the transaction.
pub async fn lock_all(conn: &mut AsyncPgConnection, cid: &str) -> Result<Vec<Placement>> {
    Ok(placements::table
        .filter(placements::cid.eq(cid))
        .order(placements::node_id)
        .for_update()
        .select(Placement::as_select())
        .load(conn)
        .await?)
}

/// One placement, locked for the rest of the transaction.
pub async fn lock(
    conn: &mut AsyncPgConnection,
    cid: &str,
    node: Uuid,
) -> Result<Option<Placement>> {
    Ok(placements::table
        .find((cid, node))
        .for_update()
        .select(Placement::as_select())
        .first(conn)
        .await
        .optional()?)
}

/// A fresh generation from the database-wide sequence.
fn next_generation() -> diesel::expression::SqlLiteral<diesel::sql_types::BigInt> {
    diesel::dsl::sql::<diesel::sql_types::BigInt>("nextval('placement_generations')")
}

/// A new `queued` placement (with a fresh generation).
pub async fn insert_queued(
    conn: &mut AsyncPgConnection,
    cid: &str,
    node: Uuid,
    update_from: Option<&str>,
) -> Result<Placement> {
    Ok(diesel::insert_into(placements::table)
        .values((
            placements::cid.eq(cid),
            placements::node_id.eq(node),
            placements::state.eq(PlacementState::Queued.as_str()),
            placements::update_from.eq(update_from),
        ))
        .returning(Placement::as_returning())
        .get_result(conn)
        .await?)
}

/// Moves a placement to `state` with a new generation (so older jobs go stale); clears
/// `not_before` unless given, and `info` unless given.
pub async fn transition(
    conn: &mut AsyncPgConnection,
    p: &Placement,
    state: PlacementState,
    info: Option<&str>,
    not_before: Option<DateTime<Utc>>,
    reset_attempts: bool,
) -> Result<Placement> {
    let attempts = if reset_attempts { 0 } else { p.attempts };
    Ok(diesel::update(placements::table.find((&p.cid, p.node_id)))
        .set((
            placements::state.eq(state),
            placements::generation.eq(next_generation()),
            placements::attempts.eq(attempts),
            placements::info.eq(info),
            placements::not_before.eq(not_before),
            placements::updated_at.eq(diesel::dsl::now),
        ))
        .returning(Placement::as_returning())
        .get_result(conn)
        .await?)
}

/// Starts an attempt: `pinning`, attempts + 1, progress 0 (generation unchanged: this is
/// the job that runs it).
pub async fn start_attempt(conn: &mut AsyncPgConnection, p: &Placement) -> Result<Placement> {
    Ok(diesel::update(placements::table.find((&p.cid, p.node_id)))
        .set((
            placements::state.eq(PlacementState::Pinning.as_str()),
            placements::attempts.eq(p.attempts + 1),
            placements::progress.eq(0i64),
            placements::first_attempt_at.eq(diesel::dsl::sql::<
                diesel::sql_types::Nullable<diesel::sql_types::Timestamptz>,
            >(
                "COALESCE(first_attempt_at, clock_timestamp())"
            )),
            placements::updated_at.eq(diesel::dsl::now),
        ))
        .returning(Placement::as_returning())
        .get_result(conn)
        .await?)
}

/// Records that the operator already had `cid` pinned on `node`.
pub async fn set_preexisting(conn: &mut AsyncPgConnection, cid: &str, node: Uuid) -> Result<()> {
    diesel::update(placements::table.find((cid, node)))
        .set(placements::preexisting.eq(true))
        .execute(conn)
        .await?;
    Ok(())
}

/// Records progress of the running attempt (also proof of life for the sweeper).
pub async fn record_progress(
    conn: &mut AsyncPgConnection,
    cid: &str,
    node: Uuid,
    generation: i64,
    progress: u64,
) -> Result<()> {
    diesel::update(
        placements::table
            .find((cid, node))
            .filter(placements::generation.eq(generation))
            .filter(placements::state.eq(PlacementState::Pinning.as_str())),
    )
    .set((
        placements::progress.eq(i64::try_from(progress).unwrap_or(i64::MAX)),
        placements::updated_at.eq(diesel::dsl::now),
    ))
    .execute(conn)
    .await?;
    Ok(())
}

/// Marks the attempt pinned.
pub async fn mark_pinned(conn: &mut AsyncPgConnection, p: &Placement, progress: u64) -> Result<()> {
    diesel::update(placements::table.find((&p.cid, p.node_id)))
        .set((
            placements::state.eq(PlacementState::Pinned.as_str()),
            placements::progress.eq(i64::try_from(progress).unwrap_or(i64::MAX)),
            placements::info.eq(None::<String>),
            placements::not_before.eq(None::<DateTime<Utc>>),
            placements::update_from.eq(None::<String>),
            placements::updated_at.eq(diesel::dsl::now),
        ))
        .execute(conn)
        .await?;
    Ok(())
}

/// Marks a placement on a dead node as replaced by one elsewhere.
pub async fn mark_replaced(conn: &mut AsyncPgConnection, cid: &str, node: Uuid) -> Result<()> {
    diesel::update(placements::table.find((cid, node)))
        .set(placements::replaced_at.eq(diesel::dsl::sql::<
            diesel::sql_types::Nullable<diesel::sql_types::Timestamptz>,
        >("now()")))
        .execute(conn)
        .await?;
    Ok(())
}

/// Removes a placement.
pub async fn delete(conn: &mut AsyncPgConnection, cid: &str, node: Uuid) -> Result<()> {
    diesel::delete(placements::table.find((cid, node)))
        .execute(conn)
        .await?;
    Ok(())
}

/// Placements on `nodes` that look abandoned: `queued`/`pinning`/`unpinning` with no
/// sign of life for `stale_secs` (and any backoff over).
pub async fn stale(
    conn: &mut AsyncPgConnection,
    nodes: &[Uuid],
    stale_secs: i64,
) -> Result<Vec<Placement>> {
    let cutoff = Utc::now() - chrono::Duration::seconds(stale_secs);
    Ok(placements::table
        .filter(placements::node_id.eq_any(nodes))
        .filter(placements::state.eq_any(["queued", "pinning", "unpinning"]))
        .filter(placements::updated_at.lt(cutoff))
        .filter(
            placements::not_before
                .is_null()
                .or(placements::not_before.lt(cutoff)),
        )
        // An old CID kept for a replace's pin/update waits for the new pin, however long.
        .filter(diesel::dsl::sql::<diesel::sql_types::Bool>(
            "NOT (placements.state = 'unpinning' AND EXISTS (SELECT 1 FROM placements q \
             WHERE q.update_from = placements.cid AND q.node_id = placements.node_id \
             AND q.state IN ('queued', 'pinning')))",
        ))
        .for_update()
        .skip_locked()
        .limit(500)
        .select(Placement::as_select())
        .load(conn)
        .await?)
}

/// This node's placements, for the reconciler.
pub async fn of_node(conn: &mut AsyncPgConnection, node: Uuid) -> Result<Vec<Placement>> {
    Ok(placements::table
        .filter(placements::node_id.eq(node))
        .select(Placement::as_select())
        .load(conn)
        .await?)
}
