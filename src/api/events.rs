//! `GET /v1/events`: a WebSocket streaming the caller's org's pin status changes as JSON
//! (`requestid`, `cid`, `old_status`, `new_status`, `at`), from every node. The server
//! pings every [`PING_EVERY`] and closes a connection that has not answered for two
//! intervals; a client that falls behind (its buffer full, or one message taking over
//! [`SEND_TIMEOUT`] to hand over) is disconnected rather than slowing anyone else.
//!
//! A socket lives no longer than its credentials: when its token is revoked, its session
//! ends, its person's memberships change or its org goes, it checks them again and
//! closes with 1008 (policy violation) if they no longer allow reading the org's pins;
//! it closes the same way when the token or session expires. One caller may hold
//! `server.maxEventSocketsPerCaller` sockets on a node; the next is answered 429.

use std::time::{Duration, Instant};

use actix_web::{web, HttpMessage, HttpRequest, HttpResponse};
use actix_ws::{CloseCode, CloseReason, Message};
use futures_util::StreamExt;

use super::authn::{Caller, Credential};
use crate::{
    auth::{session::SignedIn, Claims, Scope},
    error::Error,
    events::Holder,
    ids::{OrgId, UserId},
    state::AppState,
    tenancy::access,
};

/// Keepalive ping interval.
pub const PING_EVERY: Duration = Duration::from_secs(20);
/// Longest one message may wait to be handed to a client's connection.
pub const SEND_TIMEOUT: Duration = Duration::from_secs(5);

/// Upgrades to a WebSocket and streams events until either side closes.
pub async fn events(
    state: web::Data<AppState>,
    caller: Caller,
    req: HttpRequest,
    body: web::Payload,
) -> actix_web::Result<HttpResponse> {
    caller.claims.require(Scope::PinRead)?;
    let credential = req
        .extensions()
        .get::<Credential>()
        .cloned()
        .ok_or_else(|| Error::Unauthorized("sign in or send a bearer token".into()))?;
    let holder = Holder {
        caller: caller.claims.sub.clone(),
        jti: caller.claims.jti.uuid(),
        user: caller.claims.sub.parse::<UserId>().ok().map(|u| u.uuid()),
        session: credential.session(),
    };
    let max = state.config.server.max_event_sockets_per_caller as usize;
    let Some(subscription) = state.events.subscribe(caller.org, holder, max) else {
        return Err(Error::TooManyRequests(format!(
            "at most {max} open event sockets per caller (server.maxEventSocketsPerCaller)"
        ))
        .into());
    };
    let expires = expiry(&caller.claims, req.extensions().get::<SignedIn>());
    let (response, mut session, mut incoming) = actix_ws::handle(&req, body)?;
    let (mut events, recheck) = (subscription.events, subscription.recheck);
    let org = caller.org;
    actix_web::rt::spawn(async move {
        let mut ping = tokio::time::interval(PING_EVERY);
        ping.tick().await;
        let mut last_pong = Instant::now();
        let expired = tokio::time::sleep_until(expires.into());
        tokio::pin!(expired);
        let reason = loop {
            tokio::select! {
                event = events.recv() => {
                    let Some(event) = event else {
                        break Some(close(CloseCode::Again, "too slow: events were dropped"));
                    };
                    let text = match serde_json::to_string(&*event) {
                        Ok(text) => text,
                        Err(e) => {
                            tracing::error!(error = %e, "encoding a pin event");
                            continue;
                        }
                    };
                    match tokio::time::timeout(SEND_TIMEOUT, session.text(text)).await {
                        Ok(Ok(())) => {}
                        Ok(Err(_)) => break None,
                        Err(_) => break Some(close(CloseCode::Again, "too slow: not reading")),
                    }
                }
                message = incoming.next() => match message {
                    Some(Ok(Message::Ping(bytes))) => {
                        if session.pong(&bytes).await.is_err() {
                            break None;
                        }
                    }
                    Some(Ok(Message::Pong(_))) => last_pong = Instant::now(),
                    Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break None,
                    Some(Ok(_)) => {}
                },
                _ = recheck.notified() => {
                    if !still_allowed(&state, &credential, org).await {
                        break Some(close(CloseCode::Policy, "credentials revoked or no longer allow this"));
                    }
                }
                _ = &mut expired => {
                    break Some(close(CloseCode::Policy, "credentials expired"));
                }
                _ = ping.tick() => {
                    if last_pong.elapsed() > PING_EVERY * 2 {
                        break Some(close(CloseCode::Away, "no pong"));
                    }
                    if session.ping(b"").await.is_err() {
                        break None;
                    }
                }
            }
        };
        if let Some(reason) = reason {
            // Best effort: a client that is not reading may never see it.
            let _ = tokio::time::timeout(SEND_TIMEOUT, session.close(Some(reason))).await;
        }
    });
    Ok(response)
}

/// When the socket's credentials end: the token's expiry, or the session's if sooner.
fn expiry(claims: &Claims, signed_in: Option<&SignedIn>) -> Instant {
    let now = chrono::Utc::now();
    let mut ends = chrono::DateTime::from_timestamp(claims.exp, 0).unwrap_or(now);
    if let Some(session) = signed_in {
        ends = ends.min(session.expires_at);
    }
    let left = (ends - now).to_std().unwrap_or(Duration::ZERO);
    Instant::now() + left
}

/// Whether `credential` still lets its holder read `org`'s pins. A database error keeps
/// the socket open (the next announcement checks again).
async fn still_allowed(state: &AppState, credential: &Credential, org: OrgId) -> bool {
    match credential.verify(state).await {
        Ok(Some(claims)) => {
            claims.has_scope(Scope::PinRead)
                && (claims.org == Some(org) || access::sees_every_org(claims.role))
        }
        Ok(None) => false,
        Err(e) => {
            tracing::warn!(error = %e, "re-checking an event socket's credentials failed; keeping it");
            true
        }
    }
}

fn close(code: CloseCode, description: &str) -> CloseReason {
    CloseReason {
        code,
        description: Some(description.to_string()),
    }
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/v1/events", web::get().to(events));
}
