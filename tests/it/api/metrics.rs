//! `/metrics`: every named series from the first scrape, counters that move with
//! traffic, route patterns (never raw paths) on the latency histogram, and the
//! allowlist applied to the client IP as resolved through trusted proxies.

use std::time::Duration;

use anchorage::auth::Role;
use reqwest::Method;
use serde_json::{json, Value};

use crate::harness::{
    fixtures::{cid, PEER},
    send, TestApp, TestDb,
};

/// The API-only app of the pins tests, plus `extra` config.
async fn app_with(db: &TestDb, extra: Vec<(String, Value)>) -> TestApp {
    let mut config = vec![(
        "ipfs.delegates".to_string(),
        json!([format!("/ip4/198.51.99.7/tcp/4001/p2p/{PEER}")]),
    )];
    config.extend(extra);
    TestApp::spawn_api_only(db, "http://127.0.0.1:9", config).await
}

async fn scrape(app: &TestApp, forwarded_for: Option<&str>) -> (u16, String) {
    let mut req = app.http.get(app.url("/metrics"));
    if let Some(xff) = forwarded_for {
        req = req.header("X-Forwarded-For", xff);
    }
    let res = req.send().await.unwrap();
    (res.status().as_u16(), res.text().await.unwrap())
}

/// The value of the series line starting with `series` (exact labels), if present.
fn value(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

#[tokio::test]
async fn a_loopback_scrape_lists_every_series_and_counters_follow_traffic() {
    let db = TestDb::migrated().await;
    let app = app_with(&db, vec![]).await;

    let (status, text) = scrape(&app, None).await;
    assert_eq!(status, 200, "{text}");
    for series in [
        "anchorage_http_requests_total{method=\"POST\",status_class=\"2xx\"}",
        "anchorage_pin_ops_total{op=\"add\",result=\"ok\"}",
        "anchorage_scheduler_fetch_total{node=\"anchor-1\",result=\"current\"}",
        "anchorage_scheduler_acks_total{node=\"anchor-1\",status=\"pinned\"}",
        "anchorage_cache_hits_total{name=\"denylist\"}",
        "anchorage_cache_misses_total{name=\"live_nodes\"}",
        "anchorage_cache_hits_total{name=\"orgs\"}",
        "anchorage_leader_is_elected",
        "anchorage_cluster_nodes_live",
        "anchorage_placements_by_status{status=\"queued\"}",
    ] {
        assert!(value(&text, series).is_some(), "{series} missing:\n{text}");
    }

    let org = app.create_org("acme").await;
    let token = app.token(Some(org), Role::Member, None);
    let (code, created) = send(
        app.req(Method::POST, "/v1/pins", &token)
            .json(&json!({"cid": cid(7)})),
    )
    .await;
    assert_eq!(code, 202, "{created}");
    let id = created["requestid"].as_str().unwrap().to_string();
    let (code, _) = send(app.req(Method::GET, &format!("/v1/pins/{id}"), &token)).await;
    assert_eq!(code, 200);
    let (code, _) = send(app.req(Method::GET, "/v1/pins/pin_nope", &token)).await;
    assert_eq!(code, 404, "an id that is no id is simply not found");

    let (_, text) = scrape(&app, None).await;
    let at_least = |series: &str, n: f64| {
        let got = value(&text, series).unwrap_or_else(|| panic!("{series} missing:\n{text}"));
        assert!(got >= n, "{series} = {got}, wanted >= {n}");
    };
    at_least("anchorage_pin_ops_total{op=\"add\",result=\"ok\"}", 1.0);
    at_least("anchorage_pin_ops_total{op=\"get\",result=\"ok\"}", 1.0);
    at_least(
        "anchorage_http_requests_total{method=\"POST\",status_class=\"2xx\"}",
        1.0,
    );
    at_least(
        "anchorage_http_requests_total{method=\"GET\",status_class=\"4xx\"}",
        1.0,
    );
    at_least("anchorage_cache_misses_total{name=\"denylist\"}", 1.0);
    at_least("anchorage_cache_hits_total{name=\"denylist\"}", 1.0);
    // Latency by route pattern: the id never becomes a label value.
    assert!(
        text.contains("route=\"/v1/pins/{requestid}\""),
        "no route-pattern histogram:\n{text}"
    );
    assert!(!text.contains(&id), "a raw path leaked into a label");
    assert!(!text.contains("pin_nope"), "a raw path leaked into a label");

    // The only node is elected within a lease round or two.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (_, text) = scrape(&app, None).await;
        if value(&text, "anchorage_leader_is_elected") == Some(1.0) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "never elected:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn the_allowlist_applies_to_the_client_behind_a_trusted_proxy_only() {
    let db = TestDb::migrated().await;
    // The test client connects from loopback; call loopback a trusted proxy.
    let proxied = app_with(
        &db,
        vec![("server.trustedProxies".into(), json!(["127.0.0.0/8"]))],
    )
    .await;
    let (status, body) = scrape(&proxied, Some("203.0.113.5")).await;
    assert_eq!(status, 403, "{body}");
    let error: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(error["error"]["reason"], "FORBIDDEN", "{body}");
    assert!(
        !body.contains("anchorage_"),
        "no series for a refused client"
    );
    // A private client behind the same proxy may scrape.
    let (status, _) = scrape(&proxied, Some("203.0.113.5, 10.1.2.3")).await;
    assert_eq!(status, 200);
    drop(proxied);

    // With no trusted proxy, the header is the client's own claim and changes nothing.
    let db2 = TestDb::migrated().await;
    let direct = app_with(&db2, vec![]).await;
    let (status, _) = scrape(&direct, Some("203.0.113.5")).await;
    assert_eq!(status, 200);

    // An empty allowlist turns the endpoint off.
    let db3 = TestDb::migrated().await;
    let off = app_with(&db3, vec![("server.metrics.allowCIDRs".into(), json!([]))]).await;
    let (status, body) = scrape(&off, None).await;
    assert_eq!(status, 404, "{body}");
}

/// A label matcher: label, operator (`=` or `=~`), value.
type Matcher = (String, String, String);

/// The selectors (`name{label="value",…}`) in a PromQL expression.
fn selectors(expr: &str) -> Vec<(String, Vec<Matcher>)> {
    let mut out = Vec::new();
    let mut rest = expr;
    while let Some(at) = rest.find("anchorage_") {
        rest = &rest[at..];
        let end = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(rest.len());
        let name = rest[..end].to_string();
        rest = &rest[end..];
        let mut matchers = Vec::new();
        if let Some(body) = rest.strip_prefix('{') {
            let close = body.find('}').expect("a closing brace");
            for part in body[..close].split(',').filter(|p| !p.trim().is_empty()) {
                let op = if part.contains("=~") { "=~" } else { "=" };
                let (k, v) = part.split_once(op).unwrap();
                matchers.push((
                    k.trim().to_string(),
                    op.to_string(),
                    v.trim().trim_matches('"').to_string(),
                ));
            }
            rest = &body[close + 1..];
        }
        out.push((name, matchers));
    }
    out
}

/// Whether a series line of `scrape` has metric `name` and satisfies `matchers`
/// (`=~` is checked as a prefix, which is all the rules use).
fn has_series(scrape: &str, name: &str, matchers: &[Matcher]) -> bool {
    scrape.lines().filter(|l| !l.starts_with('#')).any(|line| {
        let (series, _) = line.rsplit_once(' ').unwrap_or((line, ""));
        let (metric, labels) = series.split_once('{').unwrap_or((series, "}"));
        metric == name
            && matchers.iter().all(|(k, op, v)| {
                labels
                    .trim_end_matches('}')
                    .split("\",")
                    .filter_map(|kv| kv.split_once("=\""))
                    .any(|(lk, lv)| {
                        let lv = lv.trim_end_matches('"');
                        lk == k
                            && match op.as_str() {
                                "=" => lv == v,
                                _ => lv.starts_with(v.trim_end_matches(".*")),
                            }
                    })
            })
    })
}

/// The starter alerts in docs/operations.md (the seed's three among them) select real
/// series: every selector of every rule finds one in a live scrape.
#[tokio::test]
async fn every_starter_alert_selects_a_live_series() {
    let docs = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/operations.md"))
        .unwrap();
    let section = docs.split("### Starter alerts").nth(1).unwrap();
    let yaml = section
        .split("```yaml")
        .nth(1)
        .and_then(|s| s.split("```").next())
        .unwrap();
    let rules: serde_yaml_ng::Value = serde_yaml_ng::from_str(yaml).unwrap();
    let exprs: Vec<String> = rules["groups"][0]["rules"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|r| r["expr"].as_str().unwrap().to_string())
        .collect();
    for seed in [
        "anchorage_leader_is_elected",
        "anchorage_pin_ops_total{result=\"err\"}",
        "anchorage_cluster_nodes_live",
    ] {
        assert!(
            exprs.iter().any(|e| e.contains(seed)),
            "the seed's starter alert on {seed} is missing"
        );
    }
    let db = TestDb::migrated().await;
    let app = app_with(&db, vec![]).await;
    // One API request, so the latency histogram has a /v1/pins series.
    let token = app.token(Some(app.create_org("acme").await), Role::Member, None);
    send(app.req(Method::GET, "/v1/pins", &token)).await;
    let (status, text) = scrape(&app, None).await;
    assert_eq!(status, 200);
    let mut checked = 0;
    for expr in &exprs {
        for (name, matchers) in selectors(expr) {
            assert!(
                has_series(&text, &name, &matchers),
                "no series for {name}{matchers:?} (from `{expr}`) in:\n{text}"
            );
            checked += 1;
        }
    }
    assert!(checked >= 10, "only {checked} selectors");
}
