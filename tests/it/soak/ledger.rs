//! Every request a soak client made and the answer it got.

use std::{sync::Mutex, time::Instant};

/// What a client asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    Add { cid: String },
    Delete { id: String },
    Get { id: String },
    List,
}

/// One request and its answer.
#[derive(Debug, Clone)]
pub struct Entry {
    pub org: usize,
    pub node: usize,
    pub op: Op,
    pub started: Instant,
    pub ended: Instant,
    /// The HTTP status, or `None` when no answer came (connection refused or cut).
    pub status: Option<u16>,
    /// `requestid` of an accepted add.
    pub request_id: Option<String>,
}

/// The ledger of a run, shared by every client.
#[derive(Default)]
pub struct Ledger {
    entries: Mutex<Vec<Entry>>,
}

impl Ledger {
    pub fn record(&self, entry: Entry) {
        self.entries.lock().unwrap().push(entry);
    }

    pub fn entries(&self) -> Vec<Entry> {
        self.entries.lock().unwrap().clone()
    }
}
