//! A Function's outbound allow-list (`spec.allowedOutboundHosts`): which
//! destinations its requests may reach. Nothing is reachable by default.
//!
//! An entry is `scheme://host[:port]`:
//!
//! - `scheme`: `http`, `https`, or `*` for either; or `tcp`, for TCP
//!   connections (`wasi:sockets`, Python's `socket`), whose port is always
//!   given and whose host is a name, an address or `*`, not `*.domain`;
//! - `host`: a name (`api.example.com`), `*.` and a domain (any name below
//!   it, not the domain itself), `*` (any name or address), or an IP
//!   address (`203.0.113.7`, `[2001:db8::1]`);
//! - `port`: a number, or `*` for any; left out, the scheme's own (80 for
//!   `http`, 443 for `https`).
//!
//! The entry is checked against the URL the function asked for, then the
//! name is resolved and every address is checked again, and the request
//! goes to an address that passed (never resolved a second time, so a name
//! cannot change its answer between the check and the connection):
//!
//! - a public address is reached through any matching entry;
//! - a private one (10/8, 172.16/12, 192.168/16, 100.64/10, 198.18/15,
//!   fc00::/7: a cluster's Services and Pods, a home network) only through an
//!   entry that names the host exactly, not through a wildcard;
//! - loopback, link-local (cloud metadata at 169.254.169.254), unspecified,
//!   multicast and broadcast addresses only through an entry that names that
//!   address itself.
//!
//! A TCP connection is checked when it is made, by its address: granted by
//! an entry naming that address, by `tcp://*:PORT` when the address is
//! public, or by an entry naming a host exactly when the name resolves to
//! the address (then loopback and link-local addresses are refused as
//! above).

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The parsed allow-list of one function.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OutboundPolicy {
    rules: Vec<Rule>,
}

/// One entry of the allow-list.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Rule {
    scheme: SchemeRule,
    host: HostRule,
    port: PortRule,
    text: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum SchemeRule {
    /// `*`: `http` or `https` (not `tcp`).
    Any,
    Http,
    Https,
    /// A TCP connection (`wasi:sockets`), checked by its address.
    Tcp,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum HostRule {
    /// `*`: any name or address.
    Any,
    /// `*.example.com`, kept as `.example.com`.
    Below(String),
    /// An exact name, lower case, without a trailing dot.
    Name(String),
    /// An address.
    Ip(IpAddr),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum PortRule {
    Any,
    /// The scheme's own port: 80 or 443.
    Default,
    Exact(u16),
}

/// The scheme of a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scheme {
    /// Plain HTTP.
    Http,
    /// HTTP over TLS.
    Https,
}

impl Scheme {
    /// The scheme's own port.
    pub fn default_port(self) -> u16 {
        match self {
            Scheme::Http => 80,
            Scheme::Https => 443,
        }
    }

    /// `http` or `https`.
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
        }
    }
}

/// A request's destination, as the function named it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Destination {
    /// `http` or `https`.
    pub scheme: Scheme,
    /// The host: a name in lower case without a trailing dot, or an address.
    pub host: Host,
    /// The port, the scheme's own when the URL gives none.
    pub port: u16,
}

/// The host part of a destination.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Host {
    /// A name to resolve.
    Name(String),
    /// An address.
    Ip(IpAddr),
}

impl fmt::Display for Destination {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.host {
            Host::Name(name) => write!(f, "{}://{name}:{}", self.scheme.as_str(), self.port),
            Host::Ip(IpAddr::V6(ip)) => {
                write!(f, "{}://[{ip}]:{}", self.scheme.as_str(), self.port)
            }
            Host::Ip(ip) => write!(f, "{}://{ip}:{}", self.scheme.as_str(), self.port),
        }
    }
}

impl Destination {
    /// The destination of an absolute `http` or `https` URI.
    pub fn of_uri(uri: &http::Uri) -> Result<Self, String> {
        let scheme = match uri.scheme_str().map(str::to_ascii_lowercase).as_deref() {
            Some("http") => Scheme::Http,
            Some("https") => Scheme::Https,
            Some(other) => return Err(format!("the scheme `{other}` is not http or https")),
            None => {
                return Err(format!(
                    "`{uri}` is not an absolute http:// or https:// URL"
                ));
            }
        };
        let authority = uri
            .authority()
            .ok_or_else(|| format!("`{uri}` has no host"))?;
        if authority.as_str().contains('@') {
            return Err("a URL with user information (user@host) is not sent".into());
        }
        let host = parse_host(authority.host()).map_err(|m| format!("`{uri}`: {m}"))?;
        Ok(Self {
            scheme,
            host,
            port: authority.port_u16().unwrap_or(scheme.default_port()),
        })
    }
}

/// The kind of an address, for the checks after resolution.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AddressKind {
    /// Reachable through any matching entry.
    Public,
    /// Reachable through an entry naming the host exactly.
    Private,
    /// Reachable only through an entry naming the address.
    Local,
}

impl AddressKind {
    /// The kind of an address (an IPv4 address mapped into IPv6 counts as
    /// itself).
    pub fn of(ip: IpAddr) -> Self {
        match ip {
            IpAddr::V4(v4) => Self::of_v4(v4),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => Self::of_v4(v4),
                None => Self::of_v6(v6),
            },
        }
    }

    fn of_v4(ip: Ipv4Addr) -> Self {
        let [a, b, ..] = ip.octets();
        if ip.is_loopback()
            || ip.is_link_local()
            || ip.is_unspecified()
            || ip.is_multicast()
            || ip.is_broadcast()
            || a == 0
        {
            Self::Local
        } else if ip.is_private()
            || (a == 100 && (64..128).contains(&b))
            || (a == 198 && (b == 18 || b == 19))
        {
            Self::Private
        } else {
            Self::Public
        }
    }

    fn of_v6(ip: Ipv6Addr) -> Self {
        let first = ip.segments()[0];
        if ip.is_loopback()
            || ip.is_unspecified()
            || ip.is_multicast()
            || (first & 0xffc0) == 0xfe80
        {
            Self::Local
        } else if (first & 0xfe00) == 0xfc00 {
            Self::Private
        } else {
            Self::Public
        }
    }

    fn describe(self) -> &'static str {
        match self {
            AddressKind::Public => "a public address",
            AddressKind::Private => "a private address",
            AddressKind::Local => "a loopback, link-local or other local address",
        }
    }
}

impl OutboundPolicy {
    /// Parses the entries; an error names the entry's index and what is
    /// wrong with it.
    pub fn parse(entries: &[String]) -> Result<Self, (usize, String)> {
        let rules = entries
            .iter()
            .enumerate()
            .map(|(i, text)| Rule::parse(text).map_err(|m| (i, m)))
            .collect::<Result<_, _>>()?;
        Ok(Self { rules })
    }

    /// Whether the allow-list grants nothing.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Whether it grants any TCP connection (`tcp://` entries).
    pub fn grants_tcp(&self) -> bool {
        self.rules.iter().any(|r| r.scheme == SchemeRule::Tcp)
    }

    /// Whether a TCP connection to `address` is granted by an entry naming
    /// the address, or by `tcp://*:PORT` (a public address only). When it
    /// is not, the names of the `tcp://` entries of that port: it is
    /// granted if one of them resolves to the address, and the address is
    /// not loopback or link-local.
    pub fn check_tcp(&self, address: std::net::SocketAddr) -> Result<(), Vec<String>> {
        let mut names = Vec::new();
        for rule in &self.rules {
            let port = match rule.port {
                PortRule::Any => true,
                PortRule::Exact(port) => port == address.port(),
                PortRule::Default => false,
            };
            if rule.scheme != SchemeRule::Tcp || !port {
                continue;
            }
            match &rule.host {
                HostRule::Ip(ip) if same_address(*ip, address.ip()) => return Ok(()),
                HostRule::Any if AddressKind::of(address.ip()) == AddressKind::Public => {
                    return Ok(());
                }
                HostRule::Name(name) => names.push(name.clone()),
                _ => {}
            }
        }
        Err(names)
    }

    /// Checks a destination against the entries, before resolution. The
    /// answer says which addresses the name may then resolve to.
    pub fn check(&self, destination: &Destination) -> Result<Grant, String> {
        let matching: Vec<&Rule> = self
            .rules
            .iter()
            .filter(|rule| rule.matches(destination))
            .collect();
        if matching.is_empty() {
            return Err(if self.rules.is_empty() {
                format!(
                    "outbound requests are denied: {destination} is not in spec.allowedOutboundHosts, which is empty"
                )
            } else {
                format!(
                    "{destination} is not in spec.allowedOutboundHosts ({})",
                    self.rules
                        .iter()
                        .map(|r| r.text.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            });
        }
        let by_address = matching
            .iter()
            .any(|rule| matches!(rule.host, HostRule::Ip(_)));
        let exact = matching
            .iter()
            .any(|rule| matches!(rule.host, HostRule::Name(_) | HostRule::Ip(_)));
        Ok(Grant {
            destination: destination.clone(),
            by_address,
            exact,
        })
    }
}

/// What one destination may reach once its name is resolved.
#[derive(Clone, Debug)]
pub struct Grant {
    destination: Destination,
    /// An entry named the address itself.
    by_address: bool,
    /// An entry named the host exactly (a name or an address).
    exact: bool,
}

impl Grant {
    /// Whether the granted destination may be reached at this address.
    pub fn admits(&self, ip: IpAddr) -> Result<(), String> {
        if self.by_address && self.destination.host == Host::Ip(ip) {
            return Ok(());
        }
        let kind = AddressKind::of(ip);
        let allowed = match kind {
            AddressKind::Public => true,
            AddressKind::Private => self.exact,
            AddressKind::Local => false,
        };
        if allowed {
            return Ok(());
        }
        let Host::Name(name) = &self.destination.host else {
            return Err(format!(
                "{} is {}; it is reached only through an entry naming it",
                self.destination,
                kind.describe()
            ));
        };
        let advice = match kind {
            AddressKind::Local => format!(
                "an entry naming the address ({}://{}:{}) would grant it",
                self.destination.scheme.as_str(),
                match ip {
                    IpAddr::V6(v6) => format!("[{v6}]"),
                    v4 => v4.to_string(),
                },
                self.destination.port
            ),
            _ => format!("an entry naming `{name}` exactly, not a wildcard, would grant it"),
        };
        Err(format!(
            "{} resolves to {ip}, {}: {advice}",
            self.destination,
            kind.describe()
        ))
    }

    /// The destination granted.
    pub fn destination(&self) -> &Destination {
        &self.destination
    }
}

impl Rule {
    fn parse(text: &str) -> Result<Self, String> {
        let trimmed = text.trim();
        let (scheme, rest) = trimmed.split_once("://").ok_or_else(|| {
            format!("`{text}` is not scheme://host[:port] (such as https://api.example.com)")
        })?;
        let scheme = match scheme.to_ascii_lowercase().as_str() {
            "http" => SchemeRule::Http,
            "https" => SchemeRule::Https,
            "*" => SchemeRule::Any,
            "tcp" => SchemeRule::Tcp,
            other => {
                return Err(format!(
                    "`{text}`: the scheme `{other}` is not http, https, tcp or *"
                ));
            }
        };
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        if rest.contains(['/', '?', '#']) {
            return Err(format!(
                "`{text}`: an entry names a host and port, not a path"
            ));
        }
        if rest.contains('@') {
            return Err(format!("`{text}`: an entry has no user information"));
        }
        let (host, port) = split_port(rest).map_err(|m| format!("`{text}`: {m}"))?;
        let port = match port {
            None => PortRule::Default,
            Some("*") => PortRule::Any,
            Some(digits) => match digits.parse::<u16>() {
                Ok(port) if port > 0 => PortRule::Exact(port),
                _ => return Err(format!("`{text}`: `{digits}` is not a port (1-65535 or *)")),
            },
        };
        if port == PortRule::Default && scheme == SchemeRule::Any {
            return Err(format!(
                "`{text}`: with the scheme `*` give the port too (such as *://{host}:443, or :* for any)"
            ));
        }
        if port == PortRule::Default && scheme == SchemeRule::Tcp {
            return Err(format!(
                "`{text}`: a tcp entry gives its port (such as tcp://{host}:5432, or :* for any)"
            ));
        }
        if scheme == SchemeRule::Tcp && host.starts_with("*.") {
            return Err(format!(
                "`{text}`: a TCP connection is checked by the address it goes to, which a wildcard of names cannot be matched against: name the host exactly, give its address, or `*` for any public address"
            ));
        }
        let host = if host == "*" {
            HostRule::Any
        } else if let Some(domain) = host.strip_prefix("*.") {
            let domain = domain.trim_end_matches('.').to_ascii_lowercase();
            validate_name(&domain).map_err(|m| format!("`{text}`: {m}"))?;
            HostRule::Below(format!(".{domain}"))
        } else {
            match parse_host(host).map_err(|m| format!("`{text}`: {m}"))? {
                Host::Ip(ip) => HostRule::Ip(ip),
                Host::Name(name) => HostRule::Name(name),
            }
        };
        Ok(Self {
            scheme,
            host,
            port,
            text: trimmed.to_owned(),
        })
    }

    fn matches(&self, destination: &Destination) -> bool {
        let scheme = match self.scheme {
            SchemeRule::Any => true,
            SchemeRule::Http => destination.scheme == Scheme::Http,
            SchemeRule::Https => destination.scheme == Scheme::Https,
            SchemeRule::Tcp => false,
        };
        let port = match self.port {
            PortRule::Any => true,
            PortRule::Default => destination.port == destination.scheme.default_port(),
            PortRule::Exact(port) => destination.port == port,
        };
        let host = match (&self.host, &destination.host) {
            (HostRule::Any, _) => true,
            (HostRule::Below(suffix), Host::Name(name)) => name.ends_with(suffix.as_str()),
            (HostRule::Name(rule), Host::Name(name)) => rule == name,
            (HostRule::Ip(rule), Host::Ip(ip)) => same_address(*rule, *ip),
            _ => false,
        };
        scheme && port && host
    }
}

/// Whether two addresses are the same (an IPv4 address mapped into IPv6
/// is the IPv4 address).
fn same_address(a: IpAddr, b: IpAddr) -> bool {
    a.to_canonical() == b.to_canonical()
}

/// Splits `host[:port]`, where an IPv6 host is in brackets.
fn split_port(text: &str) -> Result<(&str, Option<&str>), String> {
    if let Some(rest) = text.strip_prefix('[') {
        let (inside, after) = rest
            .split_once(']')
            .ok_or_else(|| "an IPv6 address in [ ] lacks its `]`".to_owned())?;
        let port = match after {
            "" => None,
            _ => Some(
                after
                    .strip_prefix(':')
                    .ok_or_else(|| format!("`{after}` after the address is not :port"))?,
            ),
        };
        // The brackets stay, for parse_host.
        return Ok((&text[..inside.len() + 2], port));
    }
    match text.rsplit_once(':') {
        Some((host, port)) => Ok((host, Some(port))),
        None => Ok((text, None)),
    }
}

/// A host as a URL gives it: a name, an IPv4 address or `[IPv6]`.
fn parse_host(host: &str) -> Result<Host, String> {
    if let Some(inner) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        return inner
            .parse::<Ipv6Addr>()
            .map(|ip| Host::Ip(IpAddr::V6(ip)))
            .map_err(|_| format!("`{host}` is not an IPv6 address"));
    }
    if let Ok(ip) = host.parse::<Ipv4Addr>() {
        return Ok(Host::Ip(IpAddr::V4(ip)));
    }
    let name = host.trim_end_matches('.').to_ascii_lowercase();
    validate_name(&name)?;
    // A last label of digits would be read as an address by some resolvers
    // (`127.1`, `0x7f.1`): refuse it rather than guess.
    if name
        .rsplit('.')
        .next()
        .is_some_and(|label| label.chars().all(|c| c.is_ascii_digit()) || label.starts_with("0x"))
    {
        return Err(format!(
            "`{host}` is neither a host name nor an IPv4 address in dotted form"
        ));
    }
    Ok(Host::Name(name))
}

fn validate_name(name: &str) -> Result<(), String> {
    let valid = !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        });
    if valid {
        Ok(())
    } else {
        Err(format!("`{name}` is not a host name"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(entries: &[&str]) -> OutboundPolicy {
        OutboundPolicy::parse(&entries.iter().map(|e| e.to_string()).collect::<Vec<_>>())
            .expect("valid entries")
    }

    fn destination(url: &str) -> Destination {
        Destination::of_uri(&url.parse().expect("a URI")).expect("a destination")
    }

    fn allowed(entries: &[&str], url: &str) -> bool {
        policy(entries).check(&destination(url)).is_ok()
    }

    #[test]
    fn entries_match_scheme_host_and_port() {
        let api = ["https://api.example.com"];
        assert!(allowed(&api, "https://api.example.com/v1?x=1"));
        assert!(allowed(&api, "https://API.example.com.:443/"));
        assert!(!allowed(&api, "http://api.example.com/"));
        assert!(!allowed(&api, "https://api.example.com:8443/"));
        assert!(!allowed(&api, "https://example.com/"));
        assert!(!allowed(&api, "https://api.example.com.evil.test/"));
        let below = ["*://*.example.com:*"];
        assert!(allowed(&below, "http://a.example.com:8080/"));
        assert!(allowed(&below, "https://a.b.example.com/"));
        assert!(!allowed(&below, "https://example.com/"));
        assert!(!allowed(&below, "https://badexample.com/"));
        assert!(allowed(
            &["http://127.0.0.1:8080"],
            "http://127.0.0.1:8080/x"
        ));
        assert!(!allowed(
            &["http://127.0.0.1:8080"],
            "http://localhost:8080/x"
        ));
        assert!(allowed(&["http://[::1]:80"], "http://[::1]/"));
        assert!(allowed(&["*://*:*"], "https://anything.test:1/"));
        assert!(!allowed(&[], "https://api.example.com/"));
    }

    #[test]
    fn bad_entries_say_what_is_wrong() {
        for (entry, says) in [
            ("api.example.com", "scheme://host"),
            ("ftp://example.com", "not http, https, tcp"),
            ("https://example.com/path", "not a path"),
            ("https://example.com:99999", "not a port"),
            ("https://example.com:0", "not a port"),
            ("*://example.com", "give the port"),
            ("https://exa mple.com", "not a host name"),
            ("https://user@example.com", "user information"),
            ("http://[::1", "lacks its `]`"),
            ("http://127.1", "dotted form"),
        ] {
            let err = OutboundPolicy::parse(&[entry.to_owned()]).expect_err(entry);
            assert_eq!(err.0, 0);
            assert!(err.1.contains(says), "{entry}: {}", err.1);
        }
    }

    #[test]
    fn tcp_entries_are_checked_by_address() {
        let tcp = policy(&[
            "tcp://db.internal:5432",
            "tcp://203.0.113.7:6379",
            "tcp://*:443",
            "http://127.0.0.1:8080",
        ]);
        assert!(tcp.grants_tcp());
        assert!(!policy(&["https://api.example.com"]).grants_tcp());
        let at = |s: &str| s.parse::<std::net::SocketAddr>().expect("an address");
        assert_eq!(tcp.check_tcp(at("203.0.113.7:6379")), Ok(()));
        assert_eq!(tcp.check_tcp(at("93.184.216.34:443")), Ok(()));
        assert_eq!(tcp.check_tcp(at("10.0.0.1:443")), Err(vec![]));
        assert_eq!(tcp.check_tcp(at("127.0.0.1:8080")), Err(vec![]));
        assert_eq!(
            tcp.check_tcp(at("10.0.0.1:5432")),
            Err(vec!["db.internal".to_owned()])
        );
        // tcp entries grant no HTTP, and `*://` no TCP.
        assert!(!allowed(
            &["tcp://api.example.com:443"],
            "https://api.example.com/"
        ));
        assert_eq!(
            policy(&["*://*:*"]).check_tcp(at("93.184.216.34:443")),
            Err(vec![])
        );
        for (entry, says) in [
            ("tcp://db.internal", "gives its port"),
            ("tcp://*.internal:5432", "name the host exactly"),
        ] {
            let err = OutboundPolicy::parse(&[entry.to_owned()]).expect_err(entry);
            assert!(err.1.contains(says), "{entry}: {}", err.1);
        }
    }

    #[test]
    fn resolved_addresses_are_checked_by_kind() {
        let ip = |s: &str| s.parse::<IpAddr>().expect("an address");
        let exact = policy(&["https://db.internal"]);
        let grant = exact
            .check(&destination("https://db.internal/"))
            .expect("granted");
        assert!(grant.admits(ip("10.1.2.3")).is_ok());
        assert!(grant.admits(ip("93.184.216.34")).is_ok());
        let err = grant.admits(ip("127.0.0.1")).expect_err("loopback");
        assert!(err.contains("https://127.0.0.1:443"), "{err}");
        assert!(grant.admits(ip("169.254.169.254")).is_err());
        assert!(grant.admits(ip("::ffff:127.0.0.1")).is_err());
        assert!(grant.admits(ip("fe80::1")).is_err());
        let wild = policy(&["https://*.example.com"]);
        let grant = wild
            .check(&destination("https://a.example.com/"))
            .expect("granted");
        assert!(grant.admits(ip("93.184.216.34")).is_ok());
        let err = grant
            .admits(ip("192.168.1.1"))
            .expect_err("private by wildcard");
        assert!(err.contains("exactly"), "{err}");
        assert!(grant.admits(ip("fd00::1")).is_err());
        assert!(grant.admits(ip("100.64.0.1")).is_err());
        let by_ip = policy(&["http://169.254.169.254"]);
        let grant = by_ip
            .check(&destination("http://169.254.169.254/latest"))
            .expect("granted");
        assert!(grant.admits(ip("169.254.169.254")).is_ok());
    }
}
