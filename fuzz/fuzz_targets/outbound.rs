//! `spec.allowedOutboundHosts` entries, and a URL checked against them.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wasmless_fuzz::outbound::{Destination, OutboundPolicy};

fuzz_target!(|input: (Vec<String>, &str, [u8; 16])| {
    let (entries, url, address) = input;
    let Ok(policy) = OutboundPolicy::parse(&entries) else {
        return;
    };
    let Ok(uri) = url.parse::<http::Uri>() else {
        return;
    };
    let Ok(destination) = Destination::of_uri(&uri) else {
        return;
    };
    if let Ok(grant) = policy.check(&destination) {
        let _ = grant.admits(std::net::IpAddr::from(address));
    }
    let _ = policy.check_tcp(std::net::SocketAddr::new(
        std::net::IpAddr::from(address),
        5432,
    ));
});
