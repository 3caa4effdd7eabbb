//! The HTTP listener: accepts connections up to a cap and closes slow or idle ones.
//!
//! `axum::serve` has no limits at all, so one client could hold a connection (and its task
//! and file descriptor) forever with a half-sent header, a trickled body or an idle
//! keep-alive. Each connection here moves through three phases, each with its own limit:
//! reading a request head (header timeout, from the first byte or from the connect),
//! running a request (the body must arrive within the body timeout; the handler itself is
//! not limited), and waiting idle for the next request (idle timeout). A watchdog per
//! connection drops it when the current phase's deadline passes.

use crate::server::body::{BodyTimeout, limit_for};
use crate::server::client_ip::{self, ClientIp};
use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use bytes::Bytes;
use http_body::{Frame, SizeHint};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use ipnet::IpNet;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, Semaphore};
use tokio::time::Instant;
use tower::ServiceExt;

/// Limits of the HTTP listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpLimits {
    /// Time from the connect, or from the first byte of a later request, to a complete head.
    pub header_timeout: Duration,
    /// Time from a complete head to the end of its body.
    pub body_timeout: Duration,
    /// Time a keep-alive connection may wait for its next request.
    pub idle_timeout: Duration,
    /// Connections served at once; more are answered 503 and closed.
    pub max_connections: usize,
}

impl Default for HttpLimits {
    fn default() -> Self {
        HttpLimits {
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(60),
            max_connections: 1024,
        }
    }
}

/// The problem document a connection over the cap gets, shaped like every other `Problem`.
const BUSY_BODY: &str = concat!(
    r#"{"type":"urn:mikrobill:problem:too_many_connections","title":"Service Unavailable","#,
    r#""status":503,"detail":"the server has too many open connections; try again shortly","#,
    r#""code":"too_many_connections"}"#
);

/// What a connection over the cap gets before it is closed (written raw: no request is read).
fn busy_response() -> Vec<u8> {
    format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/problem+json\r\nretry-after: 1\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{BUSY_BODY}",
        BUSY_BODY.len()
    )
    .into_bytes()
}

/// How long open connections may finish their requests once shutdown starts.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Serves `app` on `listener` under `limits` until `shutdown` resolves, then lets open
/// connections finish their current request (up to a grace period).
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: HttpLimits,
    trusted_proxies: Arc<[IpNet]>,
    shutdown: impl Future<Output = ()>,
) {
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut connections = tokio::task::JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            () = &mut shutdown => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => continue,
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    // Out of file descriptors or a connection reset before accept: wait a
                    // little instead of spinning, and keep serving the open connections.
                    tracing::warn!("cannot accept an HTTP connection: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        match permits.clone().try_acquire_owned() {
            Ok(permit) => {
                let app = app.clone();
                let stop = stop_rx.clone();
                let trusted = trusted_proxies.clone();
                connections.spawn(async move {
                    metrics::gauge!("mikrobill_http_connections").increment(1.0);
                    serve_connection(stream, peer, app, limits, trusted, stop).await;
                    metrics::gauge!("mikrobill_http_connections").decrement(1.0);
                    drop(permit);
                });
            }
            Err(_) => {
                metrics::counter!("mikrobill_http_connections_refused_total").increment(1);
                tracing::debug!(%peer, "connection cap reached; refusing");
                connections.spawn(refuse(stream));
            }
        }
    }
    drop(listener);
    let _ = stop_tx.send(true);
    let drain = async { while connections.join_next().await.is_some() {} };
    if tokio::time::timeout(SHUTDOWN_GRACE, drain).await.is_err() {
        connections.abort_all();
    }
}

/// Answers a connection over the cap with 503 and closes it, without reading its request.
async fn refuse(mut stream: TcpStream) {
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        stream.write_all(&busy_response()).await?;
        stream.shutdown().await
    })
    .await;
}

/// Why the watchdog closed a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expired {
    Header,
    Idle,
}

impl Expired {
    fn label(self) -> &'static str {
        match self {
            Expired::Header => "header_timeout",
            Expired::Idle => "idle_timeout",
        }
    }
}

async fn serve_connection(
    stream: TcpStream,
    peer: SocketAddr,
    app: Router,
    limits: HttpLimits,
    trusted: Arc<[IpNet]>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let phase = Arc::new(PhaseClock::new(Instant::now()));
    let io = TokioIo::new(Watched {
        inner: stream,
        phase: phase.clone(),
    });
    let service_phase = phase.clone();
    let service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
        let guard = RequestGuard::begin(service_phase.clone());
        let declared_too_large = request
            .headers()
            .get(http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .is_some_and(|n| n > limit_for(request.uri().path()) as u64);
        let mut request =
            request.map(|body| Body::new(DeadlineBody::new(body, limits.body_timeout)));
        let client = client_ip::resolve(
            peer.ip(),
            request
                .headers()
                .get_all("x-forwarded-for")
                .iter()
                .filter_map(|v| v.to_str().ok()),
            &trusted,
        );
        request.extensions_mut().insert(ClientIp(client));
        request.extensions_mut().insert(ConnectInfo(peer));
        let app = app.clone();
        async move {
            if declared_too_large {
                drop(guard);
                return Ok(too_large());
            }
            let response = app.oneshot(request).await;
            drop(guard);
            response
        }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    // The watchdog keeps the header deadline itself: hyper's own timer would also start
    // while a keep-alive connection waits idle, merging two limits into one.
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(None)
        .keep_alive(true);
    let connection = builder.serve_connection(io, service);
    tokio::pin!(connection);
    let watchdog = watch(&phase, limits);
    tokio::pin!(watchdog);
    tokio::select! {
        result = connection.as_mut() => {
            if let Err(e) = result {
                tracing::debug!(%peer, "HTTP connection ended: {e}");
            }
        }
        expired = &mut watchdog => {
            metrics::counter!("mikrobill_http_connections_closed_total", "reason" => expired.label())
                .increment(1);
            tracing::debug!(%peer, reason = expired.label(), "closing a slow or idle HTTP connection");
        }
        () = async { let _ = stop.wait_for(|s| *s).await; } => {
            connection.as_mut().graceful_shutdown();
            tokio::select! {
                _ = connection.as_mut() => {}
                _ = &mut watchdog => {}
            }
        }
    }
}

/// The answer to a body declared over [`MAX_BODY_BYTES`]: the same problem a handler gives
/// when it finds out by reading.
fn too_large() -> axum::response::Response {
    use axum::response::IntoResponse;
    let mut response = crate::server::problem::payload_too_large().into_response();
    // The body is left unread, so this connection cannot carry another request.
    response.headers_mut().insert(
        http::header::CONNECTION,
        http::HeaderValue::from_static("close"),
    );
    response
}

/// Resolves when the connection's current phase has outlived its limit.
async fn watch(phase: &PhaseClock, limits: HttpLimits) -> Expired {
    loop {
        let changed = phase.changed.notified();
        tokio::pin!(changed);
        // Registered before reading the phase, so a change in between still wakes us.
        changed.as_mut().enable();
        match phase.deadline(limits) {
            None => changed.await,
            Some((deadline, why)) => {
                if Instant::now() >= deadline {
                    return why;
                }
                tokio::select! {
                    () = tokio::time::sleep_until(deadline) => {}
                    () = changed => {}
                }
            }
        }
    }
}

/// Where a connection is in its request cycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Reading a request head since the given instant.
    Head(Instant),
    /// Requests in flight: their bodies carry their own deadline.
    Busy(u32),
    /// Waiting for the next request since the given instant.
    Idle(Instant),
}

/// The phase of one connection, shared by its socket, its service and its watchdog.
struct PhaseClock {
    phase: Mutex<Phase>,
    changed: Notify,
}

impl PhaseClock {
    fn new(now: Instant) -> Self {
        PhaseClock {
            phase: Mutex::new(Phase::Head(now)),
            changed: Notify::new(),
        }
    }

    fn update(&self, f: impl FnOnce(Phase) -> Phase) {
        let mut phase = self.phase.lock().unwrap_or_else(|p| p.into_inner());
        let next = f(*phase);
        if next != *phase {
            *phase = next;
            self.changed.notify_waiters();
        }
    }

    fn deadline(&self, limits: HttpLimits) -> Option<(Instant, Expired)> {
        let phase = *self.phase.lock().unwrap_or_else(|p| p.into_inner());
        next_deadline(phase, limits)
    }
}

/// The instant the phase expires, and why; none while requests run.
fn next_deadline(phase: Phase, limits: HttpLimits) -> Option<(Instant, Expired)> {
    match phase {
        Phase::Head(since) => Some((since + limits.header_timeout, Expired::Header)),
        Phase::Busy(_) => None,
        Phase::Idle(since) => Some((since + limits.idle_timeout, Expired::Idle)),
    }
}

/// The phase after bytes arrived.
fn on_read(phase: Phase, now: Instant) -> Phase {
    match phase {
        Phase::Idle(_) => Phase::Head(now),
        other => other,
    }
}

/// The phase after bytes were sent: a response still being written keeps the connection
/// from counting as idle.
fn on_write(phase: Phase, now: Instant) -> Phase {
    match phase {
        Phase::Idle(_) => Phase::Idle(now),
        other => other,
    }
}

/// The phase once a request's head is parsed and its handler starts.
fn on_request(phase: Phase) -> Phase {
    match phase {
        Phase::Busy(n) => Phase::Busy(n + 1),
        _ => Phase::Busy(1),
    }
}

/// The phase once a handler has answered.
fn on_response(phase: Phase, now: Instant) -> Phase {
    match phase {
        Phase::Busy(n) if n > 1 => Phase::Busy(n - 1),
        _ => Phase::Idle(now),
    }
}

/// Marks a request in flight for as long as it lives (also when the handler is dropped).
struct RequestGuard(Arc<PhaseClock>);

impl RequestGuard {
    fn begin(phase: Arc<PhaseClock>) -> Self {
        phase.update(on_request);
        RequestGuard(phase)
    }
}

impl Drop for RequestGuard {
    fn drop(&mut self) {
        self.0.update(|p| on_response(p, Instant::now()));
    }
}

/// A socket that tells its phase clock when bytes move.
struct Watched {
    inner: TcpStream,
    phase: Arc<PhaseClock>,
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let result = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(result, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.phase.update(|p| on_read(p, Instant::now()));
        }
        result
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(result, Poll::Ready(Ok(n)) if n > 0) {
            self.phase.update(|p| on_write(p, Instant::now()));
        }
        result
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(result, Poll::Ready(Ok(n)) if n > 0) {
            self.phase.update(|p| on_write(p, Instant::now()));
        }
        result
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// A request body that fails once its deadline passes, however the bytes trickle in.
struct DeadlineBody {
    inner: Incoming,
    limit: Duration,
    deadline: Pin<Box<tokio::time::Sleep>>,
}

impl DeadlineBody {
    fn new(inner: Incoming, limit: Duration) -> Self {
        DeadlineBody {
            inner,
            limit,
            deadline: Box::pin(tokio::time::sleep(limit)),
        }
    }
}

impl http_body::Body for DeadlineBody {
    type Data = Bytes;
    type Error = axum::BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        if let Poll::Ready(frame) = Pin::new(&mut self.inner).poll_frame(cx) {
            return Poll::Ready(frame.map(|f| f.map_err(Into::into)));
        }
        if self.deadline.as_mut().poll(cx).is_ready() {
            let limit = self.limit;
            return Poll::Ready(Some(Err(BodyTimeout::after(limit).into())));
        }
        Poll::Pending
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
    use proptest::prelude::*;

    #[test]
    fn the_busy_answer_is_a_complete_problem_document() {
        let raw = String::from_utf8(busy_response()).unwrap();
        let (head, body) = raw.split_once("\r\n\r\n").unwrap();
        assert!(head.contains(&format!("content-length: {}", body.len())));
        let v: serde_json::Value = serde_json::from_str(body).unwrap();
        for key in ["type", "title", "status", "detail", "code"] {
            assert!(v.get(key).is_some(), "{key} missing: {v}");
        }
        assert_eq!(v["status"], 503);
    }

    fn limits() -> HttpLimits {
        HttpLimits {
            header_timeout: Duration::from_secs(5),
            body_timeout: Duration::from_secs(7),
            idle_timeout: Duration::from_secs(60),
            max_connections: 4,
        }
    }

    #[derive(Debug, Clone, Copy)]
    enum Step {
        Read,
        Write,
        Request,
        Response,
    }

    fn step() -> impl Strategy<Value = (Step, u64)> {
        (
            prop_oneof![
                Just(Step::Read),
                Just(Step::Write),
                Just(Step::Request),
                Just(Step::Response)
            ],
            0u64..10_000,
        )
    }

    proptest! {
        /// Whatever happens on a connection, it is either running a request (no deadline) or
        /// has exactly the deadline of its phase, and that deadline never lies in the past of
        /// the moment the phase began.
        #[test]
        fn every_phase_has_its_own_limit(steps in proptest::collection::vec(step(), 0..40)) {
            let start = Instant::now();
            let mut now = start;
            let mut phase = Phase::Head(start);
            let mut in_flight: u32 = 0;
            for (s, ms) in steps {
                now += Duration::from_millis(ms);
                match s {
                    Step::Read => phase = on_read(phase, now),
                    Step::Write => phase = on_write(phase, now),
                    Step::Request => { in_flight += 1; phase = on_request(phase) }
                    Step::Response if in_flight > 0 => { in_flight -= 1; phase = on_response(phase, now) }
                    Step::Response => {}
                }
                match (phase, next_deadline(phase, limits())) {
                    (Phase::Busy(n), None) => prop_assert_eq!(n, in_flight),
                    (Phase::Head(since), Some((d, Expired::Header))) => {
                        prop_assert_eq!(in_flight, 0);
                        prop_assert_eq!(d, since + limits().header_timeout);
                    }
                    (Phase::Idle(since), Some((d, Expired::Idle))) => {
                        prop_assert_eq!(in_flight, 0);
                        prop_assert_eq!(d, since + limits().idle_timeout);
                    }
                    other => prop_assert!(false, "inconsistent phase {:?}", other),
                }
            }
        }
    }

    #[test]
    fn a_new_request_after_idle_gets_the_header_limit_from_its_first_byte() {
        let t0 = Instant::now();
        let t1 = t0 + Duration::from_secs(30);
        let idle = on_response(on_request(Phase::Head(t0)), t0);
        assert_eq!(idle, Phase::Idle(t0));
        assert_eq!(on_read(idle, t1), Phase::Head(t1));
        // Bytes of a pipelined request while one runs do not start a header clock.
        assert_eq!(on_read(Phase::Busy(1), t1), Phase::Busy(1));
    }
}
