//! Pin requests: CIDs, validation, listing filters, storage and the service functions
//! the API calls.

pub mod cid;
pub mod counts;
pub mod filter;
pub mod model;
pub mod service;
pub mod store;
