//! kubeless compatibility: its `kubeless.io/v1beta1` objects (`Function`,
//! `HTTPTrigger`, `CronJobTrigger`, `KafkaTrigger`) converted into
//! wasmless ones, and a function's source packed as kubeless's CLI took it
//! (one file, a zip or tar archive, a dependency file). `up` reads
//! kubeless YAML through this; on a cluster, `wasmless convert` prints the
//! wasmless objects for `kubectl apply`.
//!
//! Nothing accepted is dropped silently: what has no meaning here comes
//! back as a note naming the field.

use base64::Engine as _;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use crate::archive::{self, Archive};
use crate::crd::{API_VERSION, ContentType};
use crate::runtimes::Catalog;

/// The name of a function's container in its pods, which a converted
/// `deployment`'s first container merges into.
const FUNCTION_CONTAINER: &str = "function";

/// The apiVersion of kubeless's objects.
pub const KUBELESS_API_VERSION: &str = "kubeless.io/v1beta1";

/// The brokers a converted KafkaTrigger names: kubeless's objects name
/// none (its Kafka controller was configured with them), so this is the
/// address kubeless's own manifests installed Kafka at.
pub const DEFAULT_KAFKA_BROKERS: &str = "kafka.kubeless:9092";

/// The labels kubeless's CLI put on every Function it deployed, which
/// kubeless scripts select on (`--function-selector
/// created-by=kubeless,function=NAME`): `function deploy` sets them too.
pub fn cli_labels(name: &str) -> [(String, String); 2] {
    [
        ("created-by".to_owned(), "kubeless".to_owned()),
        ("function".to_owned(), name.to_owned()),
    ]
}

/// Whether a manifest document is one of kubeless's objects.
pub fn is_kubeless(document: &Value) -> bool {
    document
        .get("apiVersion")
        .and_then(Value::as_str)
        .is_some_and(|v| v.starts_with("kubeless.io/"))
}

/// wasmless objects made from one kubeless object, and what of it was
/// ignored or changed.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Converted {
    /// The wasmless objects (`wasmless.io/v1alpha1`), to be read as any
    /// manifest document.
    pub documents: Vec<Value>,
    /// One line per field that was ignored or changed, naming it.
    pub notes: Vec<String>,
}

/// Converts one kubeless object. The error names the field.
pub fn convert(document: Value, catalog: &Catalog) -> Result<Converted, String> {
    let Value::Object(mut object) = document else {
        return Err("not a mapping".to_owned());
    };
    let version = object
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    if version != KUBELESS_API_VERSION {
        return Err(format!(
            "apiVersion: `{version}` is not kubeless's {KUBELESS_API_VERSION}"
        ));
    }
    let kind = object
        .get("kind")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let metadata = match object.remove("metadata") {
        Some(Value::Object(metadata)) => metadata,
        _ => return Err("metadata: missing".to_owned()),
    };
    let spec = match object.remove("spec") {
        Some(Value::Object(spec)) => spec,
        None => Map::new(),
        Some(_) => return Err("spec: not a mapping".to_owned()),
    };
    let mut out = Converted::default();
    let metadata = converted_metadata(metadata, &mut out.notes);
    let spec = match kind.as_str() {
        "Function" => function_spec(spec, &mut out.notes, catalog)?,
        "HTTPTrigger" => http_trigger_spec(spec, &mut out.notes)?,
        "CronJobTrigger" => cron_trigger_spec(spec, &mut out.notes)?,
        "KafkaTrigger" => kafka_trigger_spec(spec, &mut out.notes)?,
        other => {
            return Err(format!(
                "kind: kubeless's {other} has no counterpart here (Function, HTTPTrigger, CronJobTrigger and KafkaTrigger do)"
            ));
        }
    };
    let kind = if kind == "CronJobTrigger" {
        "CronTrigger".to_owned()
    } else {
        kind
    };
    out.documents.push(json!({
        "apiVersion": API_VERSION,
        "kind": kind,
        "metadata": metadata,
        "spec": spec,
    }));
    Ok(out)
}

/// name, namespace, labels and annotations are kept; kubeless's CLI also
/// wrote `label` (sic), taken as labels.
fn converted_metadata(mut metadata: Map<String, Value>, notes: &mut Vec<String>) -> Value {
    let mut out = Map::new();
    for key in ["name", "namespace", "labels", "annotations"] {
        if let Some(value) = metadata.remove(key) {
            out.insert(key.to_owned(), value);
        }
    }
    if let Some(Value::Object(labels)) = metadata.remove("label") {
        let merged = out
            .entry("labels")
            .or_insert_with(|| Value::Object(Map::new()));
        if let Value::Object(merged) = merged {
            for (k, v) in labels {
                merged.entry(k).or_insert(v);
            }
        }
    }
    for key in metadata.keys() {
        if ![
            "uid",
            "resourceVersion",
            "generation",
            "creationTimestamp",
            "selfLink",
            "managedFields",
        ]
        .contains(&key.as_str())
        {
            notes.push(format!("metadata.{key}: ignored"));
        }
    }
    Value::Object(out)
}

fn take_string(spec: &mut Map<String, Value>, key: &str) -> Result<Option<String>, String> {
    match spec.remove(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(Value::Number(n)) => Ok(Some(n.to_string())),
        Some(Value::Bool(b)) => Ok(Some(b.to_string())),
        Some(_) => Err(format!("spec.{key}: not a string")),
    }
}

fn rest_ignored(spec: Map<String, Value>, notes: &mut Vec<String>) {
    for key in spec.keys() {
        notes.push(format!("spec.{key}: not a kubeless field; ignored"));
    }
}

fn function_spec(
    mut spec: Map<String, Value>,
    notes: &mut Vec<String>,
    catalog: &Catalog,
) -> Result<Value, String> {
    let mut out = Map::new();
    let runtime = take_string(&mut spec, "runtime")?
        .ok_or_else(|| "spec.runtime: missing (such as python3.9 or nodejs14)".to_owned())?;
    let handler = take_string(&mut spec, "handler")?;
    let function = take_string(&mut spec, "function")?.unwrap_or_default();
    let content_type = take_string(&mut spec, "function-content-type")?
        .or(take_string(&mut spec, "functionContentType")?)
        .unwrap_or_else(|| "text".to_owned());
    let checksum = take_string(&mut spec, "checksum")?.filter(|c| !c.trim().is_empty());
    let deps = take_string(&mut spec, "deps")?.filter(|d| !d.trim().is_empty());
    out.insert("runtime".into(), json!(runtime));
    if let Some(handler) = &handler {
        out.insert("handler".into(), json!(handler));
    }
    // `+deps`: the dependency file is in the archive, where the host looks
    // for it anyway.
    let bare = content_type.strip_suffix("+deps").unwrap_or(&content_type);
    let (encoding, packing) = bare
        .split_once('+')
        .map_or((bare, None), |(e, p)| (e, Some(p)));
    let checked = |bytes: &[u8]| -> Result<(), String> {
        if let Some(expected) = &checksum {
            let actual = format!("sha256:{}", hex::encode(Sha256::digest(bytes)));
            if !expected.eq_ignore_ascii_case(&actual) {
                return Err(format!(
                    "spec.checksum: the source's is {actual}, not {expected}"
                ));
            }
        }
        Ok(())
    };
    match (encoding, packing) {
        ("url", packing) => {
            // Fetched by the host, which unpacks a zip or tar archive by
            // what the bytes are.
            if !matches!(packing, None | Some("zip" | "compressedtar")) {
                return Err(format!(
                    "spec.function-content-type: `{content_type}` is not one of text, base64, url, base64+zip, url+zip, base64+compressedtar, url+compressedtar (each with +deps)"
                ));
            }
            out.insert("function".into(), json!(function));
            out.insert("functionContentType".into(), json!("url"));
            match &checksum {
                Some(checksum) => {
                    out.insert("checksum".into(), json!(checksum));
                }
                None => {
                    return Err("spec.checksum: required with a url source (sha256:<hex> of what the URL serves)".to_owned());
                }
            }
            if deps.is_some() {
                notes.push("spec.deps: not added to a url source; give the source inline (base64+zip) with its dependency file, or put the file in the archive".to_owned());
            }
        }
        ("text" | "base64", packing) => {
            let bytes = if encoding == "text" {
                function.clone().into_bytes()
            } else {
                base64::engine::general_purpose::STANDARD
                    .decode(function.trim())
                    .map_err(|e| format!("spec.function: not base64: {e}"))?
            };
            checked(&bytes)?;
            let is_archive = match packing {
                None => false,
                Some("zip") | Some("compressedtar") => true,
                Some(_) => {
                    return Err(format!(
                        "spec.function-content-type: `{content_type}` is not one of text, base64, url, base64+zip, url+zip, base64+compressedtar, url+compressedtar (each with +deps)"
                    ));
                }
            };
            if is_archive && Archive::of(&bytes).is_none() {
                return Err(format!(
                    "spec.function: `{content_type}` says an archive, but it is not a zip or tar archive"
                ));
            }
            let (source, content) = source_spec(
                &runtime,
                handler.as_deref(),
                None,
                bytes,
                deps.as_deref().map(str::as_bytes),
                catalog,
            )?;
            if packing == Some("compressedtar") {
                notes.push(
                    "spec.function: the tar archive is sent as a zip (base64+zip)".to_owned(),
                );
            }
            out.insert("function".into(), json!(source));
            if content != ContentType::Text {
                out.insert(
                    "functionContentType".into(),
                    serde_json::to_value(content).expect("a content type serializes"),
                );
            }
            if checksum.is_some() && (content != ContentType::Text || deps.is_some()) {
                notes
                    .push("spec.checksum: checked here; the packed source carries none".to_owned());
            } else if let Some(checksum) = &checksum {
                out.insert("checksum".into(), json!(checksum));
            }
        }
        _ => {
            return Err(format!(
                "spec.function-content-type: `{content_type}` is not one of text, base64, url, base64+zip, url+zip, base64+compressedtar, url+compressedtar (each with +deps)"
            ));
        }
    }
    if let Some(timeout) = take_string(&mut spec, "timeout")?.filter(|t| !t.is_empty()) {
        out.insert("timeout".into(), json!(timeout));
    }
    if let Some(deployment) = spec.remove("deployment").filter(|d| !d.is_null()) {
        deployment_fields(deployment, &mut out, notes)?;
    }
    if let Some(service) = spec.remove("service").filter(|s| !s.is_null()) {
        // kubeless's is a ServiceSpec; ours is a partial Service.
        let mut service = match service {
            Value::Object(s) if s.contains_key("spec") || s.contains_key("metadata") => {
                Value::Object(s)
            }
            other => json!({ "spec": other }),
        };
        // The operator's selector reaches the pods that serve the function
        // (a pool's among them), and its Service listens on 8080.
        if let Some(spec) = service.get_mut("spec").and_then(Value::as_object_mut) {
            for (key, why) in [
                (
                    "selector",
                    "the operator selects the pods that serve the function",
                ),
                (
                    "ports",
                    "the Service listens on 8080 (spec.port sets the pods' port)",
                ),
            ] {
                if spec.remove(key).is_some() {
                    notes.push(format!("spec.service.{key}: not taken: {why}"));
                }
            }
        }
        if service
            .get("spec")
            .is_some_and(|s| s.as_object().is_some_and(|s| !s.is_empty()))
        {
            out.insert("service".into(), service);
        }
    }
    if let Some(hpa) = spec
        .remove("horizontalPodAutoscaler")
        .filter(|h| !h.is_null())
        && let Some(autoscaling) = autoscaling(&hpa, notes)
    {
        out.insert("autoscaling".into(), autoscaling);
    }
    rest_ignored(spec, notes);
    Ok(Value::Object(out))
}

/// kubeless put env and resources in the Deployment's first container:
/// they become `spec.env` and `spec.resources`, which the wasm path reads;
/// the rest of the Deployment is merged into the pods' as before.
fn deployment_fields(
    deployment: Value,
    out: &mut Map<String, Value>,
    notes: &mut Vec<String>,
) -> Result<(), String> {
    let Value::Object(mut deployment) = deployment else {
        return Err("spec.deployment: not a mapping".to_owned());
    };
    deployment.remove("apiVersion");
    deployment.remove("kind");
    deployment.remove("status");
    let containers = deployment
        .get_mut("spec")
        .and_then(|s| s.get_mut("template"))
        .and_then(|t| t.get_mut("spec"))
        .and_then(|s| s.get_mut("containers"))
        .and_then(Value::as_array_mut);
    if let Some(containers) = containers {
        if let Some(Value::Object(first)) = containers.first_mut() {
            if let Some(Value::Array(env)) = first.remove("env") {
                let mut plain = Vec::new();
                for var in env {
                    match (var.get("name"), var.get("value"), var.get("valueFrom")) {
                        (Some(name), value, None) => plain.push(json!({
                            "name": name,
                            "value": value.cloned().unwrap_or(json!("")),
                        })),
                        (name, _, _) => notes.push(format!(
                            "spec.deployment: env `{}` with valueFrom is not taken (a wasm function sees plain values only; use spec.secrets for Secrets)",
                            name.and_then(Value::as_str).unwrap_or("?")
                        )),
                    }
                }
                if !plain.is_empty() {
                    out.insert("env".into(), Value::Array(plain));
                }
            }
            if let Some(resources) = first.remove("resources") {
                if let Some(memory) = resources
                    .get("limits")
                    .and_then(|l| l.get("memory"))
                    .and_then(Value::as_str)
                {
                    out.insert("memory".into(), json!(memory));
                }
                out.insert("resources".into(), resources);
            }
            first.remove("name");
            if first.is_empty() {
                containers.remove(0);
            } else {
                // What is left (volume mounts, probes) is the function's
                // container's, merged by that name.
                first.insert("name".into(), json!(FUNCTION_CONTAINER));
            }
        }
        if containers.is_empty()
            && let Some(spec) = deployment
                .get_mut("spec")
                .and_then(|s| s.get_mut("template"))
                .and_then(|t| t.get_mut("spec"))
                .and_then(Value::as_object_mut)
        {
            spec.remove("containers");
        }
    }
    prune_empty(&mut Value::Object(deployment.clone()));
    let mut deployment = Value::Object(deployment);
    prune_empty(&mut deployment);
    if deployment.as_object().is_some_and(|d| !d.is_empty()) {
        out.insert("deployment".into(), deployment);
    }
    Ok(())
}

/// Removes empty mappings, recursively.
fn prune_empty(value: &mut Value) {
    if let Value::Object(map) = value {
        for child in map.values_mut() {
            prune_empty(child);
        }
        map.retain(|_, v| !matches!(v, Value::Object(m) if m.is_empty()));
    }
}

/// kubeless's HorizontalPodAutoscaler: replicas and a CPU target are
/// taken; other metrics (its `qps`) are noted.
fn autoscaling(hpa: &Value, notes: &mut Vec<String>) -> Option<Value> {
    let spec = hpa.get("spec")?;
    let max = spec.get("maxReplicas")?.as_i64()?;
    let mut out = json!({ "maxReplicas": max });
    if let Some(min) = spec.get("minReplicas").and_then(Value::as_i64) {
        out["minReplicas"] = json!(min);
    }
    for metric in spec
        .get("metrics")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let resource = metric.get("resource");
        let cpu = resource.and_then(|r| r.get("name")).and_then(Value::as_str) == Some("cpu");
        let target = resource.and_then(|r| {
            r.get("targetAverageUtilization")
                .or_else(|| r.get("target").and_then(|t| t.get("averageUtilization")))
                .and_then(Value::as_i64)
        });
        match (cpu, target) {
            (true, Some(target)) => out["targetCpuUtilization"] = json!(target),
            _ => notes.push(format!(
                "spec.horizontalPodAutoscaler: the metric {} is not taken; autoscaling is on CPU",
                serde_json::to_string(metric).unwrap_or_default()
            )),
        }
    }
    Some(out)
}

fn http_trigger_spec(
    mut spec: Map<String, Value>,
    notes: &mut Vec<String>,
) -> Result<Value, String> {
    let mut out = Map::new();
    let function = take_string(&mut spec, "function-name")?
        .ok_or_else(|| "spec.function-name: missing".to_owned())?;
    out.insert("function".into(), json!(function));
    if let Some(host) = take_string(&mut spec, "host-name")?.filter(|h| !h.is_empty()) {
        out.insert("host".into(), json!(host));
    }
    if let Some(path) = take_string(&mut spec, "path")?.filter(|p| !p.is_empty()) {
        let path = if path.starts_with('/') {
            path
        } else {
            format!("/{path}")
        };
        out.insert("path".into(), json!(path));
    }
    if let Some(secret) = take_string(&mut spec, "tls-secret")?.filter(|s| !s.is_empty()) {
        out.insert("tlsSecret".into(), json!(secret));
    }
    if let Some(secret) = take_string(&mut spec, "basic-auth-secret")?.filter(|s| !s.is_empty()) {
        out.insert("basicAuthSecret".into(), json!(secret));
    }
    if let Some(gateway) = take_string(&mut spec, "gateway")?.filter(|g| !g.is_empty()) {
        // kubeless named its ingress controller; that is the Ingress's
        // class here.
        out.insert("ingressClassName".into(), json!(gateway));
    }
    if take_string(&mut spec, "cors-enable")?.as_deref() == Some("true") {
        out.insert("cors".into(), json!({}));
    }
    if take_string(&mut spec, "tls")?.as_deref() == Some("true") {
        notes.push("spec.tls: kube-lego's ACME annotation is not set; give tls-secret (or use cert-manager's annotations on the Ingress)".to_owned());
    }
    rest_ignored(spec, notes);
    Ok(Value::Object(out))
}

fn cron_trigger_spec(
    mut spec: Map<String, Value>,
    notes: &mut Vec<String>,
) -> Result<Value, String> {
    let mut out = Map::new();
    let function = take_string(&mut spec, "function-name")?
        .ok_or_else(|| "spec.function-name: missing".to_owned())?;
    let schedule =
        take_string(&mut spec, "schedule")?.ok_or_else(|| "spec.schedule: missing".to_owned())?;
    out.insert("function".into(), json!(function));
    out.insert("schedule".into(), json!(schedule));
    if let Some(payload) = spec.remove("payload").filter(|p| !p.is_null()) {
        out.insert("payload".into(), payload);
    }
    rest_ignored(spec, notes);
    Ok(Value::Object(out))
}

fn kafka_trigger_spec(
    mut spec: Map<String, Value>,
    notes: &mut Vec<String>,
) -> Result<Value, String> {
    let mut out = Map::new();
    let topic = take_string(&mut spec, "topic")?.ok_or_else(|| "spec.topic: missing".to_owned())?;
    let selector = spec
        .remove("functionSelector")
        .ok_or_else(|| "spec.functionSelector: missing".to_owned())?;
    if selector.get("matchExpressions").is_some() {
        return Err("spec.functionSelector.matchExpressions: only matchLabels is taken".to_owned());
    }
    out.insert("brokers".into(), json!(DEFAULT_KAFKA_BROKERS));
    out.insert("topic".into(), json!(topic));
    out.insert(
        "functionSelector".into(),
        json!({ "matchLabels": selector.get("matchLabels").cloned().unwrap_or(json!({})) }),
    );
    notes.push(format!(
        "spec.brokers: kubeless's KafkaTrigger names none; set to {DEFAULT_KAFKA_BROKERS}, where kubeless installed Kafka (edit it to yours)"
    ));
    rest_ignored(spec, notes);
    Ok(Value::Object(out))
}

/// A function's source as `spec.function` and its content type: text as
/// it is, binary as base64, an archive (zip, or tar compressed or not) as
/// a base64 zip, and with a dependency file (`requirements.txt`,
/// `package.json`: the runtime's) a zip of the source and that file.
/// `file_name` is the source file's name, when it came from one.
pub fn source_spec(
    runtime: &str,
    handler: Option<&str>,
    file_name: Option<&str>,
    bytes: Vec<u8>,
    dependencies: Option<&[u8]>,
    catalog: &Catalog,
) -> Result<(String, ContentType), String> {
    let encode = |bytes: &[u8]| base64::engine::general_purpose::STANDARD.encode(bytes);
    let archived = Archive::of(&bytes).is_some();
    let Some(dependencies) = dependencies else {
        if archived {
            let zip = archive::to_zip(&bytes).map_err(|e| format!("spec.function: {e}"))?;
            return Ok((encode(&zip), ContentType::Base64Zip));
        }
        return Ok(match String::from_utf8(bytes) {
            Ok(text) if !text.contains('\0') => (text, ContentType::Text),
            Ok(text) => (encode(text.as_bytes()), ContentType::Base64),
            Err(err) => (encode(err.as_bytes()), ContentType::Base64),
        });
    };
    let entry = catalog
        .find(runtime)
        .ok_or_else(|| format!("spec.runtime: `{runtime}` is not in the runtime catalog"))?;
    let deps_file = entry
        .install
        .as_ref()
        .map(|i| i.file.clone())
        .ok_or_else(|| format!("dependencies: the {} runtime installs none", entry.id))?;
    let mut files = if archived {
        let zip = archive::to_zip(&bytes).map_err(|e| format!("spec.function: {e}"))?;
        archive::zip_entries(&zip).map_err(|e| format!("spec.function: {e}"))?
    } else {
        let name = match (file_name, handler) {
            (Some(name), _) => name.to_owned(),
            (None, Some(handler)) => {
                let (module, _) = crate::runtimes::split_handler(handler)
                    .map_err(|e| format!("spec.handler: {e}"))?;
                match &entry.extension {
                    Some(extension) => format!("{module}.{}", extension.trim_start_matches('.')),
                    None => module.to_owned(),
                }
            }
            (None, None) => {
                return Err("spec.handler: required with dependencies (file.function)".to_owned());
            }
        };
        vec![(name, bytes)]
    };
    files.retain(|(name, _)| *name != deps_file);
    files.push((deps_file, dependencies.to_vec()));
    let zip = archive::zip_files(&files).map_err(|e| format!("spec.function: {e}"))?;
    Ok((encode(&zip), ContentType::Base64Zip))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn catalog() -> Catalog {
        Catalog::built_in()
    }

    fn yaml(text: &str) -> Value {
        serde_saphyr::from_str(text).expect("test YAML")
    }

    #[test]
    fn a_kubeless_function_with_deps_and_a_deployment_becomes_a_wasmless_function() {
        let converted = convert(
            yaml(
                r#"
apiVersion: kubeless.io/v1beta1
kind: Function
metadata:
  name: get-python
  namespace: default
  label: {created-by: kubeless, function: get-python}
spec:
  runtime: python3.9
  handler: helloget.foo
  timeout: "180"
  deps: "requests==2.31.0"
  function-content-type: text
  function: |
    def foo(event, context):
        return "hello world"
  deployment:
    spec:
      template:
        spec:
          containers:
          - env:
            - {name: FOO, value: bar}
            resources:
              limits: {memory: 64Mi}
  horizontalPodAutoscaler:
    spec:
      minReplicas: 1
      maxReplicas: 3
      metrics:
      - type: Resource
        resource: {name: cpu, targetAverageUtilization: 70}
"#,
            ),
            &catalog(),
        )
        .expect("converts");
        let [function] = converted.documents.as_slice() else {
            panic!("one document: {converted:?}");
        };
        assert_eq!(function["apiVersion"], API_VERSION);
        assert_eq!(function["metadata"]["labels"]["function"], "get-python");
        let spec = &function["spec"];
        assert_eq!(spec["functionContentType"], "base64+zip");
        assert_eq!(spec["env"], json!([{ "name": "FOO", "value": "bar" }]));
        assert_eq!(spec["memory"], "64Mi");
        assert_eq!(spec["autoscaling"]["targetCpuUtilization"], 70);
        assert!(spec.get("deployment").is_none(), "{spec}");
        let zip = base64::engine::general_purpose::STANDARD
            .decode(spec["function"].as_str().expect("a string"))
            .expect("base64");
        let mut files = archive::zip_entries(&zip).expect("a zip");
        files.sort();
        assert_eq!(files[0].0, "helloget.py");
        assert_eq!(
            files[1],
            ("requirements.txt".to_owned(), b"requests==2.31.0".to_vec())
        );
        let function: crate::crd::Function =
            serde_json::from_value(function.clone()).expect("a wasmless Function");
        function.validate().expect("valid");
    }

    #[test]
    fn triggers_convert_and_unknown_kinds_are_refused_by_name() {
        let cron = convert(
            yaml("apiVersion: kubeless.io/v1beta1\nkind: CronJobTrigger\nmetadata: {name: t}\nspec: {function-name: f, schedule: '*/1 * * * *'}\n"),
            &catalog(),
        )
        .expect("converts");
        assert_eq!(cron.documents[0]["kind"], "CronTrigger");
        assert_eq!(cron.documents[0]["spec"]["function"], "f");
        let kafka = convert(
            yaml("apiVersion: kubeless.io/v1beta1\nkind: KafkaTrigger\nmetadata: {name: k}\nspec: {topic: t, functionSelector: {matchLabels: {function: f}}}\n"),
            &catalog(),
        )
        .expect("converts");
        assert_eq!(kafka.documents[0]["spec"]["brokers"], DEFAULT_KAFKA_BROKERS);
        assert!(kafka.notes[0].contains("spec.brokers"));
        let http = convert(
            yaml("apiVersion: kubeless.io/v1beta1\nkind: HTTPTrigger\nmetadata: {name: h}\nspec: {function-name: f, path: echo, gateway: nginx, cors-enable: true}\n"),
            &catalog(),
        )
        .expect("converts");
        assert_eq!(http.documents[0]["spec"]["path"], "/echo");
        assert_eq!(http.documents[0]["spec"]["ingressClassName"], "nginx");
        let nats = convert(
            yaml("apiVersion: kubeless.io/v1beta1\nkind: NATSTrigger\nmetadata: {name: n}\nspec: {}\n"),
            &catalog(),
        )
        .expect_err("refused");
        assert!(nats.contains("NATSTrigger"), "{nats}");
    }

    #[test]
    fn a_wrong_checksum_is_refused_and_a_url_needs_one() {
        let err = convert(
            yaml("apiVersion: kubeless.io/v1beta1\nkind: Function\nmetadata: {name: f}\nspec: {runtime: python3.9, handler: a.b, function: 'x', checksum: 'sha256:00'}\n"),
            &catalog(),
        )
        .expect_err("refused");
        assert!(err.starts_with("spec.checksum"), "{err}");
        let err = convert(
            yaml("apiVersion: kubeless.io/v1beta1\nkind: Function\nmetadata: {name: f}\nspec: {runtime: python3.9, handler: a.b, function: 'http://x/a.zip', function-content-type: url+zip}\n"),
            &catalog(),
        )
        .expect_err("refused");
        assert!(err.starts_with("spec.checksum"), "{err}");
    }
}
