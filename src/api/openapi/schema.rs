//! Documentation types mirroring the spec's `components.schemas`. They derive
//! `JsonSchema` (limits through `#[schemars(...)]`) and `ApiComponent`, and exist only
//! for the OpenAPI document: the handlers answer with the domain's own types.
//!
//! Rules that keep the output equal to the spec (apistos always uses schemars'
//! `SchemaSettings::openapi3()`):
//! * no `Option<T>` in schema fields: openapi3 settings add `nullable: true`. Use
//!   `#[serde(default)]` (→ not required) with a non-Option type, or
//!   `#[schemars(with = "String")]` on an `Option<String>`.
//! * no doc comment on a field whose type is a named schema: schemars would wrap the
//!   `$ref` in `allOf` to attach the description. Document the type instead.
//! * `BTreeSet` gives `uniqueItems: true`; `length(min, max)` gives minItems/maxItems on
//!   arrays and minLength/maxLength on strings; `range(min, max)` gives minimum/maximum.
//! * no attribute for `maxProperties` or for a type-level `default`: implement
//!   `JsonSchema` by hand ([`PinMeta`], [`StatusInfo`], [`TextMatchingStrategy`]).

use std::collections::{BTreeMap, BTreeSet};

use apistos::ApiComponent;
use chrono::{DateTime, Utc};
use schemars::gen::SchemaGenerator;
use schemars::schema::Schema;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::json;

/// Response used for listing pin objects matching request
#[derive(Serialize, Deserialize, JsonSchema, ApiComponent)]
pub struct PinResults {
    /// The total number of pin objects that exist for passed query filters
    #[schemars(range(min = 0))]
    pub count: i32,
    /// An array of PinStatus results
    #[schemars(with = "BTreeSet<PinStatus>", length(min = 0, max = 1000))]
    pub results: Vec<PinStatus>,
}

/// Pin object with status
#[derive(Serialize, Deserialize, JsonSchema, ApiComponent)]
pub struct PinStatus {
    /// Globally unique identifier of the pin request; can be used to check the status of ongoing pinning, or pin removal
    pub requestid: String,
    pub status: Status,
    /// Immutable timestamp indicating when a pin request entered a pinning service; can be used for filtering results and pagination
    pub created: DateTime<Utc>,
    pub pin: Pin,
    pub delegates: Delegates,
    #[serde(default, skip_serializing_if = "StatusInfo::is_empty")]
    pub info: StatusInfo,
}

/// Pin object
#[derive(Serialize, Deserialize, JsonSchema, ApiComponent)]
pub struct Pin {
    /// Content Identifier (CID) to be pinned recursively
    pub cid: String,
    /// Optional name for pinned data; can be used for lookups later
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "String", length(max = 255))]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Origins::is_empty")]
    pub origins: Origins,
    #[serde(default, skip_serializing_if = "PinMeta::is_empty")]
    pub meta: PinMeta,
}

/// Status a pin object can have at a pinning service
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Queued,
    Pinning,
    Pinned,
    Failed,
}

/// List of multiaddrs designated by pinning service that will receive the pin data; see Provider Hints in the docs
#[derive(Serialize, Deserialize, JsonSchema, Default)]
pub struct Delegates(#[schemars(length(min = 1, max = 20))] pub BTreeSet<String>);

/// Optional list of multiaddrs known to provide the data; see Provider Hints in the docs
#[derive(Serialize, Deserialize, JsonSchema, Default)]
pub struct Origins(#[schemars(length(min = 0, max = 20))] pub BTreeSet<String>);

impl Origins {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// `{type: object, additionalProperties: {type: string}, maxProperties: 1000}`.
/// (The spec file nests min/maxProperties *inside* `additionalProperties`, where they
/// have no effect; we put them on the object, which is what the spec means.)
fn string_map_schema(description: &str) -> Schema {
    serde_json::from_value(json!({
        "description": description,
        "type": "object",
        "additionalProperties": { "type": "string" },
        "minProperties": 0,
        "maxProperties": 1000,
    }))
    .unwrap_or_else(|_| apistos::Schema::from(true))
}

macro_rules! string_map {
    ($name:ident, $description:literal) => {
        #[doc = $description]
        #[derive(Serialize, Deserialize, Default, Clone)]
        #[serde(transparent)]
        pub struct $name(pub BTreeMap<String, String>);

        impl $name {
            pub fn is_empty(&self) -> bool {
                self.0.is_empty()
            }
        }

        impl JsonSchema for $name {
            fn schema_name() -> String {
                stringify!($name).into()
            }
            fn json_schema(_: &mut SchemaGenerator) -> Schema {
                string_map_schema($description)
            }
        }
    };
}

string_map!(PinMeta, "Optional metadata for pin object");
string_map!(StatusInfo, "Optional info for PinStatus response");

/// Alternative text matching strategy (hand-written schema: it carries `default: exact`).
#[derive(Serialize, Deserialize, Clone, Copy, Default, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum TextMatchingStrategy {
    #[default]
    Exact,
    Iexact,
    Partial,
    Ipartial,
}

impl JsonSchema for TextMatchingStrategy {
    fn schema_name() -> String {
        "TextMatchingStrategy".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        serde_json::from_value(json!({
            "description": "Alternative text matching strategy",
            "type": "string",
            "default": "exact",
            "enum": ["exact", "iexact", "partial", "ipartial"],
        }))
        .unwrap_or_else(|_| apistos::Schema::from(true))
    }
}

/// Response for a failed request
#[derive(Serialize, Deserialize, JsonSchema, ApiComponent)]
pub struct Failure {
    pub error: FailureError,
}

#[derive(Serialize, Deserialize, JsonSchema)]
pub struct FailureError {
    /// Mandatory string identifying the type of error
    pub reason: String,
    /// Optional, longer description of the error; may include UUID of transaction for support, links to documentation etc
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "String")]
    pub details: Option<String>,
}
