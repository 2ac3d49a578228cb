//! Built-in defaults: the bottom configuration layer, and the values
//! `anchorage.yaml.example` shows (a test keeps the two equal).

use std::time::Duration;

use super::model::{
    ApiToken, Authentik, Cluster, ClusterBackend, Ipfs, Log, LogFormat, Metrics, Nats, NatsTls,
    Postgres, RateLimit, Server, Session,
};
use super::secret::Secret;

const fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

const fn hours(n: u64) -> Duration {
    Duration::from_secs(n * 3600)
}

impl Default for Server {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".to_owned(),
            public_url: None,
            max_body_bytes: 64 * 1024,
            shutdown_timeout: secs(30),
            metrics: Metrics::default(),
            rate_limit: RateLimit::default(),
            trusted_proxies: Vec::new(),
            max_event_sockets_per_caller: 20,
        }
    }
}

impl Default for Metrics {
    fn default() -> Self {
        // Loopback and the RFC 1918 ranges: a scraper on the same host or LAN.
        let cidrs = [
            "127.0.0.0/8",
            "::1/128",
            "10.0.0.0/8",
            "172.16.0.0/12",
            "192.168.0.0/16",
        ];
        Self {
            allow_cidrs: cidrs
                .iter()
                .map(|c| c.parse().expect("valid CIDR literal"))
                .collect(),
        }
    }
}

impl Default for RateLimit {
    fn default() -> Self {
        Self {
            session_per_minute: 10,
            anonymous_per_minute: 120,
            // Off, as the seed exempts authenticated traffic; docs/operations.md gives a
            // value to start from.
            org_per_minute: 0,
        }
    }
}

impl Default for Postgres {
    fn default() -> Self {
        Self {
            dsn: Secret::from("postgres://anchorage@127.0.0.1:5432/anchorage"),
            migration_dsn: None,
            password_file: None,
            migration_password_file: None,
            max_connections: 16,
            connect_timeout: secs(5),
            statement_timeout: secs(30),
        }
    }
}

impl Default for Ipfs {
    fn default() -> Self {
        Self {
            rpc: "http://127.0.0.1:5001".to_owned(),
            delegates: Vec::new(),
            public_delegates_only: false,
            allow_private_origins: false,
            pin_stall_timeout: secs(120),
            request_timeout: secs(30),
            max_origin_connects: 10,
            max_concurrent_pins: 8,
            max_attempts: 5,
            retry_base_delay: secs(5),
            requeue_after: secs(120),
            reconcile_interval: secs(300),
            orphan_grace_period: secs(600),
        }
    }
}

impl Default for Authentik {
    fn default() -> Self {
        Self {
            issuer: None,
            client_id: None,
            audience: None,
            trust_unverified_email: false,
            // The seed's walkthrough registers the site root as the redirect URI.
            redirect_path: "/".to_owned(),
        }
    }
}

impl Default for ApiToken {
    fn default() -> Self {
        Self {
            signing_keys: Vec::new(),
            issuer: None,
            audience: None,
            // The seed's: a day for tokens made over the API, 395 days (a year and a
            // 30-day grace) at most, the break-glass token's lifetime.
            default_ttl: hours(24),
            max_ttl: hours(9480),
        }
    }
}

impl Default for Session {
    fn default() -> Self {
        Self { ttl: hours(24) }
    }
}

impl Default for Cluster {
    fn default() -> Self {
        Self {
            node_id: "anchor-1".to_owned(),
            backend: ClusterBackend::Postgres,
            min_replicas: 1,
            max_replicas: 1,
            heartbeat: secs(5),
            node_ttl: secs(30),
            lease_ttl: secs(15),
            repair_delay: secs(300),
        }
    }
}

impl Default for Nats {
    fn default() -> Self {
        Self {
            url: vec!["nats://127.0.0.1:4222".to_owned()],
            creds_file: None,
            token: None,
            token_file: None,
            tls: NatsTls::default(),
            stream_replicas: 1,
            prefix: "anchorage".to_owned(),
            connect_timeout: secs(30),
        }
    }
}

impl Default for Log {
    fn default() -> Self {
        Self {
            level: "info".to_owned(),
            format: LogFormat::Text,
        }
    }
}
