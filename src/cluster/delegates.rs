//! Delegates: the multiaddrs (ending `/p2p/<peer id>`) of the Kubo node(s) that will hold
//! a pin, returned in every PinStatus so clients can connect and send data over bitswap.
//! From `ipfs.delegates` when configured, else the addresses this node's Kubo announces
//! (refreshed in the background so the request path never calls Kubo). A configured
//! address without `/p2p/…` (a container's published port, whose Kubo identity is only
//! made at its first start) gets this node's Kubo peer id once it is known.

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
    configured: Arc<Vec<Multiaddr>>,
    public_only: bool,
    /// Worked out when Kubo answers, so the request path only clones it.
    current: Arc<RwLock<Vec<String>>>,
}

impl Delegates {
    /// `configured` wins when non-empty; each entry must be a multiaddr.
    pub fn new(configured: &[String], public_only: bool) -> Result<Self> {
        let mut parsed = Vec::new();
        for addr in configured.iter().take(MAX_DELEGATES) {
            parsed.push(addr.parse::<Multiaddr>().map_err(|e| {
                Error::config(
                    "ipfs.delegates",
                    format!("'{addr}' is not a multiaddr: {e}"),
                )
            })?);
        }
        let delegates = Self {
            configured: Arc::new(parsed),
            public_only,
            current: Arc::default(),
        };
        delegates.store(delegates.resolve(None));
        Ok(delegates)
    }

    /// The delegates to return now (possibly empty when nothing is known yet).
    pub fn current(&self) -> Vec<String> {
        self.current.read().map(|d| d.clone()).unwrap_or_default()
    }

    /// The configured addresses, each naming a peer (ours, once `id` is known); else
    /// what our Kubo announces.
    fn resolve(&self, id: Option<&KuboIdentity>) -> Vec<String> {
        if self.configured.is_empty() {
            return id.map_or_else(Vec::new, |id| {
                from_announced(&id.id, &id.addresses, self.public_only)
            });
        }
        self.configured
            .iter()
            .filter_map(|addr| match addr.iter().last() {
                Some(Protocol::P2p(_)) => Some(addr.to_string()),
                // Until our Kubo has answered there is no peer id to name it by.
                _ => id.map(|id| format!("{addr}/p2p/{}", id.id)),
            })
            .collect()
    }

    fn store(&self, delegates: Vec<String>) {
        if let Ok(mut slot) = self.current.write() {
            *slot = delegates;
        }
    }

    /// Asks Kubo for its identity and stores the addresses it announces.
    pub async fn refresh(&self, kubo: &dyn Kubo) -> Result<()> {
        self.learn(&kubo.id().await?);
        Ok(())
    }

    /// Works the delegates out again from an `id` answer.
    pub fn learn(&self, id: &KuboIdentity) {
        self.store(self.resolve(Some(id)));
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
    fn configured_delegates_without_a_peer_get_our_kubo_peer_id_once_known() {
        assert!(Delegates::new(&["not a multiaddr".into()], false).is_err());
        let other = "12D3KooWQYhTNQdmr3ArTeUHRYzFg94BKyTkoWBDWez9kSCVe2Xo";
        let delegates = Delegates::new(
            &[
                "/dns4/pin.example.com/tcp/4001".into(),
                format!("/ip4/1.2.3.4/tcp/4001/p2p/{other}"),
            ],
            false,
        )
        .unwrap();
        // Before Kubo has answered: only the entry that names its peer.
        assert_eq!(
            delegates.current(),
            vec![format!("/ip4/1.2.3.4/tcp/4001/p2p/{other}")]
        );
        delegates.learn(&KuboIdentity {
            id: PEER.into(),
            addresses: vec!["/ip4/10.0.0.5/tcp/4001".into()],
            agent_version: String::new(),
        });
        assert_eq!(
            delegates.current(),
            vec![
                format!("/dns4/pin.example.com/tcp/4001/p2p/{PEER}"),
                format!("/ip4/1.2.3.4/tcp/4001/p2p/{other}")
            ],
            "configured addresses win over what Kubo announces"
        );
        assert!(Delegates::new(&[], false).unwrap().current().is_empty());
    }
}
