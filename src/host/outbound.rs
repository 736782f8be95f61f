//! A function's outgoing HTTP requests, through its allow-list
//! ([`crate::outbound`]): the `wasmless:function/outbound` import of the
//! wasmless world and `wasi:http/outgoing-handler` for every component.
//!
//! The host resolves the name itself, checks every address, and connects
//! to one that passed, so what was checked is what is reached. Redirects
//! are never followed here: a 3xx is the answer, and a runtime that follows
//! it sends a new request, checked again.

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::client::conn::http1::SendRequest;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use wasmtime_wasi::p2::OutputStream;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;

use crate::outbound::{Destination, Host as DestinationHost, OutboundPolicy, Scheme};

/// The longest wait for a connection (and a TLS handshake).
pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// The largest response body a function is handed by `outbound.send`.
pub(crate) const MAX_RESPONSE_BODY: usize = 16 << 20;

/// Why a request got no answer.
#[derive(Debug)]
pub(crate) struct SendError {
    /// What kind of failure.
    pub kind: Failure,
    /// What the function is told, and its log.
    pub message: String,
}

/// The kinds of [`SendError`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Failure {
    /// The allow-list does not name the destination.
    Denied,
    /// It names it, but the name resolved to an address it does not grant.
    Prohibited,
    /// The request is malformed.
    Invalid,
    /// The name did not resolve.
    Dns,
    /// No address took the connection.
    Connect,
    /// Resolution, connection or the handshake ran out of time.
    Timeout,
    /// The TLS handshake failed.
    Tls,
    /// The HTTP exchange failed, or the answer is too big.
    Protocol,
}

impl SendError {
    fn new(kind: Failure, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }

    /// The error code `wasi:http` gives the guest.
    pub(crate) fn to_wasi(&self) -> wasmtime_wasi_http::Error {
        use wasmtime_wasi_http::Error;
        match self.kind {
            Failure::Denied => Error::HttpRequestDenied,
            Failure::Prohibited => Error::DestinationIpProhibited,
            Failure::Invalid => Error::HttpRequestUriInvalid,
            Failure::Dns => Error::DnsError {
                rcode: Some(self.message.clone()),
                info_code: None,
            },
            Failure::Connect => Error::ConnectionRefused,
            Failure::Timeout => Error::ConnectionTimeout,
            Failure::Tls => Error::TlsProtocolError,
            Failure::Protocol => Error::HttpProtocolError,
        }
    }
}

/// What one instance may reach, and where it says what it was refused.
#[derive(Clone)]
pub(crate) struct Outbound {
    policy: Arc<OutboundPolicy>,
    /// The instance's stderr: a refusal is a line of the function's log.
    log: Option<MemoryOutputPipe>,
}

impl Outbound {
    /// Reaches nothing, and tells nobody.
    pub(crate) fn deny_all() -> Self {
        Self {
            policy: Arc::new(OutboundPolicy::default()),
            log: None,
        }
    }

    /// Reaches what `policy` grants; refusals go to `log`.
    pub(crate) fn new(policy: Arc<OutboundPolicy>, log: MemoryOutputPipe) -> Self {
        Self {
            policy,
            log: Some(log),
        }
    }

    /// Writes a refusal to the function's log.
    pub(crate) fn note(&self, message: &str) {
        if let Some(log) = &self.log {
            let mut log = log.clone();
            // A full capture drops the line; the guest still gets the error.
            let _ = log.write(Bytes::from(format!("wasmless: {message}\n")));
        }
    }

    /// Lets the instance open the TCP connections its `tcp://` entries
    /// grant (`wasi:sockets`), and nothing else: no listening socket, no
    /// UDP. Without such entries it has no sockets at all. Name lookups
    /// are the guest's own once it may connect, so a function with a
    /// `tcp://` entry can resolve any name (README, "Outgoing requests").
    pub(crate) fn grant_sockets(&self, builder: &mut wasmtime_wasi::WasiCtxBuilder) {
        if !self.policy.grants_tcp() {
            return;
        }
        builder
            .allow_tcp(true)
            .allow_udp(false)
            .allow_ip_name_lookup(true);
        let outbound = self.clone();
        builder.socket_addr_check(move |address, usage| {
            let outbound = outbound.clone();
            Box::pin(async move {
                use wasmtime_wasi::sockets::SocketAddrUse;
                match usage {
                    // The bind a connect makes by itself, to any local
                    // address and port.
                    SocketAddrUse::TcpBind => address.ip().is_unspecified() && address.port() == 0,
                    SocketAddrUse::TcpConnect => {
                        tokio::spawn(async move { outbound.tcp_granted(address).await })
                            .await
                            .unwrap_or(false)
                    }
                    _ => false,
                }
            })
        });
    }

    /// Whether a TCP connection to `address` is granted; a refusal is a
    /// line of the function's log.
    async fn tcp_granted(&self, address: SocketAddr) -> bool {
        let names = match self.policy.check_tcp(address) {
            Ok(()) => return true,
            Err(names) => names,
        };
        let local =
            crate::outbound::AddressKind::of(address.ip()) == crate::outbound::AddressKind::Local;
        for name in &names {
            let found = tokio::time::timeout(
                CONNECT_TIMEOUT,
                tokio::net::lookup_host((name.as_str(), address.port())),
            )
            .await;
            if let Ok(Ok(mut found)) = found
                && found.any(|a| a.ip().to_canonical() == address.ip().to_canonical())
            {
                if local {
                    self.note(&format!(
                        "outbound connection denied: {name} resolves to {}, a loopback, link-local or other local address; an entry naming the address (tcp://{address}) would grant it",
                        address.ip()
                    ));
                    return false;
                }
                return true;
            }
        }
        self.note(&format!(
            "outbound connection denied: tcp://{address} is not granted by spec.allowedOutboundHosts"
        ));
        false
    }

    /// Opens an HTTP/1.1 connection to the request's destination if the
    /// allow-list grants it, to an address that passed the checks.
    pub(crate) async fn connect<B>(
        &self,
        uri: &http::Uri,
        connect_timeout: Duration,
    ) -> Result<SendRequest<B>, SendError>
    where
        B: hyper::body::Body + Send + 'static,
        B::Data: Send,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let destination =
            Destination::of_uri(uri).map_err(|m| SendError::new(Failure::Invalid, m))?;
        let grant = self.policy.check(&destination).map_err(|m| {
            self.note(&format!("outbound request denied: {m}"));
            SendError::new(Failure::Denied, m)
        })?;
        let addresses: Vec<IpAddr> = match &destination.host {
            DestinationHost::Ip(ip) => vec![*ip],
            DestinationHost::Name(name) => {
                let found = tokio::time::timeout(
                    connect_timeout,
                    tokio::net::lookup_host((name.as_str(), destination.port)),
                )
                .await
                .map_err(|_| {
                    SendError::new(Failure::Timeout, format!("resolving {name} timed out"))
                })?
                .map_err(|e| SendError::new(Failure::Dns, format!("cannot resolve {name}: {e}")))?;
                found.map(|a| a.ip()).collect()
            }
        };
        let mut refusal = None;
        let admitted: Vec<IpAddr> = addresses
            .into_iter()
            .filter(|ip| match grant.admits(*ip) {
                Ok(()) => true,
                Err(m) => {
                    refusal.get_or_insert(m);
                    false
                }
            })
            .collect();
        if admitted.is_empty() {
            let message = refusal
                .unwrap_or_else(|| format!("{destination}: the name resolves to no address"));
            self.note(&format!("outbound request denied: {message}"));
            return Err(SendError::new(Failure::Prohibited, message));
        }
        let stream = connect_any(&admitted, destination.port, connect_timeout).await?;
        let stream: Box<dyn Stream> = match destination.scheme {
            Scheme::Http => Box::new(stream),
            Scheme::Https => Box::new(tls(stream, &destination, connect_timeout).await?),
        };
        let (sender, connection) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
                .await
                .map_err(|e| SendError::new(Failure::Protocol, format!("{destination}: {e}")))?;
        // The connection ends when the answer is read or dropped.
        tokio::spawn(async move {
            let _ = connection.await;
        });
        Ok(sender)
    }

    /// Sends a whole request and reads the whole answer (the
    /// `wasmless:function/outbound` import).
    pub(crate) async fn send(
        &self,
        method: &str,
        url: &str,
        headers: &[(String, String)],
        body: Vec<u8>,
    ) -> Result<(u16, Vec<(String, String)>, Vec<u8>), SendError> {
        let uri: http::Uri = url
            .parse()
            .map_err(|e| SendError::new(Failure::Invalid, format!("`{url}` is not a URL: {e}")))?;
        let method = http::Method::from_bytes(method.as_bytes()).map_err(|_| {
            SendError::new(
                Failure::Invalid,
                format!("`{method}` is not an HTTP method"),
            )
        })?;
        let authority = uri
            .authority()
            .ok_or_else(|| SendError::new(Failure::Invalid, format!("`{url}` has no host")))?
            .clone();
        let mut request = http::Request::builder().method(method).uri(
            uri.path_and_query()
                .map(|p| p.as_str())
                .unwrap_or("/")
                .to_owned(),
        );
        for (name, value) in headers {
            let lower = name.to_ascii_lowercase();
            // The host says where the request goes, and frames it.
            if matches!(
                lower.as_str(),
                "host"
                    | "connection"
                    | "keep-alive"
                    | "proxy-connection"
                    | "transfer-encoding"
                    | "upgrade"
                    | "content-length"
                    | "te"
                    | "trailer"
                    | "http2-settings"
            ) {
                continue;
            }
            request = request.header(name.as_str(), value.as_str());
        }
        let request = request
            .header(http::header::HOST, authority.as_str())
            .body(http_body_util::Full::new(Bytes::from(body)))
            .map_err(|e| {
                SendError::new(Failure::Invalid, format!("the request is not valid: {e}"))
            })?;
        let mut sender = self.connect(&uri, CONNECT_TIMEOUT).await?;
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| SendError::new(Failure::Protocol, format!("{url}: {e}")))?;
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .map(|(name, value)| {
                (
                    name.as_str().to_owned(),
                    String::from_utf8_lossy(value.as_bytes()).into_owned(),
                )
            })
            .collect();
        let body = http_body_util::Limited::new(response.into_body(), MAX_RESPONSE_BODY)
            .collect()
            .await
            .map_err(|e| {
                if e.is::<http_body_util::LengthLimitError>() {
                    SendError::new(
                        Failure::Protocol,
                        format!(
                            "{url}: the response body exceeds {} MiB",
                            MAX_RESPONSE_BODY >> 20
                        ),
                    )
                } else {
                    SendError::new(
                        Failure::Protocol,
                        format!("{url}: reading the response: {e}"),
                    )
                }
            })?
            .to_bytes();
        Ok((status, headers, body.to_vec()))
    }
}

trait Stream: AsyncRead + AsyncWrite + Send + Unpin + 'static {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> Stream for T {}

/// Connects to the first of the addresses that answers.
async fn connect_any(
    addresses: &[IpAddr],
    port: u16,
    timeout: Duration,
) -> Result<TcpStream, SendError> {
    let mut last = SendError::new(Failure::Connect, "no address to connect to");
    for ip in addresses {
        let address = SocketAddr::new(*ip, port);
        match tokio::time::timeout(timeout, TcpStream::connect(address)).await {
            Ok(Ok(stream)) => return Ok(stream),
            Ok(Err(e)) => {
                last = SendError::new(Failure::Connect, format!("connecting to {address}: {e}"))
            }
            Err(_) => {
                last = SendError::new(
                    Failure::Timeout,
                    format!("connecting to {address} timed out"),
                )
            }
        }
    }
    Err(last)
}

/// The TLS client settings: the Mozilla roots built into the binary, so a
/// pod needs no CA bundle.
fn tls_config() -> Arc<rustls::ClientConfig> {
    static CONFIG: OnceLock<Arc<rustls::ClientConfig>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let roots = rustls::RootCertStore {
                roots: webpki_roots::TLS_SERVER_ROOTS.into(),
            };
            let config = rustls::ClientConfig::builder_with_provider(Arc::new(
                rustls::crypto::ring::default_provider(),
            ))
            .with_safe_default_protocol_versions()
            .expect("ring supports the default TLS versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
            Arc::new(config)
        })
        .clone()
}

async fn tls(
    stream: TcpStream,
    destination: &Destination,
    timeout: Duration,
) -> Result<tokio_rustls::client::TlsStream<TcpStream>, SendError> {
    use rustls::pki_types::ServerName;
    let name = match &destination.host {
        DestinationHost::Ip(ip) => ServerName::IpAddress((*ip).into()),
        DestinationHost::Name(name) => ServerName::try_from(name.clone())
            .map_err(|e| SendError::new(Failure::Invalid, format!("{destination}: {e}")))?,
    };
    let connector = tokio_rustls::TlsConnector::from(tls_config());
    tokio::time::timeout(timeout, connector.connect(name, stream))
        .await
        .map_err(|_| {
            SendError::new(
                Failure::Timeout,
                format!("{destination}: the TLS handshake timed out"),
            )
        })?
        .map_err(|e| SendError::new(Failure::Tls, format!("{destination}: TLS: {e}")))
}

type OutgoingFuture = Box<
    dyn Future<
            Output = wasmtime_wasi_http::Result<(
                http::Response<wasmtime_wasi_http::WasiBody>,
                Box<dyn Future<Output = wasmtime_wasi_http::Result<()>> + Send>,
            )>,
        > + Send,
>;

/// `wasi:http/outgoing-handler`: the same checks, the same connection.
impl wasmtime_wasi_http::WasiHttpHooks for Outbound {
    fn send_request(
        &mut self,
        mut request: http::Request<wasmtime_wasi_http::WasiBody>,
        options: Option<wasmtime_wasi_http::RequestOptions>,
        _fut: Box<dyn Future<Output = wasmtime_wasi_http::Result<()>> + Send>,
    ) -> OutgoingFuture {
        let outbound = self.clone();
        Box::new(async move {
            let connect_timeout = options
                .and_then(|o| o.connect_timeout)
                .unwrap_or(CONNECT_TIMEOUT);
            let first_byte = options.and_then(|o| o.first_byte_timeout);
            let mut sender = outbound
                .connect(request.uri(), connect_timeout)
                .await
                .map_err(|e| e.to_wasi())?;
            // Origin form: the Host header (set by wasi:http from the URL,
            // never by the guest) names the destination.
            let path = request
                .uri()
                .path_and_query()
                .map(|p| p.as_str().to_owned())
                .unwrap_or_else(|| "/".to_owned());
            *request.uri_mut() = path
                .parse()
                .map_err(|_| wasmtime_wasi_http::Error::HttpRequestUriInvalid)?;
            let sent = sender.send_request(request);
            let response = match first_byte {
                Some(limit) => tokio::time::timeout(limit, sent)
                    .await
                    .map_err(|_| wasmtime_wasi_http::Error::ConnectionReadTimeout)?,
                None => sent.await,
            }
            .map_err(wasmtime_wasi_http::Error::from)?;
            let response =
                response.map(|body| body.map_err(wasmtime_wasi_http::Error::from).boxed_unsync());
            Ok((
                response,
                Box::new(async { Ok(()) }) as Box<dyn Future<Output = _> + Send>,
            ))
        })
    }
}

use super::bindings::wasmless::function::outbound as wit;
use super::state::ComponentState;

impl wit::Host for ComponentState {
    async fn send(&mut self, request: wit::Request) -> Result<wit::Response, wit::OutboundError> {
        let deadline = tokio::time::Instant::from_std(self.deadline);
        let sent = self.outbound.send(
            &request.method,
            &request.url,
            &request.headers,
            request.body,
        );
        let (status, headers, body) = match tokio::time::timeout_at(deadline, sent).await {
            Ok(Ok(answer)) => answer,
            Ok(Err(err)) => {
                return Err(match err.kind {
                    Failure::Denied | Failure::Prohibited => {
                        wit::OutboundError::Denied(err.message)
                    }
                    Failure::Invalid => wit::OutboundError::Invalid(err.message),
                    _ => wit::OutboundError::Failed(err.message),
                });
            }
            Err(_) => {
                return Err(wit::OutboundError::Failed(format!(
                    "{}: no answer before the event's timeout",
                    request.url
                )));
            }
        };
        Ok(wit::Response {
            status,
            headers,
            body,
        })
    }
}

impl super::bindings::wasmless::function::types::Host for ComponentState {}

/// Links `wasmless:function/outbound` (and the types it uses).
pub(crate) fn add_to_linker(
    linker: &mut wasmtime::component::Linker<ComponentState>,
) -> wasmtime::Result<()> {
    super::bindings::Function::add_to_linker::<_, wasmtime::component::HasSelf<ComponentState>>(
        linker,
        |state| state,
    )
}
