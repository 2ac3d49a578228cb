//! The HTTP server's probes and its JSON error plumbing.

use serde_json::Value;

use crate::harness::{KuboNode, TestApp, TestDb};

/// An address where nothing listens (the discard port on loopback).
const DEAD_KUBO: &str = "http://127.0.0.1:9";

#[tokio::test]
async fn health_and_ready_with_postgres_and_kubo_up() {
    let db = TestDb::migrated().await;
    let kubo = tokio::task::spawn_blocking(KuboNode::start).await.unwrap();
    let app = TestApp::spawn(&db, kubo.api()).await;

    let (status, body) = app.get_json("/v1/health").await;
    assert_eq!(status, 200);
    assert_eq!(body["status"], "ok");

    let (status, body) = app.get_json("/v1/ready").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "ready");
    assert_eq!(body["checks"]["postgres"], "ok");
    assert_eq!(body["checks"]["kubo"], "ok");
}

#[tokio::test]
async fn ready_is_503_naming_kubo_when_it_does_not_answer() {
    let db = TestDb::migrated().await;
    let app = TestApp::spawn(&db, DEAD_KUBO).await;

    let (status, _) = app.get_json("/v1/health").await;
    assert_eq!(status, 200, "health only says the process runs");

    let (status, body) = app.get_json("/v1/ready").await;
    assert_eq!(status, 503);
    assert_eq!(body["error"]["reason"], "NOT_READY");
    assert!(
        body["error"]["details"].as_str().unwrap().contains("kubo"),
        "{body}"
    );
    assert_eq!(body["checks"]["postgres"], "ok");
    assert_eq!(body["checks"]["kubo"], "unavailable");
}

#[tokio::test]
async fn ready_is_503_naming_postgres_when_the_database_is_gone() {
    let db = TestDb::migrated().await;
    let kubo = tokio::task::spawn_blocking(KuboNode::start).await.unwrap();
    let app = TestApp::spawn(&db, kubo.api()).await;
    // Drop the database under the running server.
    db.superuser_exec("SELECT 1").await;
    let name = db.name.clone();
    drop(db);

    let (status, body) = app.get_json("/v1/ready").await;
    assert_eq!(status, 503, "{body} ({name} dropped)");
    assert_eq!(body["checks"]["postgres"], "unavailable");
    assert_eq!(body["checks"]["kubo"], "ok");
    let details = body["error"]["details"].as_str().unwrap();
    assert!(details.contains("postgres"), "{details}");
    assert!(
        !details.contains("127.0.0.1"),
        "no connection details leak: {details}"
    );
}

#[tokio::test]
async fn unknown_routes_and_methods_use_the_spec_error_body() {
    let db = TestDb::migrated().await;
    let app = TestApp::spawn(&db, DEAD_KUBO).await;

    let resp = app
        .http
        .get(app.url("/v1/nothing-here"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    assert_eq!(resp.headers()["content-type"], "application/json");
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["reason"], "NOT_FOUND");
    assert!(body["error"]["details"]
        .as_str()
        .unwrap()
        .contains("/v1/nothing-here"));

    let resp = app.http.post(app.url("/v1/health")).send().await.unwrap();
    assert_eq!(resp.status(), 405);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["reason"], "METHOD_NOT_ALLOWED");

    let resp = app.http.delete(app.url("/v1/ready")).send().await.unwrap();
    assert_eq!(resp.status(), 405);

    // A trailing slash is the same route.
    let (status, _) = app.get_json("/v1/health/").await;
    assert_eq!(status, 200);
}
