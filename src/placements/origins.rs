//! Dialling a pin request's origins before pinning, so Kubo finds the content without a
//! DHT lookup — without letting the service be used to probe internal networks.

use std::{net::IpAddr, sync::Arc};

use multiaddr::{Multiaddr, Protocol};

use crate::{
    addresses::{has_only_public_ips, is_public_ip},
    kubo::Kubo,
};

/// Whether `addr` may be dialled: DNS names are resolved and every address must be
/// public unless `allow_private`; an origin with no address at all (only `/p2p/<peer>`)
/// would make Kubo dial whatever the peer routing says, so it counts as private.
/// Returns the dialable multiaddr (DNS replaced by an IP).
pub async fn vet(addr: &str, allow_private: bool) -> Option<String> {
    let parsed: Multiaddr = addr.parse().ok()?;
    let mut out = Multiaddr::empty();
    for proto in parsed.iter() {
        match proto {
            Protocol::Dns(ref host)
            | Protocol::Dns4(ref host)
            | Protocol::Dns6(ref host)
            | Protocol::Dnsaddr(ref host) => {
                let want_v6 = matches!(proto, Protocol::Dns6(_));
                let ip = resolve(host, want_v6).await?;
                if !allow_private && !is_public_ip(ip) {
                    return None;
                }
                out.push(match ip {
                    IpAddr::V4(v4) => Protocol::Ip4(v4),
                    IpAddr::V6(v6) => Protocol::Ip6(v6),
                });
                continue;
            }
            _ => {}
        }
        out.push(proto);
    }
    (allow_private || has_only_public_ips(&out)).then(|| out.to_string())
}

async fn resolve(host: &str, want_v6: bool) -> Option<IpAddr> {
    let addrs = tokio::net::lookup_host((host, 0)).await.ok()?;
    addrs
        .map(|a| a.ip())
        .find(|ip| ip.is_ipv6() == want_v6 || !want_v6)
}

/// Connects Kubo to at most `max` vetted origins, in the background; failures only log.
pub fn connect_in_background(
    kubo: Arc<dyn Kubo>,
    origins: Vec<String>,
    max: usize,
    allow_private: bool,
) {
    if origins.is_empty() {
        return;
    }
    tokio::spawn(async move {
        for origin in origins.into_iter().take(max) {
            match vet(&origin, allow_private).await {
                None => {
                    tracing::debug!(%origin, "origin skipped: private, unresolvable or invalid")
                }
                Some(addr) => {
                    if let Err(e) = kubo.swarm_connect(&addr).await {
                        tracing::debug!(%origin, error = %e, "origin did not connect");
                    }
                }
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::vet;

    const PEER: &str = "12D3KooWGRUVh1S3jiwVmGzeoWfxFcNn7MWzL9VXpdKrUZyWH8Qd";

    #[tokio::test]
    async fn private_origins_are_refused_unless_allowed() {
        for private in [
            "/ip4/127.0.0.1/tcp/4001",
            "/ip4/10.0.0.5/tcp/4001",
            "/ip4/169.254.1.1/tcp/1",
            "/ip6/::1/tcp/1",
            "/ip4/0.0.0.0/tcp/1",
            "/dns4/localhost/tcp/4001",
        ] {
            let addr = format!("{private}/p2p/{PEER}");
            assert_eq!(vet(&addr, false).await, None, "{addr}");
        }
        let local = format!("/ip4/127.0.0.1/tcp/4001/p2p/{PEER}");
        assert_eq!(vet(&local, true).await.as_deref(), Some(local.as_str()));
        let public = format!("/ip4/198.51.99.7/tcp/4001/p2p/{PEER}");
        assert_eq!(vet(&public, false).await.as_deref(), Some(public.as_str()));
        let resolved = vet(&format!("/dns4/localhost/tcp/4001/p2p/{PEER}"), true)
            .await
            .unwrap();
        assert!(
            resolved.starts_with("/ip4/127.0.0.1/tcp/4001/p2p/"),
            "{resolved}"
        );
    }
}
