//! Semantic checks that types alone cannot express. Each failure names the
//! dotted key to fix.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::time::Duration;

use super::Config;
use crate::error::Error;

/// A failed check, kept apart from [`Error`] so the loader can add which
/// variable or flag set the key before building the error.
#[derive(Debug)]
pub(super) struct Invalid {
    pub key: String,
    pub message: String,
}

impl From<Invalid> for Error {
    fn from(Invalid { key, message }: Invalid) -> Self {
        Error::Config { key, message }
    }
}

fn ensure(ok: bool, key: &str, message: impl Into<String>) -> Result<(), Invalid> {
    if ok {
        Ok(())
    } else {
        Err(Invalid {
            key: key.to_owned(),
            message: message.into(),
        })
    }
}

fn non_zero(d: Duration, key: &str) -> Result<(), Invalid> {
    ensure(!d.is_zero(), key, "must be longer than 0s")
}

fn http_url(url: &str, key: &str) -> Result<(), Invalid> {
    let ok = url.starts_with("http://") || url.starts_with("https://");
    ensure(
        ok,
        key,
        format!("expected an http:// or https:// URL, got {url:?}"),
    )
}

impl Config {
    /// Checks the semantics of a deserialized configuration; `load` calls it.
    pub fn validate(&self) -> Result<(), Error> {
        self.check().map_err(Error::from)
    }

    pub(super) fn check(&self) -> Result<(), Invalid> {
        let server = &self.server;
        if let Err(err) = server.listen.parse::<SocketAddr>() {
            return ensure(
                false,
                "server.listen",
                format!("expected ip:port, got {:?} ({err})", server.listen),
            );
        }
        if let Some(url) = &server.public_url {
            http_url(url, "server.publicURL")?;
        }
        let redirect = &self.auth.authentik.redirect_path;
        ensure(
            redirect.starts_with('/')
                && !redirect.starts_with("//")
                && !redirect.contains(['?', '#']),
            "auth.authentik.redirectPath",
            format!("expected a path such as / or /auth/callback, got {redirect:?}"),
        )?;
        ensure(
            server.max_body_bytes > 0,
            "server.maxBodyBytes",
            "must be at least 1",
        )?;

        let pg = &self.postgres;
        ensure(
            !pg.dsn.expose().is_empty(),
            "postgres.dsn",
            "must not be empty",
        )?;
        ensure(
            pg.max_connections > 0,
            "postgres.maxConnections",
            "must be at least 1",
        )?;
        non_zero(pg.connect_timeout, "postgres.connectTimeout")?;
        // statementTimeout 0s is PostgreSQL's "no timeout", so it is allowed.

        let ipfs = &self.ipfs;
        http_url(&ipfs.rpc, "ipfs.rpc")?;
        non_zero(ipfs.pin_stall_timeout, "ipfs.pinStallTimeout")?;
        non_zero(ipfs.request_timeout, "ipfs.requestTimeout")?;
        ensure(
            ipfs.max_concurrent_pins > 0,
            "ipfs.maxConcurrentPins",
            "must be at least 1",
        )?;
        ensure(
            ipfs.max_attempts > 0,
            "ipfs.maxAttempts",
            "must be at least 1",
        )?;
        non_zero(ipfs.requeue_after, "ipfs.requeueAfter")?;
        non_zero(ipfs.reconcile_interval, "ipfs.reconcileInterval")?;

        self.check_api_token()?;
        non_zero(self.auth.session.ttl, "auth.session.ttl")?;

        for (i, email) in self.bootstrap.sysadmins.iter().enumerate() {
            let key = format!("bootstrap.sysadmins[{i}]");
            ensure(
                email.contains('@'),
                &key,
                format!("expected an e-mail address, got {email:?}"),
            )?;
        }

        self.check_cluster()
    }

    fn check_api_token(&self) -> Result<(), Invalid> {
        let token = &self.auth.api_token;
        let mut ids = HashSet::new();
        for (i, key) in token.signing_keys.iter().enumerate() {
            let at = format!("auth.apiToken.signingKeys[{i}]");
            ensure(
                !key.id.trim().is_empty(),
                &format!("{at}.id"),
                "must not be empty",
            )?;
            ensure(
                ids.insert(key.id.as_str()),
                &format!("{at}.id"),
                format!("duplicate key id {:?}", key.id),
            )?;
            ensure(
                !key.path.as_os_str().is_empty(),
                &format!("{at}.path"),
                "must not be empty",
            )?;
        }
        let primaries = token.signing_keys.iter().filter(|k| k.primary).count();
        ensure(
            token.signing_keys.is_empty() || primaries == 1,
            "auth.apiToken.signingKeys",
            format!("exactly one key must have `primary: true`, found {primaries}"),
        )?;
        non_zero(token.default_ttl, "auth.apiToken.defaultTTL")?;
        ensure(
            token.default_ttl <= token.max_ttl,
            "auth.apiToken.defaultTTL",
            "must not exceed auth.apiToken.maxTTL",
        )
    }

    fn check_cluster(&self) -> Result<(), Invalid> {
        let cluster = &self.cluster;
        ensure(
            !cluster.node_id.trim().is_empty(),
            "cluster.nodeID",
            "must not be empty",
        )?;
        ensure(
            cluster.min_replicas >= 1,
            "cluster.minReplicas",
            "must be at least 1",
        )?;
        ensure(
            cluster.min_replicas <= cluster.max_replicas,
            "cluster.minReplicas",
            format!(
                "must not exceed cluster.maxReplicas ({})",
                cluster.max_replicas
            ),
        )?;
        non_zero(cluster.heartbeat, "cluster.heartbeat")?;
        // A node or lease must survive at least one missed heartbeat.
        ensure(
            cluster.node_ttl > cluster.heartbeat,
            "cluster.nodeTTL",
            "must exceed cluster.heartbeat",
        )?;
        ensure(
            cluster.lease_ttl > cluster.heartbeat,
            "cluster.leaseTTL",
            "must exceed cluster.heartbeat",
        )?;
        if cluster.backend == super::ClusterBackend::Nats {
            self.check_nats()?;
        }
        Ok(())
    }

    /// Only for `cluster.backend: nats`: the keys are unused otherwise.
    fn check_nats(&self) -> Result<(), Invalid> {
        let nats = &self.nats;
        ensure(
            !nats.url.is_empty(),
            "nats.url",
            "must name at least one server",
        )?;
        for url in &nats.url {
            let scheme = url.split_once("://").map(|(s, _)| s);
            ensure(
                matches!(scheme, Some("nats" | "tls")),
                "nats.url",
                format!("expected nats://host:port or tls://host:port, got {url:?}"),
            )?;
        }
        // The prefix names streams, buckets and subject tokens: no dots or wildcards.
        let prefix_ok = !nats.prefix.is_empty()
            && nats.prefix.len() <= 32
            && (nats.prefix.chars()).all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        ensure(
            prefix_ok,
            "nats.prefix",
            format!(
                "expected 1-32 letters, digits, _ or -, got {:?}",
                nats.prefix
            ),
        )?;
        ensure(
            (1..=5).contains(&nats.stream_replicas),
            "nats.streamReplicas",
            "must be between 1 and 5 (1 for one server, 3 for a three-server cluster)",
        )?;
        non_zero(nats.connect_timeout, "nats.connectTimeout")?;
        ensure(
            nats.tls.cert_file.is_some() == nats.tls.key_file.is_some(),
            "nats.tls.certFile",
            "nats.tls.certFile and nats.tls.keyFile go together",
        )?;
        // The lease's TTL travels as whole seconds (the Nats-TTL header).
        ensure(
            self.cluster.lease_ttl >= Duration::from_secs(2),
            "cluster.leaseTTL",
            "must be at least 2s with the nats backend",
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::SigningKey;

    fn key(id: &str, primary: bool) -> SigningKey {
        SigningKey {
            id: id.into(),
            path: format!("/keys/{id}").into(),
            primary,
        }
    }

    type Edit = fn(&mut Config);

    fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    /// The key named by the first failed check after `edit`.
    fn failing_key(edit: Edit) -> String {
        let mut config = Config::default();
        edit(&mut config);
        config.check().expect_err("invalid").key
    }

    #[test]
    fn defaults_and_a_proper_key_set_are_valid() {
        let mut config = Config::default();
        config.validate().unwrap();
        config.auth.api_token.signing_keys = vec![key("old", false), key("new", true)];
        config.validate().unwrap();
    }

    #[test]
    fn validate_failures_name_keys() {
        let cases: Vec<(&str, Edit)> = vec![
            ("server.listen", |c| c.server.listen = "localhost".into()),
            ("server.publicURL", |c| {
                c.server.public_url = Some("pin.example.com".into())
            }),
            ("server.maxBodyBytes", |c| c.server.max_body_bytes = 0),
            ("postgres.maxConnections", |c| {
                c.postgres.max_connections = 0
            }),
            ("postgres.connectTimeout", |c| {
                c.postgres.connect_timeout = secs(0)
            }),
            ("ipfs.rpc", |c| c.ipfs.rpc = "127.0.0.1:5001".into()),
            ("ipfs.pinStallTimeout", |c| {
                c.ipfs.pin_stall_timeout = secs(0)
            }),
            ("auth.apiToken.defaultTTL", |c| {
                c.auth.api_token.default_ttl = secs(10_000 * 3600)
            }),
            ("auth.session.ttl", |c| c.auth.session.ttl = secs(0)),
            ("bootstrap.sysadmins[1]", |c| {
                c.bootstrap.sysadmins = vec!["a@b".into(), "root".into()]
            }),
            ("cluster.nodeID", |c| c.cluster.node_id = " ".into()),
            ("cluster.minReplicas", |c| c.cluster.min_replicas = 0),
            ("cluster.minReplicas", |c| c.cluster.min_replicas = 2),
            ("cluster.heartbeat", |c| c.cluster.heartbeat = secs(0)),
            ("cluster.nodeTTL", |c| c.cluster.node_ttl = secs(5)),
            ("cluster.leaseTTL", |c| c.cluster.lease_ttl = secs(1)),
            ("auth.apiToken.signingKeys", |c| {
                c.auth.api_token.signing_keys = vec![key("a", false)]
            }),
            ("auth.apiToken.signingKeys", |c| {
                c.auth.api_token.signing_keys = vec![key("a", true), key("b", true)]
            }),
            ("auth.apiToken.signingKeys[1].id", |c| {
                c.auth.api_token.signing_keys = vec![key("a", true), key("a", false)]
            }),
            ("auth.apiToken.signingKeys[0].id", |c| {
                c.auth.api_token.signing_keys = vec![key("", true)]
            }),
        ];
        for (want, edit) in cases {
            assert_eq!(failing_key(edit), want);
        }
    }

    #[test]
    fn nats_keys_are_checked_only_with_the_nats_backend() {
        let mut config = Config::default();
        config.nats.prefix = "a.b".into();
        config.validate().expect("unused with the postgres backend");
        let nats = |c: &mut Config| c.cluster.backend = super::super::ClusterBackend::Nats;
        let mut config = Config::default();
        nats(&mut config);
        config.validate().expect("the defaults are valid");
        let cases: Vec<(&str, Edit)> = vec![
            ("nats.url", |c| c.nats.url = vec![]),
            ("nats.url", |c| c.nats.url = vec!["http://nats:4222".into()]),
            ("nats.prefix", |c| c.nats.prefix = "a.b".into()),
            ("nats.prefix", |c| c.nats.prefix = "a*".into()),
            ("nats.prefix", |c| c.nats.prefix = String::new()),
            ("nats.streamReplicas", |c| c.nats.stream_replicas = 0),
            ("nats.connectTimeout", |c| c.nats.connect_timeout = secs(0)),
            ("nats.tls.certFile", |c| {
                c.nats.tls.cert_file = Some("/tls/client.pem".into())
            }),
            ("cluster.leaseTTL", |c| {
                c.cluster.heartbeat = Duration::from_millis(500);
                c.cluster.lease_ttl = Duration::from_millis(1500)
            }),
        ];
        for (want, edit) in cases {
            let mut config = Config::default();
            nats(&mut config);
            edit(&mut config);
            assert_eq!(config.check().expect_err(want).key, want);
        }
    }

    #[test]
    fn validate_error_displays_key() {
        let mut config = Config::default();
        config.cluster.max_replicas = 0;
        assert_eq!(
            config.validate().unwrap_err().to_string(),
            "configuration: cluster.minReplicas: must not exceed cluster.maxReplicas (0)"
        );
    }
}
