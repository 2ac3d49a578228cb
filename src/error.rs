//! The one error type. Every fallible function in the crate returns [`Error`]; over HTTP
//! it renders as the Pinning Services API error body `{"error":{"reason","details"}}`.

use actix_web::{http::StatusCode, HttpResponse, ResponseError};
use serde::Serialize;

/// Result alias used across the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The underlying error of a dependency, kept as the `source` of ours so a log or a
/// caller walking the chain sees the original (without this module knowing its type).
pub type Cause = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Everything that can go wrong, classified by what the caller should see.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Configuration could not be loaded or is invalid; `key` is the dotted path.
    #[error("configuration: {key}: {message}")]
    Config { key: String, message: String },

    /// The request is malformed; `details` is safe to show to the caller.
    #[error("bad request: {0}")]
    BadRequest(String),

    /// Missing or invalid credentials. The detail goes to logs, never to the caller.
    #[error("unauthorized: {0}")]
    Unauthorized(String),

    /// A token refused because of its signing key — unknown (retired) or revoked. Unlike
    /// `Unauthorized`, the cause is shown: it is about the key id in the token's own
    /// header, which its holder can read anyway, and the seed's rotation runbook tells
    /// operators to look for `token: unknown kid "<id>"`.
    #[error("unauthorized: {0}")]
    KeyRefused(String),

    /// Sign-in through the identity provider failed; unlike `Unauthorized`, the cause
    /// (issuer, audience, signature, clock, redirect URI) is shown, because the person
    /// or operator needs it to fix the setup and it reveals nothing about our secrets.
    #[error("sign-in failed: {0}")]
    SignIn(String),

    /// Authenticated but not allowed.
    #[error("forbidden: {0}")]
    Forbidden(String),

    /// The resource does not exist (or belongs to another tenant).
    #[error("not found: {0}")]
    NotFound(String),

    /// The request conflicts with existing state.
    #[error("conflict: {0}")]
    Conflict(String),

    /// The request body is larger than allowed.
    #[error("payload too large: {0}")]
    PayloadTooLarge(String),

    /// The client sent too many requests; `details` says when to retry.
    #[error("too many requests: {0}")]
    TooManyRequests(String),

    /// A dependency (database pool, Kubo) cannot serve right now.
    #[error("unavailable: {0}")]
    Unavailable(String),

    /// A database error.
    #[error("database: {0}")]
    Database(#[from] diesel::result::Error),

    /// The connection pool could not hand out a connection.
    #[error("database pool: {0}")]
    Pool(#[source] Cause),

    /// Running or inspecting migrations failed.
    #[error("migrations: {0}")]
    Migration(String),

    /// A Kubo RPC call failed (the source is a `kubo::KuboError`).
    #[error("kubo: {0}")]
    Kubo(#[source] Cause),

    /// A NATS call failed (`cluster.backend: nats`): what we were doing, and why.
    #[error("nats: {context}: {source}")]
    Nats {
        context: String,
        #[source]
        source: Cause,
    },

    /// Token signing or key handling failed.
    #[error("token: {message}{}", source.as_ref().map(|s| format!(": {s}")).unwrap_or_default())]
    Token {
        message: String,
        #[source]
        source: Option<Cause>,
    },

    /// Local file or process I/O failed.
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },

    /// A bug or an unexpected state; details are logged, not shown.
    #[error("internal: {0}")]
    Internal(String),
}

impl Error {
    /// Wraps an I/O error with what we were doing.
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Self::Io {
            context: context.into(),
            source,
        }
    }

    /// Token handling failed for `message`, caused by `source` when there is one.
    pub fn token(message: impl Into<String>, source: Option<Cause>) -> Self {
        Self::Token {
            message: message.into(),
            source,
        }
    }

    /// A NATS call for `context` failed with `source`.
    pub fn nats(context: impl Into<String>, source: impl Into<Cause>) -> Self {
        Self::Nats {
            context: context.into(),
            source: source.into(),
        }
    }

    /// Shorthand for a configuration error naming `key`.
    pub fn config(key: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Config {
            key: key.into(),
            message: message.into(),
        }
    }

    /// The spec's machine-readable `reason` for this error.
    pub fn reason(&self) -> &'static str {
        match self.status_code() {
            StatusCode::BAD_REQUEST => "BAD_REQUEST",
            StatusCode::UNAUTHORIZED => "UNAUTHORIZED",
            StatusCode::FORBIDDEN => "FORBIDDEN",
            StatusCode::NOT_FOUND => "NOT_FOUND",
            StatusCode::CONFLICT => "CONFLICT",
            StatusCode::PAYLOAD_TOO_LARGE => "PAYLOAD_TOO_LARGE",
            StatusCode::TOO_MANY_REQUESTS => "TOO_MANY_REQUESTS",
            StatusCode::SERVICE_UNAVAILABLE => "SERVICE_UNAVAILABLE",
            _ => "INTERNAL_SERVER_ERROR",
        }
    }

    /// What the caller may read. Server-side failures get a generic text so SQL,
    /// paths and internals never leak.
    pub fn public_details(&self) -> String {
        match self {
            Self::BadRequest(d) | Self::NotFound(d) | Self::Conflict(d) | Self::Forbidden(d) => {
                d.clone()
            }
            Self::PayloadTooLarge(d) | Self::TooManyRequests(d) => d.clone(),
            Self::Unauthorized(_) => "Access token is missing or invalid".into(),
            Self::SignIn(d) => format!("sign-in failed: {d}"),
            Self::KeyRefused(d) => d.clone(),
            Self::Unavailable(d) => d.clone(),
            Self::Pool(_) => "The database is busy; retry shortly".into(),
            Self::Nats { .. } => "The cluster's message bus is unavailable; retry shortly".into(),
            Self::Database(diesel::result::Error::NotFound) => {
                "The specified resource was not found".into()
            }
            Self::Database(diesel::result::Error::DatabaseError(
                diesel::result::DatabaseErrorKind::UniqueViolation,
                _,
            )) => "The resource already exists".into(),
            _ => "The server could not complete the request".into(),
        }
    }
}

/// The spec's error body.
#[derive(Debug, Serialize, serde::Deserialize)]
pub struct ErrorBody {
    pub error: ErrorDetails,
}

/// `Failure.error` in the spec.
#[derive(Debug, Serialize, serde::Deserialize)]
pub struct ErrorDetails {
    pub reason: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub details: Option<String>,
}

impl ErrorBody {
    /// Builds a body from a reason and details.
    pub fn new(reason: &str, details: impl Into<String>) -> Self {
        Self {
            error: ErrorDetails {
                reason: reason.to_string(),
                details: Some(details.into()),
            },
        }
    }
}

impl ResponseError for Error {
    fn status_code(&self) -> StatusCode {
        use diesel::result::{DatabaseErrorKind, Error as D};
        match self {
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Unauthorized(_) | Self::SignIn(_) | Self::KeyRefused(_) => {
                StatusCode::UNAUTHORIZED
            }
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::NotFound(_) | Self::Database(D::NotFound) => StatusCode::NOT_FOUND,
            Self::Conflict(_)
            | Self::Database(D::DatabaseError(DatabaseErrorKind::UniqueViolation, _)) => {
                StatusCode::CONFLICT
            }
            Self::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::TooManyRequests(_) => StatusCode::TOO_MANY_REQUESTS,
            Self::Unavailable(_) | Self::Pool(_) | Self::Nats { .. } => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let status = self.status_code();
        if status.is_server_error() {
            tracing::error!(error = %self, "request failed");
        } else if status == StatusCode::UNAUTHORIZED {
            tracing::info!(error = %self, "request unauthorized");
        }
        let mut response = HttpResponse::build(status);
        if status == StatusCode::UNAUTHORIZED {
            response.insert_header((actix_web::http::header::WWW_AUTHENTICATE, "Bearer"));
        }
        response.json(ErrorBody::new(self.reason(), self.public_details()))
    }
}
