//! A pass-through proxy in front of a real IPFS node that counts the RPC calls it
//! forwards, per path and per path and `arg`: how a test sees how often anchorage really
//! asked the node.

use std::{
    collections::HashMap,
    net::TcpListener,
    sync::{Arc, Mutex},
};

use actix_web::{dev::ServerHandle, web, App, HttpRequest, HttpResponse, HttpServer};

/// A running proxy; stopped on drop.
pub struct CountingProxy {
    pub url: String,
    calls: Arc<Mutex<HashMap<String, usize>>>,
    handle: ServerHandle,
}

#[derive(Clone)]
struct Target {
    base: String,
    http: reqwest::Client,
    calls: Arc<Mutex<HashMap<String, usize>>>,
}

impl CountingProxy {
    /// Forwards every request to `target` (an RPC base URL).
    pub fn start(target: &str) -> Self {
        let calls = Arc::new(Mutex::new(HashMap::new()));
        let state = Target {
            base: target.trim_end_matches('/').to_string(),
            http: reqwest::Client::new(),
            calls: calls.clone(),
        };
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let server = HttpServer::new(move || {
            App::new()
                .app_data(web::Data::new(state.clone()))
                .default_service(web::to(forward))
        })
        .workers(1)
        .disable_signals()
        .listen(listener)
        .unwrap()
        .run();
        let handle = server.handle();
        tokio::spawn(server);
        Self { url, calls, handle }
    }

    /// How many calls to `path` (e.g. `/api/v0/id`) went through so far.
    pub fn calls(&self, path: &str) -> usize {
        self.calls.lock().unwrap().get(path).copied().unwrap_or(0)
    }

    /// How many calls to `path` named `arg` (e.g. a CID) in their `arg` parameters.
    pub fn calls_with(&self, path: &str, arg: &str) -> usize {
        let key = format!("{path} {arg}");
        self.calls.lock().unwrap().get(&key).copied().unwrap_or(0)
    }
}

async fn forward(req: HttpRequest, body: web::Bytes, target: web::Data<Target>) -> HttpResponse {
    {
        let mut calls = target.calls.lock().unwrap();
        *calls.entry(req.path().to_string()).or_default() += 1;
        for (k, v) in url::form_urlencoded::parse(req.query_string().as_bytes()) {
            if k == "arg" {
                *calls.entry(format!("{} {v}", req.path())).or_default() += 1;
            }
        }
    }
    let url = format!("{}{}", target.base, req.uri());
    let method = reqwest::Method::from_bytes(req.method().as_str().as_bytes()).unwrap();
    let mut out = target.http.request(method, url).body(body.to_vec());
    if let Some(ct) = req.headers().get("content-type") {
        out = out.header("content-type", ct.as_bytes());
    }
    match out.send().await {
        Ok(resp) => {
            let status = resp.status().as_u16();
            let bytes = resp.bytes().await.unwrap_or_default();
            HttpResponse::build(actix_web::http::StatusCode::from_u16(status).unwrap()).body(bytes)
        }
        Err(e) => HttpResponse::BadGateway().body(e.to_string()),
    }
}

impl Drop for CountingProxy {
    fn drop(&mut self) {
        let handle = self.handle.clone();
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move { handle.stop(false).await });
        }
    }
}
