//! The audit writer: every admin or security action records who did what to what, from
//! where. Rows are written in the caller's transaction so an action and its audit entry
//! commit or roll back together.

use std::net::IpAddr;

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use futures_util::FutureExt;
use serde_json::Value;
use uuid::Uuid;

use crate::{
    db::{schema::audit_log, system_tx, DbPool},
    error::Result,
    ids::OrgId,
};

/// One audit entry.
#[derive(Debug, Clone)]
pub struct AuditEntry {
    /// Who acted: `usr_…`, `tok_…`, `cli` or `system:<loop>`.
    pub actor: String,
    /// What happened, dotted: `org.create`, `token.mint`, `node.drain`.
    pub action: String,
    /// What it happened to (an id or name).
    pub target: String,
    /// Anything else worth keeping. Never secrets.
    pub details: Value,
    /// The client IP, when the action came over HTTP.
    pub source_ip: Option<IpAddr>,
    /// The org the action concerns; `None` for cluster-wide actions.
    pub org: Option<OrgId>,
}

impl AuditEntry {
    /// Starts an entry with empty details, no IP and no org.
    pub fn new(
        actor: impl Into<String>,
        action: impl Into<String>,
        target: impl Into<String>,
    ) -> Self {
        Self {
            actor: actor.into(),
            action: action.into(),
            target: target.into(),
            details: Value::Object(Default::default()),
            source_ip: None,
            org: None,
        }
    }

    /// Sets the details object.
    pub fn details(mut self, details: Value) -> Self {
        self.details = details;
        self
    }

    /// Sets the org the action concerns.
    pub fn org(mut self, org: OrgId) -> Self {
        self.org = Some(org);
        self
    }

    /// Sets the client IP.
    pub fn source_ip(mut self, ip: Option<IpAddr>) -> Self {
        self.source_ip = ip;
        self
    }
}

/// A stored audit entry.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = audit_log)]
pub struct AuditRecord {
    pub id: Uuid,
    pub at: DateTime<Utc>,
    pub org_id: Option<Uuid>,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub details: Value,
    pub source_ip: Option<ipnet::IpNet>,
}

/// Writes `entry` in the caller's transaction (which must be allowed to see its org:
/// an `org_tx` for that org, or a `system_tx`).
pub async fn record(conn: &mut AsyncPgConnection, entry: AuditEntry) -> Result<()> {
    diesel::insert_into(audit_log::table)
        .values((
            audit_log::id.eq(Uuid::now_v7()),
            audit_log::org_id.eq(entry.org.map(|o| o.uuid())),
            audit_log::actor.eq(&entry.actor),
            audit_log::action.eq(&entry.action),
            audit_log::target.eq(&entry.target),
            audit_log::details.eq(&entry.details),
            audit_log::source_ip.eq(entry.source_ip.map(ipnet::IpNet::from)),
        ))
        .execute(conn)
        .await?;
    tracing::info!(
        actor = %entry.actor,
        action = %entry.action,
        target = %entry.target,
        org = ?entry.org,
        source_ip = ?entry.source_ip,
        "audit"
    );
    Ok(())
}

/// Writes `entry` in its own system transaction, for actions that have no transaction
/// of their own (CLI commands, watchdogs).
pub async fn record_now(db: &DbPool, entry: AuditEntry) -> Result<()> {
    system_tx(db, |conn| record(conn, entry).boxed()).await
}

/// The newest `limit` entries visible to the transaction, newest first.
pub async fn recent(conn: &mut AsyncPgConnection, limit: i64) -> Result<Vec<AuditRecord>> {
    Ok(audit_log::table
        .order(audit_log::at.desc())
        .limit(limit)
        .select(AuditRecord::as_select())
        .load(conn)
        .await?)
}

/// Filters of an audit listing; every one optional. Pages run newest first; `before` is
/// the `id` of the last entry of the previous page (ids are time-ordered UUIDv7).
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    pub actor: Option<String>,
    pub action: Option<String>,
    pub target: Option<String>,
    /// Only this org's entries (within what the transaction may see).
    pub org: Option<OrgId>,
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
    pub before: Option<Uuid>,
    pub limit: Option<i64>,
}

/// Default and largest page size.
pub const DEFAULT_LIMIT: i64 = 100;
pub const MAX_LIMIT: i64 = 1000;

impl AuditQuery {
    /// The page size asked for, or a 400 when out of range.
    pub fn page_size(&self) -> Result<i64> {
        match self.limit {
            None => Ok(DEFAULT_LIMIT),
            Some(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
            Some(n) => Err(crate::error::Error::BadRequest(format!(
                "limit must be between 1 and {MAX_LIMIT}, not {n}"
            ))),
        }
    }
}

/// One page of the entries visible to the transaction that match `q`, newest first.
pub async fn query(conn: &mut AsyncPgConnection, q: &AuditQuery) -> Result<Vec<AuditRecord>> {
    let mut select = audit_log::table
        .select(AuditRecord::as_select())
        .order(audit_log::id.desc())
        .limit(q.page_size()?)
        .into_boxed();
    if let Some(actor) = &q.actor {
        select = select.filter(audit_log::actor.eq(actor.clone()));
    }
    if let Some(action) = &q.action {
        select = select.filter(audit_log::action.eq(action.clone()));
    }
    if let Some(target) = &q.target {
        select = select.filter(audit_log::target.eq(target.clone()));
    }
    if let Some(org) = q.org {
        select = select.filter(audit_log::org_id.eq(org.uuid()));
    }
    if let Some(since) = q.since {
        select = select.filter(audit_log::at.ge(since));
    }
    if let Some(until) = q.until {
        select = select.filter(audit_log::at.lt(until));
    }
    if let Some(before) = q.before {
        select = select.filter(audit_log::id.lt(before));
    }
    Ok(select.load(conn).await?)
}

/// An audit entry as the API and CLI show it: TypeIDs, the bare IP.
#[derive(Debug, Clone, serde::Serialize)]
pub struct AuditView {
    pub id: Uuid,
    pub at: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub org: Option<OrgId>,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub details: Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_ip: Option<IpAddr>,
}

impl From<AuditRecord> for AuditView {
    fn from(r: AuditRecord) -> Self {
        Self {
            id: r.id,
            at: r.at,
            org: r.org_id.map(OrgId::from_uuid),
            actor: r.actor,
            action: r.action,
            target: r.target,
            details: r.details,
            source_ip: r.source_ip.map(|net| net.addr()),
        }
    }
}
