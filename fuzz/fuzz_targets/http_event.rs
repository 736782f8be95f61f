//! An HTTP request → the event a function gets: method, URI, headers (the
//! event fields a dispatcher sends among them) and body.
#![no_main]

use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
struct Input<'a> {
    method: &'a str,
    uri: &'a str,
    headers: Vec<(&'a str, &'a [u8])>,
    path: &'a str,
    body: &'a [u8],
}

fuzz_target!(|input: Input<'_>| {
    let mut request = http::Request::builder().method(input.method).uri(input.uri);
    for (name, value) in &input.headers {
        request = request.header(*name, *value);
    }
    let Ok(request) = request.body(()) else {
        return;
    };
    let (parts, ()) = request.into_parts();
    let event = wasmless_fuzz::host::Event::from_http(
        &parts,
        input.path.to_owned(),
        bytes::Bytes::copy_from_slice(input.body),
    );
    let time = event.time_rfc3339();
    assert!(time.ends_with('Z'), "{time}");
});
