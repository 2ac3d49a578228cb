//! API tokens: HS256 JWTs that anchorage mints itself, with a `kid` naming the signing
//! key. Verification accepts only HS256, only known kids, and checks iss, aud, exp, nbf
//! and that iat is not in the future.

use std::time::Duration;

use chrono::{DateTime, Utc};
use jsonwebtoken::{Algorithm, Header, Validation};
use serde::{Deserialize, Serialize};

use super::{
    key_cutoffs::KeyCutoffs,
    keys::KeySet,
    roles::{Role, Scope},
};
use crate::{
    error::{Error, Result},
    ids::{OrgId, TokenId},
};

/// Clock skew tolerated on `exp` (and `nbf`/`iat`).
pub const LEEWAY_SECS: u64 = 60;

/// The claims every API token carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The principal: a user id, or a free-form service name for CLI-minted tokens.
    pub sub: String,
    /// The tenant. Absent only on cluster-wide sysadmin tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org: Option<OrgId>,
    pub role: Role,
    /// Absent = the role's full access.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scopes: Option<Vec<Scope>>,
    pub jti: TokenId,
    pub iat: i64,
    pub exp: i64,
    pub iss: String,
    pub aud: String,
}

impl Claims {
    /// The scopes in force: the claim, or the role's defaults when absent.
    pub fn effective_scopes(&self) -> Vec<Scope> {
        match &self.scopes {
            Some(scopes) => scopes.clone(),
            None => self.role.default_scopes().to_vec(),
        }
    }

    /// Whether the token grants `scope`.
    pub fn has_scope(&self, scope: Scope) -> bool {
        self.effective_scopes().contains(&scope)
    }

    /// Fails with 403 unless the token grants `scope`.
    pub fn require(&self, scope: Scope) -> crate::error::Result<()> {
        if self.has_scope(scope) {
            Ok(())
        } else {
            Err(crate::error::Error::Forbidden(format!(
                "this token lacks the {scope} scope"
            )))
        }
    }

    /// When the token expires.
    pub fn expires_at(&self) -> DateTime<Utc> {
        DateTime::from_timestamp(self.exp, 0).unwrap_or(DateTime::<Utc>::MAX_UTC)
    }
}

/// What to put in a new token.
#[derive(Debug, Clone)]
pub struct MintRequest {
    pub sub: String,
    pub org: Option<OrgId>,
    pub role: Role,
    pub scopes: Option<Vec<Scope>>,
    pub ttl: Duration,
}

/// A freshly minted token: the JWT (shown once) and its claims (stored as metadata).
#[derive(Debug, Clone)]
pub struct MintedToken {
    pub jwt: String,
    pub kid: String,
    pub claims: Claims,
}

/// Mints and verifies API tokens with one key set, issuer and audience.
pub struct TokenService {
    keys: KeySet,
    issuer: String,
    audience: String,
    /// Keys whose tokens up to a moment are revoked (`admin revoke-token --kid`).
    cutoffs: KeyCutoffs,
}

impl TokenService {
    /// Builds the service.
    pub fn new(keys: KeySet, issuer: impl Into<String>, audience: impl Into<String>) -> Self {
        Self {
            keys,
            issuer: issuer.into(),
            audience: audience.into(),
            cutoffs: KeyCutoffs::default(),
        }
    }

    /// Signs a token with the primary key.
    pub fn mint(&self, req: MintRequest) -> Result<MintedToken> {
        let key = self.keys.primary()?;
        self.mint_with(&key.id, req)
    }

    /// Signs a token with the key named `kid`.
    pub fn mint_with(&self, kid: &str, req: MintRequest) -> Result<MintedToken> {
        let key = self
            .keys
            .get(kid)
            .ok_or_else(|| Error::token(format!("signing key '{kid}' is not loaded"), None))?;
        if req.role != Role::Sysadmin && req.org.is_none() {
            return Err(Error::BadRequest(format!(
                "a {} token needs an org",
                req.role
            )));
        }
        let ttl = i64::try_from(req.ttl.as_secs())
            .map_err(|_| Error::BadRequest("ttl too large".into()))?;
        if ttl <= 0 {
            return Err(Error::BadRequest("ttl must be positive".into()));
        }
        let now = Utc::now().timestamp();
        let claims = Claims {
            sub: req.sub,
            org: req.org,
            role: req.role,
            scopes: req.scopes,
            jti: TokenId::new(),
            iat: now,
            exp: now.saturating_add(ttl),
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
        };
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some(kid.to_string());
        let jwt = jsonwebtoken::encode(&header, &claims, key.encoding())
            .map_err(|e| Error::token("signing failed", Some(Box::new(e))))?;
        Ok(MintedToken {
            jwt,
            kid: kid.to_string(),
            claims,
        })
    }

    /// Verifies signature, algorithm, kid, iss, aud and exp. The denylist is checked by
    /// the caller (it needs the cache). Every failure is [`Error::Unauthorized`].
    pub fn verify(&self, jwt: &str) -> Result<Claims> {
        let header = jsonwebtoken::decode_header(jwt)
            .map_err(|e| Error::Unauthorized(format!("malformed token: {e}")))?;
        if header.alg != Algorithm::HS256 {
            return Err(Error::Unauthorized(format!(
                "algorithm {:?} is not accepted",
                header.alg
            )));
        }
        let kid = header
            .kid
            .ok_or_else(|| Error::Unauthorized("token has no kid header".into()))?;
        let key = self
            .keys
            .get(&kid)
            .ok_or_else(|| Error::KeyRefused(format!("token: unknown kid \"{kid}\"")))?;
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = LEEWAY_SECS;
        validation.validate_nbf = true;
        validation.set_issuer(&[&self.issuer]);
        validation.set_audience(&[&self.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        let data = jsonwebtoken::decode::<Claims>(jwt, key.decoding(), &validation)
            .map_err(|e| Error::Unauthorized(format!("token rejected: {e}")))?;
        // A token from the future was minted with a wrong clock, or forged to outlive
        // the expiry its parent imposes.
        let latest = Utc::now().timestamp() + LEEWAY_SECS as i64;
        if data.claims.iat > latest {
            return Err(Error::Unauthorized(format!(
                "token rejected: issued in the future (iat {}); check the clocks",
                data.claims.iat
            )));
        }
        if let Some(cutoff) = self.cutoffs.refusing(&kid, data.claims.iat) {
            let at = DateTime::<Utc>::from_timestamp(cutoff, 0).unwrap_or_default();
            return Err(Error::KeyRefused(format!(
                "token: key \"{kid}\" was revoked; its tokens issued up to {} are refused",
                at.to_rfc3339()
            )));
        }
        Ok(data.claims)
    }

    /// The per-key cutoffs this service honours (shared: reloading them takes effect
    /// at once).
    pub fn cutoffs(&self) -> &KeyCutoffs {
        &self.cutoffs
    }

    /// The issuer tokens carry.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The audience tokens carry.
    pub fn audience(&self) -> &str {
        &self.audience
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::keys::SigningKey;
    use base64::Engine;

    fn service(keys: &[(&str, u8)], primary: &str) -> TokenService {
        let keys = keys
            .iter()
            .map(|(id, b)| SigningKey::from_secret(id, &[*b; 32]).unwrap())
            .collect();
        TokenService::new(
            KeySet::new(keys, Some(primary)).unwrap(),
            "https://iss",
            "anchorage",
        )
    }

    fn member() -> MintRequest {
        MintRequest {
            sub: "usr_test".into(),
            org: Some(OrgId::new()),
            role: Role::Member,
            scopes: None,
            ttl: Duration::from_secs(3600),
        }
    }

    #[test]
    fn minted_tokens_verify() {
        let svc = service(&[("k1", 1), ("k2", 2)], "k1");
        let minted = svc.mint(member()).unwrap();
        assert_eq!(minted.kid, "k1");
        let claims = svc.verify(&minted.jwt).unwrap();
        assert_eq!(claims, minted.claims);
        assert!(claims.has_scope(Scope::PinWrite));
        assert!(!claims.has_scope(Scope::ClusterWrite));
    }

    #[test]
    fn all_loaded_keys_verify_but_unknown_kids_do_not() {
        let old = service(&[("k1", 1)], "k1");
        let rotated = service(&[("k1", 1), ("k2", 2)], "k2");
        assert!(rotated.verify(&old.mint(member()).unwrap().jwt).is_ok());
        let err = old
            .verify(&rotated.mint(member()).unwrap().jwt)
            .unwrap_err();
        assert!(
            matches!(err, Error::KeyRefused(ref m) if m == "token: unknown kid \"k2\""),
            "{err}"
        );
    }

    #[test]
    fn same_kid_other_secret_fails() {
        let a = service(&[("k1", 1)], "k1");
        let b = service(&[("k1", 9)], "k1");
        assert!(matches!(
            b.verify(&a.mint(member()).unwrap().jwt),
            Err(Error::Unauthorized(_))
        ));
    }

    #[test]
    fn alg_none_and_missing_kid_are_rejected() {
        let svc = service(&[("k1", 1)], "k1");
        let jwt = svc.mint(member()).unwrap().jwt;
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let parts: Vec<&str> = jwt.split('.').collect();
        let none = format!(
            "{}.{}.",
            b64.encode(r#"{"alg":"none","typ":"JWT","kid":"k1"}"#),
            parts[1]
        );
        assert!(svc.verify(&none).is_err());
        let no_kid = format!(
            "{}.{}.{}",
            b64.encode(r#"{"alg":"HS256","typ":"JWT"}"#),
            parts[1],
            parts[2]
        );
        let err = svc.verify(&no_kid).unwrap_err();
        assert!(err.to_string().contains("no kid"), "{err}");
    }

    #[test]
    fn wrong_issuer_or_audience_fails() {
        let svc = service(&[("k1", 1)], "k1");
        let keys = KeySet::new(
            vec![SigningKey::from_secret("k1", &[1; 32]).unwrap()],
            Some("k1"),
        )
        .unwrap();
        let other_aud = TokenService::new(keys, "https://iss", "someone-else");
        assert!(other_aud.verify(&svc.mint(member()).unwrap().jwt).is_err());
        let keys = KeySet::new(
            vec![SigningKey::from_secret("k1", &[1; 32]).unwrap()],
            Some("k1"),
        )
        .unwrap();
        let other_iss = TokenService::new(keys, "https://other", "anchorage");
        assert!(other_iss.verify(&svc.mint(member()).unwrap().jwt).is_err());
    }

    #[test]
    fn org_tokens_need_an_org() {
        let svc = service(&[("k1", 1)], "k1");
        let mut req = member();
        req.org = None;
        assert!(svc.mint(req.clone()).is_err());
        req.role = Role::Sysadmin;
        assert!(svc.mint(req).is_ok());
    }
}
