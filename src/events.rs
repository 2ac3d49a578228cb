//! Pin status changes for `/v1/events`: Postgres announces every new pin request and
//! every status change (a trigger, `NOTIFY anchorage_pin_events`, on commit), each node
//! follows the channel, and the hub hands each event to that org's subscribers only.
//!
//! Each subscriber has a bounded buffer. Publishing never waits: a subscriber whose
//! buffer is full is dropped (its socket is then closed), so a slow client can never
//! slow the server or the other clients.

use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use tokio::sync::mpsc::{self, error::TrySendError};
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

struct Subscriber {
    org: Uuid,
    tx: mpsc::Sender<Arc<PinEvent>>,
}

/// This node's subscribers.
#[derive(Clone, Default)]
pub struct EventHub {
    subscribers: Arc<Mutex<Vec<Subscriber>>>,
}

impl EventHub {
    /// A new subscription to `org`'s events. `None` from the receiver means the
    /// subscriber was dropped for falling behind.
    pub fn subscribe(&self, org: OrgId) -> mpsc::Receiver<Arc<PinEvent>> {
        let (tx, rx) = mpsc::channel(SUBSCRIBER_BUFFER);
        self.lock().push(Subscriber {
            org: org.uuid(),
            tx,
        });
        rx
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
        let mut rx_a = hub.subscribe(a);
        let mut rx_b = hub.subscribe(b);
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
