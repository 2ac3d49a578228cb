//! Everything apistos needs to document handlers that parse their own input.
//!
//! * [`Doc<T>`]: a zero-cost extractor (always succeeds, reads nothing) whose only job is
//!   to carry `T`'s `ApiComponent` into the operation: `Doc<web::Json<Pin>>` documents a
//!   request body, `Doc<web::Path<String>>` a path parameter, `Doc<ListPinsParams>` the
//!   query parameters — while the handler keeps reading `HttpRequest`/`web::Payload`.
//! * [`Reply<STATUS, T>`]: the handler's `HttpResponse`, tagged with the documented status
//!   code and body schema. `Ok(HttpResponse::Accepted().json(x).into())`.
//! * [`spec()`]: the document's info/tags/global security.

/// Where the generated document is served.
pub const DOCUMENT_PATH: &str = "/v1/openapi.json";

pub mod errors;
pub mod params;
pub mod schema;
pub mod security;

use std::collections::BTreeMap;
use std::future::{ready, Ready};
use std::marker::PhantomData;

use actix_web::body::BoxBody;
use actix_web::{dev::Payload, FromRequest, HttpRequest, HttpResponse, Responder};
use apistos::info::Info;
use apistos::paths::{MediaType, Parameter, RequestBody, Response, Responses};
use apistos::reference_or::ReferenceOr;
use apistos::security::SecurityScheme;
use apistos::spec::Spec;
use apistos::tag::Tag;
use apistos::{ApiComponent, Schema};

/// Documentation-only extractor. See the module docs.
pub struct Doc<T>(PhantomData<T>);

impl<T> FromRequest for Doc<T> {
    type Error = actix_web::Error;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(_: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(Ok(Doc(PhantomData)))
    }
}

impl<T: ApiComponent> ApiComponent for Doc<T> {
    fn content_type() -> String {
        T::content_type()
    }
    fn required() -> bool {
        T::required()
    }
    fn child_schemas() -> Vec<(String, ReferenceOr<Schema>)> {
        T::child_schemas()
    }
    fn raw_schema() -> Option<ReferenceOr<Schema>> {
        T::raw_schema()
    }
    fn schema() -> Option<(String, ReferenceOr<Schema>)> {
        T::schema()
    }
    fn securities() -> BTreeMap<String, SecurityScheme> {
        T::securities()
    }
    fn security_requirement_name() -> Option<String> {
        T::security_requirement_name()
    }
    fn request_body() -> Option<RequestBody> {
        T::request_body()
    }
    fn parameters() -> Vec<Parameter> {
        T::parameters()
    }
}

/// A handler's response with its documented status and body. `T = ()` documents no body.
pub struct Reply<const STATUS: u16, T = ()>(pub HttpResponse, PhantomData<T>);

impl<const STATUS: u16, T> From<HttpResponse> for Reply<STATUS, T> {
    fn from(response: HttpResponse) -> Self {
        debug_assert_eq!(
            response.status().as_u16(),
            STATUS,
            "Reply status differs from the documented one"
        );
        Reply(response, PhantomData)
    }
}

impl<const STATUS: u16, T> Responder for Reply<STATUS, T> {
    type Body = BoxBody;
    fn respond_to(self, _: &HttpRequest) -> HttpResponse {
        self.0
    }
}

impl<const STATUS: u16, T: ApiComponent> ApiComponent for Reply<STATUS, T> {
    /// The body schema and what it refers to, plus `Failure` (the error responses that
    /// `Error: ApiErrorComponent` adds point at it, and apistos 0.9 only registers error
    /// schemas when `error_code = ...` filters are used).
    fn child_schemas() -> Vec<(String, ReferenceOr<Schema>)> {
        let mut schemas = T::child_schemas();
        schemas.extend(schema::Failure::schema());
        schemas.extend(schema::Failure::child_schemas());
        schemas
    }
    fn schema() -> Option<(String, ReferenceOr<Schema>)> {
        T::schema()
    }
    fn responses(_: Option<String>) -> Option<Responses> {
        let content = T::schema()
            .map(|(name, _)| {
                let media = MediaType {
                    schema: Some(ReferenceOr::Reference {
                        _ref: format!("#/components/schemas/{name}"),
                    }),
                    ..Default::default()
                };
                BTreeMap::from([("application/json".to_string(), media)])
            })
            .unwrap_or_default();
        let description = match T::schema() {
            Some((name, _)) => format!("Successful response ({name} object)"),
            None => "Successful response (no body)".to_string(),
        };
        let response = Response {
            description,
            content,
            ..Default::default()
        };
        Some(Responses {
            responses: BTreeMap::from([(STATUS.to_string(), ReferenceOr::Object(response))]),
            ..Default::default()
        })
    }
}

/// Info, tags and the document-wide `security: [{accessToken: []}]` (the spec's top-level
/// requirement; operations also carry it through `Caller`).
pub fn spec() -> Spec {
    Spec {
        info: Info {
            title: "anchorage".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: Some(
                "A multi-tenant IPFS pinning service. `/v1/pins` is the IPFS Pinning Services API v1.0.0; the service endpoint for clients is `https://HOST/v1`."
                    .into(),
            ),
            ..Default::default()
        },
        tags: ["pins", "tokens", "health"]
            .into_iter()
            .map(|name| Tag { name: name.into(), ..Default::default() })
            .collect(),
        securities: vec![BTreeMap::from([(security::SECURITY_SCHEME.to_string(), security::bearer_scheme())])],
        ..Default::default()
    }
}
