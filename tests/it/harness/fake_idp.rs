//! A scripted OpenID Provider for ID-token faults a real provider cannot be made to
//! produce: bad signatures, keys it has not published yet, wrong claims. It serves
//! discovery, a JWKS, an authorization endpoint that answers at once, and a token endpoint
//! that hands out whatever ID token the test queued. It counts discovery and JWKS fetches
//! so tests can assert re-discovery happened (and was rate-limited).
//!
//! Keys are fixed test keys committed in `tests/data/idp/` (see its README):
//! `key1` is published from the start (kid `fake-idp-1`); `key2` (kid `fake-idp-2`) only
//! after [`FakeIdp::publish_second_key`]; `other` is never published but shares key1's kid.

// Helpers for the login tests: not every test uses every one.
#![allow(dead_code)]

use std::{
    collections::{HashMap, VecDeque},
    net::TcpListener,
    sync::{Arc, Mutex},
    thread::JoinHandle,
    time::{SystemTime, UNIX_EPOCH},
};

use actix_web::{dev::ServerHandle, web, App, HttpResponse, HttpServer};
use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};

pub use super::oidc::{Redirected, ISSUER_PATH};

/// How [`FakeIdp::sign`] signs a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signing {
    /// With the published key (kid `fake-idp-1`): verifies.
    Current,
    /// With a key that is not in the JWKS, under the published kid: a bad signature.
    OtherKeySameKid,
    /// With the second key (kid `fake-idp-2`), which the JWKS only lists after
    /// [`FakeIdp::publish_second_key`]: an unknown kid until then.
    UnknownKid,
}

struct TestKey {
    kid: &'static str,
    private_pem: &'static str,
    public_jwk: &'static str,
}

const KEY1: TestKey = TestKey {
    kid: "fake-idp-1",
    private_pem: include_str!("../../data/idp/key1.pem"),
    public_jwk: include_str!("../../data/idp/key1.jwk.json"),
};
const KEY2: TestKey = TestKey {
    kid: "fake-idp-2",
    private_pem: include_str!("../../data/idp/key2.pem"),
    public_jwk: include_str!("../../data/idp/key2.jwk.json"),
};
const OTHER: TestKey = TestKey {
    kid: "fake-idp-1",
    private_pem: include_str!("../../data/idp/other.pem"),
    public_jwk: include_str!("../../data/idp/other.jwk.json"),
};

impl TestKey {
    /// The key as jsonwebtoken wants it: PKCS#1 DER (the PEM's body).
    fn encoding_key(&self) -> EncodingKey {
        let body: String = self
            .private_pem
            .lines()
            .filter(|l| !l.starts_with("-----"))
            .collect();
        let der = base64::engine::general_purpose::STANDARD
            .decode(body)
            .unwrap();
        EncodingKey::from_rsa_der(&der)
    }

    fn jwk(&self) -> Value {
        let jwk: Value = serde_json::from_str(self.public_jwk).unwrap();
        assert_eq!(jwk["kid"], self.kid);
        jwk
    }
}

/// What the server and the test share.
#[derive(Default)]
struct State {
    /// Token endpoint answers, oldest first.
    queue: VecDeque<String>,
    second_key_published: bool,
    discovery_hits: usize,
    jwks_hits: usize,
    token_hits: usize,
    next_code: u64,
    authorize_requests: Vec<HashMap<String, String>>,
    token_requests: Vec<HashMap<String, String>>,
}

type Shared = Arc<Mutex<State>>;

#[derive(Clone)]
struct Ctx {
    issuer: String,
    state: Shared,
}

/// A running fake provider on its own thread and actix system; stopped on drop.
pub struct FakeIdp {
    issuer: String,
    state: Shared,
    handle: ServerHandle,
    thread: Option<JoinHandle<()>>,
}

impl FakeIdp {
    /// Starts on a free port; key1 is the only published key.
    pub fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let issuer = format!("http://{}{ISSUER_PATH}", listener.local_addr().unwrap());
        let state = Shared::default();
        let ctx = Ctx {
            issuer: issuer.clone(),
            state: state.clone(),
        };
        let (tx, rx) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || {
            actix_web::rt::System::new().block_on(async move {
                let server = HttpServer::new(move || {
                    App::new().app_data(web::Data::new(ctx.clone())).service(
                        web::scope(ISSUER_PATH.trim_end_matches('/'))
                            .route(
                                "/.well-known/openid-configuration",
                                web::get().to(discovery),
                            )
                            .route("/jwks", web::get().to(jwks))
                            .route("/authorize", web::get().to(authorize))
                            .route("/token", web::post().to(token)),
                    )
                })
                .workers(1)
                .disable_signals()
                .listen(listener)
                .unwrap()
                .run();
                tx.send(server.handle()).unwrap();
                let _ = server.await;
            });
        });
        let handle = rx.recv().expect("the fake IdP's server thread died");
        Self {
            issuer,
            state,
            handle,
            thread: Some(thread),
        }
    }

    /// The issuer, with its trailing slash.
    pub fn issuer(&self) -> String {
        self.issuer.clone()
    }

    /// `<issuer>.well-known/openid-configuration`.
    pub fn discovery_url(&self) -> String {
        format!("{}.well-known/openid-configuration", self.issuer)
    }

    /// Signs `claims` (RS256) as `signing` says.
    pub fn sign(&self, claims: &Value, signing: Signing) -> String {
        let key = match signing {
            Signing::Current => &KEY1,
            Signing::OtherKeySameKid => &OTHER,
            Signing::UnknownKid => &KEY2,
        };
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(key.kid.to_string());
        jsonwebtoken::encode(&header, claims, &key.encoding_key()).unwrap()
    }

    /// The token endpoint's next answer carries `claims` signed as `signing` says.
    pub fn queue_id_token(&self, claims: Value, signing: Signing) {
        let token = self.sign(&claims, signing);
        self.queue_raw_id_token(token);
    }

    /// The token endpoint's next answer carries `id_token` as it is (junk, `alg: none`, …).
    pub fn queue_raw_id_token(&self, id_token: String) {
        self.state.lock().unwrap().queue.push_back(id_token);
    }

    /// Adds key2 (the [`Signing::UnknownKid`] key) to the JWKS.
    pub fn publish_second_key(&self) {
        self.state.lock().unwrap().second_key_published = true;
    }

    /// Claims of a valid ID token for `client_id` and `sub`: `iss`, `aud`, `sub`, `iat`,
    /// `exp` (in 5 minutes), `email`, `email_verified`, `groups: []`, and the `nonce` of
    /// the last authorization request if there was one. Tests change what they need.
    pub fn valid_claims(&self, client_id: &str, sub: &str) -> Value {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let mut claims = json!({
            "iss": self.issuer,
            "aud": client_id,
            "sub": sub,
            "iat": now,
            "exp": now + 300,
            "email": format!("{sub}@example.com"),
            "email_verified": true,
            "groups": [],
        });
        if let Some(nonce) = self.last_authorize_param("nonce") {
            claims["nonce"] = json!(nonce);
        }
        claims
    }

    /// Requests so far for `<issuer>.well-known/openid-configuration`.
    pub fn discovery_hits(&self) -> usize {
        self.state.lock().unwrap().discovery_hits
    }

    /// Requests so far for the JWKS.
    pub fn jwks_hits(&self) -> usize {
        self.state.lock().unwrap().jwks_hits
    }

    /// Requests so far to the token endpoint.
    pub fn token_hits(&self) -> usize {
        self.state.lock().unwrap().token_hits
    }

    /// The query parameters of every authorization request so far.
    pub fn authorize_requests(&self) -> Vec<HashMap<String, String>> {
        self.state.lock().unwrap().authorize_requests.clone()
    }

    /// A parameter of the last authorization request (`nonce`, `state`,
    /// `code_challenge`, …).
    pub fn last_authorize_param(&self, name: &str) -> Option<String> {
        let state = self.state.lock().unwrap();
        state.authorize_requests.last()?.get(name).cloned()
    }

    /// The form of every token request so far (`code`, `code_verifier`, …).
    pub fn token_requests(&self) -> Vec<HashMap<String, String>> {
        self.state.lock().unwrap().token_requests.clone()
    }

    /// Follows `authorize_url` (the server's redirect to this provider): the fake
    /// redirects straight back to its `redirect_uri` with a fresh `code` and the `state`.
    /// Records the request (see [`FakeIdp::last_authorize_param`]).
    pub async fn authorize(&self, authorize_url: &str) -> Redirected {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let resp = client.get(authorize_url).send().await.unwrap();
        assert!(
            resp.status().is_redirection(),
            "GET {authorize_url}: {}",
            resp.status()
        );
        let location = resp.headers()[reqwest::header::LOCATION].to_str().unwrap();
        Redirected::parse(&reqwest::Url::parse(location).unwrap())
    }
}

impl Drop for FakeIdp {
    fn drop(&mut self) {
        // `stop` sends the command at once; its future only waits for completion.
        drop(self.handle.stop(false));
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

async fn discovery(ctx: web::Data<Ctx>) -> HttpResponse {
    ctx.state.lock().unwrap().discovery_hits += 1;
    let issuer = &ctx.issuer;
    HttpResponse::Ok().json(json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{issuer}authorize"),
        "token_endpoint": format!("{issuer}token"),
        "jwks_uri": format!("{issuer}jwks"),
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "code_challenge_methods_supported": ["S256"],
        "scopes_supported": ["openid", "email", "profile", "groups"],
        "token_endpoint_auth_methods_supported": ["none"],
        "claims_supported": ["sub", "iss", "aud", "exp", "iat", "nonce", "email", "email_verified", "groups"],
        "grant_types_supported": ["authorization_code"],
    }))
}

async fn jwks(ctx: web::Data<Ctx>) -> HttpResponse {
    let mut state = ctx.state.lock().unwrap();
    state.jwks_hits += 1;
    let mut keys = vec![KEY1.jwk()];
    if state.second_key_published {
        keys.push(KEY2.jwk());
    }
    HttpResponse::Ok().json(json!({ "keys": keys }))
}

async fn authorize(
    ctx: web::Data<Ctx>,
    query: web::Query<HashMap<String, String>>,
) -> HttpResponse {
    let params = query.into_inner();
    let mut state = ctx.state.lock().unwrap();
    state.next_code += 1;
    let code = format!("fake-code-{}", state.next_code);
    state.authorize_requests.push(params.clone());
    let Some(redirect_uri) = params.get("redirect_uri") else {
        return HttpResponse::BadRequest()
            .json(json!({ "error": "invalid_request", "error_description": "no redirect_uri" }));
    };
    let Ok(mut target) = reqwest::Url::parse(redirect_uri) else {
        return HttpResponse::BadRequest()
            .json(json!({ "error": "invalid_request", "error_description": "bad redirect_uri" }));
    };
    {
        let mut q = target.query_pairs_mut();
        q.append_pair("code", &code);
        if let Some(s) = params.get("state") {
            q.append_pair("state", s);
        }
    }
    HttpResponse::SeeOther()
        .insert_header(("Location", target.to_string()))
        .finish()
}

async fn token(ctx: web::Data<Ctx>, form: web::Form<HashMap<String, String>>) -> HttpResponse {
    let mut state = ctx.state.lock().unwrap();
    state.token_hits += 1;
    state.token_requests.push(form.into_inner());
    match state.queue.pop_front() {
        Some(id_token) => HttpResponse::Ok()
            .insert_header(("Cache-Control", "no-store"))
            .json(json!({
                "access_token": "x",
                "token_type": "Bearer",
                "expires_in": 300,
                "id_token": id_token,
            })),
        None => HttpResponse::BadRequest().json(json!({
            "error": "invalid_grant",
            "error_description": "the test queued no ID token",
        })),
    }
}
