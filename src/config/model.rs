//! The typed configuration tree (its defaults are in `defaults.rs`).
//!
//! Field names follow the YAML keys (camelCase, acronyms kept whole, hence
//! the explicit renames). Every struct denies unknown fields so a typo in the
//! file fails at start-up instead of being ignored. Numbers and booleans are
//! never optional: the layering code types an environment value after the
//! default's JSON type, and `null` would not say whether a number is meant.

use std::path::PathBuf;
use std::time::Duration;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use super::duration;
use super::secret::Secret;

/// The whole anchorage configuration.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// HTTP server.
    pub server: Server,
    /// The metadata database.
    pub postgres: Postgres,
    /// The IPFS (Kubo) node that holds the pins.
    pub ipfs: Ipfs,
    /// Login (Authentik OIDC), API tokens and sessions.
    pub auth: Auth,
    /// Accounts created at start-up.
    pub bootstrap: Bootstrap,
    /// Multi-node coordination.
    pub cluster: Cluster,
    /// NATS, used when `cluster.backend` is `nats`.
    pub nats: Nats,
    /// Logging.
    pub log: Log,
}

/// `server.*`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct Server {
    /// Socket address to listen on.
    pub listen: String,
    /// The externally visible base URL (banners, OIDC redirects).
    #[serde(rename = "publicURL")]
    pub public_url: Option<String>,
    /// Largest accepted request body.
    pub max_body_bytes: usize,
    /// How long in-flight requests get to finish on shutdown.
    #[serde(with = "duration")]
    pub shutdown_timeout: Duration,
    /// `/metrics` access.
    pub metrics: Metrics,
    /// Request rate limits.
    pub rate_limit: RateLimit,
    /// Reverse proxies whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<IpNet>,
    /// Open `/v1/events` sockets one caller (token subject or person) may hold on one
    /// node; 0 = no limit.
    pub max_event_sockets_per_caller: u32,
}

/// `server.metrics.*`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Metrics {
    /// Client networks allowed to scrape `/metrics`; empty disables it.
    #[serde(rename = "allowCIDRs")]
    pub allow_cidrs: Vec<IpNet>,
}

/// `server.rateLimit.*`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct RateLimit {
    /// Login/session requests per client per minute.
    pub session_per_minute: u32,
    /// Unauthenticated requests per client per minute.
    pub anonymous_per_minute: u32,
    /// Authenticated requests per org per minute; 0 turns the limit off.
    pub org_per_minute: u32,
}

/// `postgres.*`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct Postgres {
    /// Connection string of the service's pool.
    pub dsn: Secret,
    /// Connection string for migrations (a more privileged role); `dsn` when unset.
    #[serde(rename = "migrationDSN")]
    pub migration_dsn: Option<Secret>,
    /// A file holding the password of `dsn`'s user (e.g. a container secret).
    pub password_file: Option<PathBuf>,
    /// A file holding the password of `migrationDSN`'s user.
    pub migration_password_file: Option<PathBuf>,
    /// Pool size.
    pub max_connections: usize,
    /// Time allowed to open a connection.
    #[serde(with = "duration")]
    pub connect_timeout: Duration,
    /// Server-side `statement_timeout`; `0s` disables it.
    #[serde(with = "duration")]
    pub statement_timeout: Duration,
}

/// `ipfs.*`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct Ipfs {
    /// Kubo RPC API base URL.
    pub rpc: String,
    /// Multiaddrs announced as delegates in pin status responses.
    pub delegates: Vec<String>,
    /// Announce only publicly routable delegates.
    pub public_delegates_only: bool,
    /// Allow users' origins to point at private/loopback addresses.
    pub allow_private_origins: bool,
    /// A pin making no progress for this long is failed.
    #[serde(with = "duration")]
    pub pin_stall_timeout: Duration,
    /// Timeout of one RPC request.
    #[serde(with = "duration")]
    pub request_timeout: Duration,
    /// Most origins dialled per pin request.
    pub max_origin_connects: u32,
    /// Pins this node runs against its Kubo at once.
    pub max_concurrent_pins: u32,
    /// Attempts before a placement is `failed`.
    pub max_attempts: u32,
    /// Delay before the first retry; doubles per attempt.
    #[serde(with = "duration")]
    pub retry_base_delay: Duration,
    /// A placement queued or pinning this long without news gets a fresh job.
    #[serde(with = "duration")]
    pub requeue_after: Duration,
    /// How often the reconciler compares Kubo's pins with the placements.
    #[serde(with = "duration")]
    pub reconcile_interval: Duration,
    /// How long an anchorage-owned pin no placement wants survives before removal.
    #[serde(with = "duration")]
    pub orphan_grace_period: Duration,
}

/// `auth.*`
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct Auth {
    /// The OIDC provider.
    pub authentik: Authentik,
    /// Bearer tokens minted by anchorage.
    pub api_token: ApiToken,
    /// Browser sessions.
    pub session: Session,
}

/// `auth.authentik.*`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Authentik {
    /// OIDC issuer URL.
    pub issuer: Option<String>,
    /// OIDC client id.
    #[serde(rename = "clientID")]
    pub client_id: Option<String>,
    /// Expected `aud` of ID tokens.
    pub audience: Option<String>,
    /// Count the email of an ID token that does not say `email_verified: true` (for
    /// adoption, invitations and bootstrap). Only for providers whose every email is
    /// verified but that do not say so.
    #[serde(rename = "trustUnverifiedEmail")]
    pub trust_unverified_email: bool,
    /// The path under `server.publicURL` the provider sends people back to (the
    /// redirect URI to register is publicURL + this). `/auth/callback` is always
    /// accepted too.
    #[serde(rename = "redirectPath")]
    pub redirect_path: String,
}

/// `auth.apiToken.*`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct ApiToken {
    /// Keys that sign and verify tokens; the `primary` one signs.
    pub signing_keys: Vec<SigningKey>,
    /// `iss` of minted tokens; see [`Config::token_issuer`].
    pub issuer: Option<String>,
    /// `aud` of minted tokens; see [`Config::token_audience`].
    pub audience: Option<String>,
    /// Lifetime of a token when the request names none.
    #[serde(rename = "defaultTTL", with = "duration")]
    pub default_ttl: Duration,
    /// Longest lifetime a token may be given.
    #[serde(rename = "maxTTL", with = "duration")]
    pub max_ttl: Duration,
}

/// One entry of `auth.apiToken.signingKeys`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SigningKey {
    /// Key id (the JWT `kid`).
    pub id: String,
    /// File holding the key material.
    pub path: PathBuf,
    /// Whether this key signs new tokens (others only verify).
    #[serde(default)]
    pub primary: bool,
}

/// `auth.session.*`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Session {
    /// Session lifetime.
    #[serde(with = "duration")]
    pub ttl: Duration,
}

/// `bootstrap.*`
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Bootstrap {
    /// E-mail addresses made system administrators on login.
    pub sysadmins: Vec<String>,
}

/// `cluster.*`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct Cluster {
    /// This node's unique name.
    #[serde(rename = "nodeID")]
    pub node_id: String,
    /// Coordination backend.
    pub backend: ClusterBackend,
    /// Fewest nodes that must hold each pin.
    pub min_replicas: u32,
    /// Most nodes that hold each pin.
    pub max_replicas: u32,
    /// Liveness heartbeat interval.
    #[serde(with = "duration")]
    pub heartbeat: Duration,
    /// A node silent this long is considered gone.
    #[serde(rename = "nodeTTL", with = "duration")]
    pub node_ttl: Duration,
    /// Lifetime of a work lease not renewed.
    #[serde(rename = "leaseTTL", with = "duration")]
    pub lease_ttl: Duration,
    /// Wait after a node is gone before re-replicating its pins.
    #[serde(with = "duration")]
    pub repair_delay: Duration,
}

/// `cluster.backend`
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ClusterBackend {
    /// Coordinate through the database.
    #[default]
    Postgres,
    /// Coordinate through NATS (`nats.url`).
    Nats,
}

impl ClusterBackend {
    /// The YAML spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Postgres => "postgres",
            Self::Nats => "nats",
        }
    }
}

/// `nats.*`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct Nats {
    /// Server URLs (one string or a list); the client reconnects to any of them.
    #[serde(deserialize_with = "one_or_many")]
    pub url: Vec<String>,
    /// A `.creds` file (user JWT and nkey seed) for decentralised auth.
    pub creds_file: Option<PathBuf>,
    /// An auth token.
    pub token: Option<Secret>,
    /// A file holding the auth token (e.g. a container secret).
    pub token_file: Option<PathBuf>,
    /// TLS to the servers.
    pub tls: NatsTls,
    /// Replicas of each JetStream stream and bucket: 1 for a single server, 3 for a
    /// three-server NATS cluster.
    pub stream_replicas: u32,
    /// Prefix of every stream, bucket and subject anchorage uses.
    pub prefix: String,
    /// How long start-up keeps trying to reach a server before giving up.
    #[serde(with = "duration")]
    pub connect_timeout: Duration,
}

/// `nats.tls.*`
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct NatsTls {
    /// Require TLS (also implied by a `tls://` URL).
    pub required: bool,
    /// CA bundle (PEM) the servers' certificates are checked against, besides the
    /// public roots.
    pub ca_file: Option<PathBuf>,
    /// Client certificate (PEM) for mutual TLS; needs `keyFile`.
    pub cert_file: Option<PathBuf>,
    /// The client certificate's private key (PEM).
    pub key_file: Option<PathBuf>,
}

/// A string or a list of strings, as a list.
fn one_or_many<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(match OneOrMany::deserialize(d)? {
        OneOrMany::One(s) => vec![s],
        OneOrMany::Many(v) => v,
    })
}

/// `log.*`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Log {
    /// `tracing_subscriber::EnvFilter` directives, e.g. `info,anchorage=debug`.
    pub level: String,
    /// Output format.
    pub format: LogFormat,
}

/// `log.format`
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

impl LogFormat {
    /// The YAML spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Text => "text",
            Self::Json => "json",
        }
    }
}

impl Postgres {
    /// The DSN migrations run with: `migrationDSN`, else `dsn`.
    pub fn dsn_for_migrations(&self) -> &Secret {
        self.migration_dsn.as_ref().unwrap_or(&self.dsn)
    }
}

impl ApiToken {
    /// The key that signs new tokens, if any keys are configured.
    pub fn primary_key(&self) -> Option<&SigningKey> {
        self.signing_keys.iter().find(|k| k.primary)
    }
}
