//! Sign-in through an OpenID Connect provider (Authentik in the seed's deployment):
//! Authorization Code with PKCE (S256), `state` and `nonce`, as a public client.
//!
//! Discovery runs against `auth.authentik.issuer` exactly as configured (Authentik's
//! issuers end in `/`, and `iss` must match byte for byte). The provider's metadata and
//! JWKS are cached for about an hour; an ID token signed with a key we do not know (a
//! rotation) triggers one re-discovery, at most every [`REDISCOVER_AT_MOST_EVERY`].
//! Every refusal names its cause — redirect URI, signature, issuer, audience, clock — in
//! the error and the log, matching the seed's troubleshooting list.

use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use chrono::Utc;
use openidconnect::{
    core::{CoreAuthenticationFlow, CoreProviderMetadata},
    AuthorizationCode, ClaimsVerificationError, ClientId, CsrfToken, IssuerUrl, Nonce,
    OAuth2TokenResponse, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, Scope,
    SignatureVerificationError, TokenResponse,
};

use crate::{
    config::Config,
    error::{Error, Result},
};

/// How long discovered metadata and keys are trusted.
pub const METADATA_TTL: Duration = Duration::from_secs(3600);
/// Re-discovery on an unknown key happens at most this often.
pub const REDISCOVER_AT_MOST_EVERY: Duration = Duration::from_secs(30);
/// Clock skew tolerated on `exp` and `iat`.
pub const LEEWAY: Duration = Duration::from_secs(60);

/// The `groups` value that makes a user a sysadmin.
pub const SYSADMIN_GROUP: &str = "anchorage-sysadmins";

/// Where an authorization request starts, and what finishing it will need.
#[derive(Debug, Clone)]
pub struct LoginStart {
    pub url: String,
    pub state: String,
    pub nonce: String,
    pub pkce_verifier: String,
}

/// Who signed in, from verified ID-token claims.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub subject: String,
    pub email: Option<String>,
    /// The provider vouches for `email` (`email_verified: true`).
    pub email_verified: bool,
    pub name: Option<String>,
    pub groups: Vec<String>,
}

#[derive(Debug, Clone, Default, serde::Deserialize, serde::Serialize)]
struct ExtraClaims {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    groups: Vec<String>,
}

impl openidconnect::AdditionalClaims for ExtraClaims {}

type IdTokenClaims =
    openidconnect::IdTokenClaims<ExtraClaims, openidconnect::core::CoreGenderClaim>;
type TokenResponse_ = openidconnect::StandardTokenResponse<
    openidconnect::IdTokenFields<
        ExtraClaims,
        openidconnect::EmptyExtraTokenFields,
        openidconnect::core::CoreGenderClaim,
        openidconnect::core::CoreJweContentEncryptionAlgorithm,
        openidconnect::core::CoreJwsSigningAlgorithm,
    >,
    openidconnect::core::CoreTokenType,
>;

/// Our client type: ID tokens with a `groups` claim; authorization and token endpoints set.
type Client = openidconnect::Client<
    ExtraClaims,
    openidconnect::core::CoreAuthDisplay,
    openidconnect::core::CoreGenderClaim,
    openidconnect::core::CoreJweContentEncryptionAlgorithm,
    openidconnect::core::CoreJsonWebKey,
    openidconnect::core::CoreAuthPrompt,
    openidconnect::StandardErrorResponse<openidconnect::core::CoreErrorResponseType>,
    TokenResponse_,
    openidconnect::core::CoreTokenIntrospectionResponse,
    openidconnect::core::CoreRevocableToken,
    openidconnect::core::CoreRevocationErrorResponse,
    openidconnect::EndpointSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointSet,
    openidconnect::EndpointNotSet,
>;

struct Discovered {
    metadata: CoreProviderMetadata,
    at: Instant,
}

/// The configured provider, lazily discovered.
pub struct Oidc {
    issuer: IssuerUrl,
    client_id: ClientId,
    audience: String,
    redirect: RedirectUrl,
    http: reqwest::Client,
    discovered: tokio::sync::RwLock<Option<Discovered>>,
    last_rediscovery: Mutex<Option<Instant>>,
}

impl Oidc {
    /// The provider of `config`, or `None` when no issuer is configured.
    pub fn from_config(config: &Config) -> Result<Option<Arc<Self>>> {
        let a = &config.auth.authentik;
        let Some(issuer) = a.issuer.as_deref().filter(|s| !s.is_empty()) else {
            return Ok(None);
        };
        let client_id = a.client_id.clone().ok_or_else(|| {
            Error::config(
                "auth.authentik.clientID",
                "required when auth.authentik.issuer is set",
            )
        })?;
        let issuer = IssuerUrl::new(issuer.to_string())
            .map_err(|e| Error::config("auth.authentik.issuer", e.to_string()))?;
        let redirect = RedirectUrl::new(redirect_uri(config))
            .map_err(|e| Error::config("server.publicURL", e.to_string()))?;
        // Redirects are never followed: the spec forbids it for these endpoints, and it
        // keeps a compromised provider from pointing us elsewhere.
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| Error::Internal(format!("OIDC HTTP client: {e}")))?;
        Ok(Some(Arc::new(Self {
            audience: a.audience.clone().unwrap_or_else(|| client_id.clone()),
            client_id: ClientId::new(client_id),
            issuer,
            redirect,
            http,
            discovered: tokio::sync::RwLock::new(None),
            last_rediscovery: Mutex::new(None),
        })))
    }

    /// The URL the provider sends browsers back to.
    pub fn redirect_uri(&self) -> &str {
        self.redirect.as_str()
    }

    async fn metadata(&self) -> Result<CoreProviderMetadata> {
        if let Some(d) = self.discovered.read().await.as_ref() {
            if d.at.elapsed() < METADATA_TTL {
                return Ok(d.metadata.clone());
            }
        }
        self.discover().await
    }

    async fn discover(&self) -> Result<CoreProviderMetadata> {
        let metadata = CoreProviderMetadata::discover_async(self.issuer.clone(), &self.http)
            .await
            .map_err(|e| {
                tracing::warn!(issuer = %self.issuer.as_str(), error = %e, "OIDC discovery failed");
                Error::Unavailable(format!(
                    "the identity provider at {} could not be discovered: {e}",
                    self.issuer.as_str()
                ))
            })?;
        *self.discovered.write().await = Some(Discovered {
            metadata: metadata.clone(),
            at: Instant::now(),
        });
        Ok(metadata)
    }

    /// Re-discovers (new keys) unless that happened within the rate limit.
    async fn rediscover(&self) -> Result<Option<CoreProviderMetadata>> {
        {
            let mut last = self
                .last_rediscovery
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            if last.is_some_and(|t| t.elapsed() < REDISCOVER_AT_MOST_EVERY) {
                return Ok(None);
            }
            *last = Some(Instant::now());
        }
        tracing::info!("an ID token used an unknown key; re-reading the provider's keys");
        Ok(Some(self.discover().await?))
    }

    /// A client for `metadata` with the authorization and token endpoints set.
    fn client(&self, metadata: &CoreProviderMetadata) -> Result<Client> {
        let token_url = metadata.token_endpoint().cloned().ok_or_else(|| {
            Error::Unavailable("the identity provider has no token endpoint".into())
        })?;
        Ok(openidconnect::Client::new(
            self.client_id.clone(),
            self.issuer.clone(),
            metadata.jwks().clone(),
        )
        .set_auth_uri(metadata.authorization_endpoint().clone())
        .set_token_uri(token_url)
        .set_redirect_uri(self.redirect.clone())
        // A public client: the client id goes in the body, there is no secret.
        .set_auth_type(openidconnect::AuthType::RequestBody))
    }

    /// Starts a sign-in: the provider URL to send the browser to, and the secrets the
    /// callback will need.
    pub async fn begin(&self) -> Result<LoginStart> {
        let client = self.client(&self.metadata().await?)?;
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let (url, state, nonce) = client
            .authorize_url(
                CoreAuthenticationFlow::AuthorizationCode,
                CsrfToken::new_random,
                Nonce::new_random,
            )
            .add_scope(Scope::new("email".into()))
            .add_scope(Scope::new("profile".into()))
            // The seed's walkthrough puts `groups` (anchorage-sysadmins) in a scope of its
            // own; a provider without it ignores the request.
            .add_scope(Scope::new("groups".into()))
            .set_pkce_challenge(challenge)
            .url();
        Ok(LoginStart {
            url: url.to_string(),
            state: state.secret().clone(),
            nonce: nonce.secret().clone(),
            pkce_verifier: verifier.secret().clone(),
        })
    }

    /// Exchanges `code` (with the PKCE verifier) and verifies the ID token against
    /// `nonce`.
    pub async fn finish(&self, code: &str, pkce_verifier: &str, nonce: &str) -> Result<Identity> {
        let metadata = self.metadata().await?;
        let client = self.client(&metadata)?;
        let response = client
            .exchange_code(AuthorizationCode::new(code.to_string()))
            .set_pkce_verifier(PkceCodeVerifier::new(pkce_verifier.to_string()))
            .request_async(&self.http)
            .await
            .map_err(|e| {
                let why = token_error(&e);
                tracing::warn!(cause = %why, "sign-in refused at the code exchange");
                Error::SignIn(why)
            })?;
        let _ = response.access_token();
        let id_token = response
            .id_token()
            .ok_or_else(|| Error::SignIn("the provider returned no ID token".into()))?
            .clone();
        let nonce = Nonce::new(nonce.to_string());
        let claims = match self.verify(&metadata, &id_token, &nonce) {
            Err(e) if is_key_problem(&e) => match self.rediscover().await? {
                Some(fresh) => self.verify(&fresh, &id_token, &nonce),
                None => Err(e),
            },
            other => other,
        }
        .map_err(|e| {
            let why = claims_error(&e);
            tracing::warn!(cause = %why, "sign-in refused: the ID token did not verify");
            Error::SignIn(why)
        })?;
        if !claims
            .audiences()
            .iter()
            .any(|a| a.as_str() == self.audience)
        {
            let found: Vec<&str> = claims.audiences().iter().map(|a| a.as_str()).collect();
            let why = format!(
                "audience mismatch: expected `{}` (auth.authentik.audience or clientID), found {found:?}",
                self.audience
            );
            tracing::warn!(cause = %why, "sign-in refused: the ID token did not verify");
            return Err(Error::SignIn(why));
        }
        Ok(Identity {
            subject: claims.subject().as_str().to_string(),
            email: claims.email().map(|e| e.as_str().to_string()),
            email_verified: claims.email_verified().unwrap_or(false),
            name: claims
                .name()
                .and_then(|n| n.get(None))
                .map(|n| n.as_str().to_string()),
            groups: claims.additional_claims().groups.clone(),
        })
    }

    fn verify(
        &self,
        metadata: &CoreProviderMetadata,
        id_token: &openidconnect::IdToken<
            ExtraClaims,
            openidconnect::core::CoreGenderClaim,
            openidconnect::core::CoreJweContentEncryptionAlgorithm,
            openidconnect::core::CoreJwsSigningAlgorithm,
        >,
        nonce: &Nonce,
    ) -> std::result::Result<IdTokenClaims, ClaimsVerificationError> {
        let leeway = chrono::Duration::from_std(LEEWAY).unwrap_or_default();
        let verifier = openidconnect::core::CoreIdTokenVerifier::new_public_client(
            self.client_id.clone(),
            self.issuer.clone(),
            metadata.jwks().clone(),
        )
        // The audience is checked against `audience` (which may differ from the client
        // id) after verification.
        .require_audience_match(false)
        .set_time_fn(move || Utc::now() - leeway)
        .set_issue_time_verifier_fn(move |iat| {
            if iat > Utc::now() + leeway {
                Err(format!("issued in the future ({iat}); check the clocks"))
            } else {
                Ok(())
            }
        });
        id_token.claims(&verifier, nonce).cloned()
    }
}

/// The redirect URI to register at the provider: `server.publicURL` +
/// `auth.authentik.redirectPath`.
pub fn redirect_uri(config: &Config) -> String {
    format!(
        "{}{}",
        public_url(config),
        config.auth.authentik.redirect_path
    )
}

/// `server.publicURL`, or `http://<listen>` when unset.
pub fn public_url(config: &Config) -> String {
    match &config.server.public_url {
        Some(url) => url.trim_end_matches('/').to_string(),
        None => format!("http://{}", config.server.listen),
    }
}

fn is_key_problem(e: &ClaimsVerificationError) -> bool {
    matches!(
        e,
        ClaimsVerificationError::SignatureVerification(
            SignatureVerificationError::NoMatchingKey
                | SignatureVerificationError::CryptoError(_)
                | SignatureVerificationError::AmbiguousKeyId(_)
        )
    )
}

/// A cause a person can act on (the seed's troubleshooting list).
fn claims_error(e: &ClaimsVerificationError) -> String {
    match e {
        ClaimsVerificationError::InvalidIssuer(d) => format!(
            "issuer mismatch ({d}); auth.authentik.issuer must be the provider's issuer exactly, trailing slash included"
        ),
        ClaimsVerificationError::InvalidAudience(d) => format!("audience mismatch ({d})"),
        ClaimsVerificationError::Expired(d) => {
            format!("the ID token is expired or not yet valid ({d}); check the clocks")
        }
        ClaimsVerificationError::InvalidNonce(d) => {
            format!("nonce mismatch ({d}); start the sign-in again")
        }
        ClaimsVerificationError::SignatureVerification(
            SignatureVerificationError::NoMatchingKey,
        ) => "the ID token is signed with a key the provider does not publish".into(),
        ClaimsVerificationError::SignatureVerification(s) => {
            format!("bad ID token signature ({s})")
        }
        other => format!("the ID token was refused ({other})"),
    }
}

fn token_error<E: std::fmt::Display>(e: &E) -> String {
    let text = e.to_string();
    if text.contains("redirect_uri") || text.contains("invalid_grant") {
        format!(
            "the provider refused the code ({text}); check that its redirect URI is server.publicURL + auth.authentik.redirectPath"
        )
    } else {
        format!("the code exchange failed ({text})")
    }
}
