//! The wasmless JavaScript runtime: the Boa engine running kubeless-style
//! Node.js handlers. One component runs every JavaScript function: the host
//! mounts the function's files read-only at `/kubeless` and names the
//! handler in `MOD_NAME` and `FUNC_HANDLER`.
//!
//! The handler is `module.exports = { handler: (event, context) => ... }`
//! (or `async`). `event.data` is the parsed JSON when the content type is
//! JSON, else text. A string result is the body, any other value is sent as
//! JSON. `event.extensions.request` and `event.extensions.response` answer
//! the calls kubeless functions made on Express's (`req.get`, `req.is`,
//! `req.query`, `req.body`; `res.status(201).set("location", "/x")`,
//! `res.send`, `res.write`, `res.end`, a stream piped into `res`: see
//! `express.js`); what `res.send` or `res.end` sent is the answer. A thrown
//! error is a 500 with its message; `console.log` goes to the host's log.
//!
//! Each event gets a fresh instance, so the handler's module is loaded (its
//! module-level code runs) once per instance, before its event: in `init`
//! when the host makes the instance ahead of its event, else at the start of
//! the event. Where the spec lets an instance serve several events in a
//! row (`spec.instanceReuse`), the loaded module is kept for the next one.

use std::cell::RefCell;

use boa_engine::builtins::promise::PromiseState;
use boa_engine::object::builtins::JsPromise;
use boa_engine::{Context as Js, JsError, JsNativeError, JsObject, JsResult, JsString, JsValue};
use serde_json::{Value, json};
use wasmless_sdk::{Context, Error, Event, Response};

mod modules;

/// The event as kubeless's Node.js runtime gave it.
fn event_json(event: &Event) -> Value {
    let content_type = event
        .event_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    let text = String::from_utf8_lossy(&event.data).into_owned();
    let json_type = content_type == "application/json" || content_type.ends_with("+json");
    let data = match serde_json::from_str::<Value>(&text) {
        Ok(parsed) if json_type && !text.is_empty() => parsed,
        _ => Value::String(text),
    };
    let request = event.request().map(|r| {
        let headers: serde_json::Map<String, Value> = r
            .headers
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect();
        json!({"method": r.method, "path": r.path, "query": r.query, "headers": headers})
    });
    let attributes: serde_json::Map<String, Value> = event
        .extensions
        .attributes
        .iter()
        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
        .collect();
    json!({
        "data": data,
        "event-id": event.event_id,
        "event-type": event.event_type,
        "event-time": event.event_time,
        "event-namespace": event.event_namespace,
        "extensions": {"request": request, "attributes": attributes},
    })
}

fn context_json(context: &Context) -> Value {
    json!({
        "function-name": context.function_name,
        "timeout": (context.timeout / 1000).to_string(),
        "runtime": context.runtime,
        "memory-limit": context.memory_limit.to_string(),
    })
}

/// A thrown value as the message the caller sees.
fn message(error: JsError, js: &mut Js) -> String {
    let Ok(value) = error.into_opaque(js) else {
        return "the handler threw".to_owned();
    };
    value
        .to_string(js)
        .map(|s| s.to_std_string_escaped())
        .unwrap_or_else(|_| "the handler threw".to_owned())
}

/// The handler's module, loaded (its module-level code run) in its context:
/// once per instance, in `init` when the host makes the instance ahead of
/// its event, else at the start of the event.
struct Loaded {
    js: Js,
    handler: JsObject,
}

thread_local! {
    /// The engine made ahead of the function: a Boa context with its
    /// built-in objects, made by `init` with no function named.
    /// The build runs that `init` once and ships the snapshot of the memory
    /// it leaves (`wasmless pre-init`, examples/build.sh), so every instance
    /// starts with this context in place; the first load takes it.
    static ENGINE: RefCell<Option<Js>> = const { RefCell::new(None) };
    /// What `init` loaded, or the message of why loading failed (reported
    /// by the event).
    static LOADED: RefCell<Option<Result<Loaded, String>>> = const { RefCell::new(None) };
}

/// The first `init` of the runtime, with no engine yet, is the build's
/// pre-initialization (`wasmless pre-init`): it makes the engine alone,
/// touching neither the environment nor the files, which the C library
/// would read once and keep (the snapshot would keep the build's, empty).
/// Every instance starts from that snapshot, engine made, and its `init`
/// (ahead of its event) loads the function's module.
fn init() {
    // An instance of a busy function's own snapshot (see
    // `SNAPSHOT_SOURCE`): the function is loaded already.
    if LOADED.with(|slot| slot.borrow().is_some()) {
        return;
    }
    let made = ENGINE.with(|slot| {
        let mut slot = slot.borrow_mut();
        let made = slot.is_none();
        if made {
            *slot = Some(engine());
        }
        made
    });
    if made {
        return;
    }
    let loaded = load();
    if let Err(text) = &loaded
        && std::env::var_os(SNAPSHOT_SOURCE).is_some()
    {
        // Not a state to start every instance from: the host keeps the
        // function as it is, and its events report the error.
        panic!("the function's module did not load: {text}");
    }
    LOADED.with(|slot| *slot.borrow_mut() = Some(loaded));
}

/// Set by the host only for its run that makes a snapshot of a busy
/// function (its module loaded) to start each of its instances from: the
/// source of the handler's module, given here because that run must not
/// touch the file system (an open file or folder would live on in the
/// snapshot as a handle no later instance has; the host refuses a snapshot
/// whose run kept one). The C library reads the environment once, so the
/// instances see the variables of that run, which are the function's own.
const SNAPSHOT_SOURCE: &str = "WASMLESS_SNAPSHOT_SOURCE";

/// The engine with the runtime's own JavaScript evaluated: the request and
/// response classes of `express.js`.
fn engine() -> Js {
    let mut js = Js::default();
    if let Err(err) = js.eval(boa_engine::Source::from_bytes(include_str!("express.js"))) {
        let text = message(err, &mut js);
        eprintln!("the runtime's express.js did not evaluate: {text}");
    }
    js
}

fn load() -> Result<Loaded, String> {
    let mut js = ENGINE
        .with(|slot| slot.borrow_mut().take())
        .unwrap_or_else(engine);
    match load_handler(&mut js) {
        Ok(handler) => Ok(Loaded { js, handler }),
        Err(e) => Err(message(e, &mut js)),
    }
}

fn load_handler(js: &mut Js) -> JsResult<JsObject> {
    modules::install(js)?;
    let module = std::env::var("MOD_NAME").unwrap_or_default();
    let entry = std::env::var("FUNC_HANDLER").unwrap_or_default();
    let cache = JsObject::with_object_proto(js.intrinsics());
    let path = format!("{}/{module}.js", modules::ROOT);
    let exports = match std::env::var(SNAPSHOT_SOURCE) {
        Ok(source) => modules::evaluate(&path, &source, &cache, js)?,
        Err(_) => modules::load(&path, &cache, js)?,
    };
    exports
        .as_object()
        .and_then(|o| o.get(JsString::from(entry.as_str()), js).ok())
        .and_then(|v| v.as_callable())
        .ok_or_else(|| {
            JsNativeError::typ()
                .with_message(format!(
                    "{module}.js exports no function `{entry}` (spec.handler)"
                ))
                .into()
        })
}

fn handle(event: Event, context: Context) -> Result<Response, Error> {
    let loaded = LOADED
        .with(|slot| slot.borrow_mut().take())
        .unwrap_or_else(load);
    let fail = |text: String| {
        eprintln!("{text}");
        Error::new(500, format!("{text}\n"))
    };
    let Loaded { mut js, handler } = loaded.map_err(fail)?;
    let outcome = run(&event, &context, &handler, &mut js).map_err(|e| fail(message(e, &mut js)));
    // Kept for the instance's next event, where the spec lets an instance
    // serve several (`spec.instanceReuse`); otherwise dropped with it.
    LOADED.with(|slot| *slot.borrow_mut() = Some(Ok(Loaded { js, handler })));
    outcome?
}

fn run(
    event: &Event,
    context: &Context,
    handler: &JsObject,
    js: &mut Js,
) -> JsResult<Result<Response, Error>> {
    let event_json = event_json(event);
    let event_value = JsValue::from_json(&event_json, js)?;
    let helpers = js
        .global_object()
        .get(JsString::from("__wasmless"), js)?
        .as_object()
        .ok_or_else(|| {
            JsNativeError::error().with_message("the runtime's express.js is missing")
        })?;
    let call = |name: &str, args: &[JsValue], js: &mut Js| -> JsResult<JsValue> {
        let function = helpers
            .get(JsString::from(name), js)?
            .as_callable()
            .ok_or_else(|| {
                JsNativeError::error().with_message("the runtime's express.js is missing")
            })?;
        function.call(&JsValue::undefined(), args, js)
    };
    let response = call("response", &[], js)?;
    if let Some(object) = event_value.as_object() {
        let extensions = object.get(JsString::from("extensions"), js)?;
        if let Some(extensions) = extensions.as_object() {
            let raw = extensions.get(JsString::from("request"), js)?;
            if raw.is_object() {
                let text = JsValue::from(JsString::from(
                    String::from_utf8_lossy(&event.data).as_ref(),
                ));
                let data = object.get(JsString::from("data"), js)?;
                let request = call("request", &[raw, text, data], js)?;
                extensions.set(JsString::from("request"), request, false, js)?;
            }
            extensions.set(JsString::from("response"), response.clone(), false, js)?;
        }
    }
    let context_value = JsValue::from_json(&context_json(context), js)?;
    let mut result = handler.call(&JsValue::undefined(), &[event_value, context_value], js)?;
    if let Some(promise) = result
        .as_object()
        .filter(|o| o.is::<boa_engine::builtins::promise::Promise>())
    {
        let promise = JsPromise::from_object(promise.clone())?;
        js.run_jobs()?;
        result = match promise.state() {
            PromiseState::Fulfilled(value) => value,
            PromiseState::Rejected(reason) => return Err(JsError::from_opaque(reason)),
            PromiseState::Pending => {
                return Err(JsNativeError::error()
                    .with_message("the handler's promise never settled (there is no I/O to wait for in the sandbox)")
                    .into());
            }
        };
    }
    let settings = response.to_json(js)?.unwrap_or(Value::Null);
    // A number the handler computed may be a float to the engine.
    let status = settings["statusCode"]
        .as_f64()
        .filter(|s| s.fract() == 0.0 && (100.0..=999.0).contains(s))
        .map_or(200, |s| s as u16);
    let sent = settings["finished"].as_bool() == Some(true);
    let (body, content_type) = if sent {
        // What `res.send` or `res.end` sent, whatever the handler returned.
        (
            settings["body"]
                .as_str()
                .unwrap_or_default()
                .as_bytes()
                .to_vec(),
            "text/html; charset=utf-8",
        )
    } else if let Some(text) = result.as_string() {
        (
            text.to_std_string_escaped().into_bytes(),
            "text/plain; charset=utf-8",
        )
    } else if result.is_undefined() || result.is_null() {
        (Vec::new(), "text/plain; charset=utf-8")
    } else {
        let value = result.to_json(js)?.unwrap_or(Value::Null);
        (value.to_string().into_bytes(), "application/json")
    };
    let mut answer = Response::new(body).with_status(status);
    let mut typed = false;
    if let Some(headers) = settings["headers"].as_object() {
        for (name, value) in headers {
            typed |= name == "content-type";
            answer = answer.with_header(name.clone(), value.as_str().unwrap_or_default());
        }
    }
    if !typed {
        answer = answer.with_header("content-type", content_type);
    }
    Ok(Ok(answer))
}

wasmless_sdk::handler!(handle, init = init);
