//! Pin status changes for `/v1/events`: Postgres announces every new pin request and
//! every status change (a trigger, `NOTIFY anchorage_pin_events`, on commit), each node
//! follows the channel, and the hub hands each event to that org's subscribers only.
//!
//! Each subscriber has a bounded buffer. Publishing never waits: a subscriber whose
//! buffer is full is dropped (its socket is then closed), so a slow client can never
//! slow the server or the other clients.
//!
//! Each subscriber also says whose credentials it streams under ([`Holder`]). When a
//! token is revoked, a session ends, a person's memberships change or an org goes, the
//! matching subscribers are told to check their credentials again ([`EventHub::recheck`]),
//! and a caller may hold only so many subscriptions at once.

use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use tokio::sync::{
    mpsc::{self, error::TrySendError},
    Notify,
};
use uuid::Uuid;

use crate::{
    db::listen::{self, Heard},
    ids::{OrgId, RequestId},
};

/// The NOTIFY channel the trigger writes to.
pub const CHANNEL: &str = "anchorage_pin_events";

/// Events a subscriber may have waiting before it counts as too slow. Generous, so a
/// burst (a bulk import, a popular CID's status fanning out to many requests) never
/// drops a client that is reading; cheap, because the buffer holds pointers to events
/// shared by every subscriber (~0.5 MB per subscriber when full). A client that stops
/// reading is caught sooner by the send timeout in `api::events`.
pub const SUBSCRIBER_BUFFER: usize = 65_536;

/// The trigger's payload.
#[derive(Debug, Deserialize)]
struct Notified {
    org: Uuid,
    requestid: Uuid,
    cid: String,
    old: Option<String>,
    new: String,
    at: String,
}

/// One change, as subscribers receive it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct PinEvent {
    pub requestid: RequestId,
    pub cid: String,
    /// `null` for a new pin request.
    pub old_status: Option<String>,
    pub new_status: String,
    pub at: String,
}

/// Whose credentials a subscription streams under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    /// Who is counted against the per-caller limit (the token's or session's subject).
    pub caller: String,
    /// The token's id (for a session opened with a token, that token's).
    pub jti: Uuid,
    /// The person, when the subject is one.
    pub user: Option<Uuid>,
    /// The session, when the subscription was opened with a session cookie.
    pub session: Option<Uuid>,
}

/// What changed, as far as subscribers are concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Affected {
    Token(Uuid),
    User(Uuid),
    Session(Uuid),
    Org(Uuid),
    /// Changes may have been missed: everyone checks.
    Everyone,
}

struct Subscriber {
    org: Uuid,
    holder: Holder,
    recheck: Arc<Notify>,
    tx: mpsc::Sender<Arc<PinEvent>>,
}

impl Subscriber {
    fn is_affected_by(&self, what: Affected) -> bool {
        match what {
            Affected::Token(jti) => self.holder.jti == jti,
            Affected::User(id) => self.holder.user == Some(id),
            Affected::Session(id) => self.holder.session == Some(id),
            Affected::Org(id) => self.org == id,
            Affected::Everyone => true,
        }
    }
}

/// A live subscription: its events, and a nudge to check its credentials again.
pub struct Subscription {
    /// `None` from the receiver means the subscriber was dropped for falling behind.
    pub events: mpsc::Receiver<Arc<PinEvent>>,
    pub recheck: Arc<Notify>,
}

/// This node's subscribers.
#[derive(Clone, Default)]
pub struct EventHub {
    subscribers: Arc<Mutex<Vec<Subscriber>>>,
}

impl EventHub {
    /// A new subscription to `org`'s events for `holder`, unless they already hold
    /// `max_per_caller` (0 = no limit) open ones.
    pub fn subscribe(
        &self,
        org: OrgId,
        holder: Holder,
        max_per_caller: usize,
    ) -> Option<Subscription> {
        let mut subscribers = self.lock();
        let held = subscribers
            .iter()
            .filter(|s| s.holder.caller == holder.caller && !s.tx.is_closed())
            .count();
        if max_per_caller > 0 && held >= max_per_caller {
            return None;
        }
        let (tx, events) = mpsc::channel(SUBSCRIBER_BUFFER);
        let recheck = Arc::new(Notify::new());
        subscribers.push(Subscriber {
            org: org.uuid(),
            holder,
            recheck: recheck.clone(),
            tx,
        });
        Some(Subscription { events, recheck })
    }

    /// Tells every subscriber `what` concerns to check its credentials again.
    pub fn recheck(&self, what: Affected) {
        for s in self.lock().iter().filter(|s| s.is_affected_by(what)) {
            s.recheck.notify_one();
        }
    }

    /// Hands `event` of `org` to that org's subscribers, dropping any that are full or gone.
    pub fn publish(&self, org: Uuid, event: PinEvent) {
        let event = Arc::new(event);
        self.lock().retain(|s| {
            if s.org != org {
                return !s.tx.is_closed();
            }
            match s.tx.try_send(event.clone()) {
                Ok(()) => true,
                Err(TrySendError::Full(_)) => {
                    tracing::warn!("an events subscriber fell behind; disconnecting it");
                    false
                }
                Err(TrySendError::Closed(_)) => false,
            }
        });
    }

    /// Subscribers right now (for tests and stats).
    pub fn subscribers(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Subscriber>> {
        self.subscribers.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn publish_notified(&self, payload: &str) {
        match serde_json::from_str::<Notified>(payload) {
            Ok(n) => self.publish(
                n.org,
                PinEvent {
                    requestid: RequestId::from_uuid(n.requestid),
                    cid: n.cid,
                    old_status: n.old,
                    new_status: n.new,
                    at: n.at,
                },
            ),
            Err(e) => tracing::warn!(error = %e, "unreadable pin event ignored"),
        }
    }
}

/// Follows the channel on `dsn` until aborted, publishing to `hub`.
pub async fn follow(dsn: String, hub: EventHub) {
    listen::follow(dsn, &[CHANNEL], move |heard| {
        if let Heard::Notification { payload, .. } = heard {
            hub.publish_notified(payload);
        }
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn holder(caller: &str) -> Holder {
        Holder {
            caller: caller.into(),
            jti: Uuid::now_v7(),
            user: None,
            session: None,
        }
    }

    #[test]
    fn a_caller_holds_at_most_the_limit_and_only_the_affected_are_nudged() {
        let hub = EventHub::default();
        let org = OrgId::new();
        let first = hub.subscribe(org, holder("ci"), 2).unwrap();
        let _second = hub.subscribe(org, holder("ci"), 2).unwrap();
        assert!(hub.subscribe(org, holder("ci"), 2).is_none());
        assert!(hub.subscribe(org, holder("other"), 2).is_some());
        drop(first);
        assert!(
            hub.subscribe(org, holder("ci"), 2).is_some(),
            "a closed one frees its place"
        );
    }

    fn event(n: u32) -> PinEvent {
        PinEvent {
            requestid: RequestId::new(),
            cid: format!("cid{n}"),
            old_status: None,
            new_status: "queued".into(),
            at: String::new(),
        }
    }

    #[tokio::test]
    async fn each_org_gets_its_own_and_a_full_subscriber_is_dropped() {
        let hub = EventHub::default();
        let (a, b) = (OrgId::new(), OrgId::new());
        let mut rx_a = hub.subscribe(a, holder("a"), 0).unwrap().events;
        let mut rx_b = hub.subscribe(b, holder("b"), 0).unwrap().events;
        hub.publish(a.uuid(), event(1));
        assert_eq!(rx_a.recv().await.unwrap().cid, "cid1");
        assert!(rx_b.try_recv().is_err(), "b never sees a's events");

        // b stops reading: once its buffer is full it is dropped; a is unaffected.
        for n in 0..=SUBSCRIBER_BUFFER as u32 {
            hub.publish(b.uuid(), event(n));
        }
        assert_eq!(hub.subscribers(), 1);
        let mut got = 0;
        while rx_b.try_recv().is_ok() {
            got += 1;
        }
        assert_eq!(got, SUBSCRIBER_BUFFER);
        assert!(rx_b.recv().await.is_none(), "then the stream ends");
        hub.publish(a.uuid(), event(2));
        assert_eq!(rx_a.recv().await.unwrap().cid, "cid2");
    }
}
