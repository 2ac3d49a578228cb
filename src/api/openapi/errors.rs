//! The error responses every operation documents: the spec's codes, each with the
//! `Failure` body that [`crate::error::Error`] renders.

use std::collections::BTreeMap;

use apistos::{
    paths::{MediaType, Response},
    reference_or::ReferenceOr,
    ApiErrorComponent, Schema,
};

use crate::error::Error;

/// As the spec lists them. `4XX`/`5XX` are kept: apistos filters only numeric codes, and
/// only when an operation names `error_code`, which ours never do.
/// 429 is ours (the spec's `4XX` covers it): every rate limit answers it.
const ERROR_RESPONSES: [(&str, &str); 7] = [
    ("400", "Error response (Bad request)"),
    (
        "401",
        "Error response (Unauthorized; access token is missing or invalid)",
    ),
    (
        "404",
        "Error response (The specified resource was not found)",
    ),
    ("409", "Error response (Insufficient funds)"),
    (
        "429",
        "Error response (Too many requests; retry after the Retry-After header's seconds)",
    ),
    ("4XX", "Error response (Custom service error)"),
    ("5XX", "Error response (Unexpected internal server error)"),
];

impl ApiErrorComponent for Error {
    /// Only consulted with `error_code = …`; `Failure` is registered by `Reply` instead.
    fn schemas_by_status_code() -> BTreeMap<String, (String, ReferenceOr<Schema>)> {
        BTreeMap::new()
    }

    fn error_responses() -> Vec<(String, Response)> {
        ERROR_RESPONSES
            .iter()
            .map(|(code, description)| {
                let media = MediaType {
                    schema: Some(ReferenceOr::Reference {
                        _ref: "#/components/schemas/Failure".into(),
                    }),
                    ..Default::default()
                };
                let response = Response {
                    description: (*description).into(),
                    content: BTreeMap::from([("application/json".to_string(), media)]),
                    ..Default::default()
                };
                (code.to_string(), response)
            })
            .collect()
    }
}
