//! Per-client-IP rate limits (actix-governor): every anonymous request
//! (`server.rateLimit.anonymousPerMinute`), and sign-in attempts
//! (`server.rateLimit.sessionPerMinute`, for `POST /v1/auth/session`). A request is
//! exempt from the anonymous limit only when the authn middleware has *verified* its
//! token (an invalid token counts as anonymous), and probes are never limited. Over the
//! limit: 429 with the API's error body and `Retry-After`.

use std::{net::IpAddr, time::Duration};

use actix_governor::{
    governor::{
        clock::{Clock, DefaultClock, QuantaInstant},
        middleware::NoOpMiddleware,
        NotUntil,
    },
    GovernorConfig, GovernorConfigBuilder, KeyExtractor, SimpleKeyExtractionError,
};
use actix_web::{dev::ServiceRequest, HttpMessage, HttpResponse, HttpResponseBuilder};

use super::{authn::VerifiedToken, client_ip::ClientIp};
use crate::error::ErrorBody;

/// Paths no limit applies to: load balancers and scrapers poll them.
const PROBES: [&str; 3] = ["/v1/health", "/v1/ready", "/metrics"];

/// What a request is counted against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RateKey {
    /// Not limited.
    Exempt,
    Client(IpAddr),
}

fn client(req: &ServiceRequest) -> IpAddr {
    ClientIp::of(req.request()).unwrap_or(IpAddr::from([0, 0, 0, 0]))
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
