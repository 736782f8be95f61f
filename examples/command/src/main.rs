//! A WASI command module: the event's data arrives on stdin, stdout is the
//! response body, and the event fields are in CGI-style variables.

use std::io::{Read, Write};

fn main() {
    let mut input = String::new();
    if let Err(err) = std::io::stdin().read_to_string(&mut input) {
        eprintln!("could not read the event: {err}");
        std::process::exit(1);
    }
    let method = std::env::var("REQUEST_METHOD").unwrap_or_default();
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{method} {}", input.to_uppercase());
}
