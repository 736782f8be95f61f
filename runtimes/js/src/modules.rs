//! The runtime's globals, in Rust: a CommonJS `require` over the function's
//! files at /kubeless (relative files, `.json`, `node_modules` with
//! `package.json`'s `main`) and `console` writing to the log. They were JavaScript evaluated on every
//! event; parsing that took most of an event's time.

use std::path::Path;

use boa_engine::object::{FunctionObjectBuilder, ObjectInitializer};
use boa_engine::property::Attribute;
use boa_engine::{
    Context as Js, JsArgs, JsNativeError, JsObject, JsResult, JsString, JsValue, NativeFunction,
    Source, js_string,
};

/// Where the function's files are.
pub const ROOT: &str = "/kubeless";

/// Installs `console` in the global object.
pub fn install(js: &mut Js) -> JsResult<()> {
    let mut console = ObjectInitializer::new(js);
    for name in ["log", "info", "warn", "error", "debug"] {
        console.function(NativeFunction::from_fn_ptr(log), JsString::from(name), 0);
    }
    let console = console.build();
    js.register_global_property(
        js_string!("console"),
        console,
        Attribute::WRITABLE | Attribute::CONFIGURABLE,
    )?;
    js.register_global_builtin_callable(
        js_string!("__wasmless_send"),
        5,
        NativeFunction::from_fn_ptr(send),
    )
}

/// `__wasmless_send(method, url, [[name, value]], body, binary)`, what
/// `fetch` (express.js) calls: one request through the host's outbound
/// import, `{status, headers, text, binary}` back, or a `TypeError`
/// ("fetch failed: ...") with the host's reason, as `fetch` rejects.
fn send(_: &JsValue, args: &[JsValue], js: &mut Js) -> JsResult<JsValue> {
    use wasmless_sdk::bindings::wasmless::function::outbound;
    let text = |value: &JsValue, js: &mut Js| -> JsResult<String> {
        Ok(value.to_string(js)?.to_std_string_escaped())
    };
    let method = text(args.get_or_undefined(0), js)?;
    let url = text(args.get_or_undefined(1), js)?;
    let headers: Vec<(String, String)> = match args.get_or_undefined(2).to_json(js)? {
        Some(serde_json::Value::Array(pairs)) => pairs
            .iter()
            .filter_map(|pair| {
                Some((
                    pair.get(0)?.as_str()?.to_owned(),
                    pair.get(1)?.as_str()?.to_owned(),
                ))
            })
            .collect(),
        _ => Vec::new(),
    };
    let body_value = args.get_or_undefined(3);
    let body = match body_value.as_string() {
        Some(body) if args.get_or_undefined(4).to_boolean() => {
            body.iter().map(|unit| unit as u8).collect()
        }
        Some(body) => body.to_std_string_escaped().into_bytes(),
        None => Vec::new(),
    };
    let request = outbound::Request {
        method,
        url,
        headers,
        body,
    };
    let answer = outbound::send(&request).map_err(|error| {
        let reason = match error {
            outbound::OutboundError::Denied(m) => format!("denied: {m}"),
            outbound::OutboundError::Invalid(m) | outbound::OutboundError::Failed(m) => m,
        };
        JsNativeError::typ().with_message(format!("fetch failed: {reason}"))
    })?;
    let out = JsObject::with_object_proto(js.intrinsics());
    out.set(js_string!("status"), answer.status, true, js)?;
    let pairs: Vec<serde_json::Value> = answer
        .headers
        .iter()
        .map(|(name, value)| serde_json::json!([name, value]))
        .collect();
    let pairs = JsValue::from_json(&serde_json::Value::Array(pairs), js)?;
    out.set(js_string!("headers"), pairs, true, js)?;
    let text = JsString::from(String::from_utf8_lossy(&answer.body).as_ref());
    out.set(js_string!("text"), text, true, js)?;
    let units: Vec<u16> = answer.body.iter().map(|b| u16::from(*b)).collect();
    out.set(js_string!("binary"), JsString::from(&units[..]), true, js)?;
    Ok(out.into())
}

/// `console.log`: strings as they are, other values as JSON, joined by
/// spaces, one line in the function's log.
fn log(_: &JsValue, args: &[JsValue], js: &mut Js) -> JsResult<JsValue> {
    let mut parts = Vec::with_capacity(args.len());
    for value in args {
        let text = if let Some(text) = value.as_string() {
            text.to_std_string_escaped()
        } else {
            match value.to_json(js) {
                Ok(Some(json)) => json.to_string(),
                Ok(None) => String::new(),
                Err(_) => value.to_string(js)?.to_std_string_escaped(),
            }
        };
        parts.push(text);
    }
    println!("{}", parts.join(" "));
    Ok(JsValue::undefined())
}

/// Loads the module at `path` (its exports), once per event.
pub fn load(path: &str, cache: &JsObject, js: &mut Js) -> JsResult<JsValue> {
    let key = JsString::from(path);
    if cache.has_own_property(key.clone(), js)? {
        let module = cache.get(key, js)?;
        return match module.as_object() {
            Some(module) => module.get(js_string!("exports"), js),
            None => Ok(JsValue::undefined()),
        };
    }
    let source = std::fs::read_to_string(path)
        .map_err(|e| JsNativeError::error().with_message(format!("cannot read {path}: {e}")))?;
    evaluate(path, &source, cache, js)
}

/// Evaluates `source` as the module at `path` (its exports): what [`load`]
/// does once it read the file, and what the host's snapshot of a function
/// does with the text it was given (it reads no file).
pub fn evaluate(path: &str, source: &str, cache: &JsObject, js: &mut Js) -> JsResult<JsValue> {
    let key = JsString::from(path);
    let module = JsObject::with_object_proto(js.intrinsics());
    let exports = JsObject::with_object_proto(js.intrinsics());
    module.set(js_string!("exports"), exports.clone(), true, js)?;
    module.set(js_string!("filename"), key.clone(), true, js)?;
    cache.set(key, module.clone(), true, js)?;
    if path.ends_with(".json") {
        let json: serde_json::Value = serde_json::from_str(&source)
            .map_err(|e| JsNativeError::syntax().with_message(format!("{path}: {e}")))?;
        let value = JsValue::from_json(&json, js)?;
        module.set(js_string!("exports"), value.clone(), true, js)?;
        return Ok(value);
    }
    let wrapped = js.eval(Source::from_bytes(&format!(
        "(function (exports, require, module, __filename, __dirname) {{{source}\n}})"
    )))?;
    let function = wrapped.as_callable().ok_or_else(|| {
        JsNativeError::typ().with_message(format!("{path} did not compile to a function"))
    })?;
    let require = require_from(path, cache, js);
    function.call(
        &exports.clone().into(),
        &[
            exports.into(),
            require.into(),
            module.clone().into(),
            JsString::from(path).into(),
            JsString::from(dirname(path)).into(),
        ],
        js,
    )?;
    module.get(js_string!("exports"), js)
}

/// The `require` of the module at `from`.
fn require_from(from: &str, cache: &JsObject, js: &mut Js) -> JsObject {
    let function = NativeFunction::from_copy_closure_with_captures(
        |_, args, (from, cache): &(JsString, JsObject), js| {
            let from = from.to_std_string_escaped();
            let name = args
                .get_or_undefined(0)
                .to_string(js)?
                .to_std_string_escaped();
            let path = resolve(&from, &name).ok_or_else(|| {
                JsNativeError::error()
                    .with_message(format!("Cannot find module '{name}' (from {from})"))
            })?;
            load(&path, cache, js)
        },
        (JsString::from(from), cache.clone()),
    );
    FunctionObjectBuilder::new(js.realm(), function)
        .name(js_string!("require"))
        .length(1)
        .build()
        .into()
}

fn dirname(path: &str) -> &str {
    match path.rfind('/') {
        Some(0) | None => "/",
        Some(i) => &path[..i],
    }
}

/// `path` with `.` and `..` resolved, absolute.
fn normalize(path: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            part => out.push(part),
        }
    }
    format!("/{}", out.join("/"))
}

/// The file a module path names: itself, with `.js` or `.json`, a
/// package's `main`, or its `index.js`.
fn as_file(path: &str) -> Option<String> {
    for candidate in [
        path.to_owned(),
        format!("{path}.js"),
        format!("{path}.json"),
    ] {
        if Path::new(&candidate).is_file() {
            return Some(candidate);
        }
    }
    let package = format!("{path}/package.json");
    if let Ok(text) = std::fs::read_to_string(&package)
        && let Ok(json) = serde_json::from_str::<serde_json::Value>(&text)
        && let Some(main) = json.get("main").and_then(|m| m.as_str())
        && let Some(found) = as_file(&normalize(&format!("{path}/{main}")))
    {
        return Some(found);
    }
    let index = format!("{path}/index.js");
    Path::new(&index).is_file().then_some(index)
}

/// Node's resolution, over the function's files: relative and absolute
/// paths, then `node_modules` (and `.deps/node_modules`) up to /kubeless.
fn resolve(from: &str, name: &str) -> Option<String> {
    if name.starts_with("./") || name.starts_with("../") || name.starts_with('/') {
        let base = if name.starts_with('/') {
            name.to_owned()
        } else {
            format!("{}/{name}", dirname(from))
        };
        return as_file(&normalize(&base));
    }
    let mut dir = dirname(from).to_owned();
    loop {
        for modules in [
            format!("{dir}/node_modules"),
            format!("{dir}/.deps/node_modules"),
        ] {
            if let Some(found) = as_file(&normalize(&format!("{modules}/{name}"))) {
                return Some(found);
            }
        }
        if dir == "/" || dir == ROOT {
            return None;
        }
        dir = dirname(&dir).to_owned();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_resolve_as_node_resolves_them() {
        assert_eq!(normalize("/kubeless/./a/../b.js"), "/kubeless/b.js");
        assert_eq!(dirname("/kubeless/main.js"), "/kubeless");
        assert_eq!(dirname("/main.js"), "/");
    }
}
