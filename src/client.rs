//! A small HTTP client for the CLI verbs that talk to a running `up`.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

/// The answer to one request.
pub struct Answer {
    /// The status code.
    pub status: http::StatusCode,
    /// The body.
    pub body: Bytes,
}

/// Sends one request to `url` and reads the whole answer.
pub async fn send(
    method: http::Method,
    url: &str,
    content_type: Option<&str>,
    body: Vec<u8>,
) -> anyhow::Result<Answer> {
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let mut request = http::Request::builder().method(method).uri(url);
    if let Some(content_type) = content_type {
        request = request.header(http::header::CONTENT_TYPE, content_type);
    }
    let request = request
        .body(Full::new(Bytes::from(body)))
        .map_err(|e| anyhow::anyhow!("invalid URL {url}: {e}"))?;
    let response = client.request(request).await.map_err(|e| {
        anyhow::anyhow!("cannot reach wasmless at {url}: {e} (is `wasmless up` running? see --url)")
    })?;
    let status = response.status();
    let body = response.into_body().collect().await?.to_bytes();
    Ok(Answer { status, body })
}
