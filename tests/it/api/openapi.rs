//! The served `/v1/openapi.json` against the Pinning Services spec file: paths, operation
//! ids, parameters (location, required, style/explode, schema limits and enums, `content`),
//! request bodies, response codes and their schemas, security, and the named schemas.
//! `$ref`s are resolved on both sides, so inline-vs-ref differences do not matter;
//! descriptions, examples and titles are not compared. An insta snapshot of the whole
//! document makes every change to the API visible in review.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{json, Value};

use crate::harness::{TestApp, TestDb};

/// A copy of the contract, kept in the repo so the suite runs from any checkout; a test
/// checks it is still identical to `../shared/spec` when that is present.
const SPEC: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/data/pinning-services-api-v1.0.0.yaml"
);
const SHARED_SPEC: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../shared/spec/pinning-services-api-v1.0.0.yaml"
);
const PREFIX: &str = "/v1";
const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

/// Schema keywords compared (anything else — description, example, title — is ignored).
const SCALAR_KEYWORDS: [&str; 14] = [
    "type",
    "format",
    "enum",
    "default",
    "minimum",
    "maximum",
    "minLength",
    "maxLength",
    "minItems",
    "maxItems",
    "uniqueItems",
    "minProperties",
    "maxProperties",
    "nullable",
];

fn spec_doc() -> Value {
    let text = std::fs::read_to_string(SPEC).expect("spec file");
    serde_yaml_ng::from_str(&text).expect("spec YAML")
}

async fn generated_doc(app: &TestApp) -> Value {
    let resp = app
        .http
        .get(app.url("/v1/openapi.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    resp.json().await.unwrap()
}

/// Replaces every `{"$ref": "#/..."}` by its (resolved) target.
fn resolve(value: &Value, root: &Value) -> Value {
    match value {
        Value::Object(map) => {
            if let Some(Value::String(r)) = map.get("$ref") {
                let target = root
                    .pointer(r.strip_prefix('#').expect("local $ref"))
                    .unwrap_or_else(|| panic!("dangling $ref {r}"));
                return resolve(target, root);
            }
            Value::Object(
                map.iter()
                    .map(|(k, v)| (k.clone(), resolve(v, root)))
                    .collect(),
            )
        }
        Value::Array(items) => Value::Array(items.iter().map(|v| resolve(v, root)).collect()),
        other => other.clone(),
    }
}

/// The spec file puts `minProperties`/`maxProperties` of PinMeta/StatusInfo inside
/// `additionalProperties` (where they constrain nothing); read them as object limits.
fn hoist_property_limits(value: &mut Value) {
    match value {
        Value::Object(map) => {
            if let Some(Value::Object(additional)) = map.get_mut("additionalProperties") {
                let moved: Vec<(String, Value)> = ["minProperties", "maxProperties"]
                    .iter()
                    .filter_map(|k| additional.remove(*k).map(|v| (k.to_string(), v)))
                    .collect();
                map.extend(moved);
            }
            map.values_mut().for_each(hoist_property_limits);
        }
        Value::Array(items) => items.iter_mut().for_each(hoist_property_limits),
        _ => {}
    }
}

/// Numbers compare by value (schemars writes `minimum: 0.0`, YAML `0`); defaults that the
/// spec leaves implicit count as given.
fn keyword(schema: &Value, key: &str) -> Option<Value> {
    let v = schema.get(key).cloned().or(match key {
        "uniqueItems" | "nullable" => Some(json!(false)),
        _ => None,
    })?;
    Some(match v {
        Value::Number(n) => json!(n.as_f64().unwrap()),
        Value::Array(items) if key == "enum" => Value::Array(items),
        other => other,
    })
}

fn compare_schema(spec: &Value, gen: &Value, at: &str, errors: &mut Vec<String>) {
    for key in SCALAR_KEYWORDS {
        let (s, g) = (keyword(spec, key), keyword(gen, key));
        if s != g {
            errors.push(format!("{at}: {key}: spec {s:?}, generated {g:?}"));
        }
    }
    let required = |v: &Value| -> BTreeSet<String> {
        v.get("required")
            .and_then(Value::as_array)
            .map(|a| a.iter().map(|s| s.as_str().unwrap().to_owned()).collect())
            .unwrap_or_default()
    };
    if required(spec) != required(gen) {
        errors.push(format!(
            "{at}: required: spec {:?}, generated {:?}",
            required(spec),
            required(gen)
        ));
    }
    for key in ["items", "additionalProperties"] {
        match (spec.get(key), gen.get(key)) {
            (None, None) => {}
            (Some(s), Some(g)) => compare_schema(s, g, &format!("{at}.{key}"), errors),
            (s, g) => errors.push(format!("{at}: {key}: spec {s:?}, generated {g:?}")),
        }
    }
    let props = |v: &Value| {
        v.get("properties")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default()
    };
    let (sp, gp) = (props(spec), props(gen));
    if sp.keys().collect::<Vec<_>>() != gp.keys().collect::<Vec<_>>() {
        errors.push(format!(
            "{at}: properties: spec {:?}, generated {:?}",
            sp.keys(),
            gp.keys()
        ));
    }
    for (name, s) in &sp {
        if let Some(g) = gp.get(name) {
            compare_schema(s, g, &format!("{at}.{name}"), errors);
        }
    }
}

/// `content` maps: same media types, same schemas.
fn compare_content(spec: Option<&Value>, gen: Option<&Value>, at: &str, errors: &mut Vec<String>) {
    let keys = |v: Option<&Value>| -> Vec<String> {
        v.and_then(Value::as_object)
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default()
    };
    if keys(spec) != keys(gen) {
        errors.push(format!(
            "{at}: content types: spec {:?}, generated {:?}",
            keys(spec),
            keys(gen)
        ));
        return;
    }
    for media in keys(spec) {
        let s = &spec.unwrap()[&media]["schema"];
        let g = &gen.unwrap()[&media]["schema"];
        compare_schema(s, g, &format!("{at}[{media}]"), errors);
    }
}

/// Path-level parameters plus the operation's, keyed by (in, name).
fn parameters(path_item: &Value, op: &Value) -> BTreeMap<(String, String), Value> {
    let mut out = BTreeMap::new();
    for list in [&path_item["parameters"], &op["parameters"]] {
        for p in list.as_array().into_iter().flatten() {
            out.insert(
                (
                    p["in"].as_str().unwrap().to_owned(),
                    p["name"].as_str().unwrap().to_owned(),
                ),
                p.clone(),
            );
        }
    }
    out
}

/// OpenAPI defaults: query/cookie → form, path/header → simple; explode iff form.
fn style_explode(p: &Value) -> (String, bool) {
    let default_style = match p["in"].as_str().unwrap() {
        "query" | "cookie" => "form",
        _ => "simple",
    };
    let style = p
        .get("style")
        .and_then(Value::as_str)
        .unwrap_or(default_style)
        .to_owned();
    let explode = p
        .get("explode")
        .and_then(Value::as_bool)
        .unwrap_or(style == "form");
    (style, explode)
}

fn compare_operation(
    spec_root: &Value,
    gen_root: &Value,
    path: &str,
    method: &str,
    errors: &mut Vec<String>,
) {
    let gen_path = format!("{PREFIX}{path}");
    let at = format!("{} {gen_path}", method.to_uppercase());
    let (s_item, g_item) = (&spec_root["paths"][path], &gen_root["paths"][&gen_path]);
    let (s_op, g_op) = (&s_item[method], &g_item[method]);
    if g_op.is_null() {
        errors.push(format!("{at}: missing from the generated document"));
        return;
    }
    if s_op["operationId"] != g_op["operationId"] {
        errors.push(format!(
            "{at}: operationId: spec {}, generated {}",
            s_op["operationId"], g_op["operationId"]
        ));
    }

    // Parameters.
    let (sp, gp) = (parameters(s_item, s_op), parameters(g_item, g_op));
    if sp.keys().collect::<Vec<_>>() != gp.keys().collect::<Vec<_>>() {
        errors.push(format!(
            "{at}: parameters: spec {:?}, generated {:?}",
            sp.keys(),
            gp.keys()
        ));
    }
    for (key, s) in &sp {
        let Some(g) = gp.get(key) else { continue };
        let pat = format!("{at} param {}", key.1);
        let req = |p: &Value| p.get("required").and_then(Value::as_bool).unwrap_or(false);
        if req(s) != req(g) {
            errors.push(format!(
                "{pat}: required: spec {}, generated {}",
                req(s),
                req(g)
            ));
        }
        if style_explode(s) != style_explode(g) {
            errors.push(format!(
                "{pat}: style/explode: spec {:?}, generated {:?}",
                style_explode(s),
                style_explode(g)
            ));
        }
        match (s.get("schema"), g.get("schema")) {
            (Some(ss), Some(gs)) => compare_schema(ss, gs, &pat, errors),
            (None, None) => {}
            (ss, gs) => errors.push(format!("{pat}: schema: spec {ss:?}, generated {gs:?}")),
        }
        compare_content(s.get("content"), g.get("content"), &pat, errors);
    }

    // Request body.
    let (s_body, g_body) = (s_op.get("requestBody"), g_op.get("requestBody"));
    match (s_body, g_body) {
        (None, None) => {}
        (Some(s), Some(g)) => {
            if s.get("required") != g.get("required") {
                errors.push(format!(
                    "{at}: requestBody.required: spec {:?}, generated {:?}",
                    s.get("required"),
                    g.get("required")
                ));
            }
            compare_content(
                s.get("content"),
                g.get("content"),
                &format!("{at} requestBody"),
                errors,
            );
        }
        (s, g) => errors.push(format!("{at}: requestBody: spec {s:?}, generated {g:?}")),
    }

    // Responses.
    let codes = |op: &Value| -> Vec<String> {
        op["responses"]
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect()
    };
    // 429 is ours, within the spec's 4XX: every rate limit answers it.
    let spec_codes = codes(s_op);
    let gen_codes: Vec<String> = codes(g_op)
        .into_iter()
        .filter(|c| !(c == "429" && spec_codes.iter().any(|s| s == "4XX")))
        .collect();
    if spec_codes != gen_codes {
        errors.push(format!(
            "{at}: response codes: spec {spec_codes:?}, generated {gen_codes:?}"
        ));
    }
    for code in codes(s_op) {
        if let Some(g) = g_op["responses"].get(&code) {
            let s = &s_op["responses"][&code];
            compare_content(
                s.get("content"),
                g.get("content"),
                &format!("{at} {code}"),
                errors,
            );
        }
    }

    // Security: the operation's own, else the document's.
    let security =
        |root: &Value, op: &Value| op.get("security").unwrap_or(&root["security"]).clone();
    if security(spec_root, s_op) != security(gen_root, g_op) {
        errors.push(format!(
            "{at}: security: spec {}, generated {}",
            security(spec_root, s_op),
            security(gen_root, g_op)
        ));
    }
}

/// Every difference between the spec and a generated document, as readable lines.
fn compare_docs(spec_raw: &Value, gen_raw: &Value) -> Vec<String> {
    let mut spec = resolve(spec_raw, spec_raw);
    hoist_property_limits(&mut spec);
    let gen = resolve(gen_raw, gen_raw);
    let mut errors = vec![];

    // Every spec path (under /v1) is generated; the rest of anchorage's API may add more.
    let spec_paths: BTreeSet<String> = spec["paths"]
        .as_object()
        .unwrap()
        .keys()
        .map(|p| format!("{PREFIX}{p}"))
        .collect();
    let gen_paths: BTreeSet<String> = gen["paths"].as_object().unwrap().keys().cloned().collect();
    if !spec_paths.is_subset(&gen_paths) {
        errors.push(format!(
            "paths: spec {spec_paths:?}, generated {gen_paths:?}"
        ));
    }
    for (path, item) in spec["paths"].as_object().unwrap() {
        let methods = |item: &Value| -> Vec<&str> {
            METHODS
                .iter()
                .copied()
                .filter(|m| item.get(*m).is_some())
                .collect()
        };
        let g_item = &gen["paths"][format!("{PREFIX}{path}")];
        if methods(item) != methods(g_item) {
            errors.push(format!(
                "{path}: methods: spec {:?}, generated {:?}",
                methods(item),
                methods(g_item)
            ));
        }
        for method in methods(item) {
            compare_operation(&spec, &gen, path, method, &mut errors);
        }
    }

    // Named schemas exist under the same names and match.
    for (name, s) in spec["components"]["schemas"].as_object().unwrap() {
        match gen["components"]["schemas"].get(name) {
            Some(g) => compare_schema(s, g, &format!("schema {name}"), &mut errors),
            None => errors.push(format!("schema {name}: missing from components")),
        }
    }

    // Security scheme.
    for key in ["type", "scheme"] {
        let (s, g) = (
            &spec["components"]["securitySchemes"]["accessToken"][key],
            &gen["components"]["securitySchemes"]["accessToken"][key],
        );
        if s != g {
            errors.push(format!(
                "securitySchemes.accessToken.{key}: spec {s}, generated {g}"
            ));
        }
    }
    errors
}

#[tokio::test]
async fn generated_document_matches_the_spec() {
    let db = TestDb::migrated().await;
    let app = TestApp::spawn(&db, "http://127.0.0.1:9").await;
    let errors = compare_docs(&spec_doc(), &generated_doc(&app).await);
    assert!(
        errors.is_empty(),
        "{} difference(s):\n{}",
        errors.len(),
        errors.join("\n")
    );
}

#[test]
fn the_vendored_spec_is_the_shared_one() {
    if let Ok(shared) = std::fs::read_to_string(SHARED_SPEC) {
        assert_eq!(
            std::fs::read_to_string(SPEC).unwrap(),
            shared,
            "tests/data copy of the spec is stale"
        );
    }
}

#[tokio::test]
async fn the_whole_document_is_snapshotted() {
    let db = TestDb::migrated().await;
    let app = TestApp::spawn(&db, "http://127.0.0.1:9").await;
    let doc = generated_doc(&app).await;
    insta::assert_json_snapshot!("openapi", doc);
}

/// The comparison is not vacuous: each mutation of the generated document is reported.
#[tokio::test]
async fn comparison_catches_each_kind_of_difference() {
    let db = TestDb::migrated().await;
    let app = TestApp::spawn(&db, "http://127.0.0.1:9").await;
    let spec = spec_doc();
    let gen = generated_doc(&app).await;
    let list_param = |d: &Value, name: &str| {
        d["paths"]["/v1/pins"]["get"]["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .position(|p| p["name"] == name)
            .unwrap()
    };
    let (cid, limit, meta) = (
        list_param(&gen, "cid"),
        list_param(&gen, "limit"),
        list_param(&gen, "meta"),
    );
    type Mutation = Box<dyn Fn(&mut Value)>;
    let cases: Vec<(&str, Mutation)> = vec![
        (
            "name: maxLength",
            Box::new(|d: &mut Value| {
                d["components"]["schemas"]["Pin"]["properties"]["name"]
                    .as_object_mut()
                    .unwrap()
                    .remove("maxLength");
            }),
        ),
        (
            "param cid: style/explode",
            Box::new(move |d: &mut Value| {
                d["paths"]["/v1/pins"]["get"]["parameters"][cid]
                    .as_object_mut()
                    .unwrap()
                    .remove("explode");
            }),
        ),
        (
            "param limit: default",
            Box::new(move |d: &mut Value| {
                d["paths"]["/v1/pins"]["get"]["parameters"][limit]["schema"]
                    .as_object_mut()
                    .unwrap()
                    .remove("default");
            }),
        ),
        (
            "param meta: content types",
            Box::new(move |d: &mut Value| {
                d["paths"]["/v1/pins"]["get"]["parameters"][meta]["content"] =
                    json!({"text/plain": {}});
            }),
        ),
        (
            "response codes",
            Box::new(|d: &mut Value| {
                let r = d["paths"]["/v1/pins/{requestid}"]["delete"]["responses"]
                    .as_object_mut()
                    .unwrap();
                let v = r.remove("202").unwrap();
                r.insert("200".into(), v);
            }),
        ),
        (
            "maxProperties",
            Box::new(|d: &mut Value| {
                d["components"]["schemas"]["PinMeta"]
                    .as_object_mut()
                    .unwrap()
                    .remove("maxProperties");
            }),
        ),
        (
            "parameters",
            Box::new(|d: &mut Value| {
                d["paths"]["/v1/pins/{requestid}"]["get"]
                    .as_object_mut()
                    .unwrap()
                    .remove("parameters");
            }),
        ),
        (
            "required",
            Box::new(|d: &mut Value| {
                d["components"]["schemas"]["PinStatus"]["required"]
                    .as_array_mut()
                    .unwrap()
                    .pop();
            }),
        ),
        (
            "security",
            Box::new(|d: &mut Value| {
                d.as_object_mut().unwrap().remove("security");
                d["paths"]["/v1/pins"]["post"]
                    .as_object_mut()
                    .unwrap()
                    .remove("security");
            }),
        ),
    ];
    for (expected, mutate) in cases {
        let mut doc = gen.clone();
        mutate(&mut doc);
        let errors = compare_docs(&spec, &doc);
        assert!(
            errors.iter().any(|e| e.contains(expected)),
            "mutation '{expected}' not reported: {errors:#?}"
        );
    }
}

/// The docs page and its assets come from the binary and point at the document.
#[tokio::test]
async fn docs_page_is_self_contained() {
    let db = TestDb::migrated().await;
    let app = TestApp::spawn(&db, "http://127.0.0.1:9").await;
    let html = app
        .http
        .get(app.url("/v1/docs"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains("swagger-ui"));
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "no external URLs"
    );
    let init = app
        .http
        .get(app.url("/v1/docs/init.js"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(init.contains("/v1/openapi.json"));
    assert!(
        init.contains("validatorUrl: null"),
        "never calls an online validator"
    );
    for asset in ["/v1/docs/swagger-ui-bundle.js", "/v1/docs/swagger-ui.css"] {
        let resp = app.http.get(app.url(asset)).send().await.unwrap();
        assert_eq!(resp.status(), 200, "{asset}");
        assert!(
            resp.bytes().await.unwrap().len() > 100_000,
            "{asset} is the real bundle"
        );
    }
}
