//! The console over plain HTTP (the browser tests are in `browser_scenarios.rs`):
//! sign-in without a provider, pages rendered from the same domain functions as the API,
//! CSRF, and the same authorisation (a member gets `Not found` for cluster and other
//! orgs' pages).

use anchorage::auth::Role;
use futures_util::FutureExt;
use reqwest::{header, StatusCode};

use crate::harness::{
    fixtures::{app, cid},
    TestApp, TestDb,
};

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// Signs `email` (a member of `org` with `role`) in with an API token; returns the cookie.
async fn sign_in(app: &TestApp, org: anchorage::ids::OrgId, email: &str, role: Role) -> String {
    let email_in = email.to_string();
    let user = anchorage::db::system_tx(&app.state.db, move |conn| {
        async move {
            let user = anchorage::tenancy::users::ensure_by_email(conn, &email_in, false).await?;
            anchorage::tenancy::users::set_membership(conn, org, user, role).await?;
            Ok(user)
        }
        .boxed()
    })
    .await
    .unwrap();
    let token = app
        .state
        .tokens
        .mint(anchorage::auth::MintRequest {
            sub: user.to_string(),
            org: Some(org),
            role,
            scopes: None,
            ttl: std::time::Duration::from_secs(600),
        })
        .unwrap()
        .jwt;
    token_sign_in(app, &token).await
}

/// Signs in to the console with `token`; returns the session cookie (a session that
/// acts with exactly that token).
async fn token_sign_in(app: &TestApp, token: &str) -> String {
    let res = client()
        .post(app.url("/console/sign-in"))
        .header(header::ORIGIN, &app.base)
        .form(&[("token", token)])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(res.headers()[header::LOCATION], "/console/pins");
    let cookie = res.headers()[header::SET_COOKIE].to_str().unwrap();
    cookie.split(';').next().unwrap().to_string()
}

async fn get(app: &TestApp, path: &str, cookie: &str) -> (StatusCode, String) {
    let res = client()
        .get(app.url(path))
        .header(header::COOKIE, cookie)
        .send()
        .await
        .unwrap();
    (res.status(), res.text().await.unwrap())
}

async fn post(app: &TestApp, path: &str, cookie: &str, form: &[(&str, &str)]) -> reqwest::Response {
    client()
        .post(app.url(path))
        .header(header::COOKIE, cookie)
        .header(header::ORIGIN, &app.base)
        .form(form)
        .send()
        .await
        .unwrap()
}

fn csrf_of(html: &str) -> String {
    let at = html.find("name=\"csrf\" value=\"").expect("a csrf field") + 19;
    html[at..at + 64].to_string()
}

#[tokio::test]
async fn a_member_works_with_pins_and_tokens_and_sees_nothing_else() {
    let db = TestDb::migrated().await;
    let app = app(&db).await;
    let (acme, other) = (app.create_org("acme").await, app.create_org("other").await);
    let cookie = sign_in(&app, acme, "member@example.com", Role::Member).await;

    let (status, html) = get(&app, "/console/pins", &cookie).await;
    assert_eq!(status, 200);
    assert!(
        html.contains("<h1>Pins</h1>") && html.contains("No pins yet"),
        "{html}"
    );
    assert!(!html.contains(">Cluster<"), "a member gets no cluster link");
    let csrf = csrf_of(&html);

    // Add a pin through the form; it is listed (same domain code as the API).
    let the_cid = cid(42);
    let res = post(
        &app,
        "/console/pins",
        &cookie,
        &[("csrf", &csrf), ("cid", &the_cid), ("name", "report.pdf")],
    )
    .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let (_, html) = get(&app, "/console/pins", &cookie).await;
    assert!(
        html.contains("report.pdf") && html.contains(&the_cid),
        "{html}"
    );
    assert!(html.contains("data-requestid=\"pin_"), "{html}");
    // A bad CID is a message a person understands, not a crash.
    let res = post(
        &app,
        "/console/pins",
        &cookie,
        &[("csrf", &csrf), ("cid", "not-a-cid")],
    )
    .await;
    let back = res.headers()[header::LOCATION]
        .to_str()
        .unwrap()
        .to_string();
    let (_, html) = get(&app, &back, &cookie).await;
    assert!(
        html.contains("role=\"status\"") && html.contains("The pin was not added"),
        "{html}"
    );

    // Tokens: created once, shown with the service-add line, then listed and revocable.
    let res = post(
        &app,
        "/console/tokens",
        &cookie,
        &[
            ("csrf", &csrf),
            ("label", "laptop"),
            ("ttl_hours", "2"),
            ("scope", "pin:read"),
        ],
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    let html = res.text().await.unwrap();
    assert!(
        html.contains("id=\"new-token\"") && html.contains("ipfs pin remote service add anchorage"),
        "{html}"
    );
    let (_, html) = get(&app, "/console/tokens", &cookie).await;
    assert!(
        html.contains("data-jti=\"tok_") && html.contains("laptop") && html.contains("pin:read"),
        "{html}"
    );
    assert!(!html.contains("id=\"new-token\""), "the JWT is shown once");

    // Forms without the CSRF token are refused.
    let res = post(&app, "/console/tokens", &cookie, &[("label", "x")]).await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    assert!(res.text().await.unwrap().contains("<h1>Refused</h1>"));

    // Cluster pages and other orgs do not exist for a member.
    for path in [
        "/console/cluster".to_string(),
        format!("/console/pins?org={other}"),
        "/console/audit".into(),
        "/console/nope".into(),
    ] {
        let (status, html) = get(&app, &path, &cookie).await;
        assert_eq!(status, 404, "{path}");
        assert!(html.contains("<h1>Not found</h1>"), "{path}: {html}");
    }

    // Signing out ends the session.
    let res = post(&app, "/console/sign-out", &cookie, &[("csrf", &csrf)]).await;
    assert_eq!(res.headers()[header::LOCATION], "/console/sign-in");
    let (status, _) = get(&app, "/console/pins", &cookie).await;
    assert_eq!(status, StatusCode::SEE_OTHER, "back to sign-in");
}

#[tokio::test]
async fn a_sysadmin_sees_the_cluster_orgs_and_audit_pages() {
    let db = TestDb::migrated().await;
    let app = app(&db).await;
    let acme = app.create_org("acme").await;
    let orgadmin = sign_in(&app, acme, "root@example.com", Role::Orgadmin).await;
    let out = crate::harness::bin::anchorage()
        .args(["admin", "grant-sysadmin", "root@example.com"])
        .env("ANCHORAGE_POSTGRES__DSN", db.app_dsn())
        .output()
        .unwrap();
    assert!(out.status.success());
    // A session opened with an org admin's token stays an org admin's session; the
    // cluster pages need a sysadmin token.
    let (status, _) = get(&app, "/console/cluster", &orgadmin).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let root = anchorage::db::system_tx(&app.state.db, |conn| {
        async move {
                anchorage::tenancy::users::ensure_by_email(conn, "root@example.com", false).await
            }
            .boxed()
    })
    .await
    .unwrap();
    let sysadmin = app
        .state
        .tokens
        .mint(anchorage::auth::MintRequest {
            sub: root.to_string(),
            org: None,
            role: Role::Sysadmin,
            scopes: None,
            ttl: std::time::Duration::from_secs(600),
        })
        .unwrap()
        .jwt;
    // The grant came from another process: wait until this node has heard of it.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while !app
        .state
        .standings
        .of(&app.state.db, root)
        .await
        .unwrap()
        .is_some_and(|s| s.sysadmin)
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the grant was not heard"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let cookie = token_sign_in(&app, &sysadmin).await;
    let (status, html) = get(&app, "/console/cluster", &cookie).await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("data-node=\"anchor-1\""), "{html}");
    let csrf = csrf_of(&html);
    let res = post(
        &app,
        "/console/cluster/nodes/anchor-1/cordon",
        &cookie,
        &[("csrf", &csrf)],
    )
    .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let (_, html) = get(&app, "/console/cluster", &cookie).await;
    assert!(
        html.contains("<td data-field=\"state\">cordoned</td>"),
        "{html}"
    );
    let res = post(
        &app,
        "/console/cluster/nodes/anchor-1/uncordon",
        &cookie,
        &[("csrf", &csrf)],
    )
    .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);

    let res = post(
        &app,
        "/console/orgs/{acme}/members"
            .replace("{acme}", &acme.to_string())
            .as_str(),
        &cookie,
        &[
            ("csrf", &csrf),
            ("email", "new@example.com"),
            ("role", "member"),
        ],
    )
    .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let (_, html) = get(&app, "/console/orgs", &cookie).await;
    assert!(
        html.contains("new@example.com") && html.contains("invited"),
        "{html}"
    );
    // Maintenance on and off, and a rebalance request, from the page's forms.
    let res = post(
        &app,
        "/console/cluster/maintenance",
        &cookie,
        &[
            ("csrf", &csrf),
            ("on", "true"),
            ("reason", "rolling restart"),
            ("ttl", "20m"),
        ],
    )
    .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let (_, html) = get(&app, "/console/cluster", &cookie).await;
    assert!(
        html.contains("On: rolling restart") && html.contains("Turn maintenance off"),
        "{html}"
    );
    let res = post(
        &app,
        "/console/cluster/maintenance",
        &cookie,
        &[("csrf", &csrf), ("on", "false")],
    )
    .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let (_, html) = get(&app, "/console/cluster", &cookie).await;
    assert!(html.contains("Turn maintenance on"), "{html}");
    let res = post(
        &app,
        "/console/cluster/maintenance",
        &cookie,
        &[
            ("csrf", &csrf),
            ("on", "true"),
            ("reason", "x"),
            ("ttl", "soon"),
        ],
    )
    .await;
    let back = res.headers()[header::LOCATION]
        .to_str()
        .unwrap()
        .to_string();
    let (_, html) = get(&app, &back, &cookie).await;
    assert!(
        html.contains("Nothing changed") && html.contains("duration"),
        "{html}"
    );
    let res = post(
        &app,
        "/console/cluster/rebalance",
        &cookie,
        &[("csrf", &csrf)],
    )
    .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);

    let (status, html) = get(&app, "/console/audit", &cookie).await;
    assert_eq!(status, 200);
    for action in [
        "node.cordon",
        "node.uncordon",
        "member.add",
        "maintenance.on",
        "maintenance.off",
        "rebalance.apply",
    ] {
        assert!(html.contains(action), "{action} missing: {html}");
    }
    // Filters narrow it down.
    let (_, html) = get(&app, "/console/audit?action=maintenance.on", &cookie).await;
    assert!(
        html.contains("maintenance.on") && !html.contains("member.add"),
        "{html}"
    );
}
