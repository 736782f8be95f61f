//! A `wasi:http/proxy` component for the tests of the outbound allow-list:
//! `GET /?url=http://host:port/path` sends a GET to that URL through
//! `wasi:http/outgoing-handler` and answers `status NNN` and the body, or
//! `error: CODE` when the host refused or the request failed.
//! `&host=NAME` first tries to set the `host` header to NAME and reports
//! what wasi:http said.

use std::io::{Read as _, Write as _};

use wasip2::http::outgoing_handler;
use wasip2::http::types::{
    Fields, IncomingRequest, Method, OutgoingBody, OutgoingRequest, OutgoingResponse,
    ResponseOutparam, Scheme,
};

struct Fetcher;

/// The value of `key` in a query string, percent-decoded.
fn query_value(query: &str, key: &str) -> Option<String> {
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        (k == key).then(|| decode(v))
    })
}

fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let Ok(byte) = u8::from_str_radix(&text[i + 1..i + 3], 16) {
                out.push(byte);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn fetch(url: &str, host: Option<&str>) -> String {
    let mut notes = String::new();
    let (scheme, rest) = match url.split_once("://") {
        Some(("https", rest)) => (Scheme::Https, rest),
        Some((_, rest)) => (Scheme::Http, rest),
        None => return format!("error: `{url}` is not absolute"),
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let headers = match host {
        Some(name) => match Fields::from_list(&[("host".to_owned(), name.as_bytes().to_vec())]) {
            Ok(fields) => {
                notes.push_str("host header: accepted\n");
                fields
            }
            Err(e) => {
                notes.push_str(&format!("host header: {e:?}\n"));
                Fields::new()
            }
        },
        None => Fields::new(),
    };
    let request = OutgoingRequest::new(headers);
    let _ = request.set_method(&Method::Get);
    let _ = request.set_scheme(Some(&scheme));
    let _ = request.set_authority(Some(authority));
    let _ = request.set_path_with_query(Some(path));
    let body = request.body().expect("a new request has a body");
    let _ = OutgoingBody::finish(body, None);
    let future = match outgoing_handler::handle(request, None) {
        Ok(future) => future,
        Err(code) => return format!("{notes}error: {code:?}"),
    };
    future.subscribe().block();
    let response = match future.get() {
        Some(Ok(Ok(response))) => response,
        Some(Ok(Err(code))) => return format!("{notes}error: {code:?}"),
        other => return format!("{notes}error: no response ({other:?})"),
    };
    let status = response.status();
    let mut text = Vec::new();
    if let Ok(body) = response.consume()
        && let Ok(mut stream) = body.stream()
    {
        let _ = stream.read_to_end(&mut text);
    }
    format!("{notes}status {status}\n{}", String::from_utf8_lossy(&text))
}

impl wasip2::exports::http::incoming_handler::Guest for Fetcher {
    fn handle(request: IncomingRequest, response_out: ResponseOutparam) {
        let path = request.path_with_query().unwrap_or_default();
        let query = path.split_once('?').map(|(_, q)| q).unwrap_or_default();
        let answer = match query_value(query, "url") {
            Some(url) => fetch(&url, query_value(query, "host").as_deref()),
            None => "error: no ?url=".to_owned(),
        };
        let response = OutgoingResponse::new(Fields::new());
        let body = response.body().expect("a new response has a body");
        ResponseOutparam::set(response_out, Ok(response));
        let mut out = body.write().expect("a new body has a stream");
        let _ = out.write_all(answer.as_bytes());
        let _ = out.flush();
        drop(out);
        let _ = OutgoingBody::finish(body, None);
    }
}

wasip2::http::proxy::export!(Fetcher);
