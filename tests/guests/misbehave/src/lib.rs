//! A guest for the host's tests: what it does depends on the request path.
//! `/panic` panics, `/loop` never returns, `/alloc` grows memory until it is
//! stopped, `/sleep` blocks in a host call, `/error` returns its own 422.

use wasmless_sdk::{Context, Error, Event, Response};

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
        _ => Ok(Response::text("ok")),
    }
}

wasmless_sdk::handler!(misbehave);
