//! Connections over the bound: answered `503` at once and closed, with a
//! warning in the log at most every few seconds however many arrive.

use std::net::SocketAddr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::io::AsyncWriteExt as _;
use tokio::net::TcpStream;

/// How often a flood of refusals is logged.
const WARN_EVERY: Duration = Duration::from_secs(5);

/// How long a refused client gets to take its answer.
const ANSWER_WITHIN: Duration = Duration::from_secs(1);

/// The connections refused so far, and when that was last logged.
#[derive(Default)]
pub struct Refusals {
    count: AtomicU64,
    warned: Mutex<Option<(Instant, u64)>>,
}

impl Refusals {
    /// Answers `stream` 503 (there are `max` connections open already) and
    /// closes it, in the background.
    pub fn refuse(&self, stream: TcpStream, peer: SocketAddr, max: usize) {
        let count = self.count.fetch_add(1, Ordering::Relaxed) + 1;
        self.warn(peer, max, count);
        let body = format!(
            "too many open connections: this server takes {max} at once (--max-connections); try again\n"
        );
        let answer = format!(
            "HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: {}\r\nretry-after: 1\r\nconnection: close\r\n\r\n{body}",
            body.len()
        );
        tokio::spawn(async move {
            let mut stream = stream;
            let _ = tokio::time::timeout(ANSWER_WITHIN, async {
                stream.write_all(answer.as_bytes()).await?;
                stream.shutdown().await
            })
            .await;
        });
    }

    fn warn(&self, peer: SocketAddr, max: usize, count: u64) {
        let mut warned = self.warned.lock().expect("the refusals lock");
        let due = warned.is_none_or(|(at, _)| at.elapsed() >= WARN_EVERY);
        if due {
            let since = warned.map_or(count, |(_, then)| count - then);
            tracing::warn!(
                %peer,
                "{max} connections are open (--max-connections): refused {since} more"
            );
            *warned = Some((Instant::now(), count));
        }
    }
}
