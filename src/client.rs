//! A small HTTP client for the CLI verbs that talk to a running `up`.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

/// The answer to one request.
pub struct Answer {
    /// The status code.
    pub status: http::StatusCode,
    /// The body.
    pub body: Bytes,
}

/// A client that keeps connections open between requests (a benchmark's
/// requests then measure the server, not TCP set-up). Use it within one
/// tokio runtime.
#[derive(Clone)]
pub struct Http {
    client: Client<HttpConnector, Full<Bytes>>,
}

impl Default for Http {
    fn default() -> Self {
        Self {
            client: Client::builder(TokioExecutor::new()).build_http(),
        }
    }
}

impl Http {
    /// Sends one request to `url` and reads the whole answer.
    pub async fn send(
        &self,
        method: http::Method,
        url: &str,
        content_type: Option<&str>,
        body: Vec<u8>,
    ) -> anyhow::Result<Answer> {
        let mut request = http::Request::builder().method(method).uri(url);
        if let Some(content_type) = content_type {
            request = request.header(http::header::CONTENT_TYPE, content_type);
        }
        let request = request
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| anyhow::anyhow!("invalid URL {url}: {e}"))?;
        let response = self.client.request(request).await.map_err(|e| {
            anyhow::anyhow!(
                "cannot reach wasmless at {url}: {e} (is `wasmless up` running? see --url)"
            )
        })?;
        let status = response.status();
        let body = response.into_body().collect().await?.to_bytes();
        Ok(Answer { status, body })
    }
}

/// Sends one request to `url` on a new connection and reads the whole
/// answer.
pub async fn send(
    method: http::Method,
    url: &str,
    content_type: Option<&str>,
    body: Vec<u8>,
) -> anyhow::Result<Answer> {
    Http::default().send(method, url, content_type, body).await
}

/// The admin API of a running `up`, on its Unix socket (see
/// [`crate::up::admin_socket`]).
#[derive(Clone, Debug)]
pub struct Admin {
    socket: std::path::PathBuf,
    url: String,
}

impl Admin {
    /// The admin API of the `up` at `url`: on `socket` when given, else on
    /// the socket `up` made for its port.
    pub fn new(url: &str, socket: Option<&std::path::Path>) -> anyhow::Result<Self> {
        let socket = match socket {
            Some(socket) => socket.to_owned(),
            None => crate::up::admin_socket::socket_for_url(url)?,
        };
        Ok(Self {
            socket,
            url: url.trim_end_matches('/').to_owned(),
        })
    }

    /// The URL of its function port.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Where its socket is.
    pub fn socket(&self) -> &std::path::Path {
        &self.socket
    }

    /// Sends one request for `path` (below `/_wasmless/`, with any query)
    /// on a new connection and reads the whole answer.
    pub async fn send(
        &self,
        method: http::Method,
        path: &str,
        content_type: Option<&str>,
        body: Vec<u8>,
    ) -> anyhow::Result<Answer> {
        let stream = tokio::net::UnixStream::connect(&self.socket)
            .await
            .map_err(|e| {
                anyhow::anyhow!(
                    "cannot reach the admin API of wasmless up at {} ({}: {e}); is `wasmless up` running on this machine as this user, on that port? see --url and --admin-socket",
                    self.url,
                    self.socket.display()
                )
            })?;
        let (mut sender, connection) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await?;
        tokio::spawn(async move {
            if let Err(err) = connection.await {
                tracing::debug!("admin connection ended: {err}");
            }
        });
        let uri = format!("{}{path}", crate::up::ADMIN_PREFIX);
        let mut request = http::Request::builder()
            .method(method)
            .uri(&uri)
            .header(http::header::HOST, "localhost");
        if let Some(content_type) = content_type {
            request = request.header(http::header::CONTENT_TYPE, content_type);
        }
        let request = request
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| anyhow::anyhow!("invalid admin path {uri}: {e}"))?;
        let response = sender.send_request(request).await?;
        let status = response.status();
        let body = response.into_body().collect().await?.to_bytes();
        Ok(Answer { status, body })
    }
}
