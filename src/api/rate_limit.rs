//! Rate limits (actix-governor): every anonymous request, per client
//! (`server.rateLimit.anonymousPerMinute`); sign-in attempts, per client
//! (`server.rateLimit.sessionPerMinute`, for `POST /v1/auth/session`); and, when
//! turned on, every authenticated request, per org (`server.rateLimit.orgPerMinute`).
//! A request is exempt from the anonymous limit only when the authn middleware has
//! *verified* its token (an invalid token counts as anonymous), and probes are never
//! limited. A client is its IPv4 address or its IPv6 /64. Over a limit: 429 with the
//! API's error body and `Retry-After`.

use std::{
    net::{IpAddr, Ipv6Addr},
    time::Duration,
};

use actix_governor::{
    governor::{
        clock::{Clock, DefaultClock, QuantaInstant},
        middleware::NoOpMiddleware,
        NotUntil,
    },
    GovernorConfig, GovernorConfigBuilder, KeyExtractor, SimpleKeyExtractionError,
};
use actix_web::{dev::ServiceRequest, HttpMessage, HttpResponse, HttpResponseBuilder};

use uuid::Uuid;

use super::{
    client_ip::ClientIp,
    verified::{named_org, VerifiedToken},
};
use crate::{error::ErrorBody, tenancy::access};

/// Paths no limit applies to: load balancers and scrapers poll them.
const PROBES: [&str; 3] = ["/v1/health", "/v1/ready", "/metrics"];

/// What a request is counted against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RateKey {
    /// Not limited.
    Exempt,
    Client(IpAddr),
    Org(Uuid),
}

fn client(req: &ServiceRequest) -> IpAddr {
    client_key(ClientIp::of(req.request()).unwrap_or(IpAddr::from([0, 0, 0, 0])))
}

/// The address a client is limited under: its IPv4 address, or the /64 its IPv6 address
/// is in. One subscriber is usually handed a whole /64, so keying on the full address
/// would give them 2^64 allowances. An IPv4-mapped IPv6 address is the IPv4 address.
pub fn client_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(Ipv6Addr::from(u128::from(v6) & !(u128::MAX >> 64))),
        },
    }
}

fn too_many(negative: &NotUntil<QuantaInstant>, mut response: HttpResponseBuilder) -> HttpResponse {
    let wait = negative.wait_time_from(DefaultClock::default().now());
    response.json(ErrorBody::new(
        "TOO_MANY_REQUESTS",
        format!("rate limit exceeded; retry in {} s", wait.as_secs().max(1)),
    ))
}

/// Anonymous requests, per client IP.
#[derive(Debug, Clone, Copy)]
pub struct AnonymousClients;

impl KeyExtractor for AnonymousClients {
    type Key = RateKey;
    type KeyExtractionError = SimpleKeyExtractionError<&'static str>;

    fn extract(&self, req: &ServiceRequest) -> Result<RateKey, Self::KeyExtractionError> {
        if PROBES.contains(&req.path()) || req.extensions().get::<VerifiedToken>().is_some() {
            return Ok(RateKey::Exempt);
        }
        Ok(RateKey::Client(client(req)))
    }

    fn exceed_rate_limit_response(
        &self,
        negative: &NotUntil<QuantaInstant>,
        response: HttpResponseBuilder,
    ) -> HttpResponse {
        too_many(negative, response)
    }

    fn whitelisted_keys(&self) -> Vec<RateKey> {
        vec![RateKey::Exempt]
    }
}

/// The path sign-in attempts are limited on.
pub const SIGN_IN_PATH: &str = "/v1/auth/session";

/// Sign-in attempts (`POST /v1/auth/session`), per client IP, whoever is asking.
#[derive(Debug, Clone, Copy)]
pub struct SignInClients;

impl KeyExtractor for SignInClients {
    type Key = RateKey;
    type KeyExtractionError = SimpleKeyExtractionError<&'static str>;

    fn extract(&self, req: &ServiceRequest) -> Result<RateKey, Self::KeyExtractionError> {
        if req.method() != actix_web::http::Method::POST || req.path() != SIGN_IN_PATH {
            return Ok(RateKey::Exempt);
        }
        Ok(RateKey::Client(client(req)))
    }

    fn whitelisted_keys(&self) -> Vec<RateKey> {
        vec![RateKey::Exempt]
    }

    fn exceed_rate_limit_response(
        &self,
        negative: &NotUntil<QuantaInstant>,
        response: HttpResponseBuilder,
    ) -> HttpResponse {
        too_many(negative, response)
    }
}

/// Authenticated requests, per org: the org the caller acts in (a sysadmin's named
/// org; for anyone else the org of their token or session, so nobody can spend another
/// org's allowance by naming it).
#[derive(Debug, Clone, Copy)]
pub struct Orgs;

impl KeyExtractor for Orgs {
    type Key = RateKey;
    type KeyExtractionError = SimpleKeyExtractionError<&'static str>;

    fn extract(&self, req: &ServiceRequest) -> Result<RateKey, Self::KeyExtractionError> {
        if PROBES.contains(&req.path()) {
            return Ok(RateKey::Exempt);
        }
        let extensions = req.extensions();
        let Some(VerifiedToken(claims)) = extensions.get::<VerifiedToken>() else {
            return Ok(RateKey::Exempt);
        };
        let named = access::sees_every_org(claims.role)
            .then(|| named_org(req.request()).ok().flatten())
            .flatten();
        Ok(named
            .or(claims.org)
            .map_or(RateKey::Exempt, |org| RateKey::Org(org.uuid())))
    }

    fn exceed_rate_limit_response(
        &self,
        negative: &NotUntil<QuantaInstant>,
        response: HttpResponseBuilder,
    ) -> HttpResponse {
        too_many(negative, response)
    }

    fn whitelisted_keys(&self) -> Vec<RateKey> {
        vec![RateKey::Exempt]
    }
}

/// `per_minute` requests a minute, all of them available at once; `None` when 0
/// (limit off).
pub fn per_minute<K: KeyExtractor>(
    extractor: K,
    per_minute: u32,
) -> Option<GovernorConfig<K, NoOpMiddleware<QuantaInstant>>> {
    if per_minute == 0 {
        return None;
    }
    GovernorConfigBuilder::default()
        .period(Duration::from_secs(60) / per_minute)
        .burst_size(per_minute)
        .key_extractor(extractor)
        .finish()
}

/// A limit as configured; `None` when off.
pub type Limit<K> = Option<GovernorConfig<K, NoOpMiddleware<QuantaInstant>>>;

/// Every configured limit, built once per node: the HTTP workers' governors share
/// their counts, and the session gate spends from the anonymous one.
#[derive(Clone)]
pub struct Limits {
    pub anonymous: Limit<AnonymousClients>,
    pub sign_in: Limit<SignInClients>,
    pub orgs: Limit<Orgs>,
}

impl Limits {
    pub fn new(config: &crate::config::RateLimit) -> Self {
        Self {
            anonymous: per_minute(AnonymousClients, config.anonymous_per_minute),
            sign_in: per_minute(SignInClients, config.session_per_minute),
            orgs: per_minute(Orgs, config.org_per_minute),
        }
    }

    /// Takes one request from `client`'s anonymous allowance; false when it is spent
    /// (always true with the limit off).
    pub fn spend_anonymous(&self, client: IpAddr) -> bool {
        self.anonymous.as_ref().is_none_or(|limit| {
            limit
                .limiter()
                .check_key(&RateKey::Client(client_key(client)))
                .is_ok()
        })
    }
}

/// Drops the state of clients idle long enough to be back at a full allowance, every
/// `every`, until aborted.
pub async fn prune_loop<K>(
    config: GovernorConfig<K, NoOpMiddleware<QuantaInstant>>,
    every: Duration,
) where
    K: KeyExtractor + Send + Sync + 'static,
    K::Key: Send + Sync,
{
    let limiter = config.limiter();
    loop {
        tokio::time::sleep(every).await;
        limiter.retain_recent();
        limiter.shrink_to_fit();
    }
}

#[cfg(test)]
mod tests {
    use super::client_key;

    fn key(ip: &str) -> String {
        client_key(ip.parse().unwrap()).to_string()
    }

    #[test]
    fn ipv6_clients_are_keyed_by_their_64_and_ipv4_by_address() {
        assert_eq!(key("2001:db8:1:2::1"), "2001:db8:1:2::");
        assert_eq!(key("2001:db8:1:2:ffff:ffff:ffff:ffff"), "2001:db8:1:2::");
        assert_ne!(key("2001:db8:1:3::1"), key("2001:db8:1:2::1"));
        assert_eq!(key("203.0.113.9"), "203.0.113.9");
        assert_eq!(key("::ffff:203.0.113.9"), "203.0.113.9");
        assert_ne!(key("203.0.113.9"), key("203.0.113.10"));
    }
}
