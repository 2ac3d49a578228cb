//! The Pinning Services API against the running app on real Postgres: bodies and DB
//! state, not just status codes.

use std::collections::HashSet;

use anchorage::auth::Role;
use reqwest::Method;
use serde_json::{json, Value};

use crate::harness::{
    fixtures::{app, cid, PEER},
    send,
    sql::{db_count, exec_in},
    KuboNode, TestApp, TestDb,
};

pub const V0: &str = "QmY7Yh4UquoXHLPFo2XbhXkhBvFoPwmQUSa92pxnxjQuPU";
pub const V0_AS_V1: &str = "bafybeierhgbz4zp2x2u67urqrgfnrnlukciupzenpqpipiz5nwtq7uxpx4";

async fn add(app: &TestApp, token: &str, body: Value) -> (u16, Value) {
    send(app.req(Method::POST, "/v1/pins", token).json(&body)).await
}

fn is_millis_rfc3339(s: &str) -> bool {
    // 2020-07-27T17:32:28.276Z
    s.len() == 24
        && s.ends_with('Z')
        && s.as_bytes()[19] == b'.'
        && chrono::DateTime::parse_from_rfc3339(s).is_ok()
}

#[tokio::test]
async fn add_get_delete_round_trip_with_db_state() {
    let db = TestDb::migrated().await;
    let app = app(&db).await;
    let org = app.create_org("acme").await;
    let token = app.token(Some(org), Role::Member, None);

    let origin = format!("/ip4/203.0.113.5/tcp/4001/p2p/{PEER}");
    let (status, pin) = add(
        &app,
        &token,
        json!({"cid": V0, "name": "report.pdf", "origins": [origin], "meta": {"app": "ci"}}),
    )
    .await;
    assert_eq!(status, 202, "{pin}");
    let id = pin["requestid"].as_str().unwrap().to_string();
    assert!(id.starts_with("pin_"));
    assert_eq!(pin["status"], "queued");
    assert!(is_millis_rfc3339(pin["created"].as_str().unwrap()), "{pin}");
    assert_eq!(
        pin["pin"],
        json!({"cid": V0, "name": "report.pdf", "origins": [origin], "meta": {"app": "ci"}})
    );
    assert_eq!(
        pin["delegates"],
        json!([format!("/ip4/198.51.99.7/tcp/4001/p2p/{PEER}")])
    );
    assert_eq!(
        pin["info"],
        json!({"replicas": "0/1"}),
        "one replica wanted, none pinned yet"
    );
    assert_eq!(
        db_count(&app, "SELECT count(*) AS n FROM placements WHERE cid = $1 AND state = 'queued' AND node_id = $2", &[V0_AS_V1.into(), app.state.node.uuid().into()]).await,
        1,
        "a queued placement on this node"
    );

    assert_eq!(
        db_count(
            &app,
            "SELECT count(*) AS n FROM pins WHERE cid = $1 AND requested_cid = $2",
            &[V0_AS_V1.into(), V0.into()]
        )
        .await,
        1
    );
    assert_eq!(
        db_count(
            &app,
            "SELECT refcount::bigint AS n FROM cid_refs WHERE cid = $1",
            &[V0_AS_V1.into()]
        )
        .await,
        1
    );
    assert_eq!(
        db_count(
            &app,
            "SELECT count(*) AS n FROM cid_origins WHERE cid = $1 AND origin = $2",
            &[V0_AS_V1.into(), origin.into()]
        )
        .await,
        1
    );

    let (status, got) = send(app.req(Method::GET, &format!("/v1/pins/{id}"), &token)).await;
    assert_eq!(status, 200);
    assert_eq!(got, pin, "GET returns what POST returned");

    // Found by its CIDv1 form, with no status filter (a cid search includes queued).
    let (status, list) =
        send(app.req(Method::GET, &format!("/v1/pins?cid={V0_AS_V1}"), &token)).await;
    assert_eq!(status, 200);
    assert_eq!(list["count"], 1);
    assert_eq!(list["results"][0]["requestid"], id.as_str());

    let resp = app
        .req(Method::DELETE, &format!("/v1/pins/{id}"), &token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 202);
    assert!(
        resp.bytes().await.unwrap().is_empty(),
        "202 with an empty body"
    );

    let (status, body) = send(app.req(Method::GET, &format!("/v1/pins/{id}"), &token)).await;
    assert_eq!(status, 404);
    assert_eq!(body["error"]["reason"], "NOT_FOUND");
    let (_, list) = send(app.req(Method::GET, &format!("/v1/pins?cid={V0}"), &token)).await;
    assert_eq!(list, json!({"count": 0, "results": []}));
    assert_eq!(
        db_count(&app, "SELECT count(*) AS n FROM pins", &[]).await,
        0
    );
    assert_eq!(
        db_count(
            &app,
            "SELECT refcount::bigint AS n FROM cid_refs WHERE cid = $1",
            &[V0_AS_V1.into()]
        )
        .await,
        0
    );
    assert_eq!(
        db_count(
            &app,
            "SELECT count(*) AS n FROM placements WHERE cid = $1 AND state = 'unpinning'",
            &[V0_AS_V1.into()]
        )
        .await,
        1,
        "the last reference gone, the placement awaits its unpin"
    );
    let (status, _) = send(app.req(Method::DELETE, &format!("/v1/pins/{id}"), &token)).await;
    assert_eq!(status, 404, "a second delete finds nothing");
}

#[tokio::test]
async fn bad_input_is_a_400_with_the_error_body_and_writes_nothing() {
    let db = TestDb::migrated().await;
    let app = app(&db).await;
    let org = app.create_org("acme").await;
    let token = app.token(Some(org), Role::Member, None);
    let c = cid(1);

    let cases = vec![
        (json!({}), "cid"),
        (json!({"cid": "not-a-cid"}), "not-a-cid"),
        (json!({"cid": c, "name": "n".repeat(256)}), "255"),
        (json!({"cid": c, "origins": ["nonsense"]}), "nonsense"),
        (
            json!({"cid": c, "origins": vec![format!("/ip4/1.2.3.4/tcp/1/p2p/{PEER}"); 21]}),
            "20",
        ),
        (json!({"cid": c, "meta": {"k": 1}}), "meta.k"),
        (json!({"cid": c, "meta": "k=v"}), "meta"),
        (json!(["not", "an", "object"]), "JSON"),
    ];
    for (body, mentions) in cases {
        let (status, resp) = add(&app, &token, body.clone()).await;
        assert_eq!(status, 400, "{body}: {resp}");
        assert_eq!(resp["error"]["reason"], "BAD_REQUEST");
        let details = resp["error"]["details"].as_str().unwrap();
        assert!(
            details.contains(mentions),
            "{body}: '{details}' should mention '{mentions}'"
        );
    }

    let raw = |body: &'static str, ctype: Option<&'static str>| {
        let mut req = app.req(Method::POST, "/v1/pins", &token).body(body);
        if let Some(ct) = ctype {
            req = req.header("content-type", ct);
        }
        send(req)
    };
    let (status, resp) = raw("{\"cid\": ", Some("application/json")).await;
    assert_eq!(status, 400);
    assert!(resp["error"]["details"]
        .as_str()
        .unwrap()
        .contains("invalid JSON"));
    let (status, resp) = raw("cid=x", Some("application/x-www-form-urlencoded")).await;
    assert_eq!(status, 400);
    assert!(resp["error"]["details"]
        .as_str()
        .unwrap()
        .contains("Content-Type"));
    let (status, _) = raw("{}", None).await;
    assert_eq!(status, 400);

    let huge = json!({"cid": c, "meta": {"k": "v".repeat(70_000)}});
    let (status, resp) = add(&app, &token, huge).await;
    assert_eq!(status, 413);
    assert_eq!(resp["error"]["reason"], "PAYLOAD_TOO_LARGE");

    assert_eq!(
        db_count(&app, "SELECT count(*) AS n FROM pins", &[]).await,
        0,
        "nothing half-written"
    );
    assert_eq!(
        db_count(&app, "SELECT count(*) AS n FROM cid_refs", &[]).await,
        0
    );

    let (status, _) = send(app.req(Method::PUT, "/v1/pins", &token)).await;
    assert_eq!(status, 405);
    let (status, _) = send(app.req(Method::GET, "/v1/pins/not-an-id", &token)).await;
    assert_eq!(status, 404);
}

/// Sets `status` on the pin `id` directly (pins stay queued until pin execution lands).
async fn set_status(app: &TestApp, id: &str, status: &str) {
    let uuid = id.parse::<anchorage::ids::RequestId>().unwrap().uuid();
    exec_in(
        &app.state.db,
        "UPDATE pins SET status = $1 WHERE id = $2",
        &[status.into(), uuid.into()],
    )
    .await;
}

#[tokio::test]
async fn listing_filters_match_modes_and_status_defaults() {
    let db = TestDb::migrated().await;
    let app = app(&db).await;
    let org = app.create_org("acme").await;
    let t = app.token(Some(org), Role::Member, None);

    let specs = [
        ("Report.pdf", "pinned", json!({"app": "a", "env": "prod"})),
        ("report.pdf", "queued", json!({"app": "a"})),
        ("annual-report-2024", "failed", json!({"app": "b"})),
        ("50%_off", "pinning", json!({})),
    ];
    let mut ids = Vec::new();
    for (i, (name, status, meta)) in specs.iter().enumerate() {
        let (code, pin) = add(
            &app,
            &t,
            json!({"cid": cid(i as u32), "name": name, "meta": meta}),
        )
        .await;
        assert_eq!(code, 202);
        let id = pin["requestid"].as_str().unwrap().to_string();
        set_status(&app, &id, status).await;
        ids.push(id);
    }
    let names = |list: &Value| -> Vec<String> {
        list["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["pin"]["name"].as_str().unwrap().to_string())
            .collect()
    };
    let get = |q: String| {
        let t = t.clone();
        let app = &app;
        async move {
            let (status, body) = send(app.req(Method::GET, &format!("/v1/pins{q}"), &t)).await;
            assert_eq!(status, 200, "{q}: {body}");
            assert!(
                body["count"].as_u64().unwrap() as usize
                    >= body["results"].as_array().unwrap().len(),
                "{q}"
            );
            body
        }
    };

    // No filter: pinned only.
    assert_eq!(names(&get(String::new()).await), ["Report.pdf"]);
    // Explicit statuses, newest first.
    assert_eq!(
        names(&get("?status=queued,failed".into()).await),
        ["annual-report-2024", "report.pdf"]
    );
    assert_eq!(
        names(&get("?status=queued,pinning,pinned,failed".into()).await),
        ["50%_off", "annual-report-2024", "report.pdf", "Report.pdf"]
    );
    // Name match modes; a name search includes every status.
    assert_eq!(names(&get("?name=report.pdf".into()).await), ["report.pdf"]);
    assert_eq!(
        names(&get("?name=report.pdf&match=exact".into()).await),
        ["report.pdf"]
    );
    assert_eq!(
        names(&get("?name=REPORT.PDF&match=iexact".into()).await),
        ["report.pdf", "Report.pdf"]
    );
    assert_eq!(
        names(&get("?name=report&match=partial".into()).await),
        ["annual-report-2024", "report.pdf"]
    );
    assert_eq!(
        names(&get("?name=REPORT&match=ipartial".into()).await),
        ["annual-report-2024", "report.pdf", "Report.pdf"]
    );
    assert_eq!(
        names(&get("?name=%25_&match=partial".into()).await),
        ["50%_off"],
        "LIKE wildcards are literal"
    );
    assert_eq!(
        names(&get("?name=report&match=ipartial&status=pinned".into()).await),
        ["Report.pdf"]
    );
    // Meta: every pair must match.
    let meta = |m: Value| format!("?meta={}", urlencode(&m.to_string()));
    assert_eq!(
        names(&get(meta(json!({"app": "a"}))).await),
        ["report.pdf", "Report.pdf"]
    );
    assert_eq!(
        names(&get(meta(json!({"app": "a", "env": "prod"}))).await),
        ["Report.pdf"]
    );
    assert_eq!(
        names(&get(meta(json!({"app": "zzz"}))).await),
        Vec::<String>::new()
    );
    // CIDs, several at once.
    assert_eq!(
        names(&get(format!("?cid={},{}", cid(0), cid(2))).await),
        ["annual-report-2024", "Report.pdf"]
    );
    // Limit and count: count is the total, results the page.
    let page = get("?status=queued,pinning,pinned,failed&limit=2".into()).await;
    assert_eq!(page["count"], 4);
    assert_eq!(names(&page), ["50%_off", "annual-report-2024"]);
    // before/after are strict.
    let all = get("?status=queued,pinning,pinned,failed".into()).await;
    let created: Vec<&str> = all["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["created"].as_str().unwrap())
        .collect();
    let before = get(format!(
        "?status=queued,pinning,pinned,failed&before={}",
        created[1]
    ))
    .await;
    assert_eq!(names(&before), ["report.pdf", "Report.pdf"]);
    let after = get(format!(
        "?status=queued,pinning,pinned,failed&after={}",
        created[2]
    ))
    .await;
    assert_eq!(names(&after), ["50%_off", "annual-report-2024"]);
    let window = get(format!(
        "?status=queued,pinning,pinned,failed&after={}&before={}",
        created[3], created[0]
    ))
    .await;
    assert_eq!(names(&window), ["annual-report-2024", "report.pdf"]);
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[tokio::test]
async fn every_listing_limit_has_its_400() {
    let db = TestDb::migrated().await;
    let app = app(&db).await;
    let org = app.create_org("acme").await;
    let t = app.token(Some(org), Role::Member, None);
    let eleven = (0..11).map(cid).collect::<Vec<_>>().join(",");
    let long_name = "n".repeat(256);
    for q in [
        "limit=0".to_string(),
        "limit=1001".into(),
        "limit=abc".into(),
        format!("cid={eleven}"),
        "cid=bogus".into(),
        "status=done".into(),
        "status=".into(),
        "match=fuzzy".into(),
        "before=yesterday".into(),
        "after=2024-13-01T00:00:00Z".into(),
        "meta=%7Bbroken".into(),
        "meta=%7B%22k%22%3A5%7D".into(),
        format!("name={long_name}"),
    ] {
        let (status, body) = send(app.req(Method::GET, &format!("/v1/pins?{q}"), &t)).await;
        assert_eq!(status, 400, "{q}: {body}");
        assert_eq!(body["error"]["reason"], "BAD_REQUEST", "{q}");
        assert!(!body["error"]["details"].as_str().unwrap().is_empty());
    }
    for q in [
        "limit=1",
        "limit=1000",
        &format!("cid={}", (0..10).map(cid).collect::<Vec<_>>().join(",")),
    ] {
        let (status, body) = send(app.req(Method::GET, &format!("/v1/pins?{q}"), &t)).await;
        assert_eq!(status, 200, "{q}: {body}");
        assert!(body["results"].is_array());
    }
}

/// Inserts `n` pins for `org` directly (the API path is covered elsewhere), all pinned.
async fn bulk_pins(app: &TestApp, org: anchorage::ids::OrgId, n: i64) {
    exec_in(
        &app.state.db,
        "INSERT INTO pins (id, org_id, cid, requested_cid, status, created) \
         SELECT gen_random_uuid(), $1, 'c' || i, 'c' || i, 'pinned', \
                date_trunc('milliseconds', now()) - (i * interval '1 millisecond') \
         FROM generate_series(1, $2) AS i",
        &[org.uuid().into(), n.into()],
    )
    .await;
}

/// Pages the way Kubo's client does: `before` = `created` of the last item, stopping when
/// `count` equals the size of the page just received.
async fn page_like_kubo(app: &TestApp, token: &str, limit: usize) -> Vec<String> {
    let mut seen = Vec::new();
    let mut before: Option<String> = None;
    loop {
        let mut q = format!("/v1/pins?limit={limit}");
        if let Some(b) = &before {
            q.push_str(&format!("&before={b}"));
        }
        let (status, body) = send(app.req(Method::GET, &q, token)).await;
        assert_eq!(status, 200, "{body}");
        let results = body["results"].as_array().unwrap();
        seen.extend(
            results
                .iter()
                .map(|p| p["requestid"].as_str().unwrap().to_string()),
        );
        if body["count"].as_u64().unwrap() as usize == results.len() {
            return seen;
        }
        assert!(!results.is_empty(), "a non-final page is never empty");
        before = Some(
            results.last().unwrap()["created"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
}

#[tokio::test]
async fn paging_2500_pins_sees_each_exactly_once() {
    let db = TestDb::migrated().await;
    let app = app(&db).await;
    let org = app.create_org("acme").await;
    let t = app.token(Some(org), Role::Member, None);
    bulk_pins(&app, org, 2500).await;

    for limit in [1000, 7] {
        let seen = page_like_kubo(&app, &t, limit).await;
        assert_eq!(seen.len(), 2500, "limit {limit}");
        assert_eq!(
            seen.iter().collect::<HashSet<_>>().len(),
            2500,
            "no repeats with limit {limit}"
        );
    }
}

#[tokio::test]
async fn pins_created_in_the_same_millisecond_get_distinct_created() {
    let db = TestDb::migrated().await;
    let app = app(&db).await;
    let org = app.create_org("acme").await;
    let t = app.token(Some(org), Role::Member, None);

    let posts = (0..60).map(|i| add(&app, &t, json!({"cid": cid(i)})));
    let responses = futures_util::future::join_all(posts).await;
    let mut created = HashSet::new();
    for (status, body) in &responses {
        assert_eq!(*status, 202, "{body}");
        assert!(
            created.insert(body["created"].as_str().unwrap().to_string()),
            "duplicate created"
        );
    }
    for (_, body) in &responses {
        set_status(&app, body["requestid"].as_str().unwrap(), "pinned").await;
    }
    let seen = page_like_kubo(&app, &t, 7).await;
    assert_eq!(seen.len(), 60);
    assert_eq!(seen.iter().collect::<HashSet<_>>().len(), 60);
}

#[tokio::test]
async fn replace_makes_a_new_request_and_retires_the_old_one() {
    let db = TestDb::migrated().await;
    let app = app(&db).await;
    let org = app.create_org("acme").await;
    let t = app.token(Some(org), Role::Member, None);

    let (_, old) = add(&app, &t, json!({"cid": cid(1), "name": "v1"})).await;
    let old_id = old["requestid"].as_str().unwrap();
    let (status, new) = send(
        app.req(Method::POST, &format!("/v1/pins/{old_id}"), &t)
            .json(&json!({"cid": cid(2), "name": "v2"})),
    )
    .await;
    assert_eq!(status, 202, "{new}");
    let new_id = new["requestid"].as_str().unwrap();
    assert_ne!(new_id, old_id);
    assert!(new["created"].as_str().unwrap() > old["created"].as_str().unwrap());
    assert_eq!(new["pin"]["cid"], cid(2).as_str());
    assert_eq!(new["status"], "queued");

    let (status, _) = send(app.req(Method::GET, &format!("/v1/pins/{old_id}"), &t)).await;
    assert_eq!(status, 404);
    let (status, got) = send(app.req(Method::GET, &format!("/v1/pins/{new_id}"), &t)).await;
    assert_eq!(status, 200);
    assert_eq!(got["pin"]["name"], "v2");
    let (_, list) = send(app.req(Method::GET, "/v1/pins?status=queued", &t)).await;
    assert_eq!(list["count"], 1);
    assert_eq!(list["results"][0]["requestid"], new_id);
    assert_eq!(
        db_count(
            &app,
            "SELECT refcount::bigint AS n FROM cid_refs WHERE cid = $1",
            &[cid(1).into()]
        )
        .await,
        0
    );
    assert_eq!(
        db_count(
            &app,
            "SELECT refcount::bigint AS n FROM cid_refs WHERE cid = $1",
            &[cid(2).into()]
        )
        .await,
        1
    );

    // Replacing an unknown request changes nothing.
    let (status, _) = send(
        app.req(Method::POST, &format!("/v1/pins/{old_id}"), &t)
            .json(&json!({"cid": cid(3)})),
    )
    .await;
    assert_eq!(status, 404);
    assert_eq!(
        db_count(&app, "SELECT count(*) AS n FROM pins", &[]).await,
        1
    );
    // A bad body on replace leaves the old request alone.
    let (status, _) = send(
        app.req(Method::POST, &format!("/v1/pins/{new_id}"), &t)
            .json(&json!({"cid": "nope"})),
    )
    .await;
    assert_eq!(status, 400);
    let (status, _) = send(app.req(Method::GET, &format!("/v1/pins/{new_id}"), &t)).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn another_orgs_pins_are_404_and_invisible() {
    let db = TestDb::migrated().await;
    let app = app(&db).await;
    let alpha = app.create_org("alpha").await;
    let beta = app.create_org("beta").await;
    let ta = app.token(Some(alpha), Role::Member, None);
    let tb = app.token(Some(beta), Role::Orgadmin, None);

    let (_, pin) = add(&app, &ta, json!({"cid": cid(1), "name": "secret"})).await;
    let id = pin["requestid"].as_str().unwrap();

    let (status, body) = send(app.req(Method::GET, &format!("/v1/pins/{id}"), &tb)).await;
    assert_eq!(status, 404);
    assert_eq!(body["error"]["reason"], "NOT_FOUND");
    let (status, _) = send(
        app.req(Method::POST, &format!("/v1/pins/{id}"), &tb)
            .json(&json!({"cid": cid(2)})),
    )
    .await;
    assert_eq!(status, 404);
    let (status, _) = send(app.req(Method::DELETE, &format!("/v1/pins/{id}"), &tb)).await;
    assert_eq!(status, 404);
    for q in [
        "",
        "?status=queued",
        "?name=secret",
        &format!("?cid={}", cid(1)),
    ] {
        let (_, list) = send(app.req(Method::GET, &format!("/v1/pins{q}"), &tb)).await;
        assert_eq!(list["count"], 0, "{q}");
    }
    // Alpha's pin is untouched.
    let (status, got) = send(app.req(Method::GET, &format!("/v1/pins/{id}"), &ta)).await;
    assert_eq!(status, 200);
    assert_eq!(got["pin"]["cid"], cid(1).as_str());
    assert_eq!(
        db_count(&app, "SELECT count(*) AS n FROM pins", &[]).await,
        1
    );
}

#[tokio::test]
async fn delegates_come_from_the_nodes_kubo() {
    let db = TestDb::migrated().await;
    let kubo = tokio::task::spawn_blocking(KuboNode::start).await.unwrap();
    let app = TestApp::spawn(&db, kubo.api()).await;
    let org = app.create_org("acme").await;
    let t = app.token(Some(org), Role::Member, None);
    let (status, pin) = add(&app, &t, json!({"cid": cid(1)})).await;
    assert_eq!(status, 202, "{pin}");
    let delegates = pin["delegates"].as_array().unwrap();
    assert!(!delegates.is_empty() && delegates.len() <= 20);
    let suffix = format!("/p2p/{}", kubo.node.ready.peer_id);
    for d in delegates {
        assert!(d.as_str().unwrap().ends_with(&suffix), "{d}");
    }
    assert!(
        delegates
            .iter()
            .any(|d| d.as_str().unwrap().starts_with("/ip4/127.0.0.1/")),
        "loopback kept by default"
    );
}

#[tokio::test]
async fn without_any_known_address_new_pins_are_refused_with_503() {
    let db = TestDb::migrated().await;
    let app = TestApp::spawn(&db, "http://127.0.0.1:9").await;
    let org = app.create_org("acme").await;
    let t = app.token(Some(org), Role::Member, None);
    let (status, body) = add(&app, &t, json!({"cid": cid(1)})).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"]["reason"], "SERVICE_UNAVAILABLE");
    assert!(body["error"]["details"]
        .as_str()
        .unwrap()
        .contains("IPFS node"));
    assert_eq!(
        db_count(&app, "SELECT count(*) AS n FROM pins", &[]).await,
        0
    );
    // Reads still work.
    let (status, list) = send(app.req(Method::GET, "/v1/pins", &t)).await;
    assert_eq!(status, 200);
    assert_eq!(list["count"], 0);
}
