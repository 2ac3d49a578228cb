//! Which session cookies may cost a Postgres lookup. A cookie is only a random secret
//! until the database says whose it is, so an attacker sending random cookies would
//! otherwise buy one query per request before any limit applied. Cookies this node has
//! recently found live pass straight through; any other lookup is paid for from the
//! client's anonymous allowance (`server.rateLimit.anonymousPerMinute`), and once that
//! is spent the request goes on as anonymous (and is answered 429 by the limiter).
//! The database stays the authority: a cookie remembered here is still looked up, so
//! logout and revocation take effect at once.

use std::{net::IpAddr, time::Duration};

use super::rate_limit::Limits;
use crate::{auth::session, cache::CountedCache};

/// How long a cookie found live is remembered.
const REMEMBER_FOR: Duration = Duration::from_secs(600);
/// Most cookies remembered.
const CAPACITY: u64 = 100_000;

/// Session cookies this node found live lately, by the hash of their secret, and the
/// limits an unknown one is paid from. One per node, handed to the HTTP workers as app
/// data.
#[derive(Clone)]
pub struct SessionGate {
    known: CountedCache<Vec<u8>, ()>,
    limits: Limits,
}

impl SessionGate {
    pub fn new(limits: Limits) -> Self {
        Self {
            known: CountedCache::new(REMEMBER_FOR, CAPACITY),
            limits,
        }
    }

    /// Whether the cookie `secret` from `client` may be looked up now.
    pub fn may_look_up(&self, secret: &str, client: IpAddr) -> bool {
        self.known.get(&session::hash(secret)).is_some() || self.limits.spend_anonymous(client)
    }

    /// The lookup found the session live.
    pub fn found_live(&self, secret: &str) {
        self.known.insert(session::hash(secret), ());
    }

    /// The lookup found nothing (or an ended session).
    pub fn found_nothing(&self, secret: &str) {
        self.known.invalidate(&session::hash(secret));
    }
}
