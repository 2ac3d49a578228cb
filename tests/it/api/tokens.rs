//! Token lifecycle over `/v1/tokens`, and the CLI's revoke and prune.

use anchorage::auth::{Role, Scope};
use reqwest::Method;
use serde_json::{json, Value};

use crate::harness::{
    fixtures::{app, cid},
    send,
    sql::db_count,
    TestApp, TestDb,
};

async fn mint(app: &TestApp, token: &str, body: Value) -> (u16, Value) {
    send(app.req(Method::POST, "/v1/tokens", token).json(&body)).await
}

#[tokio::test]
async fn mint_narrower_use_list_and_revoke() {
    let db = TestDb::migrated().await;
    let app = app(&db).await;
    let org = app.create_org("acme").await;
    let member = app.token(Some(org), Role::Member, None);

    let (status, created) = mint(
        &app,
        &member,
        json!({"label": "ci reader", "scopes": ["pin:read"], "ttl_hours": 24}),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let jwt = created["token"].as_str().unwrap().to_string();
    let jti = created["jti"].as_str().unwrap().to_string();
    assert!(jti.starts_with("tok_"));
    assert_eq!(created["scopes"], json!(["pin:read"]));
    assert_eq!(created["role"], "member");
    assert_eq!(created["label"], "ci reader");

    // The new token works within its scope only.
    let (status, _) = send(app.req(Method::GET, "/v1/pins", &jwt)).await;
    assert_eq!(status, 200);
    let (status, _) = send(
        app.req(Method::POST, "/v1/pins", &jwt)
            .json(&json!({"cid": cid(1)})),
    )
    .await;
    assert_eq!(status, 403);
    let claims = app.state.tokens.verify(&jwt).unwrap();
    // Asked for 24 h, capped at its one-hour parent's expiry.
    assert!(claims.exp - claims.iat <= 3600, "{claims:?}");
    assert_eq!(claims.org, Some(org));

    // The database has metadata, never the JWT.
    let row_text = db_count(&app, "SELECT count(*) AS n FROM api_tokens t WHERE t.jti = $1 AND t.label = 'ci reader' AND t.scopes = ARRAY['pin:read']", &[claims.jti.uuid().into()]).await;
    assert_eq!(row_text, 1);
    assert_eq!(
        db_count(
            &app,
            "SELECT count(*) AS n FROM api_tokens t WHERE t::text LIKE '%' || $1 || '%'",
            &[jwt[jwt.len() - 20..].into()]
        )
        .await,
        0
    );

    // Listing shows metadata only.
    let (status, list) = send(app.req(Method::GET, "/v1/tokens", &member)).await;
    assert_eq!(status, 200, "{list}");
    assert_eq!(list["count"], 1);
    let item = &list["results"][0];
    assert_eq!(item["jti"], jti.as_str());
    assert!(item.get("token").is_none(), "never the JWT: {item}");
    assert!(!list.to_string().contains(&jwt));

    // Revoke: the very next request with it is refused.
    let resp = app
        .req(Method::DELETE, &format!("/v1/tokens/{jti}"), &member)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
    let (status, body) = send(app.req(Method::GET, "/v1/pins", &jwt)).await;
    assert_eq!(status, 401, "{body}");
    let (_, list) = send(app.req(Method::GET, "/v1/tokens", &member)).await;
    assert!(list["results"][0]["revoked_at"].is_string());
    assert_eq!(db_count(&app, "SELECT count(*) AS n FROM token_denylist WHERE jti = $1 AND expires_at = to_timestamp($2)", &[claims.jti.uuid().into(), claims.exp.into()]).await, 1);
    assert_eq!(
        db_count(
            &app,
            "SELECT count(*) AS n FROM audit_log WHERE action IN ('token.create', 'token.revoke')",
            &[]
        )
        .await,
        2
    );
}

#[tokio::test]
async fn a_token_cannot_mint_beyond_itself() {
    let db = TestDb::migrated().await;
    let app = app(&db).await;
    let org = app.create_org("acme").await;
    let member = app.token(Some(org), Role::Member, None);
    let narrow = app.token(
        Some(org),
        Role::Member,
        Some(vec![Scope::PinRead, Scope::TokensWrite]),
    );

    for (token, body, code) in [
        (&narrow, json!({"scopes": ["pin:write"]}), 403),
        (&member, json!({"role": "orgadmin"}), 403),
        (&member, json!({"role": "sysadmin"}), 403),
        (&member, json!({"scopes": ["members:write"]}), 403),
        (&member, json!({"ttl_hours": 100000}), 400),
        (&member, json!({"ttl_hours": 0}), 400),
        (&member, json!({"scopes": ["pin:everything"]}), 400),
        (&member, json!({"label": "x".repeat(101)}), 400),
        (&member, json!({"surprise": true}), 400),
    ] {
        let (status, resp) = mint(&app, token, body.clone()).await;
        assert_eq!(status, code, "{body}: {resp}");
        assert!(resp["error"]["reason"].is_string());
    }
    assert_eq!(
        db_count(&app, "SELECT count(*) AS n FROM api_tokens", &[]).await,
        0
    );

    // Without scopes, a narrow token's child is exactly as narrow.
    let (status, child) = mint(&app, &narrow, json!({})).await;
    assert_eq!(status, 201);
    assert_eq!(child["scopes"], json!(["pin:read", "tokens:write"]));
    let claims = app
        .state
        .tokens
        .verify(child["token"].as_str().unwrap())
        .unwrap();
    assert!(!claims.has_scope(Scope::PinWrite));

    // A token without tokens:write cannot mint at all.
    let reader = app.token(Some(org), Role::Member, Some(vec![Scope::PinRead]));
    let (status, _) = mint(&app, &reader, json!({})).await;
    assert_eq!(status, 403);
}

#[tokio::test]
async fn members_see_and_revoke_only_their_own_tokens() {
    let db = TestDb::migrated().await;
    let app = app(&db).await;
    let org = app.create_org("acme").await;
    let other_org = app.create_org("other").await;
    let alice = app
        .state
        .tokens
        .mint(anchorage::auth::MintRequest {
            sub: "alice".into(),
            org: Some(org),
            role: Role::Member,
            scopes: None,
            ttl: std::time::Duration::from_secs(600),
        })
        .unwrap()
        .jwt;
    let bob = app
        .state
        .tokens
        .mint(anchorage::auth::MintRequest {
            sub: "bob".into(),
            org: Some(org),
            role: Role::Member,
            scopes: None,
            ttl: std::time::Duration::from_secs(600),
        })
        .unwrap()
        .jwt;
    let admin = app.token(Some(org), Role::Orgadmin, None);
    let outsider = app.token(Some(other_org), Role::Orgadmin, None);

    let (_, a) = mint(&app, &alice, json!({"label": "alice's"})).await;
    let (_, b) = mint(&app, &bob, json!({"label": "bob's"})).await;
    let (_, list) = send(app.req(Method::GET, "/v1/tokens", &alice)).await;
    assert_eq!(list["count"], 1);
    assert_eq!(list["results"][0]["label"], "alice's");
    let (_, list) = send(app.req(Method::GET, "/v1/tokens", &admin)).await;
    assert_eq!(list["count"], 2, "an org admin sees the org's tokens");
    let (_, list) = send(app.req(Method::GET, "/v1/tokens", &outsider)).await;
    assert_eq!(list["count"], 0, "another org sees none");

    let bob_jti = b["jti"].as_str().unwrap();
    let (status, _) = send(app.req(Method::DELETE, &format!("/v1/tokens/{bob_jti}"), &alice)).await;
    assert_eq!(status, 404, "alice cannot revoke bob's token");
    let (status, _) =
        send(app.req(Method::DELETE, &format!("/v1/tokens/{bob_jti}"), &outsider)).await;
    assert_eq!(status, 404, "nor can another org");
    let (status, _) = send(app.req(Method::GET, "/v1/pins", b["token"].as_str().unwrap())).await;
    assert_eq!(status, 200);
    let resp = app
        .req(Method::DELETE, &format!("/v1/tokens/{bob_jti}"), &admin)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204, "the org admin can");
    let (status, _) = send(app.req(Method::GET, "/v1/pins", b["token"].as_str().unwrap())).await;
    assert_eq!(status, 401);
    let (status, _) = send(app.req(Method::GET, "/v1/pins", a["token"].as_str().unwrap())).await;
    assert_eq!(status, 200, "alice's token is unaffected");
    let (status, _) = send(app.req(Method::DELETE, "/v1/tokens/tok_nonsense", &admin)).await;
    assert_eq!(status, 404);
}

fn anchorage_cli(app: &TestApp, db: &TestDb, args: &[&str]) -> std::process::Output {
    let key = &app.state.config.auth.api_token.signing_keys[0];
    let mut cmd = crate::harness::bin::anchorage();
    cmd.env("ANCHORAGE_POSTGRES__DSN", db.app_dsn())
        .env(
            "ANCHORAGE_AUTH__API_TOKEN__SIGNING_KEYS",
            json!([{ "id": key.id, "path": key.path, "primary": true }]).to_string(),
        )
        .env("RUST_LOG", "warn")
        .args(args)
        .output()
        .unwrap()
}

#[tokio::test]
async fn cli_revoke_token_and_prune_denylist() {
    let db = TestDb::migrated().await;
    let app = app(&db).await;
    let org = app.create_org("acme").await;

    let out = anchorage_cli(
        &app,
        &db,
        &["admin", "mint-token", "--org", &org.to_string(), "-v"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let jwt = String::from_utf8(out.stdout).unwrap().trim().to_string();
    let jti = app.state.tokens.verify(&jwt).unwrap().jti;

    let out = anchorage_cli(&app, &db, &["admin", "revoke-token", &jti.to_string()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains(&jti.to_string()));
    let (status, _) = send(app.req(Method::GET, "/v1/pins", &jwt)).await;
    assert_eq!(
        status, 401,
        "a CLI-minted token revoked by the CLI is refused"
    );
    assert_eq!(
        db_count(
            &app,
            "SELECT count(*) AS n FROM audit_log WHERE action = 'token.revoke' AND target = $1",
            &[jti.to_string().into()]
        )
        .await,
        1
    );

    // Prune removes only entries past their expiry.
    let expired = anchorage::ids::TokenId::new();
    let out = anchorage_cli(
        &app,
        &db,
        &[
            "admin",
            "revoke-token",
            &expired.to_string(),
            "--expires-at",
            "2020-01-01T00:00:00Z",
        ],
    );
    assert!(out.status.success());
    assert_eq!(
        db_count(&app, "SELECT count(*) AS n FROM token_denylist", &[]).await,
        2
    );
    let out = anchorage_cli(&app, &db, &["admin", "prune-denylist"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("removed 1"));
    assert_eq!(
        db_count(
            &app,
            "SELECT count(*) AS n FROM token_denylist WHERE jti = $1",
            &[jti.uuid().into()]
        )
        .await,
        1
    );
    assert_eq!(
        db_count(&app, "SELECT count(*) AS n FROM token_denylist", &[]).await,
        1
    );

    let out = anchorage_cli(&app, &db, &["admin", "revoke-token", "tok_bad"]);
    assert!(!out.status.success());
}
