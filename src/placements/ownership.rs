//! The ledger of Kubo pins anchorage made (`owned_pins`): what it may remove, and nothing
//! else. Written before `pin/add`, so a crash right after pinning leaves a pin that is
//! still known to be ours.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use crate::{db::schema::owned_pins, error::Result};

/// Records that anchorage is about to pin `cid` on `node`.
pub async fn record(conn: &mut AsyncPgConnection, node: Uuid, cid: &str) -> Result<()> {
    diesel::insert_into(owned_pins::table)
        .values((owned_pins::node_id.eq(node), owned_pins::cid.eq(cid)))
        .on_conflict((owned_pins::node_id, owned_pins::cid))
        .do_update()
        .set(owned_pins::orphan_since.eq(None::<DateTime<Utc>>))
        .execute(conn)
        .await?;
    Ok(())
}

/// Whether anchorage made the pin of `cid` on `node`.
pub async fn is_owned(conn: &mut AsyncPgConnection, node: Uuid, cid: &str) -> Result<bool> {
    Ok(owned_pins::table
        .find((node, cid))
        .count()
        .get_result::<i64>(conn)
        .await?
        > 0)
}

/// Forgets a pin anchorage removed.
pub async fn forget(conn: &mut AsyncPgConnection, node: Uuid, cid: &str) -> Result<()> {
    diesel::delete(owned_pins::table.find((node, cid)))
        .execute(conn)
        .await?;
    Ok(())
}

/// Every pin anchorage owns on `node`, with when it was first seen orphaned.
pub async fn of_node(
    conn: &mut AsyncPgConnection,
    node: Uuid,
) -> Result<Vec<(String, Option<DateTime<Utc>>)>> {
    Ok(owned_pins::table
        .filter(owned_pins::node_id.eq(node))
        .select((owned_pins::cid, owned_pins::orphan_since))
        .load(conn)
        .await?)
}

/// Marks (or clears) an owned pin as orphaned.
pub async fn set_orphan_since(
    conn: &mut AsyncPgConnection,
    node: Uuid,
    cid: &str,
    since: Option<DateTime<Utc>>,
) -> Result<()> {
    diesel::update(owned_pins::table.find((node, cid)))
        .set(owned_pins::orphan_since.eq(since))
        .execute(conn)
        .await?;
    Ok(())
}
