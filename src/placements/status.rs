//! A pin request's status, derived from the placements of its CID, and written to every
//! org's pins of that CID so that listing by status stays index-backed.

use std::collections::BTreeMap;

use diesel::{
    sql_types::{Jsonb, Text},
    QueryableByName,
};
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use super::PlacementState;
use crate::{db::locks, error::Result, pins::model::PinState};

/// `pinned` once any replica is pinned; `pinning` while any is; `failed` when all failed;
/// otherwise `queued` (also while nothing is placed yet).
pub fn derive(states: &[PlacementState]) -> PinState {
    use PlacementState::*;
    let live: Vec<PlacementState> = states.iter().copied().filter(|s| *s != Unpinning).collect();
    if live.contains(&Pinned) {
        PinState::Pinned
    } else if live.contains(&Pinning) {
        PinState::Pinning
    } else if !live.is_empty() && live.iter().all(|s| *s == Failed) {
        PinState::Failed
    } else {
        PinState::Queued
    }
}

#[derive(QueryableByName)]
struct Row {
    #[diesel(sql_type = Text)]
    state: PlacementState,
    #[diesel(sql_type = diesel::sql_types::Nullable<Text>)]
    info: Option<String>,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    progress: i64,
    #[diesel(sql_type = diesel::sql_types::Bool)]
    replaced: bool,
}

/// One placement as status sees it.
pub struct Replica<'a> {
    pub state: PlacementState,
    pub info: Option<&'a str>,
    pub progress: i64,
    /// On a dead node and taken over by another node: still a copy, no longer wanted.
    pub replaced: bool,
}

/// The status and `info` a pin of a CID shows, given its placements. `info.replicas`
/// is "pinned/wanted" over the replicas the cluster wants (replaced ones excluded).
pub fn summarize<'a>(
    placements: impl IntoIterator<Item = Replica<'a>>,
) -> (PinState, BTreeMap<String, String>) {
    let placements: Vec<Replica<'a>> = placements.into_iter().collect();
    let rows: Vec<(PlacementState, Option<&str>, i64)> = placements
        .iter()
        .map(|r| (r.state, r.info, r.progress))
        .collect();
    let states: Vec<PlacementState> = rows.iter().map(|r| r.0).collect();
    let status = derive(&states);
    let wanted_states: Vec<PlacementState> = placements
        .iter()
        .filter(|r| !r.replaced)
        .map(|r| r.state)
        .collect();
    let wanted = wanted_states
        .iter()
        .filter(|s| **s != PlacementState::Unpinning)
        .count();
    let pinned = wanted_states
        .iter()
        .filter(|s| **s == PlacementState::Pinned)
        .count();
    let mut info = BTreeMap::new();
    info.insert("replicas".to_string(), format!("{pinned}/{wanted}"));
    let details = match status {
        PinState::Pinning => {
            let progress = rows
                .iter()
                .filter(|r| r.0 == PlacementState::Pinning)
                .map(|r| r.2)
                .max()
                .unwrap_or(0);
            Some(format!("pinning: {progress} blocks fetched"))
        }
        PinState::Failed | PinState::Queued => rows.iter().find_map(|r| r.1.map(str::to_string)),
        PinState::Pinned => None,
    };
    if let Some(d) = details {
        info.insert("status_details".to_string(), d);
    }
    (status, info)
}

/// Recomputes the status and `info` of every pin of `cid` visible to the transaction
/// (every org's, in a system transaction), after the placement change it reflects.
///
/// Serialised per CID until commit: two nodes acking the same CID at once would each
/// read the other's placement as it was before and write the same stale count (a
/// deployed three-node stack showed `pinned 1/2` with both replicas pinned). Holding
/// the lock, the later transaction's next statement sees the earlier one's commit.
pub async fn refresh(conn: &mut AsyncPgConnection, cid: &str) -> Result<()> {
    diesel::sql_query("SELECT pg_advisory_xact_lock($1, hashtext($2))")
        .bind::<diesel::sql_types::Integer, _>(locks::PIN_STATUS)
        .bind::<Text, _>(cid)
        .execute(conn)
        .await?;
    let rows: Vec<Row> = diesel::sql_query(
        "SELECT state, info, progress, replaced_at IS NOT NULL AS replaced \
             FROM placements WHERE cid = $1",
    )
    .bind::<Text, _>(cid)
    .load(conn)
    .await?;
    let (status, info) = summarize(rows.iter().map(|r| Replica {
        state: r.state,
        info: r.info.as_deref(),
        progress: r.progress,
        replaced: r.replaced,
    }));
    let info = serde_json::to_value(info).unwrap_or_default();
    diesel::sql_query(
        "UPDATE pins SET status = $2, info = $3, updated_at = now() \
         WHERE cid = $1 AND (status <> $2 OR info <> $3)",
    )
    .bind::<Text, _>(cid)
    .bind::<Text, _>(status.as_str())
    .bind::<Jsonb, _>(info)
    .execute(conn)
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use PlacementState::*;

    #[test]
    fn status_follows_the_best_replica() {
        assert_eq!(derive(&[]), PinState::Queued);
        assert_eq!(derive(&[Queued]), PinState::Queued);
        assert_eq!(derive(&[Queued, Pinning]), PinState::Pinning);
        assert_eq!(derive(&[Failed, Pinning]), PinState::Pinning);
        assert_eq!(derive(&[Failed, Pinned]), PinState::Pinned);
        assert_eq!(derive(&[Failed, Failed]), PinState::Failed);
        assert_eq!(
            derive(&[Failed, Queued]),
            PinState::Queued,
            "a retry is still queued"
        );
        assert_eq!(derive(&[Unpinning]), PinState::Queued);
        assert_eq!(derive(&[Unpinning, Pinned]), PinState::Pinned);
    }
}
