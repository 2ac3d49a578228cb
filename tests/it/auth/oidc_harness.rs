//! The login-test identity providers themselves: the real one (npm `oidc-provider`) does
//! a code + PKCE flow without a browser and puts email and groups in the ID token; the
//! scripted fake serves discovery and a JWKS and counts the fetches.

use base64::Engine;
use serde_json::Value;

use crate::harness::{
    fake_idp::{FakeIdp, Signing},
    oidc::{Account, OidcProvider},
};

const CLIENT_ID: &str = "anchorage";
const REDIRECT_URI: &str = "http://127.0.0.1:9/v1/auth/callback";
/// A PKCE verifier and its S256 challenge (BASE64URL(SHA-256(verifier))).
const VERIFIER: &str = "a-pkce-verifier-that-is-long-enough-0123456789-abcdefghijk";
const CHALLENGE: &str = "spdiIIi4clEzJ-s0J_eD5TvH3ClR2iNGNMbRmJL8oiQ";

fn payload(jwt: &str) -> Value {
    let part = jwt.split('.').nth(1).expect("a JWT has a payload");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part)
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

fn header(jwt: &str) -> Value {
    let part = jwt.split('.').next().unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part)
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

fn provider() -> OidcProvider {
    OidcProvider::start(
        &[(CLIENT_ID, vec![REDIRECT_URI.to_string()])],
        &[Account::new(
            "alice",
            "alice@example.com",
            &["anchorage-admins", "devs"],
        )],
    )
}

async fn get_json(url: &str) -> Value {
    let resp = reqwest::get(url).await.unwrap();
    assert!(resp.status().is_success(), "GET {url}: {}", resp.status());
    resp.json().await.unwrap()
}

#[tokio::test]
async fn real_provider_does_code_and_pkce_without_a_browser() {
    let started = std::time::Instant::now();
    let mut idp = provider();
    eprintln!("oidc-provider started in {:?}", started.elapsed());
    let issuer = idp.issuer();
    assert!(issuer.ends_with("/application/o/anchorage/"), "{issuer}");

    let discovery_url = format!("{issuer}.well-known/openid-configuration");
    assert_eq!(idp.discovery_url(), discovery_url);
    let discovery = get_json(&discovery_url).await;
    assert_eq!(discovery["issuer"], issuer.as_str());
    assert_eq!(discovery["code_challenge_methods_supported"][0], "S256");
    let authorization_endpoint = discovery["authorization_endpoint"].as_str().unwrap();
    let token_endpoint = discovery["token_endpoint"].as_str().unwrap();

    let mut authorize = reqwest::Url::parse(authorization_endpoint).unwrap();
    authorize
        .query_pairs_mut()
        .append_pair("client_id", CLIENT_ID)
        .append_pair("response_type", "code")
        .append_pair("scope", "openid email profile groups")
        .append_pair("redirect_uri", REDIRECT_URI)
        .append_pair("state", "state-1")
        .append_pair("nonce", "nonce-1")
        .append_pair("code_challenge", CHALLENGE)
        .append_pair("code_challenge_method", "S256");

    // An unknown account is refused, back at the client.
    let refused = idp.authorize(authorize.as_str(), "mallory").await;
    assert_eq!(
        refused.error.as_deref(),
        Some("access_denied"),
        "{refused:?}"
    );
    assert!(refused.error_description.is_some());
    assert_eq!(refused.state.as_deref(), Some("state-1"));
    assert!(refused.code.is_none());

    let redirected = idp.authorize(authorize.as_str(), "alice").await;
    assert!(redirected.url.starts_with(REDIRECT_URI), "{redirected:?}");
    assert_eq!(redirected.error, None, "{redirected:?}");
    assert_eq!(redirected.state.as_deref(), Some("state-1"));
    let code = redirected.code.expect("a code");

    let http = reqwest::Client::new();
    // The wrong verifier is refused.
    let resp = http
        .post(token_endpoint)
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT_URI),
            ("client_id", CLIENT_ID),
            (
                "code_verifier",
                "not-the-verifier-not-the-verifier-not-the-verifier",
            ),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);

    // A fresh code with the right verifier gets tokens (the refused attempt used the
    // first code up).
    let code = idp
        .authorize(authorize.as_str(), "alice")
        .await
        .code
        .expect("a code");
    let resp = http
        .post(token_endpoint)
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT_URI),
            ("client_id", CLIENT_ID),
            ("code_verifier", VERIFIER),
        ])
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success(), "token: {}", resp.status());
    let tokens: Value = resp.json().await.unwrap();
    let id_token = tokens["id_token"].as_str().expect("an ID token");
    let claims = payload(id_token);
    assert_eq!(claims["iss"], issuer.as_str());
    assert_eq!(claims["aud"], CLIENT_ID);
    assert_eq!(claims["sub"], "alice");
    assert_eq!(claims["nonce"], "nonce-1");
    assert_eq!(claims["email"], "alice@example.com");
    // The fixture vouches for no email unless the account says so.
    assert_eq!(claims["email_verified"], false);
    assert_eq!(
        claims["groups"],
        serde_json::json!(["anchorage-admins", "devs"])
    );
    let kid = header(id_token)["kid"].as_str().unwrap().to_string();
    assert_eq!(kid, idp.kid());
    let jwks = get_json(discovery["jwks_uri"].as_str().unwrap()).await;
    assert_eq!(jwks["keys"][0]["kid"], kid.as_str());

    // A restart keeps the issuer and rotates the key.
    let started = std::time::Instant::now();
    idp.restart_with_new_keys().await;
    eprintln!("oidc-provider restarted in {:?}", started.elapsed());
    assert_eq!(idp.issuer(), issuer);
    let jwks = get_json(discovery["jwks_uri"].as_str().unwrap()).await;
    let kids: Vec<&str> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap())
        .collect();
    assert_eq!(kids, vec![idp.kid().as_str()]);
    assert_ne!(idp.kid(), kid);
    let again = idp.authorize(authorize.as_str(), "alice").await;
    assert!(again.code.is_some(), "{again:?}");
}

#[tokio::test]
async fn fake_idp_serves_discovery_and_jwks_and_counts() {
    let idp = FakeIdp::start();
    let issuer = idp.issuer();
    assert!(issuer.ends_with("/application/o/anchorage/"), "{issuer}");
    assert_eq!((idp.discovery_hits(), idp.jwks_hits()), (0, 0));

    let discovery_url = format!("{issuer}.well-known/openid-configuration");
    assert_eq!(idp.discovery_url(), discovery_url);
    let discovery = get_json(&discovery_url).await;
    assert_eq!(discovery["issuer"], issuer.as_str());
    assert_eq!(idp.discovery_hits(), 1);

    let jwks_uri = discovery["jwks_uri"].as_str().unwrap();
    let jwks = get_json(jwks_uri).await;
    assert_eq!(jwks["keys"].as_array().unwrap().len(), 1);
    assert_eq!(jwks["keys"][0]["kid"], "fake-idp-1");
    idp.publish_second_key();
    let jwks = get_json(jwks_uri).await;
    assert_eq!(jwks["keys"][1]["kid"], "fake-idp-2");
    assert_eq!((idp.discovery_hits(), idp.jwks_hits()), (1, 2));

    // Tokens signed each way carry the expected kid; only the current one verifies
    // against the published key.
    let claims = idp.valid_claims(CLIENT_ID, "bob");
    let good = idp.sign(&claims, Signing::Current);
    let forged = idp.sign(&claims, Signing::OtherKeySameKid);
    let rotated = idp.sign(&claims, Signing::UnknownKid);
    assert_eq!(header(&good)["kid"], "fake-idp-1");
    assert_eq!(header(&forged)["kid"], "fake-idp-1");
    assert_eq!(header(&rotated)["kid"], "fake-idp-2");
    let key = &jwks["keys"][0];
    let decoding = jsonwebtoken::DecodingKey::from_rsa_components(
        key["n"].as_str().unwrap(),
        key["e"].as_str().unwrap(),
    )
    .unwrap();
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    validation.set_audience(&[CLIENT_ID]);
    validation.set_issuer(&[issuer.as_str()]);
    jsonwebtoken::decode::<Value>(&good, &decoding, &validation).expect("verifies");
    assert!(jsonwebtoken::decode::<Value>(&forged, &decoding, &validation).is_err());

    // The authorization endpoint answers at once; the token endpoint hands out the queue.
    let mut authorize =
        reqwest::Url::parse(discovery["authorization_endpoint"].as_str().unwrap()).unwrap();
    authorize
        .query_pairs_mut()
        .append_pair("client_id", CLIENT_ID)
        .append_pair("response_type", "code")
        .append_pair("redirect_uri", REDIRECT_URI)
        .append_pair("state", "s1")
        .append_pair("nonce", "n1");
    let redirected = idp.authorize(authorize.as_str()).await;
    assert_eq!(redirected.state.as_deref(), Some("s1"));
    let code = redirected.code.expect("a code");
    assert_eq!(idp.valid_claims(CLIENT_ID, "bob")["nonce"], "n1");
    assert_eq!(idp.authorize_requests().len(), 1);
    idp.queue_id_token(idp.valid_claims(CLIENT_ID, "bob"), Signing::UnknownKid);
    let http = reqwest::Client::new();
    let token_endpoint = discovery["token_endpoint"].as_str().unwrap();
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
    ];
    let resp = http.post(token_endpoint).form(&form).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(
        header(body["id_token"].as_str().unwrap())["kid"],
        "fake-idp-2"
    );
    assert_eq!(payload(body["id_token"].as_str().unwrap())["nonce"], "n1");
    assert_eq!(idp.token_requests()[0]["code"], code);
    // Nothing queued: invalid_grant.
    let resp = http.post(token_endpoint).form(&form).send().await.unwrap();
    assert_eq!(resp.status(), 400);
    assert_eq!(idp.token_hits(), 2);
}
