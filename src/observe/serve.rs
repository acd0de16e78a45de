//! The HTTP/1 server loop: accepts connections and serves each on a task of its own, kept in a
//! `JoinSet` that the loop owns, so that when the observer's task is cancelled at its stop
//! every connection ends with it (no connection task outlives the service).
//!
//! # Invariants
//! - At most `max_connections` connections are served at once; one more is closed as soon as
//!   it is accepted.
//! - A write that makes no progress for `write_timeout` (the client stopped reading) fails the
//!   connection: a client that never reads costs at most its socket buffers and hyper's write
//!   buffer, for at most that long.
//! - Request headers must arrive within 10 s.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::task::JoinSet;
use tokio::time::Sleep;

/// How long a client may take to send a request's headers.
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// What the server loop counts, for the status endpoint.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    /// Connections open now.
    pub(crate) connections: AtomicUsize,
    /// Connections closed because a write made no progress in time.
    pub(crate) writes_timed_out: AtomicU64,
    /// Connections refused because `max_connections` were open.
    pub(crate) refused: AtomicU64,
}

/// Binds `addr` (with `SO_REUSEADDR`, so a restarted observer gets its port back at once), with
/// `send_buffer` as the send buffer of the connections it accepts (they inherit it).
pub(crate) fn bind(addr: SocketAddr, send_buffer: Option<u32>) -> io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    if let Some(bytes) = send_buffer {
        socket.set_send_buffer_size(bytes)?;
    }
    socket.bind(addr)?;
    socket.listen(1024)
}

/// Serves `app` on `listener` until cancelled.
pub(crate) async fn serve(
    listener: TcpListener,
    app: Router,
    max_connections: usize,
    write_timeout: Duration,
    counters: Arc<Counters>,
) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) => {
                    if connections.len() >= max_connections {
                        counters.refused.fetch_add(1, Ordering::Relaxed);
                        drop(stream);
                        continue;
                    }
                    let _ = stream.set_nodelay(true);
                    let io = TokioIo::new(StallGuard::new(stream, write_timeout, counters.clone()));
                    let service = TowerToHyperService::new(app.clone());
                    counters.connections.fetch_add(1, Ordering::Relaxed);
                    let counted = Counted(counters.clone());
                    connections.spawn(async move {
                        let _counted = counted;
                        let conn = hyper::server::conn::http1::Builder::new()
                            .timer(TokioTimer::new())
                            .header_read_timeout(HEADER_TIMEOUT)
                            .serve_connection(io, service);
                        // A client going away mid-response is an ordinary end.
                        let _ = conn.await;
                    });
                }
                Err(e) => {
                    // Out of file descriptors, say: wait a little instead of spinning.
                    tracing::warn!(target: "modo::observe", "accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

/// Counts a connection as open for as long as its task lives (also when it is aborted).
struct Counted(Arc<Counters>);

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.connections.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A TCP stream whose writes fail once one has made no progress for `timeout`.
struct StallGuard {
    inner: TcpStream,
    timeout: Duration,
    /// Armed when a write is pending; disarmed when one makes progress.
    stalled: Option<Pin<Box<Sleep>>>,
    counters: Arc<Counters>,
}

impl StallGuard {
    fn new(inner: TcpStream, timeout: Duration, counters: Arc<Counters>) -> Self {
        StallGuard {
            inner,
            timeout,
            stalled: None,
            counters,
        }
    }

    /// Called when a write is pending: errors once the pending has lasted `timeout`.
    fn check_stall(&mut self, cx: &mut Context<'_>) -> Poll<io::Error> {
        let timeout = self.timeout;
        let sleep = self
            .stalled
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
        ready!(sleep.as_mut().poll(cx));
        self.counters
            .writes_timed_out
            .fetch_add(1, Ordering::Relaxed);
        Poll::Ready(io::Error::new(
            io::ErrorKind::TimedOut,
            "the client stopped reading",
        ))
    }

    fn progress<T>(
        &mut self,
        cx: &mut Context<'_>,
        poll: Poll<io::Result<T>>,
    ) -> Poll<io::Result<T>> {
        match poll {
            Poll::Ready(r) => {
                self.stalled = None;
                Poll::Ready(r)
            }
            Poll::Pending => self.check_stall(cx).map(Err),
        }
    }
}

impl AsyncRead for StallGuard {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for StallGuard {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let poll = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.progress(cx, poll)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let poll = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.progress(cx, poll)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let poll = Pin::new(&mut self.inner).poll_flush(cx);
        self.progress(cx, poll)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let poll = Pin::new(&mut self.inner).poll_shutdown(cx);
        self.progress(cx, poll)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    /// A peer that never reads: the writer's pending write fails after the timeout.
    #[tokio::test]
    async fn a_write_that_makes_no_progress_fails_after_the_timeout() {
        let listener = bind("127.0.0.1:0".parse().unwrap(), Some(64 * 1024)).unwrap();
        let addr = listener.local_addr().unwrap();
        let _peer = TcpStream::connect(addr).await.unwrap();
        let (stream, _) = listener.accept().await.unwrap();
        let counters = Arc::new(Counters::default());
        let mut guarded = StallGuard::new(stream, Duration::from_millis(200), counters.clone());
        let chunk = vec![0u8; 64 * 1024];
        let started = tokio::time::Instant::now();
        let err = loop {
            if let Err(e) = guarded.write_all(&chunk).await {
                break e;
            }
            assert!(started.elapsed() < Duration::from_secs(20), "never stalled");
        };
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert_eq!(counters.writes_timed_out.load(Ordering::Relaxed), 1);
    }
}
