//! Where `up`'s admin API listens: a Unix socket in a folder only its user
//! can open, named after the port `up` serves functions on, so that the CLI
//! finds it from `--url` alone.
//!
//! The function port never answers the admin API. A web page cannot reach
//! a Unix socket (DNS rebinding, a local reverse proxy and a function's
//! own outbound calls all speak TCP), and the folder's mode keeps other
//! users out. What reaches the socket anyway with a browser's headers
//! (`Origin`, `Sec-Fetch-*`) or a foreign `Host` is refused too.

use std::convert::Infallible;
use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use http::{HeaderMap, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::UnixListener;

use super::admin::ADMIN_PREFIX;
use super::server::{App, HttpResponse, plain};

/// The folder the admin sockets of this user's `up`s are in:
/// `$XDG_RUNTIME_DIR/wasmless`, else `wasmless-UID` in the temporary
/// folder.
pub fn default_folder() -> PathBuf {
    match dirs::runtime_dir() {
        Some(runtime) => runtime.join("wasmless"),
        None => std::env::temp_dir().join(format!("wasmless-{}", this_user().unwrap_or(0))),
    }
}

/// This process's user id (the owner of its /proc entry).
fn this_user() -> Option<u32> {
    std::fs::metadata("/proc/self").ok().map(|m| m.uid())
}

/// The admin socket of the `up` serving functions on `port`, in `folder`.
pub fn socket_for_port(folder: &Path, port: u16) -> PathBuf {
    folder.join(format!("{port}.sock"))
}

/// The admin socket of the `up` at `url` (`http://HOST:PORT`), in the
/// default folder.
pub fn socket_for_url(url: &str) -> anyhow::Result<PathBuf> {
    let uri: http::Uri = url
        .parse()
        .map_err(|e| anyhow::anyhow!("invalid URL {url}: {e}"))?;
    let port = uri.port_u16().unwrap_or(80);
    Ok(socket_for_port(&default_folder(), port))
}

/// Why the admin socket could not be made.
#[derive(Debug, thiserror::Error)]
pub enum BindError {
    /// The folder could not be made private to this user.
    #[error("{path}: {reason}")]
    Folder {
        /// The folder.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// Another `up` answers on it.
    #[error(
        "{0}: another wasmless up answers on this admin socket (it serves the same port on another address); give --admin-socket"
    )]
    InUse(PathBuf),
    /// The socket could not be bound.
    #[error("{path}: {source}")]
    Bind {
        /// The socket's path.
        path: PathBuf,
        /// What failed.
        source: std::io::Error,
    },
}

/// The admin socket, bound; the file is removed when this is dropped.
pub struct AdminSocket {
    listener: UnixListener,
    path: PathBuf,
}

impl AdminSocket {
    /// Binds `path`, making its folder private to this user first (mode
    /// 0700, refused when another user owns it) and the socket 0600. A
    /// socket left by an `up` that died is replaced; a live one is not.
    pub async fn bind(path: &Path) -> Result<Self, BindError> {
        let folder = path.parent().unwrap_or(Path::new("."));
        private_folder(folder).map_err(|reason| BindError::Folder {
            path: folder.to_owned(),
            reason,
        })?;
        if path.exists() {
            if tokio::net::UnixStream::connect(path).await.is_ok() {
                return Err(BindError::InUse(path.to_owned()));
            }
            let _ = std::fs::remove_file(path);
        }
        let bind_error = |source| BindError::Bind {
            path: path.to_owned(),
            source,
        };
        let listener = UnixListener::bind(path).map_err(bind_error)?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
            .map_err(bind_error)?;
        Ok(Self {
            listener,
            path: path.to_owned(),
        })
    }

    /// Where it is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Serves the admin API of `app` until the task is dropped.
    pub async fn serve(&self, app: Arc<App>) {
        loop {
            let stream = match self.listener.accept().await {
                Ok((stream, _)) => stream,
                Err(err) => {
                    tracing::warn!("accepting an admin connection failed: {err}");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            };
            let app = app.clone();
            tokio::spawn(async move {
                let builder = app.connection_limits().http1();
                let service = hyper::service::service_fn(move |req| {
                    let app = app.clone();
                    async move { Ok::<_, Infallible>(answer(&app, req).await) }
                });
                let served = builder
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
                if let Err(err) = served {
                    tracing::debug!("admin connection ended: {err}");
                }
            });
        }
    }
}

impl Drop for AdminSocket {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

async fn answer(app: &Arc<App>, req: http::Request<hyper::body::Incoming>) -> HttpResponse {
    if let Some(refusal) = refusal(req.headers()) {
        tracing::warn!("admin API: refused a request: {refusal}");
        super::server::drain(req.into_body(), 64 << 20).await;
        return plain(StatusCode::FORBIDDEN, format!("{refusal}\n"));
    }
    let path = req.uri().path().to_owned();
    match path.strip_prefix(ADMIN_PREFIX) {
        Some(rest) => app.handle_admin(req, rest).await,
        None => plain(
            StatusCode::NOT_FOUND,
            format!("the admin API is under {ADMIN_PREFIX}\n"),
        ),
    }
}

/// Why a request is refused, if it is: one a browser sent (it names the
/// page's origin or its fetch metadata), or one for another host.
pub fn refusal(headers: &HeaderMap) -> Option<String> {
    for name in [
        "origin",
        "sec-fetch-site",
        "sec-fetch-mode",
        "sec-fetch-dest",
    ] {
        if headers.contains_key(name) {
            return Some(format!(
                "the admin API does not answer browsers (the request has an {name} header)"
            ));
        }
    }
    let host = headers.get(http::header::HOST)?;
    let host = host.to_str().unwrap_or_default();
    let name = match host.rsplit_once(':') {
        Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
        _ => host,
    };
    let local = name.eq_ignore_ascii_case("localhost")
        || name
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    (!local).then(|| format!("the admin API answers local clients only, not Host {host}"))
}

/// Makes `folder` (and its parents) and keeps it this user's only.
fn private_folder(folder: &Path) -> Result<(), String> {
    std::fs::create_dir_all(folder).map_err(|e| format!("cannot create it: {e}"))?;
    let meta = std::fs::symlink_metadata(folder).map_err(|e| e.to_string())?;
    if !meta.is_dir() {
        return Err("not a folder".to_owned());
    }
    let me = this_user().unwrap_or(meta.uid());
    if meta.uid() != me {
        return Err(format!(
            "owned by user {}, not by this user ({me}); give --admin-socket in a folder of yours",
            meta.uid()
        ));
    }
    if meta.mode() & 0o077 != 0 {
        std::fs::set_permissions(folder, std::fs::Permissions::from_mode(0o700))
            .map_err(|e| format!("cannot make it private (mode 0700): {e}"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(k, v)| {
                (
                    http::HeaderName::from_static(k),
                    http::HeaderValue::from_static(v),
                )
            })
            .collect()
    }

    #[test]
    fn the_cli_s_own_requests_pass() {
        assert_eq!(refusal(&headers(&[])), None);
        assert_eq!(refusal(&headers(&[("host", "localhost")])), None);
        assert_eq!(refusal(&headers(&[("host", "127.0.0.1:8080")])), None);
        assert_eq!(refusal(&headers(&[("host", "[::1]:8080")])), None);
    }

    #[test]
    fn browsers_and_foreign_hosts_are_refused() {
        for refused in [
            headers(&[("host", "localhost"), ("origin", "http://evil.example")]),
            headers(&[("host", "localhost"), ("sec-fetch-site", "cross-site")]),
            headers(&[("host", "localhost"), ("sec-fetch-mode", "no-cors")]),
            headers(&[("host", "evil.example")]),
            headers(&[("host", "evil.example:8080")]),
            headers(&[("host", "127.0.0.1.evil.example")]),
        ] {
            assert!(refusal(&refused).is_some(), "{refused:?}");
        }
    }

    #[test]
    fn a_socket_is_named_after_the_function_port() {
        let folder = Path::new("/run/user/1000/wasmless");
        assert_eq!(
            socket_for_port(folder, 8080),
            Path::new("/run/user/1000/wasmless/8080.sock")
        );
        assert!(
            socket_for_url("http://127.0.0.1:9123")
                .expect("a URL")
                .ends_with("9123.sock")
        );
        assert!(
            socket_for_url("http://localhost")
                .expect("a URL")
                .ends_with("80.sock")
        );
    }
}
