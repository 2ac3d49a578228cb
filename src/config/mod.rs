//! anchorage configuration.
//!
//! Layers, each over the one before: built-in defaults
//! ([`Config::default`]), a YAML file (`--config`, else
//! `/etc/anchorage/anchorage.yaml` if present), `ANCHORAGE_*` environment
//! variables (see [`env_name`]), then command-line flags. [`load`] merges
//! them, rejects unknown keys and bad values naming the dotted key (e.g.
//! `configuration: cluster.minReplicas: invalid type: string "x", expected
//! u32`) and runs [`Config::validate`]. `packaging/anchorage.yaml.example`
//! lists every key; tests keep it in step with the defaults.
//!
//! Secrets are [`Secret`]s: `Debug` never shows them; log
//! [`Config::redacted_summary`] at start-up.
//!
//! Imported by `telemetry`, `state`, `api`, `auth`, `server`, `devstack`, `cli`; see
//! the layer table in docs/architecture.md.

mod defaults;
mod duration;
mod env;
mod load;
mod model;
mod secret;
mod secret_files;
mod validate;

#[cfg(test)]
mod example_file;
#[cfg(test)]
mod tests;

pub use env::{env_name, ENV_PREFIX, RESERVED_ENV};
pub use load::{load, ConfigSource, Loaded, DEFAULT_CONFIG_FILE};
pub use model::{
    ApiToken, Auth, Authentik, Bootstrap, Cluster, ClusterBackend, Config, Ipfs, Log, LogFormat,
    Metrics, Nats, NatsTls, Postgres, RateLimit, Server, Session, SigningKey,
};
pub use secret::{redact_url, Secret};

/// `iss`/`aud` of API tokens when neither anchorage nor Authentik sets one.
const DEFAULT_TOKEN_CLAIM: &str = "anchorage";

impl Config {
    /// `iss` of API tokens: `auth.apiToken.issuer`, else
    /// `auth.authentik.issuer`, else `"anchorage"`.
    pub fn token_issuer(&self) -> &str {
        let auth = &self.auth;
        auth.api_token
            .issuer
            .as_deref()
            .or(auth.authentik.issuer.as_deref())
            .unwrap_or(DEFAULT_TOKEN_CLAIM)
    }

    /// `aud` of API tokens: `auth.apiToken.audience`, else
    /// `auth.authentik.audience`, else `"anchorage"`.
    pub fn token_audience(&self) -> &str {
        let auth = &self.auth;
        auth.api_token
            .audience
            .as_deref()
            .or(auth.authentik.audience.as_deref())
            .unwrap_or(DEFAULT_TOKEN_CLAIM)
    }

    /// One line of `key=value` pairs safe to log at start-up. It is built
    /// field by field rather than by filtering a dump, so a secret added
    /// later cannot slip in; URLs go through [`redact_url`] because
    /// `nats://` and `http://` URLs can carry credentials too.
    pub fn redacted_summary(&self) -> String {
        let unset = || "-".to_owned();
        let cidrs: Vec<String> = self
            .server
            .metrics
            .allow_cidrs
            .iter()
            .map(ToString::to_string)
            .collect();
        let keys: Vec<String> = (self.auth.api_token.signing_keys.iter())
            .map(|k| {
                if k.primary {
                    format!("{}*", k.id)
                } else {
                    k.id.clone()
                }
            })
            .collect();
        let mut pairs = vec![
            ("server.listen", self.server.listen.clone()),
            (
                "server.publicURL",
                self.server.public_url.clone().unwrap_or_else(unset),
            ),
            (
                "server.metrics.allowCIDRs",
                if cidrs.is_empty() {
                    "none".to_owned()
                } else {
                    cidrs.join(",")
                },
            ),
            ("postgres.dsn", self.postgres.dsn.redacted()),
            (
                "postgres.migrationDSN",
                self.postgres
                    .migration_dsn
                    .as_ref()
                    .map_or_else(unset, Secret::redacted),
            ),
            (
                "postgres.maxConnections",
                self.postgres.max_connections.to_string(),
            ),
            ("ipfs.rpc", redact_url(&self.ipfs.rpc)),
            ("ipfs.delegates", self.ipfs.delegates.len().to_string()),
            (
                "auth.authentik.issuer",
                self.auth.authentik.issuer.clone().unwrap_or_else(unset),
            ),
            ("auth.apiToken.issuer", self.token_issuer().to_owned()),
            ("auth.apiToken.audience", self.token_audience().to_owned()),
            (
                "auth.apiToken.signingKeys",
                if keys.is_empty() {
                    "none".to_owned()
                } else {
                    keys.join(",")
                },
            ),
            // Count only: the addresses are personal data.
            (
                "bootstrap.sysadmins",
                self.bootstrap.sysadmins.len().to_string(),
            ),
            ("cluster.nodeID", self.cluster.node_id.clone()),
            ("cluster.backend", self.cluster.backend.as_str().to_owned()),
            (
                "cluster.replicas",
                format!(
                    "{}..{}",
                    self.cluster.min_replicas, self.cluster.max_replicas
                ),
            ),
        ];
        if self.cluster.backend == ClusterBackend::Nats {
            let urls: Vec<String> = self.nats.url.iter().map(|u| redact_url(u)).collect();
            pairs.push(("nats.url", urls.join(",")));
            pairs.push(("nats.prefix", self.nats.prefix.clone()));
        }
        pairs.push(("log.level", self.log.level.clone()));
        pairs.push(("log.format", self.log.format.as_str().to_owned()));
        pairs
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(" ")
    }
}
