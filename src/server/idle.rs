//! Idle connections give their slot back.
//!
//! hyper closes an idle HTTP/1.1 keep-alive connection when no request head arrives within
//! `header_timeout`, but an HTTP/2 connection stays open as long as the client answers pings:
//! `max_connections` idle HTTP/2 connections would lock every other sender out. So each
//! connection counts its requests in flight, from the first byte of the head to the last byte
//! of the answer (the answer's body streams after the handler returns), and is closed once it
//! has had none for the idle timeout.

use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use http_body::{Body, Frame, SizeHint};
use tokio::time::Instant;

/// Requests in flight on one connection, and when the last one ended.
#[derive(Debug)]
pub struct Activity {
    start: Instant,
    active: AtomicUsize,
    /// Milliseconds after `start` at which the connection last had a request end.
    last_ms: AtomicU64,
}

impl Activity {
    /// For a connection accepted at `start`: until its first request begins, it counts as idle
    /// since then.
    pub fn new(start: Instant) -> Arc<Self> {
        Arc::new(Self {
            start,
            active: AtomicUsize::new(0),
            last_ms: AtomicU64::new(0),
        })
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
        self.0.active.fetch_sub(1, Ordering::SeqCst);
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
}
