//! Listing stays index-backed on a large table (EXPLAIN of the exact statements the API
//! runs), and the per-status counters stay exact under concurrent writes.

use anchorage::{
    db::org_tx,
    ids::OrgId,
    pins::{filter::ListQuery, store},
};
use diesel_async::RunQueryDsl;
use futures_util::FutureExt;
use reqwest::Method;
use serde_json::{json, Value};

use crate::harness::{
    fixtures::{app, cid},
    send,
    sql::{self, db_count},
    TestApp, TestDb,
};

/// Rows in the big org. Large enough that the planner would never choose an index it
/// did not need; small enough to load in seconds.
const BIG: i64 = 100_000;

async fn load(db: &TestDb, org: OrgId, n: i64, seed: &str) {
    // As the superuser: a bulk load is not a request and must not hit statement_timeout.
    db.superuser_exec_with(
        "INSERT INTO pins (id, org_id, cid, requested_cid, name, meta, status, created) \
         SELECT gen_random_uuid(), $1::text::uuid, $2::text || i, $2::text || i, \
                CASE WHEN i % 1000 = 0 THEN 'Annual-Report-' || i ELSE 'file-' || i || '.bin' END, \
                jsonb_build_object('app', 'app' || (i % 500)), \
                CASE WHEN i % 10 = 0 THEN 'queued' WHEN i % 997 = 0 THEN 'failed' ELSE 'pinned' END, \
                date_trunc('milliseconds', now()) - (i * interval '1 millisecond') \
         FROM generate_series(1, $3::bigint) AS i",
        &[&org.uuid().to_string(), &seed, &n],
    )
    .await;
    db.superuser_exec("VACUUM ANALYZE pins").await;
    db.superuser_exec("ANALYZE pin_counts").await;
}

/// Every (node type, relation, index) in a JSON plan.
fn plan_nodes(plan: &str) -> Vec<(String, String, String)> {
    fn walk(node: &Value, out: &mut Vec<(String, String, String)>) {
        let s = |k: &str| {
            node.get(k)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        };
        out.push((s("Node Type"), s("Relation Name"), s("Index Name")));
        for child in node
            .get("Plans")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            walk(child, out);
        }
    }
    let json: Value = serde_json::from_str(plan).unwrap();
    let mut out = Vec::new();
    walk(&json[0]["Plan"], &mut out);
    out
}

async fn explain(
    app: &TestApp,
    org: OrgId,
    raw_query: &str,
) -> (Vec<(String, String, String)>, Vec<(String, String, String)>) {
    let q = ListQuery::parse(raw_query).unwrap();
    let (page, count) = org_tx(&app.state.db, org, |conn| {
        async move { store::explain_list(conn, org, &q).await }.boxed()
    })
    .await
    .unwrap();
    (plan_nodes(&page), plan_nodes(&count))
}

fn assert_no_seq_scan_on_pins(nodes: &[(String, String, String)], what: &str) {
    assert!(
        !nodes
            .iter()
            .any(|(t, rel, _)| t == "Seq Scan" && (rel == "pins" || rel == "pin_search")),
        "{what}: sequential scan of pins in {nodes:?}"
    );
}

fn uses_index(nodes: &[(String, String, String)], index: &str) -> bool {
    nodes.iter().any(|(_, _, i)| i == index)
}

#[tokio::test]
async fn listing_queries_use_their_indexes_on_a_large_table() {
    let db = TestDb::migrated().await;
    let app = app(&db).await;
    let big = app.create_org("big").await;
    let other = app.create_org("other").await;
    load(&db, big, BIG, "bafybig").await;
    load(&db, other, BIG / 4, "bafyother").await;

    let cid_case = format!("cid={}", cid(12345));
    let cases: &[(&str, Option<&str>)] = &[
        ("", None),
        ("limit=1000", None),
        ("status=queued&limit=1", None),
        ("status=failed&limit=1", Some("pins_org_status_created_idx")),
        (
            "status=queued,pinning,pinned,failed&before=2020-01-01T00:00:00.000Z",
            Some("pins_org_created_key"),
        ),
        (cid_case.as_str(), Some("pins_cid_idx")),
        ("name=file-777.bin", Some("pin_search_pkey")),
        (
            "name=ANNUAL-REPORT-5000&match=iexact",
            Some("pin_search_pkey"),
        ),
        ("name=report&match=ipartial", Some("pin_search_pkey")),
        ("name=Report-1&match=partial", Some("pin_search_pkey")),
        ("meta=%7B%22app%22%3A%22app7%22%7D", Some("pin_search_pkey")),
    ];
    for (raw, index) in cases {
        let (page, count) = explain(&app, big, raw).await;
        assert_no_seq_scan_on_pins(&page, raw);
        assert_no_seq_scan_on_pins(&count, raw);
        if let Some(index) = index {
            assert!(
                uses_index(&page, index) || uses_index(&count, index),
                "{raw}: expected {index} in {page:?} / {count:?}"
            );
        }
    }

    // The `--stat` shape (limit=1 per status): the count never touches pins at all.
    for status in ["queued", "pinning", "pinned", "failed"] {
        let (_, count) = explain(&app, big, &format!("status={status}&limit=1")).await;
        assert!(
            count.iter().all(|(_, rel, _)| rel != "pins"),
            "{status}: {count:?}"
        );
        assert!(
            count.iter().any(|(_, rel, _)| rel == "pin_counts"),
            "{status}: {count:?}"
        );
    }

    // And the counts are right.
    let token = app.token(Some(big), anchorage::auth::Role::Member, None);
    let expect_queued = BIG / 10;
    let (_, body) = send(app.req(Method::GET, "/v1/pins?status=queued&limit=1", &token)).await;
    assert_eq!(body["count"], expect_queued);
    let (_, body) = send(app.req(
        Method::GET,
        "/v1/pins?status=queued,pinning,pinned,failed&limit=1",
        &token,
    ))
    .await;
    assert_eq!(body["count"], BIG);
    let (_, body) = send(app.req(
        Method::GET,
        "/v1/pins?name=report&match=ipartial&limit=1000",
        &token,
    ))
    .await;
    assert_eq!(body["count"], BIG / 1000);
    assert_eq!(body["results"].as_array().unwrap().len() as i64, BIG / 1000);
}

#[tokio::test]
async fn status_counters_stay_exact_under_concurrent_writes() {
    let db = TestDb::migrated().await;
    let app = app(&db).await;
    let org = app.create_org("acme").await;
    let token = app.token(Some(org), anchorage::auth::Role::Member, None);

    let adds = (0..120).map(|i| {
        send(
            app.req(Method::POST, "/v1/pins", &token)
                .json(&json!({"cid": cid(i)})),
        )
    });
    let added = futures_util::future::join_all(adds).await;
    let ids: Vec<String> = added
        .iter()
        .map(|(status, body)| {
            assert_eq!(*status, 202);
            body["requestid"].as_str().unwrap().to_string()
        })
        .collect();

    // Concurrently: delete a third, replace a third, and flip statuses underneath.
    let deletes = ids[..40]
        .iter()
        .map(|id| send(app.req(Method::DELETE, &format!("/v1/pins/{id}"), &token)));
    let replaces = ids[40..80].iter().enumerate().map(|(i, id)| {
        send(
            app.req(Method::POST, &format!("/v1/pins/{id}"), &token)
                .json(&json!({"cid": cid(1000 + i as u32)})),
        )
    });
    let flips = ids[80..120].iter().enumerate().map(|(i, id)| {
        let uuid = id.parse::<anchorage::ids::RequestId>().unwrap().uuid();
        let status = ["pinning", "pinned", "failed"][i % 3];
        let update = sql::query(
            "UPDATE pins SET status = $1 WHERE id = $2",
            &[status.into(), uuid.into()],
        );
        let pool = app.state.db.clone();
        async move {
            org_tx(&pool, org, |conn| {
                async move {
                    update.execute(conn).await?;
                    Ok(())
                }
                .boxed()
            })
            .await
            .unwrap();
            (200u16, Value::Null)
        }
        .boxed()
    });
    let all: Vec<_> = deletes
        .map(FutureExt::boxed)
        .chain(replaces.map(FutureExt::boxed))
        .chain(flips)
        .collect();
    for (status, body) in futures_util::future::join_all(all).await {
        assert!(status == 202 || status == 200, "{status}: {body}");
    }

    let check = || async {
        for status in ["queued", "pinning", "pinned", "failed"] {
            let counted = db_count(
                &app,
                "SELECT count(*) AS n FROM pins WHERE org_id = $1 AND status = $2",
                &[org.uuid().into(), status.into()],
            )
            .await;
            let kept = db_count(&app, "SELECT COALESCE(sum(n), 0)::bigint AS n FROM pin_counts WHERE org_id = $1 AND status = $2", &[org.uuid().into(), status.into()]).await;
            assert_eq!(kept, counted, "{status}");
            let (_, body) = send(app.req(
                Method::GET,
                &format!("/v1/pins?status={status}&limit=1"),
                &token,
            ))
            .await;
            assert_eq!(body["count"], counted, "{status}");
        }
    };
    check().await;
    assert_eq!(
        db_count(&app, "SELECT count(*) AS n FROM pins", &[]).await,
        80
    );
    assert_eq!(
        db_count(
            &app,
            "SELECT count(*) AS n FROM pins WHERE status = 'failed'",
            &[]
        )
        .await,
        13
    );

    // Folding the ledger (here, or already by the server's own loop) changes no count,
    // and leaves one row per (org, status).
    // (The server's own loop may hold the fold lock for a moment, and background pin
    // jobs may add deltas meanwhile: fold until the ledger is down to one row per status.)
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        anchorage::pins::counts::compact(&app.state.db)
            .await
            .unwrap();
        if db_count(&app, "SELECT count(*) AS n FROM pin_counts", &[]).await <= 4 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the ledger never folded"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    check().await;
}
