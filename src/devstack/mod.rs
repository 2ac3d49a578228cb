//! `anchorage dev`: everything a first run needs on one machine — a private Postgres,
//! migrations, a dev signing key, a demo org with a member and a sysadmin token, a local
//! IPFS node when no Kubo answers, a local NATS server for `--backend nats` — written down in `DATA_DIR/anchorage.yaml` and
//! `DATA_DIR/dev.env` so the CLI and scripts can act on the same stack.
//!
//! Imported by `cli` only; see the layer table in docs/architecture.md.

pub mod kubo;
pub mod nats;
pub mod postgres;

use std::{
    fs,
    path::{Path, PathBuf},
    time::Duration,
};

use futures_util::FutureExt;
use serde_json::json;

use crate::{
    auth::{keys, MintRequest, Role},
    config::{Config, ConfigSource},
    db::{self, migrate, PoolOptions},
    error::{Error, Result},
    kubo::{Kubo, KuboClient},
    server,
    tenancy::{orgs, users},
};

/// Names used inside the private cluster.
const DB_NAME: &str = "anchorage";
const OWNER_ROLE: &str = "anchorage_owner";
const APP_ROLE: &str = "anchorage";
const DEV_KEY_ID: &str = "dev-1";
const DEMO_ORG: &str = "demo";

/// What `dev` started and what it wrote.
pub struct DevStack {
    pub config: Config,
    pub data_dir: PathBuf,
    pub postgres: Option<postgres::PgCluster>,
    pub kubo: Option<kubo::LocalKubo>,
    pub nats: Option<nats::LocalNats>,
    pub env: DevEnv,
}

/// The contents of `dev.env`.
#[derive(Debug, Clone)]
pub struct DevEnv {
    pub url: String,
    pub org: String,
    pub token: String,
    pub admin_token: String,
}

impl DevStack {
    /// Brings everything up. `src` carries the user's env and flags, which override what
    /// `dev` writes exactly as they would for `serve`.
    pub async fn up(data_dir: &Path, src: &ConfigSource) -> Result<Self> {
        fs::create_dir_all(data_dir)
            .map_err(|e| Error::io(format!("creating {}", data_dir.display()), e))?;
        let data_dir = fs::canonicalize(data_dir)
            .map_err(|e| Error::io(format!("resolving {}", data_dir.display()), e))?;
        // What the user configured without us (env, flags, --config).
        let user = crate::config::load(src)?.config;
        let defaults = Config::default();

        // Whatever fails from here on, the private Postgres we start does not outlive it.
        let mut pg = StopOnFailure(None);
        let (dsn, migration_dsn) = if user.postgres.dsn.expose() != defaults.postgres.dsn.expose() {
            let migration = user
                .postgres
                .migration_dsn
                .as_ref()
                .unwrap_or(&user.postgres.dsn);
            (
                user.postgres.dsn.expose().to_string(),
                migration.expose().to_string(),
            )
        } else {
            let dir = data_dir.join("postgres");
            let port = read_port(&data_dir.join("postgres.port"));
            let cluster = tokio::task::spawn_blocking(move || {
                postgres::PgCluster::ensure_started(
                    &dir,
                    &postgres::StartOptions {
                        preferred_port: port,
                        settings: vec![],
                    },
                )
            })
            .await
            .map_err(|e| Error::Internal(e.to_string()))??;
            let _ = fs::write(data_dir.join("postgres.port"), cluster.port.to_string());
            postgres::provision(
                &cluster.dsn("postgres", "postgres"),
                DB_NAME,
                OWNER_ROLE,
                APP_ROLE,
            )
            .await?;
            let urls = (
                cluster.dsn(APP_ROLE, DB_NAME),
                cluster.dsn(OWNER_ROLE, DB_NAME),
            );
            tracing::info!(port = cluster.port, dir = %cluster.data_dir.display(), "private PostgreSQL is up");
            pg.0 = Some(cluster);
            urls
        };
        let server_role = migrate::dsn_user(&dsn);
        let applied = migrate::up(&migration_dsn, server_role.as_deref()).await?;
        if !applied.is_empty() {
            tracing::info!(count = applied.len(), "applied migrations");
        }

        let mut local_kubo = None;
        let probe = KuboClient::new(&user.ipfs.rpc, Duration::from_secs(3))?;
        let rpc = match probe.id().await {
            Ok(id) => {
                tracing::info!(rpc = %user.ipfs.rpc, peer = %id.id, "using the Kubo that answers at ipfs.rpc");
                user.ipfs.rpc.clone()
            }
            Err(_) => {
                let repo = data_dir.join("ipfs");
                let ports = kubo::KuboPorts {
                    api: read_port(&data_dir.join("ipfs.api.port"))
                        .filter(|p| port_free(*p))
                        .unwrap_or(0),
                    swarm: read_port(&data_dir.join("ipfs.swarm.port"))
                        .filter(|p| port_free(*p))
                        .unwrap_or(0),
                };
                let node =
                    tokio::task::spawn_blocking(move || kubo::LocalKubo::start(&repo, ports))
                        .await
                        .map_err(|e| Error::Internal(e.to_string()))??;
                remember_ports(&data_dir, &node);
                tracing::info!(rpc = %node.api(), peer = %node.ready.peer_id, "started a local IPFS node");
                let api = node.api().to_string();
                local_kubo = Some(node);
                api
            }
        };

        // `--backend nats` without a NATS of the user's own: a local one in the data dir.
        let mut local_nats = None;
        let uses_nats = user.cluster.backend == crate::config::ClusterBackend::Nats;
        if uses_nats && user.nats.url == defaults.nats.url {
            let port = read_port(&data_dir.join("nats.port"))
                .filter(|p| port_free(*p))
                .map_or_else(postgres::free_port, Ok)?;
            let store = data_dir.join("nats");
            let server = tokio::task::spawn_blocking(move || nats::LocalNats::start(&store, port))
                .await
                .map_err(|e| Error::Internal(e.to_string()))??;
            let _ = fs::write(data_dir.join("nats.port"), port.to_string());
            tracing::info!(url = %server.url(), "started a local NATS server with JetStream");
            local_nats = Some(server);
        }

        let signing_keys = if user.auth.api_token.signing_keys.is_empty() {
            let path = data_dir.join("keys").join(DEV_KEY_ID);
            if !path.exists() {
                keys::write_new_key_file(&path)?;
            }
            json!([{ "id": DEV_KEY_ID, "path": path, "primary": true }])
        } else {
            serde_json::to_value(&user.auth.api_token.signing_keys)
                .map_err(|e| Error::Internal(e.to_string()))?
        };
        let yaml_path = data_dir.join("anchorage.yaml");
        write_private(
            &yaml_path,
            &dev_yaml(&json!({
                "postgres": { "dsn": dsn, "migrationDSN": migration_dsn },
                "ipfs": { "rpc": rpc },
                "auth": { "apiToken": { "signingKeys": signing_keys } },
            }))?,
        )?;

        // The config `serve` runs with: dev's file, then the user's env and flags on top
        // — except that a local IPFS node we had to start replaces an ipfs.rpc that did
        // not answer.
        let mut final_src = ConfigSource {
            file: Some(yaml_path),
            ..src.clone()
        };
        if local_kubo.is_some() {
            final_src.overrides.push(("ipfs.rpc".into(), json!(rpc)));
        }
        if let Some(server) = &local_nats {
            final_src
                .overrides
                .push(("nats.url".into(), json!([server.url()])));
        }
        let config = crate::config::load(&final_src)?.config;
        let env = seed_demo(&config).await?;
        write_private(
            &data_dir.join("dev.env"),
            &format!(
                "ANCHORAGE_URL={}\nANCHORAGE_ORG={}\nANCHORAGE_TOKEN={}\nANCHORAGE_ADMIN_TOKEN={}\n",
                env.url, env.org, env.token, env.admin_token
            ),
        )?;
        Ok(Self {
            config,
            data_dir,
            postgres: pg.0.take(),
            kubo: local_kubo,
            nats: local_nats,
            env,
        })
    }

    /// The banner printed before serving.
    pub fn banner(&self) -> String {
        let env_file = self.data_dir.join("dev.env");
        format!(
            "\n  anchorage dev is ready\n\n  service endpoint  {url}\n  demo org          {org}\n  credentials       {env}\n\n  Point Kubo at it:\n    ipfs pin remote service add anchorage {url} \"$(grep ^ANCHORAGE_TOKEN= {env} | cut -d= -f2-)\"\n\n  Or load the variables:  set -a; . {env}; set +a\n  Admin CLI on this stack: anchorage --config {cfg} admin org list\n\n  Console: {console}/console/ (sign in with ANCHORAGE_TOKEN, or ANCHORAGE_ADMIN_TOKEN as sysadmin)\n",
            url = self.env.url,
            org = self.env.org,
            env = env_file.display(),
            cfg = self.data_dir.join("anchorage.yaml").display(),
            console = self.env.url.trim_end_matches('/').trim_end_matches("/v1"),
        )
    }

    /// Stops what `dev` started (the local IPFS and NATS servers, the private Postgres).
    pub fn down(mut self) {
        if let Some(mut server) = self.nats.take() {
            server.stop();
        }
        if let Some(mut node) = self.kubo.take() {
            node.stop();
        }
        if let Some(pg) = self.postgres.take().filter(|pg| pg.started_here) {
            if let Err(e) = pg.stop() {
                tracing::warn!(error = %e, "stopping the private PostgreSQL");
            }
        }
    }
}

/// Holds the private Postgres while `dev` brings the rest up, and stops it (if `dev`
/// started it) when that fails; a local IPFS node stops on its own when dropped.
struct StopOnFailure(Option<postgres::PgCluster>);

impl Drop for StopOnFailure {
    fn drop(&mut self) {
        if let Some(pg) = self.0.take().filter(|pg| pg.started_here) {
            tracing::info!("stopping the private PostgreSQL: dev did not come up");
            if let Err(e) = pg.stop() {
                tracing::warn!(error = %e, "stopping the private PostgreSQL");
            }
        }
    }
}

/// Ensures the demo org, a member and a sysadmin, and mints a token for each.
async fn seed_demo(config: &Config) -> Result<DevEnv> {
    let pool = db::build_pool(config.postgres.dsn.expose(), &PoolOptions::default())?;
    let (org, member, admin) = db::system_tx(&pool, |conn| {
        async move {
            let org = orgs::store::ensure(conn, DEMO_ORG).await?;
            let member = users::ensure_by_email(conn, "demo@anchorage.local", false).await?;
            users::set_membership(conn, org.id, member, Role::Member).await?;
            let admin = users::ensure_by_email(conn, "admin@anchorage.local", true).await?;
            Ok((org, member, admin))
        }
        .boxed()
    })
    .await?;
    pool.close();
    let tokens = server::token_service(config)?;
    let ttl = config.auth.api_token.default_ttl;
    let token = tokens.mint(MintRequest {
        sub: member.to_string(),
        org: Some(org.id),
        role: Role::Member,
        scopes: None,
        ttl,
    })?;
    let admin_token = tokens.mint(MintRequest {
        sub: admin.to_string(),
        org: None,
        role: Role::Sysadmin,
        scopes: None,
        ttl,
    })?;
    Ok(DevEnv {
        url: format!("{}/v1", public_base(config)),
        org: org.id.to_string(),
        token: token.jwt,
        admin_token: admin_token.jwt,
    })
}

/// The URL clients use: `server.publicURL`, else the listen address (a wildcard host
/// becomes 127.0.0.1).
pub fn public_base(config: &Config) -> String {
    if let Some(url) = &config.server.public_url {
        return url.trim_end_matches('/').to_string();
    }
    let listen = config
        .server
        .listen
        .replace("0.0.0.0", "127.0.0.1")
        .replace("[::]", "[::1]");
    format!("http://{listen}")
}

fn dev_yaml(value: &serde_json::Value) -> Result<String> {
    let body = serde_yaml_ng::to_string(value).map_err(|e| Error::Internal(e.to_string()))?;
    Ok(format!(
        "# Written by `anchorage dev` on every run; ANCHORAGE_* env and flags override it.\n{body}"
    ))
}

fn write_private(path: &Path, contents: &str) -> Result<()> {
    use std::io::Write;
    let mut options = fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options
        .open(path)
        .and_then(|mut f| f.write_all(contents.as_bytes()))
        .map_err(|e| Error::io(format!("writing {}", path.display()), e))
}

fn read_port(path: &Path) -> Option<u16> {
    fs::read_to_string(path).ok()?.trim().parse().ok()
}

fn port_free(port: u16) -> bool {
    std::net::TcpListener::bind(("127.0.0.1", port)).is_ok()
}

fn remember_ports(data_dir: &Path, node: &kubo::LocalKubo) {
    let api_port = node
        .api()
        .rsplit(':')
        .next()
        .unwrap_or_default()
        .to_string();
    let _ = fs::write(data_dir.join("ipfs.api.port"), api_port);
    if let Some(swarm) = node.ready.addrs.iter().find_map(|a| {
        a.split("/tcp/")
            .nth(1)
            .and_then(|rest| rest.split('/').next())
    }) {
        let _ = fs::write(data_dir.join("ipfs.swarm.port"), swarm);
    }
}
