//! A scripted Kubo for faults a real daemon cannot be made to produce on demand: 500s,
//! hangs, malformed or truncated streams, progress that never moves. The behaviour is
//! chosen by the `arg` of the call.

use std::{collections::HashMap, net::TcpListener, time::Duration};

use actix_web::{dev::ServerHandle, web, App, HttpRequest, HttpResponse, HttpServer};
use futures_util::stream;

/// A running fake; stopped on drop.
pub struct FakeKubo {
    pub url: String,
    handle: ServerHandle,
}

/// Maps a call's `arg` (e.g. a real CID) to one of the scripted behaviours.
#[derive(Clone, Default)]
struct Behaviours(HashMap<String, String>);

impl FakeKubo {
    /// Behaviour chosen by the `arg` itself (`arg=hang`, …).
    pub fn start() -> Self {
        Self::start_with(HashMap::new())
    }

    /// Behaviour chosen through `behaviours` (arg → behaviour name) first; `pin/ls` of
    /// anything answers "not pinned".
    pub fn start_with(behaviours: HashMap<String, String>) -> Self {
        let behaviours = Behaviours(behaviours);
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let server = HttpServer::new(move || {
            App::new()
                .app_data(web::Data::new(behaviours.clone()))
                .default_service(web::to(handle))
        })
        .workers(1)
        .disable_signals()
        .listen(listener)
        .unwrap()
        .run();
        let handle = server.handle();
        tokio::spawn(server);
        Self { url, handle }
    }
}

impl Drop for FakeKubo {
    fn drop(&mut self) {
        let handle = self.handle.clone();
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move { handle.stop(false).await });
        }
    }
}

fn arg(req: &HttpRequest) -> String {
    req.query_string()
        .split('&')
        .find_map(|kv| kv.strip_prefix("arg="))
        .unwrap_or_default()
        .to_string()
}

type Lines = Vec<(u64, String)>;

/// Streams `lines`, each after its delay in ms.
fn stream_lines(lines: Lines) -> HttpResponse {
    let body = stream::unfold(lines.into_iter(), |mut it| async move {
        let (delay, line) = it.next()?;
        tokio::time::sleep(Duration::from_millis(delay)).await;
        Some((Ok::<_, actix_web::Error>(web::Bytes::from(line)), it))
    });
    HttpResponse::Ok()
        .content_type("application/json")
        .insert_header(("X-Chunked-Output", "1"))
        .streaming(body)
}

async fn handle(req: HttpRequest, behaviours: web::Data<Behaviours>) -> HttpResponse {
    let path = req.path().to_string();
    let raw = arg(&req);
    let arg = behaviours.0.get(&raw).cloned().unwrap_or(raw);
    match (path.as_str(), arg.as_str()) {
        ("/api/v0/pin/ls", _) => HttpResponse::InternalServerError().json(
            serde_json::json!({"Message": format!("path '{arg}' is not pinned"), "Code": 0, "Type": "error"}),
        ),
        ("/api/v0/id", _) => HttpResponse::ServiceUnavailable().body("starting up"),
        ("/api/v0/version", _) => {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            HttpResponse::Ok().finish()
        }
        (_, "error500") => HttpResponse::InternalServerError().json(
            serde_json::json!({"Message": "blockstore: disk full", "Code": 0, "Type": "error"}),
        ),
        (_, "hang") => {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            HttpResponse::Ok().finish()
        }
        (_, "malformed") => stream_lines(vec![
            (0, "{\"Progress\":1}\n".into()),
            (50, "this is not json\n".into()),
        ]),
        (_, "truncated") => stream_lines(
            (1..=4)
                .map(|i| (50, format!("{{\"Progress\":{i}}}\n")))
                .collect(),
        ),
        (_, "flat") => stream_lines(
            (0..400)
                .map(|_| (50, "{\"Progress\":5}\n".to_string()))
                .collect(),
        ),
        (_, "error-line") => stream_lines(vec![
            (0, "{\"Progress\":2}\n".into()),
            (
                50,
                "{\"Message\":\"merkledag: not found\",\"Code\":0,\"Type\":\"error\"}\n".into(),
            ),
        ]),
        (_, "slow-but-moving") => {
            let mut lines: Lines = (1..=12)
                .map(|i| (250, format!("{{\"Progress\":{i}}}\n")))
                .collect();
            lines.push((
                0,
                "{\"Pins\":[\"slow-but-moving\"],\"Progress\":12}\n".into(),
            ));
            stream_lines(lines)
        }
        _ => HttpResponse::NotFound().body("404 page not found"),
    }
}
