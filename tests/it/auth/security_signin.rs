//! Security review, part 1: what an attacker tried against sign-in and revocation, each
//! as a test against real Postgres (as the server's role) and, where sign-in is
//! involved, the real OIDC provider (`tests/oidc`). See docs/security.md.

use std::time::{Duration, Instant};

use anchorage::{
    auth::{MintRequest, Role, Scope},
    db::system_tx,
    ids::{OrgId, TokenId, UserId},
    tenancy::users,
};
use futures_util::FutureExt;
use reqwest::{header, Method, StatusCode};
use serde_json::{json, Value};

use crate::{
    auth::signin::{
        app_for, as_browser, finish, login_to, no_redirects, post_session, sign_in, CLIENT, SITE,
    },
    harness::{
        app::TEST_KID,
        fixtures::{app, cid},
        oidc::{Account, OidcProvider},
        send,
        sql::db_count,
        TestApp, TestDb,
    },
};

fn provider(accounts: &[Account]) -> OidcProvider {
    // The seed's walkthrough registers the site root as the redirect URI.
    OidcProvider::start(&[(CLIENT, vec![format!("{SITE}/")])], accounts)
}

/// Signs `who` in at the provider and posts the code back from the same browser.
async fn attempt(app: &TestApp, idp: &OidcProvider, who: &str) -> crate::auth::signin::Answer {
    let login = login_to(app, "/").await;
    let back = idp.authorize(&login.location, who).await;
    finish(app, &login, &back).await
}

fn details(body: &Value) -> String {
    body["error"]["details"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// A user with `email`, created as an operator would (no sign-in yet), with `role` in
/// `org`.
pub(crate) async fn person(
    app: &TestApp,
    email: &str,
    org: OrgId,
    role: Role,
    sysadmin: bool,
) -> UserId {
    let email = email.to_string();
    system_tx(&app.state.db, move |conn| {
        async move {
            let user = users::ensure_by_email(conn, &email, sysadmin).await?;
            users::set_membership(conn, org, user, role).await?;
            Ok(user)
        }
        .boxed()
    })
    .await
    .unwrap()
}

/// A token for `user` signed with the app's key, as `anchorage admin mint-token` would.
pub(crate) fn token_for(
    app: &TestApp,
    user: UserId,
    org: Option<OrgId>,
    role: Role,
    scopes: Option<Vec<Scope>>,
    ttl: Duration,
) -> (String, TokenId) {
    let minted = app
        .state
        .tokens
        .mint(MintRequest {
            sub: user.to_string(),
            org,
            role,
            scopes,
            ttl,
        })
        .unwrap();
    (minted.jwt, minted.claims.jti)
}

/// The audit entries with `action`, newest first, as a sysadmin reads them.
async fn audited(app: &TestApp, action: &str) -> Vec<Value> {
    let sysadmin = app.token(None, Role::Sysadmin, None);
    let (status, body) = send(app.req(
        Method::GET,
        &format!("/v1/admin/audit?action={action}"),
        &sysadmin,
    ))
    .await;
    assert_eq!(status, 200, "{body}");
    body["results"].as_array().unwrap().clone()
}

/// Polls `probe` until it returns true or `within` passes; returns how long it took.
async fn eventually<F, Fut>(within: Duration, what: &str, mut probe: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    loop {
        if probe().await {
            return start.elapsed();
        }
        assert!(start.elapsed() < within, "{what}: not within {within:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

// --- 1. An unverified email is trusted at sign-in ---------------------------------

#[tokio::test]
async fn an_unverified_email_adopts_no_one_binds_no_invitation_and_bootstraps_no_one() {
    let db = TestDb::migrated().await;
    let idp = provider(&[
        // Each claims an email someone else owns, without the provider vouching for it.
        Account::new("mallory-adopt", "victim@example.com", &[]),
        Account::new("mallory-invite", "invitee@example.com", &[]),
        Account::new("mallory-boot", "root@example.com", &[]),
        // Unverified, but the email matters to nobody: signs in, the email unused.
        Account::new("plain", "plain@example.com", &[]),
        Account::new("victim", "victim@example.com", &[]).verified(),
    ]);
    let bootstrap = (
        "bootstrap.sysadmins".to_string(),
        json!(["root@example.com"]),
    );
    let app = app_for(&db, &idp.issuer(), vec![bootstrap.clone()]).await;
    let acme = app.create_org("acme").await;
    // The operator pre-created the victim (a sysadmin and acme's admin) and invited
    // someone else.
    let victim = person(&app, "victim@example.com", acme, Role::Orgadmin, true).await;
    let sysadmin = app.token(None, Role::Sysadmin, None);
    let (status, invited) = send(
        app.req(Method::POST, &format!("/v1/orgs/{acme}/members"), &sysadmin)
            .json(&json!({"email": "invitee@example.com", "role": "member"})),
    )
    .await;
    assert_eq!(status, 201, "{invited}");

    for who in ["mallory-adopt", "mallory-invite", "mallory-boot"] {
        let answer = attempt(&app, &idp, who).await;
        assert_eq!(answer.status, 401, "{who}: {}", answer.body);
        assert!(answer.cookie.is_none(), "{who}: no session");
        let why = details(&answer.body);
        for needed in ["email_verified", "trustUnverifiedEmail", "scope mapping"] {
            assert!(
                why.contains(needed),
                "{who}: cause and fix, {needed}: {why}"
            );
        }
    }
    // Nothing was written for them, and the victim's account is untouched.
    let n = db_count(
        &app,
        "SELECT count(*) AS n FROM users WHERE oidc_subject LIKE 'mallory-%'",
        &[],
    )
    .await;
    assert_eq!(n, 0, "no user rows for the refused identities");
    let n = db_count(
        &app,
        "SELECT count(*) AS n FROM users WHERE id = $1 AND oidc_subject IS NULL",
        &[victim.uuid().into()],
    )
    .await;
    assert_eq!(n, 1, "the victim was not adopted");
    let n = db_count(
        &app,
        "SELECT count(*) AS n FROM memberships WHERE email = 'invitee@example.com' AND user_id IS NULL", &[],
    )
    .await;
    assert_eq!(n, 1, "the invitation is still pending");
    let n = db_count(
        &app,
        "SELECT count(*) AS n FROM users WHERE is_sysadmin",
        &[],
    )
    .await;
    assert_eq!(n, 1, "the victim is the only sysadmin");
    // Each refusal is audited with its cause and fix.
    let refusals = audited(&app, "session.refuse").await;
    assert_eq!(refusals.len(), 3, "{refusals:?}");
    for entry in &refusals {
        let text = entry["details"].to_string();
        assert!(
            text.contains("email_verified") && text.contains("trustUnverifiedEmail"),
            "{entry}"
        );
    }

    // An unverified email that claims nothing signs in; the email is not recorded for
    // anything to match later.
    let answer = attempt(&app, &idp, "plain").await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.body["sysadmin"], false);
    assert_eq!(answer.body["orgs"], json!([]));
    assert_eq!(answer.body["email"], Value::Null, "{}", answer.body);

    // The real owner, verified, is adopted with their rights.
    let (me, _) = sign_in(&app, &idp, "victim").await;
    assert_eq!(me["id"], victim.to_string(), "{me}");
    assert_eq!(me["sysadmin"], true);
    assert_eq!(me["orgs"][0]["role"], "orgadmin");

    // An operator who trusts the provider's emails opts out.
    drop(app);
    let app = app_for(
        &db,
        &idp.issuer(),
        vec![
            bootstrap,
            ("auth.authentik.trustUnverifiedEmail".into(), json!(true)),
            ("cluster.nodeID".into(), json!("anchor-2")),
        ],
    )
    .await;
    let (me, _) = sign_in(&app, &idp, "mallory-invite").await;
    assert_eq!(me["orgs"][0]["id"], acme.to_string(), "{me}");
}

#[tokio::test]
async fn bootstrap_makes_only_the_first_identity_with_the_email_a_sysadmin() {
    let db = TestDb::migrated().await;
    let idp = provider(&[
        Account::new("root-first", "root@example.com", &[]).verified(),
        Account::new("root-second", "root@example.com", &[]).verified(),
    ]);
    let app = app_for(
        &db,
        &idp.issuer(),
        vec![("bootstrap.sysadmins".into(), json!(["root@example.com"]))],
    )
    .await;
    let (first, _) = sign_in(&app, &idp, "root-first").await;
    assert_eq!(first["sysadmin"], true, "{first}");
    let (second, _) = sign_in(&app, &idp, "root-second").await;
    assert_eq!(second["sysadmin"], false, "{second}");
    let (first_again, _) = sign_in(&app, &idp, "root-first").await;
    assert_eq!(first_again["sysadmin"], true);
}

// --- 2. Any API token can be exchanged for a full browser session ----------------

#[tokio::test]
async fn a_session_opened_from_a_token_carries_only_that_token() {
    let db = TestDb::migrated().await;
    let app = app(&db).await;
    let acme = app.create_org("acme").await;
    let other = app.create_org("other").await;
    // A sysadmin who is also acme's admin hands out a narrow, short token.
    let boss = person(&app, "boss@example.com", acme, Role::Orgadmin, true).await;
    let (narrow, jti) = token_for(
        &app,
        boss,
        Some(acme),
        Role::Member,
        Some(vec![Scope::PinRead]),
        Duration::from_secs(3600),
    );
    let answer = post_session(&app, json!({"token": narrow}), None).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    let me = &answer.body;
    assert_eq!(me["session"]["via"], "token", "{me}");
    assert_eq!(me["session"]["token"], jti.to_string(), "{me}");
    assert_eq!(me["sysadmin"], false, "{me}");
    assert_eq!(
        me["orgs"],
        json!([{"id": acme.to_string(), "name": "acme", "role": "member"}])
    );
    let set_cookie = answer.cookie.unwrap();
    let max_age: i64 = set_cookie
        .split(';')
        .find_map(|a| a.trim().strip_prefix("Max-Age="))
        .expect("Max-Age")
        .parse()
        .unwrap();
    assert!(
        max_age <= 3600,
        "the cookie outlives the token: {set_cookie}"
    );
    let n = db_count(
        &app,
        "SELECT count(*) AS n FROM sessions WHERE expires_at <= now() + interval '3601 seconds'",
        &[],
    )
    .await;
    assert_eq!(n, 1, "the session ends no later than the token");
    let cookie = set_cookie.split(';').next().unwrap().to_string();

    // It cannot mint a broader, longer token, write pins, or act as a sysadmin.
    let (status, body) = send(
        as_browser(&app, Method::POST, "/v1/tokens", &cookie)
            .json(&json!({"scopes": ["pin:write", "tokens:write"], "ttl_hours": 720})),
    )
    .await;
    assert_eq!(status, 403, "{body}");
    let (status, _) = send(as_browser(&app, Method::GET, "/v1/pins", &cookie)).await;
    assert_eq!(status, 200);
    let (status, body) =
        send(as_browser(&app, Method::POST, "/v1/pins", &cookie).json(&json!({"cid": cid(1)})))
            .await;
    assert_eq!(status, 403, "{body}");
    let (status, _) = send(as_browser(&app, Method::GET, "/v1/admin/nodes", &cookie)).await;
    assert_eq!(status, 403);
    let (status, _) = send(
        as_browser(&app, Method::GET, "/v1/pins", &cookie)
            .header("X-Anchorage-Org", other.to_string()),
    )
    .await;
    assert_eq!(status, 403);
    let (status, _) = send(as_browser(
        &app,
        Method::GET,
        &format!("/v1/orgs/{acme}/members"),
        &cookie,
    ))
    .await;
    assert_eq!(status, 403, "a member token's session is no org admin");

    // The console's token form opens the same narrow session.
    let res = no_redirects()
        .post(app.url("/console/sign-in"))
        .header(header::ORIGIN, &app.base)
        .form(&[("token", narrow.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let console = res.headers()[header::SET_COOKIE]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let res = no_redirects()
        .get(app.url("/console/cluster"))
        .header(header::COOKIE, &console)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND, "no cluster pages");

    // Revoking the token ends both sessions.
    anchorage::tenancy::tokens::revoke_by_jti(
        &app.state.db,
        app.state.bus.clone(),
        "test".into(),
        jti,
        chrono::Utc::now() + chrono::Duration::hours(1),
    )
    .await
    .unwrap();
    let (status, _) = send(as_browser(&app, Method::GET, "/v1/pins", &cookie)).await;
    assert_eq!(status, 401);
    let res = no_redirects()
        .get(app.url("/console/pins"))
        .header(header::COOKIE, &console)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER, "back to sign-in");
}

// --- 3. Removed or demoted members keep their API tokens --------------------------

#[tokio::test]
async fn removed_or_demoted_members_lose_their_tokens_and_sessions_on_every_node() {
    let db = TestDb::migrated().await;
    let one = app(&db).await;
    // A second node over the same database and signing key.
    let key = one.state.config.auth.api_token.signing_keys[0].path.clone();
    let two = TestApp::spawn_api_only(
        &db,
        "http://127.0.0.1:9",
        vec![
            (
                "auth.apiToken.signingKeys".into(),
                json!([{ "id": TEST_KID, "path": key, "primary": true }]),
            ),
            ("cluster.nodeID".into(), json!("anchor-2")),
        ],
    )
    .await;
    let acme = one.create_org("acme").await;
    let dana = person(&one, "dana@example.com", acme, Role::Orgadmin, false).await;
    let (token, _) = token_for(
        &one,
        dana,
        Some(acme),
        Role::Orgadmin,
        None,
        Duration::from_secs(3600),
    );
    let members = format!("/v1/orgs/{acme}/members");
    // Both nodes have seen the token and her role (warm caches).
    for app in [&one, &two] {
        let (status, body) = send(app.req(Method::GET, &members, &token)).await;
        assert_eq!(status, 200, "{body}");
    }
    let answer = post_session(&one, json!({"token": token}), None).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    let session = answer
        .cookie
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();

    // Demoted to member: her orgadmin token now acts as a member, on both nodes.
    let sysadmin = one.token(None, Role::Sysadmin, None);
    let (_, list) = send(one.req(Method::GET, &members, &sysadmin)).await;
    let membership = list["results"][0]["id"].as_str().unwrap().to_string();
    let (status, body) = send(
        one.req(Method::PATCH, &format!("{members}/{membership}"), &sysadmin)
            .json(&json!({"role": "member"})),
    )
    .await;
    assert_eq!(status, 204, "{body}");
    for app in [&one, &two] {
        let took = eventually(Duration::from_secs(5), "demotion honoured", || async {
            send(app.req(Method::GET, &members, &token)).await.0 == 403
        })
        .await;
        println!("demotion honoured on {} after {took:?}", app.base);
        let (status, _) = send(app.req(Method::GET, "/v1/pins", &token)).await;
        assert_eq!(status, 200, "still a member");
    }

    // Removed: the token is refused everywhere, it cannot re-add her, and her session
    // ends.
    let (status, _) = send(one.req(
        Method::DELETE,
        &format!("{members}/{membership}"),
        &sysadmin,
    ))
    .await;
    assert_eq!(status, 204);
    for app in [&one, &two] {
        let took = eventually(Duration::from_secs(5), "removal honoured", || async {
            send(app.req(Method::GET, "/v1/pins", &token)).await.0 == 401
        })
        .await;
        println!("removal honoured on {} after {took:?}", app.base);
        let (status, body) = send(
            app.req(Method::POST, &members, &token)
                .json(&json!({"email": "dana@example.com", "role": "orgadmin"})),
        )
        .await;
        assert_eq!(status, 401, "{body}");
    }
    let n = db_count(&one, "SELECT count(*) AS n FROM memberships", &[]).await;
    assert_eq!(n, 0, "she did not re-add herself");
    let (status, _) = send(as_browser(&one, Method::GET, "/v1/pins", &session)).await;
    assert_eq!(status, 401, "her session ended");
    let n = db_count(
        &one,
        "SELECT count(*) AS n FROM sessions WHERE user_id = $1 AND revoked_at IS NULL",
        &[dana.uuid().into()],
    )
    .await;
    assert_eq!(n, 0, "her sessions are revoked");
}

#[tokio::test]
async fn child_tokens_expire_with_and_are_revoked_with_their_parent() {
    let db = TestDb::migrated().await;
    let app = app(&db).await;
    let acme = app.create_org("acme").await;
    let erin = person(&app, "erin@example.com", acme, Role::Member, false).await;
    let (root, root_jti) = token_for(
        &app,
        erin,
        Some(acme),
        Role::Member,
        None,
        Duration::from_secs(7200),
    );
    let mint = |parent: String, hours: u64| {
        let app = &app;
        async move {
            let (status, body) = send(
                app.req(Method::POST, "/v1/tokens", &parent)
                    .json(&json!({"label": "child", "ttl_hours": hours})),
            )
            .await;
            assert_eq!(status, 201, "{body}");
            body
        }
    };
    let parent_exp = chrono::Utc::now() + chrono::Duration::seconds(7200);
    let child = mint(root.clone(), 24).await;
    let child_exp: chrono::DateTime<chrono::Utc> =
        child["expires_at"].as_str().unwrap().parse().unwrap();
    assert!(
        child_exp <= parent_exp + chrono::Duration::seconds(2),
        "a child outlives its parent: {child_exp} > {parent_exp}"
    );
    let child_token = child["token"].as_str().unwrap().to_string();
    let grandchild = mint(child_token.clone(), 1).await;
    let grandchild_token = grandchild["token"].as_str().unwrap().to_string();
    let n = db_count(
        &app,
        "SELECT count(*) AS n FROM api_tokens WHERE jti = $1 AND parent_jti = $2",
        &[
            (grandchild["jti"]
                .as_str()
                .unwrap()
                .parse::<TokenId>()
                .unwrap()
                .uuid())
            .into(),
            (child["jti"]
                .as_str()
                .unwrap()
                .parse::<TokenId>()
                .unwrap()
                .uuid())
            .into(),
        ],
    )
    .await;
    assert_eq!(n, 1, "the grandchild records its parent");

    // Revoking the middle token over the API takes its descendant with it, in the same
    // transaction: both are on the denylist.
    let (status, body) = send(app.req(
        Method::DELETE,
        &format!("/v1/tokens/{}", child["jti"].as_str().unwrap()),
        &root,
    ))
    .await;
    assert_eq!(status, 204, "{body}");
    for (who, token) in [("child", &child_token), ("grandchild", &grandchild_token)] {
        let (status, _) = send(app.req(Method::GET, "/v1/pins", token)).await;
        assert_eq!(status, 401, "{who}");
    }
    let (status, _) = send(app.req(Method::GET, "/v1/pins", &root)).await;
    assert_eq!(status, 200, "the parent lives on");
    let n = db_count(&app, "SELECT count(*) AS n FROM token_denylist", &[]).await;
    assert_eq!(n, 2);

    // Revoking a CLI-minted root (no api_tokens row) takes every descendant.
    let second = mint(root.clone(), 1).await;
    let second_token = second["token"].as_str().unwrap().to_string();
    let (status, _) = send(app.req(Method::GET, "/v1/pins", &second_token)).await;
    assert_eq!(status, 200);
    anchorage::tenancy::tokens::revoke_by_jti(
        &app.state.db,
        app.state.bus.clone(),
        "test".into(),
        root_jti,
        parent_exp,
    )
    .await
    .unwrap();
    // The CLI is another process: this node hears of it over the invalidation bus.
    let took = eventually(
        Duration::from_secs(5),
        "a descendant of a revoked root",
        || async {
            send(app.req(Method::GET, "/v1/pins", &second_token))
                .await
                .0
                == 401
        },
    )
    .await;
    println!("the revoked root's descendant was refused after {took:?}");
}

// --- 4. Login CSRF -------------------------------------------------------------------

#[tokio::test]
async fn a_sign_in_completes_only_in_the_browser_that_started_it() {
    let db = TestDb::migrated().await;
    let idp = provider(&[Account::new("attacker", "attacker@example.com", &[]).verified()]);
    let app = app_for(&db, &idp.issuer(), vec![]).await;

    // The attacker starts a sign-in, logs in at the provider as themself, and sends the
    // victim the callback URL with the code and state.
    let login = login_to(&app, "/").await;
    let binding = login.cookie.clone();
    assert!(binding.is_some(), "login sets a browser-binding cookie");
    let back = idp.authorize(&login.location, "attacker").await;
    // The provider sends the attacker back to the site root (the seed's redirect URI);
    // the victim opening that URL gets the callback page, which posts code and state.
    let callback = back.url.strip_prefix(SITE).expect("back on the site");
    assert!(callback.starts_with("/?"), "{}", back.url);
    let page = app.http.get(app.url(callback)).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("/v1/auth/session"));
    let body = json!({"code": back.code.clone().unwrap(), "state": back.state.clone().unwrap()});
    // The victim's browser: no binding cookie, or the one of its own sign-in.
    let own = login_to(&app, "/").await;
    for cookie in [None, own.cookie.as_deref()] {
        let answer = post_session(&app, body.clone(), cookie).await;
        assert_eq!(answer.status, 400, "{}", answer.body);
        assert!(
            answer.cookie.is_none(),
            "the victim got the attacker's session"
        );
        assert!(details(&answer.body).contains("browser"), "{}", answer.body);
    }
    let n = db_count(&app, "SELECT count(*) AS n FROM sessions", &[]).await;
    assert_eq!(n, 0);
    // The binding cookie is HttpOnly, SameSite=Lax and short-lived.
    let res = no_redirects()
        .get(app.url("/v1/auth/login"))
        .send()
        .await
        .unwrap();
    let set = res
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("anchorage_login="))
        .unwrap()
        .to_string();
    for attr in ["HttpOnly", "SameSite=Lax", "Max-Age=600"] {
        assert!(set.contains(attr), "{attr}: {set}");
    }
    // The browser that started it completes it.
    let answer = post_session(&app, body, binding.as_deref()).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
}

#[tokio::test]
async fn the_console_token_form_refuses_other_sites() {
    let db = TestDb::migrated().await;
    let app = app(&db).await;
    let acme = app.create_org("acme").await;
    let attacker = person(&app, "attacker@example.com", acme, Role::Member, false).await;
    let (token, _) = token_for(
        &app,
        attacker,
        Some(acme),
        Role::Member,
        None,
        Duration::from_secs(600),
    );
    for origin in [Some("https://evil.example"), None] {
        let mut req = no_redirects()
            .post(app.url("/console/sign-in"))
            .form(&[("token", token.as_str())]);
        if let Some(origin) = origin {
            req = req.header(header::ORIGIN, origin);
        }
        let res = req.send().await.unwrap();
        assert_eq!(res.status(), StatusCode::FORBIDDEN, "Origin {origin:?}");
        assert!(
            res.headers().get(header::SET_COOKIE).is_none(),
            "Origin {origin:?} got a session"
        );
    }
    let n = db_count(&app, "SELECT count(*) AS n FROM sessions", &[]).await;
    assert_eq!(n, 0);
}

// --- 5. Open redirect ----------------------------------------------------------------

#[tokio::test]
async fn return_to_never_leaves_the_site() {
    let db = TestDb::migrated().await;
    let idp = provider(&[Account::new("alice", "alice@example.com", &[])]);
    let app = app_for(
        &db,
        &idp.issuer(),
        vec![("server.rateLimit.sessionPerMinute".into(), json!(1000))],
    )
    .await;
    // (requested, where the browser lands). The bypasses all land on "/".
    let table: &[(&str, &str)] = &[
        ("/console/pins?org=x", "/console/pins?org=x"),
        ("/", "/"),
        ("/\t/evil.example", "/"),
        ("/\n/evil.example", "/"),
        ("/\r\n/evil.example", "/"),
        ("/\u{0}/evil.example", "/"),
        ("//evil.example", "/"),
        ("///evil.example", "/"),
        ("/\\evil.example", "/"),
        ("\\\\evil.example", "/"),
        ("/.//evil.example", "/"),
        (" //evil.example", "/"),
        ("https://evil.example/", "/"),
        ("http:evil.example", "/"),
        ("https:/evil.example", "/"),
        ("javascript:alert(1)", "/"),
        ("data:text/html,x", "/"),
        ("/%2F%2Fevil.example", "/%2F%2Fevil.example"),
        ("evil.example", "/"),
    ];
    for (requested, lands) in table {
        let login = login_to(&app, requested).await;
        let back = idp.authorize(&login.location, "alice").await;
        let answer = finish(&app, &login, &back).await;
        assert_eq!(answer.status, 200, "{requested:?}: {}", answer.body);
        assert_eq!(
            answer.return_to.as_deref(),
            Some(*lands),
            "return_to {requested:?}"
        );
    }
}

// --- Small items -----------------------------------------------------------------------

#[tokio::test]
async fn a_token_issued_in_the_future_or_not_yet_valid_is_refused() {
    let db = TestDb::migrated().await;
    let app = app(&db).await;
    let acme = app.create_org("acme").await;
    let now = chrono::Utc::now().timestamp();
    let forge = |iat: i64, nbf: Option<i64>| {
        let mut claims = json!({
            "sub": "usr_test", "org": acme.to_string(), "role": "member",
            "jti": TokenId::new().to_string(), "iat": iat, "exp": now + 7200,
            "iss": app.state.tokens.issuer(), "aud": app.state.tokens.audience(),
        });
        if let Some(nbf) = nbf {
            claims["nbf"] = json!(nbf);
        }
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
        header.kid = Some(TEST_KID.into());
        jsonwebtoken::encode(
            &header,
            &claims,
            &jsonwebtoken::EncodingKey::from_secret(&app.key_secret()),
        )
        .unwrap()
    };
    for (what, token, expected) in [
        ("iat an hour ahead", forge(now + 3600, None), 401),
        ("nbf an hour ahead", forge(now, Some(now + 3600)), 401),
        ("iat 30 s ahead (leeway)", forge(now + 30, None), 200),
        ("nbf in the past", forge(now, Some(now - 10)), 200),
    ] {
        let (status, body) = send(app.req(Method::GET, "/v1/pins", &token)).await;
        assert_eq!(status, expected, "{what}: {body}");
    }
}

#[tokio::test]
async fn a_sysadmin_session_acting_in_an_org_is_audited_like_a_token() {
    let db = TestDb::migrated().await;
    let idp = provider(&[Account::new(
        "ops",
        "ops@example.com",
        &["anchorage-sysadmins"],
    )]);
    let app = app_for(&db, &idp.issuer(), vec![]).await;
    let acme = app.create_org("acme").await;
    let (me, cookie) = sign_in(&app, &idp, "ops").await;
    assert_eq!(me["sysadmin"], true);
    let (status, body) = send(
        as_browser(&app, Method::GET, "/v1/pins", &cookie)
            .header("X-Anchorage-Org", acme.to_string()),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let res = no_redirects()
        .get(app.url(&format!("/console/pins?org={acme}")))
        .header(header::COOKIE, &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let entries = audited(&app, "sysadmin.act_in_org").await;
    let requests: Vec<String> = entries
        .iter()
        .filter(|e| e["target"] == acme.to_string())
        .map(|e| {
            e["details"]["request"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        })
        .collect();
    assert!(requests.iter().any(|r| r == "GET /v1/pins"), "{entries:?}");
    assert!(
        requests.iter().any(|r| r.starts_with("GET /console/pins")),
        "{entries:?}"
    );
    assert!(
        entries.iter().all(|e| e["actor"]
            .as_str()
            .unwrap()
            .starts_with(me["id"].as_str().unwrap())),
        "{entries:?}"
    );
}
