//! The SQL of organisations (tenants), on a connection the caller opened.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde::Serialize;

use crate::{
    db::schema::orgs,
    error::{Error, Result},
    ids::OrgId,
};

/// An organisation.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema, apistos::ApiComponent)]
pub struct Org {
    #[schemars(with = "String")]
    pub id: OrgId,
    pub name: String,
    pub created_at: DateTime<Utc>,
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = orgs)]
struct OrgRow {
    id: uuid::Uuid,
    name: String,
    created_at: DateTime<Utc>,
}

impl From<OrgRow> for Org {
    fn from(row: OrgRow) -> Self {
        Self {
            id: OrgId::from_uuid(row.id),
            name: row.name,
            created_at: row.created_at,
        }
    }
}

/// Checks an org name: lowercase letters, digits and dashes, 1–63 chars, not starting
/// with a dash (it appears in URLs and on the command line).
pub fn validate_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 63
        && !name.starts_with('-')
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(Error::BadRequest(format!(
            "invalid org name '{name}': use 1-63 lowercase letters, digits and dashes, not starting with a dash"
        )))
    }
}

/// Creates an org. Needs a system transaction (the org does not exist yet to scope by).
pub async fn create(conn: &mut AsyncPgConnection, name: &str) -> Result<Org> {
    validate_name(name)?;
    let row = diesel::insert_into(orgs::table)
        .values((orgs::id.eq(OrgId::new().uuid()), orgs::name.eq(name)))
        .returning(OrgRow::as_returning())
        .get_result(conn)
        .await
        .map_err(|e| match e {
            diesel::result::Error::DatabaseError(
                diesel::result::DatabaseErrorKind::UniqueViolation,
                _,
            ) => Error::Conflict(format!("an org named '{name}' already exists")),
            other => other.into(),
        })?;
    Ok(row.into())
}

/// Every org the transaction can see, oldest first.
pub async fn list(conn: &mut AsyncPgConnection) -> Result<Vec<Org>> {
    Ok(orgs::table
        .order(orgs::created_at.asc())
        .select(OrgRow::as_select())
        .load(conn)
        .await?
        .into_iter()
        .map(Org::from)
        .collect())
}

/// The org named `name`, if visible.
pub async fn find_by_name(conn: &mut AsyncPgConnection, name: &str) -> Result<Option<Org>> {
    Ok(orgs::table
        .filter(orgs::name.eq(name))
        .select(OrgRow::as_select())
        .first(conn)
        .await
        .optional()?
        .map(Org::from))
}

/// The org with `id`, if visible.
pub async fn find(conn: &mut AsyncPgConnection, id: OrgId) -> Result<Option<Org>> {
    Ok(orgs::table
        .find(id.uuid())
        .select(OrgRow::as_select())
        .first(conn)
        .await
        .optional()?
        .map(Org::from))
}

/// Resolves an org given by id (`org_…`) or by name.
pub async fn resolve(conn: &mut AsyncPgConnection, id_or_name: &str) -> Result<Org> {
    let found = match id_or_name.parse::<OrgId>() {
        Ok(id) => find(conn, id).await?,
        Err(_) => find_by_name(conn, id_or_name).await?,
    };
    found.ok_or_else(|| Error::NotFound(format!("no org '{id_or_name}'")))
}

/// The org named `name`, created if missing.
pub async fn ensure(conn: &mut AsyncPgConnection, name: &str) -> Result<Org> {
    match find_by_name(conn, name).await? {
        Some(org) => Ok(org),
        None => create(conn, name).await,
    }
}

#[cfg(test)]
mod tests {
    use super::validate_name;

    #[test]
    fn org_names() {
        for ok in ["demo", "acme-corp", "a", "x1"] {
            validate_name(ok).unwrap();
        }
        for bad in ["", "-x", "Demo", "a b", "ä", &"a".repeat(64)] {
            assert!(validate_name(bad).is_err(), "{bad}");
        }
    }
}
