//! The Prometheus registry and every series anchorage exports (besides actix-web-prom's
//! per-route latency histogram, registered in the same registry). Known label values are
//! created up front so every series exists from the first scrape.

use prometheus::{
    Encoder, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry, TextEncoder,
};

use crate::error::{Error, Result};

/// Metric name prefix.
pub const NAMESPACE: &str = "anchorage";

/// Pin operations counted in `anchorage_pin_ops_total`.
pub const PIN_OPS: [&str; 5] = ["add", "get", "list", "replace", "remove"];
/// Caches counted in `anchorage_cache_{hits,misses}_total`.
pub const CACHES: [&str; 4] = ["denylist", "live_nodes", "orgs", "standings"];
/// Outcomes of a job this node's worker took up.
pub const FETCH_RESULTS: [&str; 2] = ["current", "stale"];
/// How a job this node ran ended.
/// (`err`: the database was unavailable; the seed's spelling, as in `result="err"`.)
pub const ACK_STATUSES: [&str; 5] = ["pinned", "failed", "retry", "unpinned", "err"];
/// Results of a pin operation, spelled as the seed's starter alert expects.
pub const PIN_RESULTS: [&str; 2] = ["ok", "err"];
const PLACEMENT_STATES: [&str; 5] = ["queued", "pinning", "pinned", "failed", "unpinning"];
const METHODS: [&str; 5] = ["GET", "POST", "DELETE", "PUT", "OTHER"];
const STATUS_CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];

/// Every series; cheap to clone (the handles share their values).
#[derive(Clone)]
pub struct Metrics {
    pub registry: Registry,
    http_requests: IntCounterVec,
    pin_ops: IntCounterVec,
    scheduler_fetch: IntCounterVec,
    scheduler_acks: IntCounterVec,
    cache_hits: IntCounterVec,
    cache_misses: IntCounterVec,
    pub leader_is_elected: IntGauge,
    pub cluster_nodes_live: IntGauge,
    placements_by_status: IntGaugeVec,
    node: String,
}

fn counter_vec(name: &str, help: &str, labels: &[&str]) -> Result<IntCounterVec> {
    IntCounterVec::new(Opts::new(name, help).namespace(NAMESPACE), labels).map_err(internal)
}

fn internal(e: prometheus::Error) -> Error {
    Error::Internal(format!("metrics: {e}"))
}

impl Metrics {
    /// A fresh registry with every series, for the node named `node`.
    pub fn new(node: &str) -> Result<Self> {
        let registry = Registry::new();
        let metrics = Self {
            http_requests: counter_vec(
                "http_requests_total",
                "HTTP requests by method and status class",
                &["method", "status_class"],
            )?,
            pin_ops: counter_vec(
                "pin_ops_total",
                "Pinning API operations by result",
                &["op", "result"],
            )?,
            scheduler_fetch: counter_vec(
                "scheduler_fetch_total",
                "Placement jobs this node's workers took up: current, or stale (nothing to do)",
                &["node", "result"],
            )?,
            scheduler_acks: counter_vec(
                "scheduler_acks_total",
                "Placement jobs this node finished, by outcome",
                &["node", "status"],
            )?,
            cache_hits: counter_vec("cache_hits_total", "Cache hits", &["name"])?,
            cache_misses: counter_vec("cache_misses_total", "Cache misses", &["name"])?,
            leader_is_elected: IntGauge::with_opts(
                Opts::new(
                    "leader_is_elected",
                    "1 while this node is the cluster leader",
                )
                .namespace(NAMESPACE),
            )
            .map_err(internal)?,
            cluster_nodes_live: IntGauge::with_opts(
                Opts::new(
                    "cluster_nodes_live",
                    "Live, active nodes as this node last saw",
                )
                .namespace(NAMESPACE),
            )
            .map_err(internal)?,
            placements_by_status: IntGaugeVec::new(
                Opts::new("placements_by_status", "This node's placements by state")
                    .namespace(NAMESPACE),
                &["status"],
            )
            .map_err(internal)?,
            node: node.to_string(),
            registry,
        };
        metrics.register_all()?;
        metrics.precreate();
        Ok(metrics)
    }

    fn register_all(&self) -> Result<()> {
        let collectors: Vec<Box<dyn prometheus::core::Collector>> = vec![
            Box::new(self.http_requests.clone()),
            Box::new(self.pin_ops.clone()),
            Box::new(self.scheduler_fetch.clone()),
            Box::new(self.scheduler_acks.clone()),
            Box::new(self.cache_hits.clone()),
            Box::new(self.cache_misses.clone()),
            Box::new(self.leader_is_elected.clone()),
            Box::new(self.cluster_nodes_live.clone()),
            Box::new(self.placements_by_status.clone()),
        ];
        for c in collectors {
            self.registry.register(c).map_err(internal)?;
        }
        Ok(())
    }

    fn precreate(&self) {
        for m in METHODS {
            for c in STATUS_CLASSES {
                self.http_requests.with_label_values(&[m, c]);
            }
        }
        for op in PIN_OPS {
            for r in PIN_RESULTS {
                self.pin_ops.with_label_values(&[op, r]);
            }
        }
        for r in FETCH_RESULTS {
            self.scheduler_fetch.with_label_values(&[&self.node, r]);
        }
        for s in ACK_STATUSES {
            self.scheduler_acks.with_label_values(&[&self.node, s]);
        }
        for c in CACHES {
            self.cache_hits.with_label_values(&[c]);
            self.cache_misses.with_label_values(&[c]);
        }
        for s in PLACEMENT_STATES {
            self.placements_by_status.with_label_values(&[s]);
        }
    }

    /// Counts one HTTP response.
    pub fn http_request(&self, method: &str, status: u16) {
        let method = METHODS.iter().find(|m| **m == method).unwrap_or(&"OTHER");
        let class = match status {
            100..=199 => "1xx",
            200..=299 => "2xx",
            300..=399 => "3xx",
            400..=499 => "4xx",
            _ => "5xx",
        };
        self.http_requests.with_label_values(&[method, class]).inc();
    }

    /// Counts one pin operation.
    pub fn pin_op(&self, op: &'static str, ok: bool) {
        let result = if ok { "ok" } else { "err" };
        self.pin_ops.with_label_values(&[op, result]).inc();
    }

    /// Counts a job this node took up.
    pub fn job_fetched(&self, current: bool) {
        let result = if current { "current" } else { "stale" };
        self.scheduler_fetch
            .with_label_values(&[&self.node, result])
            .inc();
    }

    /// Counts a job this node finished.
    pub fn job_acked(&self, status: &'static str) {
        self.scheduler_acks
            .with_label_values(&[&self.node, status])
            .inc();
    }

    /// The hit and miss counters of cache `name`.
    pub fn cache(&self, name: &str) -> CacheCounters {
        CacheCounters {
            hits: self.cache_hits.with_label_values(&[name]),
            misses: self.cache_misses.with_label_values(&[name]),
        }
    }

    /// Sets this node's placements per state.
    pub fn set_placements(&self, counts: &[(String, i64)]) {
        for s in PLACEMENT_STATES {
            let n = counts
                .iter()
                .find(|(state, _)| state == s)
                .map_or(0, |(_, n)| *n);
            self.placements_by_status.with_label_values(&[s]).set(n);
        }
    }

    /// The text exposition of every series.
    pub fn render(&self) -> Result<String> {
        let mut out = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut out)
            .map_err(internal)?;
        String::from_utf8(out).map_err(|e| Error::Internal(format!("metrics: {e}")))
    }

    /// actix-web-prom on the same registry: request latency per route pattern (never a
    /// raw path; unmatched paths are masked).
    pub fn http_middleware(&self) -> Result<actix_web_prom::PrometheusMetrics> {
        actix_web_prom::PrometheusMetricsBuilder::new(NAMESPACE)
            .registry(self.registry.clone())
            .mask_unmatched_patterns("UNMATCHED")
            .buckets(&[
                0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
            ])
            .metrics_configuration(
                actix_web_prom::ActixMetricsConfiguration::default()
                    .http_requests_total_name("http_route_requests_total")
                    .http_requests_duration_seconds_name("http_request_duration_seconds")
                    .labels(actix_web_prom::LabelsConfiguration::default().endpoint("route")),
            )
            .build()
            .map_err(|e| Error::Internal(format!("metrics: {e}")))
    }
}

/// A cache's hit and miss counters; they double as the numbers the heartbeat reports.
#[derive(Clone)]
pub struct CacheCounters {
    pub hits: IntCounter,
    pub misses: IntCounter,
}

impl CacheCounters {
    /// Counters registered nowhere (a cache built outside a server, e.g. in a test).
    pub fn detached() -> Self {
        let counter = |name| IntCounter::new(name, "unregistered").expect("valid metric name");
        Self {
            hits: counter("hits"),
            misses: counter("misses"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_named_series_exists_from_the_start() {
        let m = Metrics::new("node-a").unwrap();
        let _prom = m.http_middleware().unwrap();
        let text = m.render().unwrap();
        for name in [
            "anchorage_http_requests_total{method=\"GET\",status_class=\"2xx\"} 0",
            "anchorage_pin_ops_total{op=\"add\",result=\"ok\"} 0",
            "anchorage_scheduler_fetch_total{node=\"node-a\",result=\"current\"} 0",
            "anchorage_scheduler_acks_total{node=\"node-a\",status=\"pinned\"} 0",
            "anchorage_cache_hits_total{name=\"denylist\"} 0",
            "anchorage_cache_misses_total{name=\"orgs\"} 0",
            "anchorage_leader_is_elected 0",
            "anchorage_cluster_nodes_live 0",
            "anchorage_placements_by_status{status=\"pinned\"} 0",
        ] {
            assert!(text.contains(name), "{name} missing from:\n{text}");
        }
        m.http_request("GET", 404);
        m.pin_op("add", false);
        let text = m.render().unwrap();
        assert!(
            text.contains("anchorage_http_requests_total{method=\"GET\",status_class=\"4xx\"} 1")
        );
        assert!(text.contains("anchorage_pin_ops_total{op=\"add\",result=\"err\"} 1"));
    }
}
