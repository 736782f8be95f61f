//! A guest for the host's tests: what it does depends on the request path.
//! `/panic` panics, `/loop` never returns, `/alloc` grows memory until it is
//! stopped, `/sleep` blocks in a host call, `/error` returns its own 422;
//! `/file`, `/tcp` and `/http` try what the sandbox must deny and report the
//! outcome; `/read` reads the file named by the event data (a granted
//! Secret), `/write` tries to write beside it. `/count` counts the events
//! its instance has served: always 1 while every event gets a fresh one.
//! `/init` says whether the init function ran in its instance, and how long
//! before the event; `MISBEHAVE_INIT=panic` or `=loop` makes init panic or
//! never return.

use std::sync::OnceLock;
use std::time::Instant;

use wasmless_sdk::{Context, Error, Event, Response};

/// When init ran in this instance.
static INIT_RAN: OnceLock<Instant> = OnceLock::new();

fn init() {
    match std::env::var("MISBEHAVE_INIT").as_deref() {
        Ok("panic") => panic!("init panicked on purpose"),
        Ok("loop") => {
            let mut n: u64 = 0;
            loop {
                n = std::hint::black_box(n.wrapping_add(1));
            }
        }
        _ => {
            let _ = INIT_RAN.set(Instant::now());
        }
    }
}

fn misbehave(event: Event, _context: Context) -> Result<Response, Error> {
    let path = event.request().map(|r| r.path.clone()).unwrap_or_default();
    match path.as_str() {
        "/panic" => panic!("the guest panicked on purpose"),
        "/loop" => {
            let mut n: u64 = 0;
            loop {
                n = std::hint::black_box(n.wrapping_add(1));
            }
        }
        "/alloc" => {
            let mut hoard: Vec<Vec<u8>> = Vec::new();
            loop {
                hoard.push(vec![1u8; 1 << 20]);
                std::hint::black_box(&hoard);
            }
        }
        "/sleep" => {
            std::thread::sleep(std::time::Duration::from_secs(3600));
            Ok(Response::text("woke up"))
        }
        "/error" => Err(Error::new(422, "the guest refused this event")),
        "/count" => {
            static SERVED: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
            let served = SERVED.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
            Ok(Response::text(served.to_string()))
        }
        "/init" => Ok(Response::text(match INIT_RAN.get() {
            Some(ran) => format!("init ran {} ms before", ran.elapsed().as_millis()),
            None => "init did not run".to_owned(),
        })),
        "/file" => Ok(Response::text(
            match std::fs::read_to_string("/etc/hostname") {
                Ok(_) => "read a host file".to_owned(),
                Err(err) => format!("denied: {err}"),
            },
        )),
        "/tcp" => Ok(Response::text(
            match std::net::TcpStream::connect("127.0.0.1:9") {
                Ok(_) => "connected".to_owned(),
                Err(err) => format!("denied: {err}"),
            },
        )),
        "/http" => Ok(Response::text(outgoing_http())),
        "/read" => Ok(Response::text(
            match std::fs::read_to_string(String::from_utf8_lossy(&event.data).as_ref()) {
                Ok(text) => text,
                Err(err) => format!("denied: {err}"),
            },
        )),
        "/write" => Ok(Response::text(
            match std::fs::write(String::from_utf8_lossy(&event.data).as_ref(), "x") {
                Ok(()) => "wrote".to_owned(),
                Err(err) => format!("denied: {err}"),
            },
        )),
        _ => Ok(Response::text("ok")),
    }
}

/// Tries an outgoing wasi:http request to a loopback address.
fn outgoing_http() -> String {
    use wasip2::http::types::{Fields, OutgoingRequest, Scheme};
    let request = OutgoingRequest::new(Fields::new());
    let _ = request.set_scheme(Some(&Scheme::Http));
    let _ = request.set_authority(Some("127.0.0.1:9"));
    let _ = request.set_path_with_query(Some("/"));
    match wasip2::http::outgoing_handler::handle(request, None) {
        Err(code) => format!("denied: {code:?}"),
        Ok(future) => {
            future.subscribe().block();
            match future.get() {
                Some(Ok(Ok(_))) => "sent a request".to_owned(),
                Some(Ok(Err(code))) => format!("denied: {code:?}"),
                other => format!("denied: {other:?}"),
            }
        }
    }
}

wasmless_sdk::handler!(misbehave, init = init);
