//! The Kubo test node: a real Kubo core behind the RPC shim, checked against the shapes
//! of Kubo's documented `/api/v0` answers.

use std::time::Duration;

use futures_util::StreamExt;
use serde_json::Value;

use crate::harness::{kubo::random_bytes, KuboNode};

async fn two_nodes() -> (KuboNode, KuboNode) {
    tokio::task::spawn_blocking(|| {
        let a = std::thread::spawn(KuboNode::start);
        let b = KuboNode::start();
        (a.join().unwrap(), b)
    })
    .await
    .unwrap()
}

/// Reads a streamed body as JSON lines until it ends or `limit` passes.
async fn json_lines(resp: reqwest::Response, limit: Duration) -> Vec<Value> {
    let mut lines = Vec::new();
    let mut buf = Vec::new();
    let mut stream = resp.bytes_stream();
    let deadline = tokio::time::Instant::now() + limit;
    while let Ok(Some(chunk)) = tokio::time::timeout_at(deadline, stream.next()).await {
        buf.extend_from_slice(&chunk.unwrap());
        while let Some(pos) = buf.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = buf.drain(..=pos).collect();
            if line.iter().any(|b| !b.is_ascii_whitespace()) {
                lines.push(serde_json::from_slice(&line).unwrap());
            }
        }
    }
    lines
}

#[tokio::test]
async fn content_added_on_one_node_is_pinned_through_another() {
    let (a, b) = two_nodes().await;
    let cid = a.add(random_bytes(3 * 1024 * 1024)).await;

    let resp = b.rpc("swarm/connect", &[("arg", a.swarm_addr())]).await;
    assert!(
        resp.status().is_success(),
        "swarm/connect: {}",
        resp.status()
    );
    let body: Value = resp.json().await.unwrap();
    assert!(
        body["Strings"][0].as_str().unwrap().contains("success"),
        "{body}"
    );

    let resp = b
        .rpc(
            "pin/add",
            &[("arg", &cid), ("recursive", "true"), ("progress", "true")],
        )
        .await;
    assert!(resp.status().is_success());
    assert_eq!(resp.headers()["x-chunked-output"], "1");
    let lines = json_lines(resp, Duration::from_secs(60)).await;
    let last = lines.last().expect("at least the final line");
    assert_eq!(last["Pins"], serde_json::json!([cid]), "{lines:?}");

    let resp = b
        .rpc("pin/ls", &[("type", "recursive"), ("stream", "true")])
        .await;
    let pins = json_lines(resp, Duration::from_secs(10)).await;
    let ours: Vec<&Value> = pins.iter().filter(|p| p["Cid"] == cid.as_str()).collect();
    assert_eq!(ours.len(), 1, "{pins:?}");
    assert_eq!(ours[0]["Type"], "recursive");
    assert_eq!(pins.len(), 1, "only recursive pins are listed: {pins:?}");

    let resp = b
        .rpc("pin/ls", &[("type", "recursive"), ("arg", &cid)])
        .await;
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["Keys"][&cid]["Type"], "recursive");

    let resp = b.rpc("pin/rm", &[("arg", &cid)]).await;
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["Pins"], serde_json::json!([cid]));
    let resp = b
        .rpc("pin/ls", &[("type", "recursive"), ("arg", &cid)])
        .await;
    assert_eq!(resp.status(), 500);
    let body: Value = resp.json().await.unwrap();
    assert!(
        body["Message"].as_str().unwrap().contains("is not pinned"),
        "{body}"
    );
    assert_eq!(body["Type"], "error");
}

#[tokio::test]
async fn pin_add_streams_unchanging_progress_while_nothing_arrives() {
    let node = tokio::task::spawn_blocking(KuboNode::start).await.unwrap();
    // A valid CID whose content exists nowhere.
    let other = tokio::task::spawn_blocking(KuboNode::start).await.unwrap();
    let cid = other.add(random_bytes(1024)).await;
    drop(other);

    let resp = node
        .rpc(
            "pin/add",
            &[("arg", &cid), ("recursive", "true"), ("progress", "true")],
        )
        .await;
    assert!(resp.status().is_success());
    let lines = json_lines(resp, Duration::from_millis(2600)).await;
    assert!(lines.len() >= 3, "a line every 500 ms: {lines:?}");
    let first = &lines[0]["Progress"];
    assert!(first.is_u64(), "{lines:?}");
    assert!(
        lines.iter().all(|l| &l["Progress"] == first),
        "nothing moves: {lines:?}"
    );
    assert!(lines.iter().all(|l| l.get("Pins").is_none()));
}

#[tokio::test]
async fn the_rpc_is_post_only_with_kubo_error_bodies() {
    let node = tokio::task::spawn_blocking(KuboNode::start).await.unwrap();
    let resp = node
        .http
        .get(format!("{}/api/v0/id", node.api()))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 405);

    let resp = node.rpc("id", &[]).await;
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["ID"], node.node.ready.peer_id.as_str());
    assert!(body["Addresses"].as_array().unwrap().iter().all(|a| a
        .as_str()
        .unwrap()
        .ends_with(&format!("/p2p/{}", node.node.ready.peer_id))));

    let resp = node.rpc("pin/rm", &[]).await;
    assert_eq!(resp.status(), 400, "a missing argument");
    // Like Kubo's go-ipfs-cmds, a request that does not parse gets a plain-text reason.
    assert!(resp.text().await.unwrap().contains("is required"));

    let resp = node.rpc("pin/rm", &[("arg", "bafkqaaa")]).await;
    assert_eq!(resp.status(), 500);
    let body: Value = resp.json().await.unwrap();
    assert!(
        body["Message"].as_str().unwrap().contains("not pinned"),
        "{body}"
    );
}
