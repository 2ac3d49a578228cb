//! Human sign-in: the full Authorization Code + PKCE flow against a real OIDC provider
//! (npm `oidc-provider`) to a session cookie; bootstrap sysadmins; pending memberships;
//! ID-token verification failures against a scripted provider; and who may manage
//! members.

use anchorage::{auth::Role, ids::OrgId};
use reqwest::{header, Method, StatusCode};
use serde_json::{json, Value};

use crate::harness::{
    fake_idp::{FakeIdp, Signing},
    fixtures::{app, PEER},
    oidc::{Account, OidcProvider, Redirected},
    send,
    sql::db_count,
    TestApp, TestDb,
};

pub(crate) const CLIENT: &str = "anchorage";
/// The site as browsers see it: the redirect target, and the origin cookie requests
/// come from. Tests talk to the server directly and carry the redirect by hand.
pub(crate) const SITE: &str = "http://localhost:9";

pub(crate) async fn app_for(db: &TestDb, issuer: &str, extra: Vec<(String, Value)>) -> TestApp {
    let mut config = vec![
        (
            "ipfs.delegates".to_string(),
            json!([format!("/ip4/198.51.99.7/tcp/4001/p2p/{PEER}")]),
        ),
        ("server.publicURL".into(), json!(SITE)),
        ("auth.authentik.issuer".into(), json!(issuer)),
        ("auth.authentik.clientID".into(), json!(CLIENT)),
    ];
    config.extend(extra);
    TestApp::spawn_api_only(db, "http://127.0.0.1:9", config).await
}

pub(crate) fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// A sign-in as the browser that started it sees it: where `GET /v1/auth/login` sent
/// it, and the cookie (`name=value`) that binds the attempt to this browser, if any.
pub(crate) struct Login {
    pub location: String,
    pub cookie: Option<String>,
}

/// `GET /v1/auth/login?return_to=<return_to>`.
pub(crate) async fn login_to(app: &TestApp, return_to: &str) -> Login {
    let query = serde_urlencoded::to_string([("return_to", return_to)]).unwrap();
    let res = no_redirects()
        .get(app.url(&format!("/v1/auth/login?{query}")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FOUND);
    let cookie = res
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("anchorage_login="))
        .map(|v| v.split(';').next().unwrap().to_string());
    Login {
        location: res.headers()[header::LOCATION]
            .to_str()
            .unwrap()
            .to_string(),
        cookie,
    }
}

/// `GET /v1/auth/login` → the provider URL it redirects to.
async fn login_location(app: &TestApp) -> Login {
    login_to(app, "/pins").await
}

/// What `POST /v1/auth/session` answered.
pub(crate) struct Answer {
    pub status: u16,
    pub body: Value,
    /// The session cookie's whole `Set-Cookie` value, if one was set.
    pub cookie: Option<String>,
    pub return_to: Option<String>,
}

/// `POST /v1/auth/session` with `body`, carrying `cookie` (the login cookie) if any.
pub(crate) async fn post_session(app: &TestApp, body: Value, cookie: Option<&str>) -> Answer {
    let mut req = app.http.post(app.url("/v1/auth/session")).json(&body);
    if let Some(cookie) = cookie {
        req = req.header(header::COOKIE, cookie);
    }
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    let cookie = res
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("anchorage_session=") && !v.starts_with("anchorage_session=;"))
        .map(str::to_string);
    let return_to = res
        .headers()
        .get("X-Anchorage-Return-To")
        .map(|v| v.to_str().unwrap().to_string());
    Answer {
        status,
        body: res.json().await.unwrap_or(Value::Null),
        cookie,
        return_to,
    }
}

/// `POST /v1/auth/session` with `body`: status, body, the session cookie if set.
async fn session(app: &TestApp, body: Value) -> (u16, Value, Option<String>) {
    let a = post_session(app, body, None).await;
    (a.status, a.body, a.cookie)
}

/// Finishes `login` after the provider sent the browser back with `back`.
pub(crate) async fn finish(app: &TestApp, login: &Login, back: &Redirected) -> Answer {
    let body = json!({
        "code": back.code.clone().expect("a code"),
        "state": back.state.clone().expect("a state"),
    });
    post_session(app, body, login.cookie.as_deref()).await
}

/// The whole browser round trip for `who`; returns the session cookie's `name=value`.
pub(crate) async fn sign_in(app: &TestApp, idp: &OidcProvider, who: &str) -> (Value, String) {
    let login = login_location(app).await;
    let back = idp.authorize(&login.location, who).await;
    let answer = finish(app, &login, &back).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    let cookie = answer.cookie.expect("a session cookie");
    for attr in ["HttpOnly", "SameSite=Lax", "Path=/"] {
        assert!(cookie.contains(attr), "{attr} missing: {cookie}");
    }
    assert!(
        !cookie.contains("Secure"),
        "plain-http localhost gets no Secure: {cookie}"
    );
    let pair = cookie.split(';').next().unwrap().to_string();
    (answer.body, pair)
}

/// A request with the session cookie, from our own origin.
pub(crate) fn as_browser(
    app: &TestApp,
    method: Method,
    path: &str,
    cookie: &str,
) -> reqwest::RequestBuilder {
    app.http
        .request(method, app.url(path))
        .header(header::COOKIE, cookie)
        .header(header::ORIGIN, SITE)
}

#[tokio::test]
async fn the_code_and_pkce_flow_signs_people_in_with_the_right_roles() {
    let db = TestDb::migrated().await;
    let idp = OidcProvider::start(
        &[(CLIENT, vec![format!("{SITE}/")])],
        &[
            Account::new("alice-sub", "alice@example.com", &[]).verified(),
            Account::new("root-sub", "root@example.com", &[]).verified(),
            Account::new("ops-sub", "ops@example.com", &["anchorage-sysadmins"]),
        ],
    );
    let app = app_for(
        &db,
        &idp.issuer(),
        vec![("bootstrap.sysadmins".into(), json!(["root@example.com"]))],
    )
    .await;
    assert!(
        idp.issuer().ends_with('/'),
        "the issuer keeps its trailing slash"
    );

    // An admin invites alice before she has ever signed in: a pending membership.
    let acme = app.create_org("acme").await;
    let sysadmin = app.token(None, Role::Sysadmin, None);
    let (status, invited) = send(
        app.req(Method::POST, &format!("/v1/orgs/{acme}/members"), &sysadmin)
            .json(&json!({"email": "alice@example.com", "role": "member"})),
    )
    .await;
    assert_eq!(status, 201, "{invited}");
    assert_eq!(invited["pending"], true);

    // Alice signs in: a session, and the invitation binds.
    let (me, alice) = sign_in(&app, &idp, "alice-sub").await;
    assert_eq!(me["email"], "alice@example.com");
    assert_eq!(me["sysadmin"], false);
    assert_eq!(
        me["orgs"],
        json!([{"id": acme.to_string(), "name": "acme", "role": "member"}])
    );
    let (status, again) = send(as_browser(&app, Method::GET, "/v1/users/me", &alice)).await;
    assert_eq!(status, 200);
    assert_eq!(again, me);
    let (_, her_orgs) = send(as_browser(&app, Method::GET, "/v1/orgs", &alice)).await;
    assert_eq!(her_orgs["count"], 1, "{her_orgs}");
    assert_eq!(her_orgs["results"][0]["name"], "acme");
    let (_, members) =
        send(app.req(Method::GET, &format!("/v1/orgs/{acme}/members"), &sysadmin)).await;
    assert_eq!(members["results"][0]["pending"], false, "{members}");

    // Signed in, she can mint an API token for her org, and it works.
    let (status, minted) = send(
        as_browser(&app, Method::POST, "/v1/tokens", &alice)
            .json(&json!({"label": "laptop", "ttl_hours": 1})),
    )
    .await;
    assert_eq!(status, 201, "{minted}");
    let (status, _) =
        send(app.req(Method::GET, "/v1/pins", minted["token"].as_str().unwrap())).await;
    assert_eq!(status, 200);
    // The cookie alone, from another site, cannot change anything.
    let res = app
        .http
        .post(app.url("/v1/tokens"))
        .header(header::COOKIE, &alice)
        .header(header::ORIGIN, "https://evil.example")
        .json(&json!({"label": "x", "ttl_hours": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);

    // The bootstrap email becomes a sysadmin; so does the sysadmins group.
    let (root, _) = sign_in(&app, &idp, "root-sub").await;
    assert_eq!(root["sysadmin"], true, "{root}");
    let (ops, _) = sign_in(&app, &idp, "ops-sub").await;
    assert_eq!(ops["sysadmin"], true, "{ops}");

    // Logout ends the session.
    let res = as_browser(&app, Method::POST, "/v1/auth/logout", &alice)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let (status, _) = send(as_browser(&app, Method::GET, "/v1/users/me", &alice)).await;
    assert_eq!(status, 401);

    // Bootstrap applies to the first sign-in only: a config naming alice later changes
    // nothing for her, and dropping root from it does not demote root.
    drop(app);
    let app = app_for(
        &db,
        &idp.issuer(),
        vec![
            ("bootstrap.sysadmins".into(), json!(["alice@example.com"])),
            ("cluster.nodeID".into(), json!("anchor-2")),
        ],
    )
    .await;
    let (alice_again, _) = sign_in(&app, &idp, "alice-sub").await;
    assert_eq!(alice_again["sysadmin"], false);
    let (root_again, _) = sign_in(&app, &idp, "root-sub").await;
    assert_eq!(root_again["sysadmin"], true);

    // The operator can promote an existing user.
    let out = crate::harness::bin::anchorage()
        .args(["admin", "grant-sysadmin", "alice@example.com"])
        .env("ANCHORAGE_POSTGRES__DSN", db.app_dsn())
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (alice_admin, _) = sign_in(&app, &idp, "alice-sub").await;
    assert_eq!(alice_admin["sysadmin"], true);
}

fn details(body: &Value) -> String {
    body["error"]["details"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[tokio::test]
async fn id_tokens_that_do_not_verify_are_refused_with_their_cause() {
    let db = TestDb::migrated().await;
    let idp = FakeIdp::start();
    let app = app_for(&db, &idp.issuer(), vec![]).await;

    // The provider rotates to a key we have not seen: one re-discovery picks it up.
    let login = login_location(&app).await;
    let back = idp.authorize(&login.location).await;
    idp.publish_second_key();
    let discoveries = idp.discovery_hits();
    let claims = idp.valid_claims(CLIENT, "rotated");
    idp.queue_id_token(claims, Signing::UnknownKid);
    let a = post_session(
        &app,
        json!({"code": back.code.unwrap(), "state": back.state.unwrap()}),
        login.cookie.as_deref(),
    )
    .await;
    let (status, body) = (a.status, a.body);
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        idp.discovery_hits(),
        discoveries + 1,
        "the keys were re-read once"
    );

    // Each claims set is the valid one (nonce of this very attempt) with one fault.
    type Fault = Box<dyn Fn(&mut Value)>;
    let mut cases: Vec<(&str, Fault, Signing)> = vec![
        (
            "issuer mismatch",
            Box::new(|c| c["iss"] = json!("https://elsewhere.example/")),
            Signing::Current,
        ),
        (
            "audience mismatch",
            Box::new(|c| c["aud"] = json!("someone-else")),
            Signing::Current,
        ),
        (
            "expired",
            Box::new(|c| {
                let past = chrono::Utc::now().timestamp() - 600;
                c["exp"] = json!(past);
                c["iat"] = json!(past - 300);
            }),
            Signing::Current,
        ),
        (
            "nonce mismatch",
            Box::new(|c| c["nonce"] = json!("not-the-one")),
            Signing::Current,
        ),
        ("signature", Box::new(|_| {}), Signing::OtherKeySameKid),
    ];
    for (cause, fault, signing) in cases.drain(..) {
        let login = login_location(&app).await;
        let back = idp.authorize(&login.location).await;
        let mut claims = idp.valid_claims(CLIENT, "someone");
        fault(&mut claims);
        idp.queue_id_token(claims, signing);
        let a = post_session(
            &app,
            json!({"code": back.code.unwrap(), "state": back.state.unwrap()}),
            login.cookie.as_deref(),
        )
        .await;
        let (status, body, cookie) = (a.status, a.body, a.cookie);
        assert_eq!(status, 401, "{cause}: {body}");
        assert!(details(&body).contains(cause), "{cause}: {body}");
        assert!(cookie.is_none(), "{cause}: no session");
    }

    // Within the leeway, a slightly expired token is fine.
    let login = login_location(&app).await;
    let back = idp.authorize(&login.location).await;
    let mut claims = idp.valid_claims(CLIENT, "skewed");
    claims["exp"] = json!(chrono::Utc::now().timestamp() - 30);
    idp.queue_id_token(claims, Signing::Current);
    let a = post_session(
        &app,
        json!({"code": back.code.unwrap(), "state": back.state.unwrap()}),
        login.cookie.as_deref(),
    )
    .await;
    let (status, body) = (a.status, a.body);
    assert_eq!(status, 200, "30 s of clock skew is tolerated: {body}");

    // The bad signature above wanted a re-discovery too soon after the rotation's:
    // rate-limited, so the keys were not fetched again.
    assert_eq!(
        idp.discovery_hits(),
        discoveries + 1,
        "re-discovery is rate-limited"
    );

    // A state we never issued (or one already used) is refused before any exchange.
    let tokens_before = idp.token_hits();
    let login = login_location(&app).await;
    let a = post_session(
        &app,
        json!({"code": "x", "state": "forged"}),
        login.cookie.as_deref(),
    )
    .await;
    let (status, body) = (a.status, a.body);
    assert_eq!(status, 400, "{body}");
    assert!(details(&body).contains("state mismatch"), "{body}");
    assert_eq!(idp.token_hits(), tokens_before);
}

#[tokio::test]
async fn members_cannot_manage_members_and_org_admins_only_their_own_org() {
    let db = TestDb::migrated().await;
    let app = app(&db).await;
    let (acme, other): (OrgId, OrgId) =
        (app.create_org("acme").await, app.create_org("other").await);
    let member = app.token(Some(acme), Role::Member, None);
    let admin = app.token(Some(acme), Role::Orgadmin, None);
    let path = format!("/v1/orgs/{acme}/members");

    let (status, _) = send(
        app.req(Method::POST, &path, &member)
            .json(&json!({"email": "x@example.com", "role": "member"})),
    )
    .await;
    assert_eq!(status, 403);
    let (status, _) = send(app.req(Method::GET, &path, &member)).await;
    assert_eq!(status, 403);

    let (status, added) = send(
        app.req(Method::POST, &path, &admin)
            .json(&json!({"email": "bob@example.com", "role": "member"})),
    )
    .await;
    assert_eq!(status, 201, "{added}");
    let id = added["id"].as_str().unwrap();
    let (status, _) = send(
        app.req(Method::PATCH, &format!("{path}/{id}"), &admin)
            .json(&json!({"role": "orgadmin"})),
    )
    .await;
    assert_eq!(status, 204);
    let (_, list) = send(app.req(Method::GET, &path, &admin)).await;
    assert_eq!(list["results"][0]["role"], "orgadmin", "{list}");
    let (status, body) = send(
        app.req(Method::POST, &path, &admin)
            .json(&json!({"email": "bob@example.com", "role": "member"})),
    )
    .await;
    assert_eq!(status, 409, "{body}");

    // Another org is out of reach, as if it did not exist.
    let other_path = format!("/v1/orgs/{other}/members");
    let (status, _) = send(app.req(Method::GET, &other_path, &admin)).await;
    assert_eq!(status, 404);
    let (status, _) = send(
        app.req(Method::POST, &other_path, &admin)
            .json(&json!({"email": "eve@example.com", "role": "orgadmin"})),
    )
    .await;
    assert_eq!(status, 404);
    let (status, _) = send(app.req(Method::DELETE, &format!("{other_path}/{id}"), &admin)).await;
    assert_eq!(status, 404);
    // Orgs: a member lists only their own; only a sysadmin creates.
    let (_, orgs) = send(app.req(Method::GET, "/v1/orgs", &admin)).await;
    assert_eq!(orgs["count"], 1, "{orgs}");
    let (status, _) = send(
        app.req(Method::POST, "/v1/orgs", &admin)
            .json(&json!({"name": "mine"})),
    )
    .await;
    assert_eq!(status, 403);
    let sysadmin = app.token(None, Role::Sysadmin, None);
    let (status, created) = send(
        app.req(Method::POST, "/v1/orgs", &sysadmin)
            .json(&json!({"name": "mine"})),
    )
    .await;
    assert_eq!(status, 201, "{created}");

    let (status, _) = send(app.req(Method::DELETE, &format!("{path}/{id}"), &admin)).await;
    assert_eq!(status, 204);
    let (_, list) = send(app.req(Method::GET, &path, &admin)).await;
    assert_eq!(list["count"], 0);
    // Each change is audited, with the admin as actor.
    let (_, audit) = send(app.req(
        Method::GET,
        &format!("/v1/admin/audit?org={acme}"),
        &sysadmin,
    ))
    .await;
    let actions: Vec<&str> = audit["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        ["member.remove", "member.role", "member.add"],
        "{audit}"
    );
}

#[tokio::test]
async fn without_a_provider_an_api_token_opens_a_session_and_sign_in_is_rate_limited() {
    use futures_util::FutureExt;
    let db = TestDb::migrated().await;
    let app = app(&db).await;
    let acme = app.create_org("acme").await;
    let user = anchorage::db::system_tx(&app.state.db, |conn| {
        async move {
            let user =
                anchorage::tenancy::users::ensure_by_email(conn, "dev@example.com", false).await?;
            anchorage::tenancy::users::set_membership(conn, acme, user, Role::Orgadmin).await?;
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
            org: Some(acme),
            role: Role::Orgadmin,
            scopes: None,
            ttl: std::time::Duration::from_secs(600),
        })
        .unwrap()
        .jwt;

    // No identity provider: login is not available, a token opens a session instead.
    let res = no_redirects()
        .get(app.url("/v1/auth/login"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    let (status, me, cookie) = session(&app, json!({"token": token})).await;
    assert_eq!(status, 200, "{me}");
    assert_eq!(me["email"], "dev@example.com");
    let cookie = cookie.unwrap().split(';').next().unwrap().to_string();
    let (status, me) = send(as_browser(&app, Method::GET, "/v1/users/me", &cookie)).await;
    assert_eq!(status, 200);
    assert_eq!(me["orgs"][0]["role"], "orgadmin", "{me}");
    let (status, _) = send(as_browser(&app, Method::GET, "/v1/pins", &cookie)).await;
    assert_eq!(status, 200, "a session works wherever a token does");

    // The events socket takes the cookie only from our own origin.
    let url = format!("{}/v1/events", app.base.replace("http://", "ws://"));
    let request = |origin: Option<&str>| {
        use tokio_tungstenite::tungstenite::client::IntoClientRequest;
        let mut req = url.as_str().into_client_request().unwrap();
        req.headers_mut().insert("Cookie", cookie.parse().unwrap());
        if let Some(origin) = origin {
            req.headers_mut().insert("Origin", origin.parse().unwrap());
        }
        req
    };
    assert!(
        tokio_tungstenite::connect_async(request(Some(&app.base)))
            .await
            .is_ok(),
        "our own origin (as addressed) may open it"
    );
    assert!(
        tokio_tungstenite::connect_async(request(Some("https://evil.example")))
            .await
            .is_err()
    );
    assert!(tokio_tungstenite::connect_async(request(None))
        .await
        .is_err());

    // Sign-in attempts are limited per client (default 10 a minute).
    let mut limited = false;
    for _ in 0..12 {
        let (status, body, _) = session(&app, json!({"token": "not-a-token"})).await;
        if status == 429 {
            assert_eq!(body["error"]["reason"], "TOO_MANY_REQUESTS");
            limited = true;
            break;
        }
    }
    assert!(
        limited,
        "the 11th sign-in attempt in a minute was not limited"
    );
}

/// The web UI lives at the site root, and the sign-in return is accepted at `/` (the
/// seed's redirect URI, the default), at `/auth/callback`, and at a configured
/// `auth.authentik.redirectPath`, whose URI is what the provider is sent.
#[tokio::test]
async fn the_web_ui_and_the_sign_in_return_live_at_the_site_root() {
    let db = TestDb::migrated().await;
    let idp = FakeIdp::start();
    let app = app_for(&db, &idp.issuer(), vec![]).await;
    let res = no_redirects().get(app.url("/")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::FOUND);
    assert_eq!(res.headers()[header::LOCATION], "/console/");
    for path in [
        "/?code=c&state=s",
        "/?error=access_denied",
        "/auth/callback?code=c&state=s",
    ] {
        let res = no_redirects().get(app.url(path)).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::OK, "{path}");
        assert_eq!(res.headers()[header::CACHE_CONTROL], "no-store");
        assert!(
            res.text().await.unwrap().contains("/v1/auth/session"),
            "{path}"
        );
    }
    let login = login_to(&app, "/").await;
    let uri = |location: &str| {
        url::Url::parse(location)
            .unwrap()
            .query_pairs()
            .find(|(k, _)| k == "redirect_uri")
            .map(|(_, v)| v.into_owned())
    };
    assert_eq!(
        uri(&login.location).as_deref(),
        Some(format!("{SITE}/").as_str())
    );

    let db2 = TestDb::migrated().await;
    let custom = app_for(
        &db2,
        &idp.issuer(),
        vec![("auth.authentik.redirectPath".into(), json!("/signed-in"))],
    )
    .await;
    let login = login_to(&custom, "/").await;
    assert_eq!(
        uri(&login.location).as_deref(),
        Some(format!("{SITE}/signed-in").as_str())
    );
    let res = no_redirects()
        .get(custom.url("/signed-in?code=c&state=s"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
}

/// An ID token as the seed's Authentik walkthrough produces it: client `anchorage-web`
/// (also the audience), scopes `openid email profile groups` with the `groups` scope
/// mapping, Authentik's default `email` mapping (`email_verified: false`), and a hashed
/// user id as `sub`. Membership of `anchorage-sysadmins` makes a sysadmin; the user row
/// is what the walkthrough's psql check (with `oidc_subject`) finds.
#[tokio::test]
async fn an_id_token_shaped_as_the_authentik_walkthrough_signs_a_group_sysadmin_in() {
    let db = TestDb::migrated().await;
    let hashed = "4b0fb4ab1d2fd1e6d4bc5a2e0bd0b0a7c1a0f1e7a2b6ef5d7a9cc4e1b2d3f4a5";
    let idp = OidcProvider::start(
        &[("anchorage-web", vec![format!("{SITE}/")])],
        &[Account::new(
            hashed,
            "admin@example.com",
            &["anchorage-users", "anchorage-sysadmins"],
        )],
    );
    let app = app_for(
        &db,
        &idp.issuer(),
        vec![
            ("auth.authentik.clientID".into(), json!("anchorage-web")),
            ("auth.authentik.audience".into(), json!("anchorage-web")),
        ],
    )
    .await;
    let login = login_to(&app, "/").await;
    let scope = url::Url::parse(&login.location)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "scope")
        .map(|(_, v)| v.into_owned());
    assert_eq!(scope.as_deref(), Some("openid email profile groups"));
    let back = idp.authorize(&login.location, hashed).await;
    let answer = finish(&app, &login, &back).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.body["sysadmin"], true, "{}", answer.body);
    let rows = db_count(
        &app,
        "SELECT count(*) AS n FROM (SELECT id, email, oidc_subject, is_sysadmin, created_at \
             FROM users ORDER BY created_at DESC LIMIT 5) u \
             WHERE oidc_subject = $1 AND is_sysadmin",
        &[hashed.into()],
    )
    .await;
    assert_eq!(rows, 1, "the walkthrough's psql check finds the sysadmin");
}
