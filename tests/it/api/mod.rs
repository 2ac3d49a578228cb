//! The HTTP API over plain HTTP (reqwest, WebSockets): the Pinning Services API and its
//! OpenAPI document, tokens, audit, events, probes and errors, rate limits, metrics and
//! logs, listing at scale, and the abuse half of the security review.

mod audit;
mod events;
mod http;
mod logs;
mod metrics;
mod openapi;
pub mod pins;
mod rate_limits;
mod scale;
mod security_abuse;
mod tokens;
