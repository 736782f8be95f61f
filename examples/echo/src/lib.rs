//! Echo: answers with the event and context it received, as JSON, so that
//! the handler contract can be seen (and tested) field by field.

use serde_json::{Map, Value, json};
use wasmless_sdk::{Context, Event, Response};

fn pairs(list: &[(String, String)]) -> Value {
    Value::Object(
        list.iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect::<Map<_, _>>(),
    )
}

fn echo(event: Event, context: Context) -> Response {
    let request = event.request().map(|r| {
        json!({
            "method": r.method,
            "path": r.path,
            "query": r.query,
            "headers": pairs(&r.headers),
        })
    });
    let body = json!({
        "event": {
            "data": String::from_utf8_lossy(&event.data),
            "event-id": event.event_id,
            "event-type": event.event_type,
            "event-time": event.event_time,
            "event-namespace": event.event_namespace,
            "extensions": {
                "request": request,
                "attributes": pairs(&event.extensions.attributes),
            },
        },
        "context": {
            "function-name": context.function_name,
            "timeout": context.timeout,
            "runtime": context.runtime,
            "memory-limit": context.memory_limit,
        },
        "env": std::env::vars().map(|(k, _)| k).collect::<Vec<_>>(),
    });
    Response::json(body.to_string())
}

wasmless_sdk::handler!(echo);
