//! The bearer security scheme, contributed by the `Caller` extractor: every operation
//! that authenticates gets `security: [{accessToken: []}]`.

use std::collections::BTreeMap;

use apistos::{
    reference_or::ReferenceOr,
    security::{Http, SecurityScheme, SecurityType},
    ApiComponent, Schema,
};

use crate::api::authn::{Caller, Principal};

/// The scheme's name, as the spec names it.
pub const SECURITY_SCHEME: &str = "accessToken";

/// The spec's `securitySchemes.accessToken`.
pub fn bearer_scheme() -> SecurityScheme {
    SecurityScheme {
        _type: SecurityType::Http(Http {
            scheme: "bearer".into(),
            bearer_format: None,
        }),
        description: Some(
            "An API token minted by anchorage: `Authorization: Bearer <access-token>`".into(),
        ),
        extensions: Default::default(),
    }
}

impl ApiComponent for Caller {
    fn child_schemas() -> Vec<(String, ReferenceOr<Schema>)> {
        vec![]
    }
    fn schema() -> Option<(String, ReferenceOr<Schema>)> {
        None
    }
    fn securities() -> BTreeMap<String, SecurityScheme> {
        BTreeMap::from([(SECURITY_SCHEME.to_string(), bearer_scheme())])
    }
    fn security_requirement_name() -> Option<String> {
        Some(SECURITY_SCHEME.to_string())
    }
}

impl ApiComponent for Principal {
    fn child_schemas() -> Vec<(String, ReferenceOr<Schema>)> {
        vec![]
    }
    fn schema() -> Option<(String, ReferenceOr<Schema>)> {
        None
    }
    fn securities() -> BTreeMap<String, SecurityScheme> {
        Caller::securities()
    }
    fn security_requirement_name() -> Option<String> {
        Caller::security_requirement_name()
    }
}
