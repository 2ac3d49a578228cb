//! Postgres access: the pool, embedded migrations, the generated schema and the two
//! tenant-scoped transaction helpers that are the only way to reach tenant tables.
//!
//! Imported by every module that reads or writes Postgres; it imports only `ids` and
//! `error`; see the layer table in docs/architecture.md.

pub mod connect;
pub mod functions;
pub mod listen;
pub mod locks;
pub mod migrate;
pub mod pool;
pub mod role;
pub mod schema;
pub mod sql;
pub mod tenant;
pub mod text_enum;

pub use pool::{build_pool, DbPool, PoolOptions};
pub use tenant::{org_read, org_tx, system_tx, Scope};
