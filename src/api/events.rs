//! `GET /v1/events`: a WebSocket streaming the caller's org's pin status changes as JSON
//! (`requestid`, `cid`, `old_status`, `new_status`, `at`), from every node. The server
//! pings every [`PING_EVERY`] and closes a connection that has not answered for two
//! intervals; a client that falls behind (its buffer full, or one message taking over
//! [`SEND_TIMEOUT`] to hand over) is disconnected rather than slowing anyone else.

use std::time::{Duration, Instant};

use actix_web::{web, HttpRequest, HttpResponse};
use actix_ws::{CloseCode, CloseReason, Message};
use futures_util::StreamExt;

use crate::{
    auth::{Caller, Scope},
    state::AppState,
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
    caller.require(Scope::PinRead)?;
    let (response, mut session, mut incoming) = actix_ws::handle(&req, body)?;
    let mut events = state.events.subscribe(caller.org);
    actix_web::rt::spawn(async move {
        let mut ping = tokio::time::interval(PING_EVERY);
        ping.tick().await;
        let mut last_pong = Instant::now();
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

fn close(code: CloseCode, description: &str) -> CloseReason {
    CloseReason {
        code,
        description: Some(description.to_string()),
    }
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/v1/events", web::get().to(events));
}
