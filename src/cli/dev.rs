//! `anchorage dev`: the quickstart.

use std::path::PathBuf;

use clap::Args;

use crate::{config::ConfigSource, devstack::DevStack, error::Result, server};

#[derive(Debug, Args)]
pub struct DevArgs {
    /// Where the private Postgres, IPFS repo, dev key, anchorage.yaml and dev.env live.
    #[arg(long, value_name = "DIR", default_value = ".anchorage")]
    data_dir: PathBuf,
    /// Address to listen on (overrides server.listen).
    #[arg(long, value_name = "ADDR")]
    listen: Option<String>,
    /// Cluster backend (overrides cluster.backend). With `nats` and no nats.url of
    /// your own, a local nats-server with JetStream runs in the data dir.
    #[arg(long, value_name = "BACKEND", value_parser = ["postgres", "nats"])]
    backend: Option<String>,
}

pub async fn run(args: DevArgs, file: Option<PathBuf>) -> Result<()> {
    let mut src = ConfigSource::from_process(file);
    if let Some(listen) = &args.listen {
        src.overrides.push((
            "server.listen".into(),
            serde_json::Value::String(listen.clone()),
        ));
    }
    if let Some(backend) = &args.backend {
        src.overrides.push((
            "cluster.backend".into(),
            serde_json::Value::String(backend.clone()),
        ));
    }
    // Logging from the user's layers first, so set-up progress is visible.
    super::load_from(&src)?;
    let stack = DevStack::up(&args.data_dir, &src).await?;
    let served = async {
        let state = server::build_state(stack.config.clone()).await?;
        eprintln!("{}", stack.banner());
        server::serve_until_signal(state).await
    }
    .await;
    tracing::info!("stopping the dev stack");
    tokio::task::spawn_blocking(move || stack.down()).await.ok();
    served
}
