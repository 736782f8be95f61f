//! The generated CRD schemas accept every wasmless manifest in the
//! repository and reject invalid ones, as the API server (with kubectl's
//! strict field validation) would.

use std::path::{Path, PathBuf};

use serde_json::Value;

/// The `openAPIV3Schema` of each kind.
fn schemas() -> Vec<(String, Value)> {
    wasmless::crd::custom_resource_definitions()
        .into_iter()
        .map(|crd| {
            let schema = crd.spec.versions[0]
                .schema
                .as_ref()
                .and_then(|s| s.open_api_v3_schema.as_ref())
                .expect("every CRD has a schema");
            (
                crd.spec.names.kind.clone(),
                serde_json::to_value(schema).expect("schema serializes"),
            )
        })
        .collect()
}

/// Every problem the API server would report for this object.
fn problems(schemas: &[(String, Value)], doc: &Value) -> Vec<String> {
    let kind = doc["kind"].as_str().unwrap_or_default();
    let Some((_, schema)) = schemas.iter().find(|(k, _)| k == kind) else {
        return vec![format!("no CRD for kind `{kind}`")];
    };
    let mut found = Vec::new();
    // The API server validates the object without the fields it owns.
    let mut body = doc.clone();
    if let Some(object) = body.as_object_mut() {
        for owned in ["apiVersion", "kind", "metadata"] {
            object.remove(owned);
        }
    }
    let validator = jsonschema::draft4::new(schema).expect("the schema is valid JSON schema");
    for error in validator.iter_errors(&body) {
        found.push(format!("{}: {error}", error.instance_path()));
    }
    unknown_fields(schema, &body, "", &mut found);
    found
}

/// What plain JSON schema does not check: fields the schema does not know
/// (kubectl's `--validate=strict`) and `x-kubernetes-int-or-string`.
fn unknown_fields(schema: &Value, value: &Value, path: &str, found: &mut Vec<String>) {
    if schema["x-kubernetes-int-or-string"] == Value::Bool(true)
        && !(value.is_string() || value.is_i64() || value.is_u64())
    {
        found.push(format!("{path}: must be an integer or a string"));
    }
    if schema["x-kubernetes-preserve-unknown-fields"] == Value::Bool(true) {
        return;
    }
    match value {
        Value::Object(map) => {
            let properties = schema["properties"].as_object();
            let additional = &schema["additionalProperties"];
            for (key, child) in map {
                let child_path = format!("{path}.{key}");
                match properties.and_then(|p| p.get(key)) {
                    Some(child_schema) => unknown_fields(child_schema, child, &child_path, found),
                    None if additional.is_object() => {
                        unknown_fields(additional, child, &child_path, found)
                    }
                    None => found.push(format!("{child_path}: unknown field")),
                }
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                unknown_fields(&schema["items"], item, &format!("{path}[{i}]"), found);
            }
        }
        _ => {}
    }
}

fn yaml_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            yaml_files(&path, out);
        } else if matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("yaml" | "yml")
        ) {
            out.push(path);
        }
    }
}

fn documents(text: &str) -> Vec<Value> {
    serde_saphyr::from_multiple::<Value>(text).expect("valid YAML")
}

#[test]
fn every_manifest_in_the_repository_fits_its_crd() {
    let schemas = schemas();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    for dir in ["examples", "manifests", "tests"] {
        yaml_files(&root.join(dir), &mut files);
    }
    let mut checked = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).expect("readable");
        for doc in documents(&text) {
            if doc["apiVersion"] != "wasmless.io/v1alpha1" {
                continue;
            }
            let found = problems(&schemas, &doc);
            assert!(found.is_empty(), "{}: {found:?}", file.display());
            checked.push(format!("{} {}", file.display(), doc["kind"]));
        }
    }
    for kind in ["Function", "HTTPTrigger", "CronTrigger"] {
        assert!(
            checked.iter().any(|c| c.contains(kind)),
            "no {kind} example was checked: {checked:?}"
        );
    }
}

#[test]
fn invalid_manifests_are_rejected_by_the_schema() {
    let schemas = schemas();
    let cases = [
        (
            "kind: Function\nspec: {function: x, timeout: [1]}",
            ".spec.timeout: must be an integer",
        ),
        (
            "kind: Function\nspec: {function: x, functionContentType: zip}",
            "/spec/functionContentType",
        ),
        (
            "kind: Function\nspec: {function: x, memry: 1Mi}",
            ".spec.memry: unknown field",
        ),
        (
            "kind: Function\nspec: {function: x, replicas: two}",
            "/spec/replicas",
        ),
        (
            "kind: Function\nspec: {function: x, autoscaling: {minReplicas: 1}}",
            "maxReplicas",
        ),
        (
            "kind: Function\nspec: {function: x, env: [{value: v}]}",
            "\"name\" is a required property",
        ),
        (
            "kind: CronTrigger\nspec: {function: f}",
            "\"schedule\" is a required property",
        ),
        (
            "kind: CronTrigger\nspec: {function: f, schedule: '@daily', catchUp: sometimes}",
            "/spec/catchUp",
        ),
        (
            "kind: KafkaTrigger\nspec: {topic: t, function: f}",
            "\"brokers\" is a required property",
        ),
        (
            "kind: KafkaTrigger\nspec: {brokers: b, startFrom: middle}",
            "/spec/startFrom",
        ),
        (
            "kind: HTTPTrigger\nspec: {function: f, gateway: {namespace: x}}",
            "\"name\" is a required property",
        ),
        (
            "kind: HTTPTrigger\nspec: {function: f, cors: {origin: '*'}}",
            ".spec.cors.origin: unknown field",
        ),
    ];
    for (yaml, expected) in cases {
        let yaml = format!("apiVersion: wasmless.io/v1alpha1\nmetadata: {{name: a}}\n{yaml}\n");
        let doc = documents(&yaml).remove(0);
        let found = problems(&schemas, &doc);
        assert!(
            found.iter().any(|p| p.contains(expected)),
            "{yaml}\nexpected a problem containing {expected:?}, found {found:?}"
        );
    }
    let valid = documents(
        "apiVersion: wasmless.io/v1alpha1\nkind: KafkaTrigger\nmetadata: {name: a}\n\
         spec: {brokers: [a:9092, b:9092], topics: [t], functionSelector: {matchLabels: {app: x}}, \
         config: {security.protocol: ssl}}\n",
    )
    .remove(0);
    assert_eq!(problems(&schemas, &valid), Vec::<String>::new());
}
