//! A guest for the trigger tests. Each event it gets is written to stderr
//! (which the host logs) as one line: `RECORD` then tab-separated
//! `field=value` pairs (the event fields, then its attributes), then `end`.
//! An event whose data starts with `fail` is rejected with a 500; one whose
//! data starts with `slow` takes 20 ms.

use wasmless_sdk::{Context, Error, Event, Response};

fn record(event: Event, context: Context) -> Result<Response, Error> {
    let data = String::from_utf8_lossy(&event.data).into_owned();
    let mut line = format!(
        "RECORD\tfunction={}\tid={}\ttype={}\tnamespace={}\ttime={}\tdata={}",
        context.function_name,
        event.event_id,
        event.event_type,
        event.event_namespace,
        event.event_time,
        data
    );
    for (key, value) in &event.extensions.attributes {
        line.push_str(&format!("\t{key}={value}"));
    }
    line.push_str("\tend");
    eprintln!("{}", line.replace('\n', " "));
    if data.starts_with("slow") {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    if data.starts_with("fail") {
        return Err(Error::new(500, format!("rejected: {data}")));
    }
    Ok(Response::text("recorded"))
}

wasmless_sdk::handler!(record);
