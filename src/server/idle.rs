//! Idle connections give their slot back.
//!
//! hyper closes an idle HTTP/1.1 keep-alive connection when no request head arrives within
//! `header_timeout`, but an HTTP/2 connection stays open as long as the client answers pings:
//! `max_connections` idle HTTP/2 connections would lock every other sender out. So each
//! connection counts its requests in flight, from the first byte of the head to the last byte
//! of the answer (the answer's body streams after the handler returns), and is closed once it
//! has had none for the idle timeout.
//!
//! The connection's bytes are counted too ([`Counted`]), so that a close for the timeout can
//! tell a client that began a request head and never finished it (a header timeout: logged and
//! counted) from one that merely stayed idle between requests (a normal end).

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use http_body::{Body, Frame, SizeHint};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Instant;

/// What an HTTP/2 client sends first.
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// The protocol, as far as the first bytes tell.
const UNKNOWN: u8 = 0;
const HTTP2: u8 = 1;
const HTTP1: u8 = 2;

/// Requests in flight on one connection, and when the last one ended.
#[derive(Debug)]
pub struct Activity {
    start: Instant,
    active: AtomicUsize,
    /// Milliseconds after `start` at which the connection last had a request end.
    last_ms: AtomicU64,
    /// Bytes read from the client, and how many had been read when the last request ended.
    read: AtomicU64,
    read_at_rest: AtomicU64,
    protocol: AtomicU8,
}

impl Activity {
    /// For a connection accepted at `start`: until its first request begins, it counts as idle
    /// since then.
    pub fn new(start: Instant) -> Arc<Self> {
        Arc::new(Self {
            start,
            active: AtomicUsize::new(0),
            last_ms: AtomicU64::new(0),
            read: AtomicU64::new(0),
            read_at_rest: AtomicU64::new(0),
            protocol: AtomicU8::new(UNKNOWN),
        })
    }

    /// Whether an HTTP/1 request head has begun (bytes arrived since the last request ended,
    /// or since accept) with no request in flight. HTTP/2 clients send frames of their own
    /// (pings, settings) between requests, so they never count as in a head.
    pub fn head_started(&self) -> bool {
        self.active.load(Ordering::SeqCst) == 0
            && self.protocol.load(Ordering::Relaxed) != HTTP2
            && self.read.load(Ordering::SeqCst) > self.read_at_rest.load(Ordering::SeqCst)
    }

    /// Counts bytes read from the client; the first ones say whether it speaks HTTP/2.
    fn on_read(&self, bytes: &[u8]) {
        let len = u64::try_from(bytes.len()).unwrap_or(u64::MAX);
        let at = self.read.fetch_add(len, Ordering::SeqCst);
        let Ok(at) = usize::try_from(at) else {
            return;
        };
        if at >= H2_PREFACE.len() || self.protocol.load(Ordering::Relaxed) != UNKNOWN {
            return;
        }
        let expected = &H2_PREFACE[at..];
        let n = expected.len().min(bytes.len());
        let protocol = if bytes[..n] != expected[..n] {
            HTTP1
        } else if at + n == H2_PREFACE.len() {
            HTTP2
        } else {
            UNKNOWN
        };
        self.protocol.store(protocol, Ordering::Relaxed);
    }

    /// Marks a request as started; it ends when the returned guard is dropped.
    pub fn begin(self: &Arc<Self>) -> InFlight {
        self.active.fetch_add(1, Ordering::SeqCst);
        InFlight(self.clone())
    }

    /// When the connection will have been idle for `idle`, or `None` while a request is in
    /// flight.
    pub fn idle_deadline(&self, idle: Duration) -> Option<Instant> {
        if self.active.load(Ordering::SeqCst) > 0 {
            return None;
        }
        let last = self.start + Duration::from_millis(self.last_ms.load(Ordering::SeqCst));
        Some(last + idle)
    }
}

/// One request in flight; dropping it ends the request.
#[derive(Debug)]
pub struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        let ms = u64::try_from(self.0.start.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.0.last_ms.fetch_max(ms, Ordering::SeqCst);
        let read = self.0.read.load(Ordering::SeqCst);
        self.0.read_at_rest.fetch_max(read, Ordering::SeqCst);
        self.0.active.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A client connection whose reads are counted in its [`Activity`].
pub struct Counted<I> {
    inner: I,
    activity: Arc<Activity>,
}

impl<I> Counted<I> {
    pub fn new(inner: I, activity: Arc<Activity>) -> Self {
        Self { inner, activity }
    }
}

impl<I: AsyncRead + Unpin> AsyncRead for Counted<I> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = polled {
            if let Some(new) = buf.filled().get(before..) {
                self.activity.on_read(new);
            }
        }
        polled
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for Counted<I> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// A response body that keeps its request in flight until the body ends or is dropped.
pub struct Tracked<B> {
    inner: B,
    guard: Option<InFlight>,
}

impl<B> Tracked<B> {
    pub fn new(inner: B, guard: InFlight) -> Self {
        Self {
            inner,
            guard: Some(guard),
        }
    }
}

impl<B: Body + Unpin> Body for Tracked<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if matches!(polled, Poll::Ready(None) | Poll::Ready(Some(Err(_)))) {
            self.guard = None;
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use http_body_util::{BodyExt, Full};

    #[tokio::test]
    async fn idle_only_without_requests_in_flight() {
        let a = Activity::new(Instant::now());
        let idle = Duration::from_secs(5);
        assert_eq!(a.idle_deadline(idle), Some(a.start + idle));
        let guard = a.begin();
        assert_eq!(a.idle_deadline(idle), None);
        let body = Tracked::new(Full::new(Bytes::from_static(b"answer")), guard);
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert_eq!(a.idle_deadline(idle), None, "the answer is still streaming");
        let collected = body.collect().await.map(|c| c.to_bytes());
        assert_eq!(collected.ok(), Some(Bytes::from_static(b"answer")));
        let since = a.idle_deadline(idle).expect("idle again") - idle;
        assert!(
            since >= a.start + Duration::from_millis(20),
            "idle counted from the end"
        );
        assert!(since <= Instant::now());
        // A dropped answer (the sender went away) ends the request too.
        let body = Tracked::new(Full::new(Bytes::new()), a.begin());
        assert_eq!(a.idle_deadline(idle), None);
        drop(body);
        assert!(a.idle_deadline(idle).is_some());
    }

    #[tokio::test]
    async fn a_head_begun_and_not_finished_is_told_from_an_idle_connection() {
        let a = Activity::new(Instant::now());
        assert!(!a.head_started(), "nothing read yet");
        a.on_read(b"POST /hooks HTTP/1.1\r\nHost: x\r\n");
        assert!(a.head_started());
        let request = a.begin();
        assert!(!a.head_started(), "a request in flight");
        a.on_read(b"{}");
        drop(request);
        assert!(!a.head_started(), "idle after a request");
        a.on_read(b"P");
        assert!(a.head_started(), "the next head began");

        // HTTP/2: frames between requests are not a head; half a preface is.
        let h2 = Activity::new(Instant::now());
        h2.on_read(&H2_PREFACE[..10]);
        assert!(h2.head_started(), "half a preface");
        h2.on_read(&H2_PREFACE[10..]);
        h2.on_read(b"\0\0\0\x04\0\0\0\0\0");
        assert!(!h2.head_started(), "an HTTP/2 connection");
        let h1 = Activity::new(Instant::now());
        h1.on_read(b"PRI * HTTP/1.1\r\n");
        assert_eq!(h1.protocol.load(Ordering::Relaxed), HTTP1);
    }
}
