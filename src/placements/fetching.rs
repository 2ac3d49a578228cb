//! The CIDs this node's Kubo is fetching right now (`pin/add` or `pin/update` in
//! flight). While a fetch runs, Kubo does not list the pin yet and `pin/rm` answers
//! "not pinned", but the pin appears when the fetch completes: the ledger row of a pin
//! deleted meanwhile must outlive the fetch, or nothing would know the pin is ours.
//! Only this process talks to its Kubo, and a fetch dies with the process (Kubo
//! cancels a request whose client went away), so memory is the right place for this.

use std::{
    collections::{HashMap, HashSet},
    sync::{Arc, Mutex},
};

/// Fetches in flight, by CID (a count: a retry may overlap the attempt it replaces).
#[derive(Clone, Default)]
pub struct Fetching {
    in_flight: Arc<Mutex<HashMap<String, usize>>>,
}

/// Marks a fetch as running until dropped.
pub struct FetchGuard {
    fetching: Fetching,
    cid: String,
}

impl Fetching {
    /// Records a fetch of `cid` until the guard is dropped.
    pub fn start(&self, cid: &str) -> FetchGuard {
        *self.lock().entry(cid.to_string()).or_default() += 1;
        FetchGuard {
            fetching: self.clone(),
            cid: cid.to_string(),
        }
    }

    /// Every CID being fetched now.
    pub fn snapshot(&self) -> HashSet<String> {
        self.lock().keys().cloned().collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, usize>> {
        self.in_flight.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Drop for FetchGuard {
    fn drop(&mut self) {
        let mut in_flight = self.fetching.lock();
        if let Some(n) = in_flight.get_mut(&self.cid) {
            *n -= 1;
            if *n == 0 {
                in_flight.remove(&self.cid);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Fetching;

    #[test]
    fn a_fetch_counts_until_its_guard_drops() {
        let fetching = Fetching::default();
        let first = fetching.start("a");
        let second = fetching.start("a");
        drop(first);
        assert!(fetching.snapshot().contains("a"));
        drop(second);
        assert!(fetching.snapshot().is_empty());
    }
}
