//! Delegates: the multiaddrs (ending `/p2p/<peer id>`) of the Kubo node(s) that will hold
//! a pin, returned in every PinStatus so clients can connect and send data over bitswap.
//! From `ipfs.delegates` when configured, else the addresses this node's Kubo announces
//! (refreshed in the background so the request path never calls Kubo).

use std::{
    sync::{Arc, RwLock},
    time::Duration,
};

use multiaddr::{Multiaddr, Protocol};

use crate::{
    addresses::has_only_public_ips,
    error::{Error, Result},
    kubo::{Kubo, KuboIdentity},
};

/// The most delegates a PinStatus may carry (the spec's `maxItems`).
pub const MAX_DELEGATES: usize = 20;

/// This node's current delegate list, shared by handlers and the refresher.
#[derive(Clone, Default)]
pub struct Delegates {
    configured: Arc<Vec<String>>,
    public_only: bool,
    discovered: Arc<RwLock<Vec<String>>>,
}

impl Delegates {
    /// `configured` wins when non-empty; each entry must be a multiaddr ending in `/p2p/…`.
    pub fn new(configured: &[String], public_only: bool) -> Result<Self> {
        for addr in configured {
            let parsed: Multiaddr = addr.parse().map_err(|e| {
                Error::config(
                    "ipfs.delegates",
                    format!("'{addr}' is not a multiaddr: {e}"),
                )
            })?;
            if !matches!(parsed.iter().last(), Some(Protocol::P2p(_))) {
                return Err(Error::config(
                    "ipfs.delegates",
                    format!("'{addr}' must end in /p2p/<peer id>"),
                ));
            }
        }
        Ok(Self {
            configured: Arc::new(configured.iter().take(MAX_DELEGATES).cloned().collect()),
            public_only,
            discovered: Arc::default(),
        })
    }

    /// The delegates to return now (possibly empty when nothing is known yet).
    pub fn current(&self) -> Vec<String> {
        if !self.configured.is_empty() {
            return self.configured.as_ref().clone();
        }
        self.discovered
            .read()
            .map(|d| d.clone())
            .unwrap_or_default()
    }

    /// Asks Kubo for its identity and stores the addresses it announces.
    pub async fn refresh(&self, kubo: &dyn Kubo) -> Result<()> {
        self.learn(&kubo.id().await?);
        Ok(())
    }

    /// Stores the addresses an `id` answer announces.
    pub fn learn(&self, id: &KuboIdentity) {
        let addrs = from_announced(&id.id, &id.addresses, self.public_only);
        if let Ok(mut slot) = self.discovered.write() {
            *slot = addrs;
        }
    }

    /// Refreshes every `every` until the task is aborted; failures keep the last list.
    pub async fn refresh_loop(self, kubo: Arc<dyn Kubo>, every: Duration) {
        loop {
            if let Err(e) = self.refresh(kubo.as_ref()).await {
                tracing::warn!(error = %e, "could not refresh delegates from Kubo; keeping the last known addresses");
            }
            tokio::time::sleep(every).await;
        }
    }
}

/// Picks delegates from what Kubo's `id` announces: valid multiaddrs, each ending in
/// `/p2p/<peer>` (appended when missing), without duplicates, loopback/private ones
/// dropped when `public_only`, at most [`MAX_DELEGATES`].
pub fn from_announced(peer_id: &str, announced: &[String], public_only: bool) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for text in announced {
        let Ok(mut addr) = text.parse::<Multiaddr>() else {
            continue;
        };
        match addr.iter().last() {
            Some(Protocol::P2p(peer)) if peer.to_string() != peer_id => continue,
            Some(Protocol::P2p(_)) => {}
            _ => {
                let Ok(with_peer) = format!("{addr}/p2p/{peer_id}").parse::<Multiaddr>() else {
                    continue;
                };
                addr = with_peer;
            }
        }
        if public_only && !has_only_public_ips(&addr) {
            continue;
        }
        let s = addr.to_string();
        if !out.contains(&s) {
            out.push(s);
        }
        if out.len() == MAX_DELEGATES {
            break;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const PEER: &str = "12D3KooWGRUVh1S3jiwVmGzeoWfxFcNn7MWzL9VXpdKrUZyWH8Qd";

    #[test]
    fn appends_peer_and_dedups() {
        let got = from_announced(
            PEER,
            &[
                "/ip4/127.0.0.1/tcp/4001".into(),
                format!("/ip4/127.0.0.1/tcp/4001/p2p/{PEER}"),
                "/ip4/203.0.113.9/tcp/4001".into(),
                "garbage".into(),
            ],
            false,
        );
        assert_eq!(
            got,
            vec![
                format!("/ip4/127.0.0.1/tcp/4001/p2p/{PEER}"),
                format!("/ip4/203.0.113.9/tcp/4001/p2p/{PEER}")
            ]
        );
    }

    #[test]
    fn public_only_drops_local_addresses() {
        let got = from_announced(
            PEER,
            &[
                "/ip4/127.0.0.1/tcp/4001".into(),
                "/ip4/10.1.2.3/tcp/4001".into(),
                "/ip6/::1/tcp/4001".into(),
                "/ip4/198.51.99.7/tcp/4001".into(),
                "/dns4/pin.example.com/tcp/4001".into(),
            ],
            true,
        );
        assert_eq!(
            got,
            vec![
                format!("/ip4/198.51.99.7/tcp/4001/p2p/{PEER}"),
                format!("/dns4/pin.example.com/tcp/4001/p2p/{PEER}")
            ]
        );
    }

    #[test]
    fn configured_delegates_must_name_a_peer() {
        assert!(Delegates::new(&["/ip4/1.2.3.4/tcp/4001".into()], false).is_err());
        let ok = Delegates::new(&[format!("/ip4/1.2.3.4/tcp/4001/p2p/{PEER}")], false).unwrap();
        assert_eq!(ok.current().len(), 1);
        assert!(Delegates::new(&[], false).unwrap().current().is_empty());
    }
}
