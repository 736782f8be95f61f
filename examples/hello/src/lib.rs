//! Hello world with the wasmless SDK: greets the name it is sent.

use wasmless_sdk::{Context, Event, Response};

fn hello(event: Event, _context: Context) -> Response {
    let name = event
        .text()
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .unwrap_or("world");
    Response::text(format!("Hello, {name}!\n"))
}

wasmless_sdk::handler!(hello);
