//! actix's own failures (unknown route, wrong method, bad JSON, bad query, oversize
//! body) rendered in the Pinning Services API error shape.

use actix_web::{error::InternalError, web, HttpRequest, HttpResponse};

use crate::error::{Error, ErrorBody};

/// 404 for any path no route matches.
pub async fn not_found(req: HttpRequest) -> HttpResponse {
    HttpResponse::NotFound().json(ErrorBody::new(
        "NOT_FOUND",
        format!("no route for {} {}", req.method(), req.path()),
    ))
}

/// 405 for a known path with a method it does not serve.
pub async fn method_not_allowed(req: HttpRequest) -> HttpResponse {
    HttpResponse::MethodNotAllowed().json(ErrorBody::new(
        "METHOD_NOT_ALLOWED",
        format!("{} is not allowed on {}", req.method(), req.path()),
    ))
}

/// JSON bodies: malformed JSON, wrong content type and oversize bodies become 4xx
/// with the error body.
pub fn json_config(limit: usize) -> web::JsonConfig {
    web::JsonConfig::default()
        .limit(limit)
        .error_handler(|err, _req| {
            use actix_web::error::JsonPayloadError as J;
            let error = match &err {
                J::Overflow { limit } | J::OverflowKnownLength { limit, .. } => {
                    Error::PayloadTooLarge(format!("request body exceeds {limit} bytes"))
                }
                J::ContentType => Error::BadRequest("Content-Type must be application/json".into()),
                other => Error::BadRequest(format!("invalid JSON body: {other}")),
            };
            InternalError::from_response(err, actix_web::ResponseError::error_response(&error))
                .into()
        })
}

/// Query strings that do not deserialize are 400s naming the problem.
pub fn query_config() -> web::QueryConfig {
    web::QueryConfig::default().error_handler(|err, _req| {
        let error = Error::BadRequest(format!("invalid query string: {err}"));
        InternalError::from_response(err, actix_web::ResponseError::error_response(&error)).into()
    })
}

/// Path segments that do not parse are 400s.
pub fn path_config() -> web::PathConfig {
    web::PathConfig::default().error_handler(|err, _req| {
        let error = Error::BadRequest(format!("invalid path: {err}"));
        InternalError::from_response(err, actix_web::ResponseError::error_response(&error)).into()
    })
}
