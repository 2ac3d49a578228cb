//! Every stream, bucket and subject name, under `nats.prefix` so several anchorage
//! clusters (or a staging one) can share one NATS.

use uuid::Uuid;

/// Names under one prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Names {
    prefix: String,
}

impl Names {
    pub fn new(prefix: &str) -> Self {
        Self {
            prefix: prefix.to_string(),
        }
    }

    /// The work-queue stream of placement jobs.
    pub fn jobs_stream(&self) -> String {
        format!("{}_JOBS", self.prefix)
    }

    /// Every node's job subjects (the stream's subject filter).
    pub fn all_jobs(&self) -> String {
        format!("{}.jobs.*", self.prefix)
    }

    /// One node's job subject.
    pub fn jobs(&self, node: Uuid) -> String {
        format!("{}.jobs.{node}", self.prefix)
    }

    /// The durable pull consumer of one node's jobs.
    pub fn jobs_consumer(&self, node: Uuid) -> String {
        format!("{}_node_{node}", self.prefix)
    }

    /// The KV bucket of the leader lease.
    pub fn leader_bucket(&self) -> String {
        format!("{}_LEADER", self.prefix)
    }

    /// The core subject of cache invalidations.
    pub fn invalidate(&self) -> String {
        format!("{}.invalidate", self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_prefix() {
        let names = Names::new("staging");
        let node = Uuid::nil();
        assert_eq!(names.jobs_stream(), "staging_JOBS");
        assert_eq!(
            names.jobs(node),
            "staging.jobs.00000000-0000-0000-0000-000000000000"
        );
        assert_eq!(names.leader_bucket(), "staging_LEADER");
        assert_eq!(names.invalidate(), "staging.invalidate");
    }
}
