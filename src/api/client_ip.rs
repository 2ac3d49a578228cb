//! The client's IP address, resolved once per request, in one place: the TCP peer,
//! unless the peer is a trusted proxy (`server.trustedProxies`), in which case the
//! right-most `X-Forwarded-For` entry that is not itself a trusted proxy. Rate limits,
//! the metrics allowlist, audit entries and logs all read it from here.

use std::{future::Future, net::IpAddr, pin::Pin};

use actix_web::{
    body::MessageBody,
    dev::{Payload, ServiceRequest, ServiceResponse},
    middleware::Next,
    web, FromRequest, HttpMessage, HttpRequest,
};
use ipnet::IpNet;

use crate::{error::Error, state::AppState};

/// The resolved client address of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientIp(pub IpAddr);

/// The client of a request from `peer` carrying `forwarded_for` (the raw
/// `X-Forwarded-For` values, in header order).
pub fn resolve(peer: IpAddr, forwarded_for: &[&str], trusted: &[IpNet]) -> IpAddr {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    if !is_trusted(&peer) {
        return peer;
    }
    // Each proxy appends the address it saw, so walk from the right: the first hop not
    // run by us is the client. An unparsable entry ends the walk (everything left of it
    // is the client's own claim) and we keep the last trusted hop.
    let mut client = peer;
    for entry in forwarded_for
        .iter()
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .rev()
    {
        match entry.parse::<IpAddr>() {
            Ok(ip) if is_trusted(&ip) => client = ip,
            Ok(ip) => return ip,
            Err(_) => return client,
        }
    }
    client
}

/// Middleware: resolves the client IP and stores it in the request's extensions.
pub async fn middleware(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let peer = req
        .peer_addr()
        .map(|a| a.ip())
        .unwrap_or(IpAddr::from([127, 0, 0, 1]));
    let client = match req.app_data::<web::Data<AppState>>() {
        Some(state) => {
            let forwarded: Vec<&str> = req
                .headers()
                .get_all("x-forwarded-for")
                .filter_map(|v| v.to_str().ok())
                .collect();
            resolve(peer, &forwarded, &state.config.server.trusted_proxies)
        }
        None => peer,
    };
    req.extensions_mut().insert(ClientIp(client));
    next.call(req).await
}

impl FromRequest for ClientIp {
    type Error = Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let found = req.extensions().get::<ClientIp>().copied();
        let peer = req.peer_addr().map(|a| a.ip());
        Box::pin(async move {
            found
                .or(peer.map(ClientIp))
                .ok_or_else(|| Error::Internal("no client address".into()))
        })
    }
}

impl ClientIp {
    /// The client IP of `req` (as the middleware resolved it; the peer otherwise).
    pub fn of(req: &HttpRequest) -> Option<IpAddr> {
        req.extensions()
            .get::<ClientIp>()
            .map(|c| c.0)
            .or_else(|| req.peer_addr().map(|a| a.ip()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn nets(list: &[&str]) -> Vec<IpNet> {
        list.iter().map(|n| n.parse().unwrap()).collect()
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_claims() {
        let trusted = nets(&["10.0.0.0/8"]);
        assert_eq!(
            resolve(ip("203.0.113.9"), &["1.2.3.4"], &trusted),
            ip("203.0.113.9")
        );
    }

    #[test]
    fn through_trusted_proxies_the_right_most_untrusted_entry_wins() {
        let trusted = nets(&["10.0.0.0/8"]);
        // client spoofs 1.1.1.1; real client 198.51.100.7; then two of our proxies.
        assert_eq!(
            resolve(
                ip("10.0.0.2"),
                &["1.1.1.1, 198.51.100.7", "10.0.0.1"],
                &trusted
            ),
            ip("198.51.100.7")
        );
        // Only trusted hops: the left-most of them.
        assert_eq!(
            resolve(ip("10.0.0.2"), &["10.0.0.1"], &trusted),
            ip("10.0.0.1")
        );
        // No header: the proxy itself.
        assert_eq!(resolve(ip("10.0.0.2"), &[], &trusted), ip("10.0.0.2"));
        // Garbage ends the walk at the last trusted hop.
        assert_eq!(
            resolve(ip("10.0.0.2"), &["junk, 10.0.0.1"], &trusted),
            ip("10.0.0.1")
        );
    }
}
