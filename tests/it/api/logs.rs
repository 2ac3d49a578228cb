//! Structured logs from a real `anchorage serve` with `log.format: json`: one line per
//! request with method, route pattern, status, latency, org, request id and client IP —
//! and never the bearer token.

use std::time::Duration;

use anchorage::auth::Role;
use reqwest::Method;
use serde_json::{json, Value};

use crate::harness::{cluster::TestCluster, kubo::random_bytes, send};

#[tokio::test]
async fn one_json_line_per_request_and_no_secrets() {
    let c = TestCluster::start(1, (1, 1), &[("ANCHORAGE_LOG__FORMAT", "json")]).await;
    let org = c.create_org("acme").await;
    let token = c.token(Some(org), Role::Member);
    let cid = c.add_unpinned(0, random_bytes(1024)).await;
    let (code, created) = send(
        c.req(0, Method::POST, "/v1/pins", &token)
            .json(&json!({ "cid": cid })),
    )
    .await;
    assert_eq!(code, 202, "{created}");
    let id = created["requestid"].as_str().unwrap().to_string();
    let (code, _) = send(c.req(0, Method::GET, &format!("/v1/pins/{id}"), &token)).await;
    assert_eq!(code, 200);
    let (code, _) = send(c.req(0, Method::GET, "/v1/pins", "not-a-token")).await;
    assert_eq!(code, 401);

    // The line is written as the response goes out; give the writer a moment.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let log = c.log(0);
    let lines: Vec<Value> = log
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l.trim()).ok())
        .filter(|l| l["message"] == "request")
        .collect();
    let get = lines
        .iter()
        .find(|l| l["route"] == "/v1/pins/{requestid}" && l["method"] == "GET")
        .unwrap_or_else(|| panic!("no access line for the GET:\n{log}"));
    assert_eq!(get["status"], 200, "{get}");
    assert_eq!(get["requestid"], id.as_str(), "{get}");
    assert_eq!(get["org"], org.to_string(), "{get}");
    assert_eq!(get["client_ip"], "127.0.0.1", "{get}");
    assert!(get["latency_ms"].as_f64().is_some(), "{get}");
    assert!(
        lines
            .iter()
            .any(|l| l["route"] == "/v1/pins" && l["method"] == "POST" && l["status"] == 202),
        "no access line for the POST:\n{log}"
    );
    assert!(
        lines.iter().any(|l| l["status"] == 401 && l["org"] == "-"),
        "the refused request is logged without an org:\n{log}"
    );
    assert!(!log.contains(&token), "the bearer token reached the log");
    assert!(
        !log.contains("not-a-token"),
        "a presented token reached the log"
    );
    assert!(
        !log.contains(&id.replace("pin_", "/v1/pins/pin_")),
        "a raw path was logged"
    );
}
