//! Hand-built SQL that Postgres still prepares once per connection.
//!
//! `diesel::sql_query` marks its statement unsafe to cache, so every use costs a Parse
//! round trip and a fresh plan. A [`Statement`] is SQL text interleaved with typed binds;
//! diesel numbers the placeholders and caches the prepared statement under its text, so
//! the same shape of query (say, a listing with a status filter) is parsed once per
//! connection however its values change. The set of shapes is small and fixed by code.

use chrono::{DateTime, Utc};
use diesel::{
    pg::Pg,
    query_builder::{AstPass, Query, QueryFragment, QueryId},
    sql_types::{Array, BigInt, Jsonb, Nullable, Text, Timestamptz, Untyped, Uuid as SqlUuid},
    QueryResult,
};
use uuid::Uuid;

/// One bind value of a [`Statement`].
#[derive(Debug, Clone)]
pub enum Bind {
    Uuid(Uuid),
    Text(String),
    OptText(Option<String>),
    Texts(Vec<String>),
    Time(DateTime<Utc>),
    Json(serde_json::Value),
    Int(i64),
}

#[derive(Debug, Clone)]
enum Part {
    Sql(String),
    Bind(Bind),
}

/// SQL text and binds in the order they appear.
#[derive(Debug, Clone, Default)]
pub struct Statement {
    parts: Vec<Part>,
}

impl Statement {
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends SQL text. Never put a value in here: values go through [`Statement::bind`].
    pub fn sql(&mut self, text: &str) -> &mut Self {
        match self.parts.last_mut() {
            Some(Part::Sql(last)) => last.push_str(text),
            _ => self.parts.push(Part::Sql(text.to_string())),
        }
        self
    }

    /// Appends a placeholder for `value`.
    pub fn bind(&mut self, value: Bind) -> &mut Self {
        self.parts.push(Part::Bind(value));
        self
    }

    /// The same statement with `prefix` (e.g. `EXPLAIN …`) in front.
    pub fn prefixed(&self, prefix: &str) -> Self {
        let mut out = Self::new();
        out.sql(prefix);
        out.parts.extend(self.parts.iter().cloned());
        out
    }
}

impl QueryFragment<Pg> for Statement {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        for part in &self.parts {
            match part {
                Part::Sql(text) => out.push_sql(text),
                Part::Bind(Bind::Uuid(v)) => out.push_bind_param::<SqlUuid, _>(v)?,
                Part::Bind(Bind::Text(v)) => out.push_bind_param::<Text, _>(v)?,
                Part::Bind(Bind::OptText(v)) => out.push_bind_param::<Nullable<Text>, _>(v)?,
                Part::Bind(Bind::Texts(v)) => out.push_bind_param::<Array<Text>, _>(v)?,
                Part::Bind(Bind::Time(v)) => out.push_bind_param::<Timestamptz, _>(v)?,
                Part::Bind(Bind::Json(v)) => out.push_bind_param::<Jsonb, _>(v)?,
                Part::Bind(Bind::Int(v)) => out.push_bind_param::<BigInt, _>(v)?,
            }
        }
        Ok(())
    }
}

// No static query id: diesel then keys its statement cache by the SQL text and bind
// types, which is exactly "the same shape".
impl QueryId for Statement {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl Query for Statement {
    type SqlType = Untyped;
}

#[cfg(test)]
mod tests {
    use diesel::debug_query;

    use super::*;

    #[test]
    fn placeholders_are_numbered_in_order_and_text_is_merged() {
        let mut st = Statement::new();
        st.sql("SELECT 1 WHERE a = ")
            .bind(Bind::Int(1))
            .sql(" AND b = ")
            .sql("")
            .bind(Bind::Text("x".into()))
            .sql(" AND c = ")
            .bind(Bind::Int(1));
        let sql = debug_query::<Pg, _>(&st).to_string();
        assert!(
            sql.starts_with("SELECT 1 WHERE a = $1 AND b = $2 AND c = $3"),
            "{sql}"
        );
        let explained = st.prefixed("EXPLAIN ");
        let sql = debug_query::<Pg, _>(&explained).to_string();
        assert!(sql.starts_with("EXPLAIN SELECT 1 WHERE a = $1"), "{sql}");
    }

    #[test]
    fn the_statement_may_be_cached() {
        let st = Statement::new();
        assert!(st.is_safe_to_cache_prepared(&Pg).unwrap());
    }
}
