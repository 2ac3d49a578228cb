//! Audit views: `GET /v1/admin/audit` (sysadmins see every org, org admins their own,
//! everyone else nothing) with filters and paging, and `anchorage admin audit`.

use std::collections::HashSet;

use anchorage::{auth::Role, ids::OrgId};
use reqwest::Method;
use serde_json::{json, Value};

use crate::harness::{fixtures::app, send, TestApp, TestDb};

/// Mints and revokes `n` tokens in `org` through the API: 2n audited actions.
async fn churn(app: &TestApp, org: OrgId, n: usize) {
    let admin = app.token(Some(org), Role::Orgadmin, None);
    for i in 0..n {
        let (status, created) = send(
            app.req(Method::POST, "/v1/tokens", &admin)
                .json(&json!({"label": format!("t{i}"), "ttl_hours": 1})),
        )
        .await;
        assert_eq!(status, 201, "{created}");
        let jti = created["jti"].as_str().unwrap();
        let res = app
            .req(Method::DELETE, &format!("/v1/tokens/{jti}"), &admin)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 204);
    }
}

async fn audit(app: &TestApp, token: &str, query: &str) -> (u16, Value) {
    send(app.req(Method::GET, &format!("/v1/admin/audit{query}"), token)).await
}

#[tokio::test]
async fn sysadmins_see_all_org_admins_their_own_with_filters_and_paging() {
    let db = TestDb::migrated().await;
    let app = app(&db).await;
    let (acme, other) = (app.create_org("acme").await, app.create_org("other").await);
    let started = chrono::Utc::now();
    churn(&app, acme, 3).await;
    churn(&app, other, 2).await;
    let sysadmin = app.token(None, Role::Sysadmin, None);

    let (status, all) = audit(&app, &sysadmin, "").await;
    assert_eq!(status, 200, "{all}");
    assert_eq!(all["count"], 10, "{all}");
    assert!(all.get("next").is_none(), "a short page is the last");
    let orgs: HashSet<&str> = all["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["org"].as_str().unwrap())
        .collect();
    assert_eq!(
        orgs,
        HashSet::from([acme.to_string().as_str(), other.to_string().as_str()])
    );
    let first = &all["results"][0];
    assert_eq!(first["action"], "token.revoke", "newest first: {first}");
    assert_eq!(first["source_ip"], "127.0.0.1", "{first}");

    // Filters.
    let (_, revokes) = audit(&app, &sysadmin, "?action=token.revoke").await;
    assert_eq!(revokes["count"], 5);
    let (_, acme_only) = audit(&app, &sysadmin, &format!("?org={acme}&action=token.create")).await;
    assert_eq!(acme_only["count"], 3);
    let actor = first["actor"].as_str().unwrap();
    let (_, by_actor) = audit(&app, &sysadmin, &format!("?actor={}", urlencode(actor))).await;
    assert_eq!(
        by_actor["count"], 4,
        "the other org's admin did 2 + 2: {by_actor}"
    );
    let target = first["target"].as_str().unwrap();
    let (_, by_target) = audit(&app, &sysadmin, &format!("?target={target}")).await;
    assert_eq!(by_target["count"], 2, "minted and revoked: {by_target}");
    let since = urlencode(&started.to_rfc3339());
    let (_, in_range) = audit(&app, &sysadmin, &format!("?since={since}")).await;
    assert_eq!(in_range["count"], 10);
    let (_, before_start) = audit(&app, &sysadmin, &format!("?until={since}")).await;
    assert_eq!(before_start["count"], 0);

    // Paging: 10 entries in pages of 4, no overlap, nothing lost.
    let mut seen = Vec::new();
    let mut query = "?limit=4".to_string();
    loop {
        let (status, page) = audit(&app, &sysadmin, &query).await;
        assert_eq!(status, 200, "{page}");
        for e in page["results"].as_array().unwrap() {
            seen.push(e["id"].as_str().unwrap().to_string());
        }
        match page["next"].as_str() {
            Some(next) => query = format!("?limit=4&before={next}"),
            None => break,
        }
    }
    let all_ids: Vec<String> = all["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(seen, all_ids);

    // An org admin sees their org only, and cannot ask for another.
    let admin = app.token(Some(acme), Role::Orgadmin, None);
    let (status, own) = audit(&app, &admin, "").await;
    assert_eq!(status, 200, "{own}");
    assert_eq!(own["count"], 6);
    assert!(own["results"]
        .as_array()
        .unwrap()
        .iter()
        .all(|e| e["org"] == acme.to_string().as_str()));
    let (status, body) = audit(&app, &admin, &format!("?org={other}")).await;
    assert_eq!(status, 403, "{body}");

    // Members and bad queries.
    let member = app.token(Some(acme), Role::Member, None);
    let (status, body) = audit(&app, &member, "").await;
    assert_eq!(status, 403, "{body}");
    let (status, body) = audit(&app, &sysadmin, "?limit=0").await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["reason"], "BAD_REQUEST");
    let (status, body) = audit(&app, &sysadmin, "?colour=blue").await;
    assert_eq!(status, 400, "{body}");

    // The CLI prints the same log.
    let out = crate::harness::bin::anchorage()
        .args([
            "admin",
            "audit",
            "--org",
            "acme",
            "--action",
            "token.revoke",
            "--json",
        ])
        .env("ANCHORAGE_POSTGRES__DSN", db.app_dsn())
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(printed.as_array().unwrap().len(), 3, "{printed}");
    assert!(printed
        .as_array()
        .unwrap()
        .iter()
        .all(|e| e["action"] == "token.revoke" && e["org"] == acme.to_string().as_str()));
}

fn urlencode(s: &str) -> String {
    serde_urlencoded::to_string([("v", s)]).unwrap()[2..].to_string()
}
