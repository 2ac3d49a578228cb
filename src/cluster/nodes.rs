//! This node's row in `nodes`: registered (or found) by its operator-given name at start.

use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use futures_util::FutureExt;

use crate::{
    db::{schema::nodes, system_tx, DbPool},
    error::Result,
    ids::NodeId,
};

/// Registers the node named `name` (upsert by name) with what its Kubo announces, and
/// returns its id.
pub async fn register(
    db: &DbPool,
    name: &str,
    peer_id: Option<&str>,
    addrs: &[String],
) -> Result<NodeId> {
    let name = name.to_string();
    let peer_id = peer_id.map(str::to_string);
    let addrs = addrs.to_vec();
    system_tx(db, |conn| {
        async move { upsert(conn, &name, peer_id.as_deref(), &addrs).await }.boxed()
    })
    .await
}

async fn upsert(
    conn: &mut AsyncPgConnection,
    name: &str,
    peer_id: Option<&str>,
    addrs: &[String],
) -> Result<NodeId> {
    let id: uuid::Uuid = diesel::insert_into(nodes::table)
        .values((
            nodes::id.eq(NodeId::new().uuid()),
            nodes::name.eq(name),
            nodes::kubo_peer_id.eq(peer_id),
            nodes::multiaddrs.eq(addrs),
            nodes::kubo_healthy.eq(peer_id.is_some()),
            nodes::started_at.eq(diesel::dsl::now),
            nodes::last_seen.eq(diesel::dsl::now),
        ))
        .on_conflict(nodes::name)
        .do_update()
        .set((
            nodes::kubo_peer_id.eq(diesel::dsl::sql::<
                diesel::sql_types::Nullable<diesel::sql_types::Text>,
            >(
                "COALESCE(EXCLUDED.kubo_peer_id, nodes.kubo_peer_id)"
            )),
            nodes::kubo_healthy.eq(peer_id.is_some()),
            nodes::started_at.eq(diesel::dsl::now),
            nodes::last_seen.eq(diesel::dsl::now),
        ))
        .returning(nodes::id)
        .get_result(conn)
        .await?;
    Ok(NodeId::from_uuid(id))
}
