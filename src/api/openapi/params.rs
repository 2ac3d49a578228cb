//! Query parameters of `GET /pins`, written as the spec writes them. The handler parses
//! `req.query_string()` itself; this type only documents, through `Doc<ListPinsParams>`.
//!
//! Why not `Doc<web::Query<SomeStruct>>` (apistos derives one parameter per field): it
//! never sets `style`/`explode` (the spec needs `form` + `explode: false` for `cid` and
//! `status`), cannot express a `content`-encoded parameter (`meta`), and schemars'
//! `Option`/`#[serde(default)]` handling adds `nullable`/`default` noise or marks optional
//! fields required. A small table is shorter than patching all of that.

use apistos::paths::{MediaType, Parameter, ParameterDefinition, ParameterIn, ParameterStyle};
use apistos::reference_or::ReferenceOr;
use apistos::{ApiComponent, Schema};
use schemars::gen::SchemaSettings;
use serde_json::{json, Value};
use std::collections::BTreeMap;

use super::schema::{PinMeta, Status, TextMatchingStrategy};

pub struct ListPinsParams;

fn schema(value: Value) -> ReferenceOr<Schema> {
    // A static schema: the OpenAPI snapshot test sees it if it ever fails to parse.
    ReferenceOr::Object(
        serde_json::from_value(value).unwrap_or_else(|_| apistos::Schema::from(true)),
    )
}

fn query(name: &str, description: &str, schema_json: Value) -> Parameter {
    Parameter {
        name: name.into(),
        _in: ParameterIn::Query,
        description: Some(description.into()),
        required: Some(false),
        definition: Some(ParameterDefinition::Schema(Box::new(schema(schema_json)))),
        ..Default::default()
    }
}

/// `?cid=Qm1,Qm2`: `style: form, explode: false`.
fn csv(parameter: Parameter) -> Parameter {
    Parameter {
        style: Some(ParameterStyle::Form),
        explode: Some(false),
        ..parameter
    }
}

/// Named schemas the parameters refer to, registered as components.
fn named<T: schemars::JsonSchema>() -> (String, ReferenceOr<Schema>) {
    let root = SchemaSettings::openapi3()
        .into_generator()
        .into_root_schema_for::<T>();
    (
        T::schema_name(),
        ReferenceOr::Object(Schema::Object(root.schema)),
    )
}

impl ApiComponent for ListPinsParams {
    fn child_schemas() -> Vec<(String, ReferenceOr<Schema>)> {
        vec![
            named::<Status>(),
            named::<TextMatchingStrategy>(),
            named::<PinMeta>(),
        ]
    }

    fn schema() -> Option<(String, ReferenceOr<Schema>)> {
        None
    }

    fn parameters() -> Vec<Parameter> {
        let meta = Parameter {
            name: "meta".into(),
            _in: ParameterIn::Query,
            description: Some("Return pin objects that match specified metadata keys passed as a string representation of a JSON object; when implementing a client library, make sure the parameter is URL-encoded to ensure safe transport".into()),
            required: Some(false),
            definition: Some(ParameterDefinition::Content(BTreeMap::from([(
                "application/json".to_string(),
                MediaType { schema: Some(schema(json!({"$ref": "#/components/schemas/PinMeta"}))), ..Default::default() },
            )]))),
            ..Default::default()
        };
        vec![
            csv(query(
                "cid",
                "Return pin objects responsible for pinning the specified CID(s); be aware that using longer hash functions introduces further constraints on the number of CIDs that will fit under the limit of 2000 characters per URL  in browser contexts",
                json!({"type": "array", "items": {"type": "string"}, "uniqueItems": true, "minItems": 1, "maxItems": 10}),
            )),
            query(
                "name",
                "Return pin objects with specified name (by default a case-sensitive, exact match)",
                json!({"type": "string", "maxLength": 255}),
            ),
            query(
                "match",
                "Customize the text matching strategy applied when the name filter is present; exact (the default) is a case-sensitive exact match, partial matches anywhere in the name, iexact and ipartial are case-insensitive versions of the exact and partial strategies",
                json!({"$ref": "#/components/schemas/TextMatchingStrategy"}),
            ),
            csv(query(
                "status",
                "Return pin objects for pins with the specified status (when missing, service should default to pinned only)",
                json!({"type": "array", "items": {"$ref": "#/components/schemas/Status"}, "uniqueItems": true, "minItems": 1}),
            )),
            query(
                "before",
                "Return results created (queued) before provided timestamp",
                json!({"type": "string", "format": "date-time"}),
            ),
            query(
                "after",
                "Return results created (queued) after provided timestamp",
                json!({"type": "string", "format": "date-time"}),
            ),
            query(
                "limit",
                "Max records to return",
                json!({"type": "integer", "format": "int32", "minimum": 1, "maximum": 1000, "default": 10}),
            ),
            meta,
        ]
    }
}
