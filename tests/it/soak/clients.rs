//! The soak's clients: one task per org, each with its own seeded generator, adding
//! pins (identity CIDs unique to the org), deleting some of its own, reading by id and
//! listing with filters, each request to a node the generator picks.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use anchorage::ids::OrgId;
use rand::{rngs::StdRng, Rng, SeedableRng};
use serde_json::{json, Value};
use tokio::task::JoinHandle;

use super::ledger::{Entry, Ledger, Op};
use crate::harness::fixtures::cid;

/// How much work the clients did.
pub struct Held {
    pub requests: usize,
    pub seconds: f64,
}

/// Starts one client per org; they stop after `run_for`.
pub fn start(
    seed: u64,
    urls: &[String],
    orgs: &[(OrgId, String)],
    ledger: Arc<Ledger>,
    run_for: Duration,
) -> Vec<JoinHandle<usize>> {
    orgs.iter()
        .enumerate()
        .map(|(org, (_, token))| {
            let client = Client {
                org,
                token: token.clone(),
                urls: urls.to_vec(),
                rng: StdRng::seed_from_u64(seed.wrapping_mul(31).wrapping_add(org as u64)),
                http: reqwest::Client::builder()
                    .timeout(Duration::from_secs(10))
                    .build()
                    .unwrap(),
                ledger: ledger.clone(),
                mine: Vec::new(),
                next_cid: 0,
            };
            tokio::spawn(client.run(run_for))
        })
        .collect()
}

/// Waits for every client; `started` is when they were started.
pub async fn finish(clients: Vec<JoinHandle<usize>>, started: Instant) -> Held {
    let mut requests = 0;
    for c in clients {
        requests += c.await.unwrap();
    }
    Held {
        requests,
        seconds: started.elapsed().as_secs_f64(),
    }
}

struct Client {
    org: usize,
    token: String,
    urls: Vec<String>,
    rng: StdRng,
    http: reqwest::Client,
    ledger: Arc<Ledger>,
    /// Request ids this client was given and has not deleted.
    mine: Vec<String>,
    next_cid: u32,
}

impl Client {
    async fn run(mut self, run_for: Duration) -> usize {
        let started = Instant::now();
        let mut n = 0;
        while started.elapsed() < run_for {
            let roll: u8 = self.rng.random_range(0..100);
            let op = match roll {
                0..=54 => {
                    self.next_cid += 1;
                    // Unique per org: 1,000,000 CIDs apart.
                    let n = (self.org as u32 + 1) * 1_000_000 + self.next_cid;
                    Op::Add { cid: cid(n) }
                }
                55..=69 if !self.mine.is_empty() => {
                    let i = self.rng.random_range(0..self.mine.len());
                    Op::Delete {
                        id: self.mine[i].clone(),
                    }
                }
                70..=84 if !self.mine.is_empty() => {
                    let i = self.rng.random_range(0..self.mine.len());
                    Op::Get {
                        id: self.mine[i].clone(),
                    }
                }
                _ => Op::List,
            };
            let node = self.rng.random_range(0..self.urls.len());
            self.send(node, op).await;
            n += 1;
            tokio::time::sleep(Duration::from_millis(self.rng.random_range(20..120))).await;
        }
        n
    }

    async fn send(&mut self, node: usize, op: Op) {
        let base = format!("{}/v1", self.urls[node].trim_end_matches('/'));
        let req = match &op {
            Op::Add { cid } => self
                .http
                .post(format!("{base}/pins"))
                .json(&json!({ "cid": cid, "name": format!("soak-{}", self.org) })),
            Op::Delete { id } => self.http.delete(format!("{base}/pins/{id}")),
            Op::Get { id } => self.http.get(format!("{base}/pins/{id}")),
            Op::List => self.http.get(format!(
                "{base}/pins?status=pinned,queued&limit=5&name=soak&match=partial"
            )),
        };
        let started = Instant::now();
        let answer = req.bearer_auth(&self.token).send().await;
        let (status, body) = match answer {
            Ok(r) => {
                let status = r.status().as_u16();
                (Some(status), r.json::<Value>().await.unwrap_or(Value::Null))
            }
            Err(_) => (None, Value::Null),
        };
        let request_id = match (&op, status) {
            (Op::Add { .. }, Some(202)) => body["requestid"].as_str().map(str::to_string),
            _ => None,
        };
        if let Some(id) = &request_id {
            self.mine.push(id.clone());
        }
        if let (Op::Delete { id }, Some(202 | 404)) = (&op, status) {
            self.mine.retain(|m| m != id);
        }
        self.ledger.record(Entry {
            org: self.org,
            node,
            op,
            started,
            ended: Instant::now(),
            status,
            request_id,
        });
    }
}
