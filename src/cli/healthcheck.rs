//! `anchorage healthcheck`: asks a running server's `/v1/health` and exits 0 only on a
//! 200, so the container image's HEALTHCHECK needs no curl or wget.

use std::{path::PathBuf, time::Duration};

use clap::Args;

use crate::error::{Error, Result};

#[derive(Debug, Args)]
pub struct HealthcheckArgs {
    /// The server's base URL. Default: server.listen on loopback.
    #[arg(long, value_name = "URL")]
    url: Option<String>,
    /// How long to wait for the answer.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "3s")]
    timeout: Duration,
}

pub async fn run(args: HealthcheckArgs, file: Option<PathBuf>) -> Result<()> {
    let base = match args.url {
        Some(url) => url,
        None => {
            let listen = super::load(file, vec![])?.server.listen;
            // A wildcard bind is reached on loopback from inside the container.
            let (host, port) = listen.rsplit_once(':').unwrap_or((&listen, "8080"));
            let host = match host {
                "0.0.0.0" | "[::]" | "" => "127.0.0.1",
                other => other,
            };
            format!("http://{host}:{port}")
        }
    };
    let url = format!("{}/v1/health", base.trim_end_matches('/'));
    let client = reqwest::Client::builder()
        .timeout(args.timeout)
        .build()
        .map_err(|e| Error::Internal(format!("HTTP client: {e}")))?;
    let response = client
        .get(&url)
        .send()
        .await
        .map_err(|e| Error::Unavailable(format!("{url}: {e}")))?;
    match response.status().as_u16() {
        200 => {
            println!("healthy: {url}");
            Ok(())
        }
        status => Err(Error::Unavailable(format!("{url} answered {status}"))),
    }
}
