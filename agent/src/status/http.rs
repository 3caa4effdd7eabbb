//! The local status listener: `GET /metrics` (Prometheus), `GET /health` (200 while RADIUS
//! runs, for the RouterOS container's or Kubernetes' health check) and `GET /status` (the
//! report as JSON, which `mikrobill-agent status` reads). A few plain HTTP/1.x GETs on
//! loopback do not justify an HTTP stack in an agent that ships to routers: requests are
//! read with a size and time limit, answered once and the connection closed.

use super::Sources;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};

/// Longest request head read.
const MAX_HEAD: usize = 4096;
/// Time a client has to send its request and take the answer.
const IO_TIMEOUT: Duration = Duration::from_secs(5);
/// Connections served at once; more wait in the accept queue.
const MAX_CONNECTIONS: usize = 16;

/// A parsed request line, or why it is refused.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Request<'a> {
    /// `GET` or `HEAD` of a path (query string removed).
    Get { path: &'a str, head: bool },
    /// Another method.
    Method,
    /// Not an HTTP request line.
    Bad,
}

/// Reads the request line of a head.
pub(crate) fn parse(head: &[u8]) -> Request<'_> {
    let Ok(text) = std::str::from_utf8(head) else {
        return Request::Bad;
    };
    let line = text.split("\r\n").next().unwrap_or("");
    let mut parts = line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Request::Bad;
    };
    if !version.starts_with("HTTP/1.") || !target.starts_with('/') {
        return Request::Bad;
    }
    let path = target.split('?').next().unwrap_or(target);
    match method {
        "GET" => Request::Get { path, head: false },
        "HEAD" => Request::Get { path, head: true },
        _ => Request::Method,
    }
}

/// Status, content type and body for a request.
fn answer(sources: &Sources, req: Request<'_>) -> (u16, &'static str, String) {
    const JSON: &str = "application/json";
    const TEXT: &str = "text/plain; charset=utf-8";
    let now = sources.clock.now_ms();
    match req {
        Request::Get {
            path: "/metrics", ..
        } => (200, "text/plain; version=0.0.4", sources.metrics(now)),
        Request::Get {
            path: "/health", ..
        } => {
            let report = sources.collect(now);
            let healthy = sources.healthy();
            let body = serde_json::json!({
                "status": if healthy { "ok" } else { "failing" },
                "link": report.link.state,
                "outbox": report.outbox.pending,
            });
            (if healthy { 200 } else { 503 }, JSON, body.to_string())
        }
        Request::Get {
            path: "/status", ..
        } => (
            200,
            JSON,
            serde_json::to_string(&sources.collect(now)).expect("the report serializes"),
        ),
        Request::Get { .. } => (
            404,
            TEXT,
            "not found: try /metrics, /health or /status\n".into(),
        ),
        Request::Method => (405, TEXT, "only GET and HEAD are served\n".into()),
        Request::Bad => (400, TEXT, "not an HTTP/1 request\n".into()),
    }
}

fn reason(code: u16) -> &'static str {
    match code {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        431 => "Request Header Fields Too Large",
        _ => "Service Unavailable",
    }
}

async fn read_head(stream: &mut TcpStream) -> Result<Vec<u8>, u16> {
    let mut buf = Vec::with_capacity(512);
    let mut chunk = [0u8; 512];
    loop {
        let n = stream.read(&mut chunk).await.map_err(|_| 400u16)?;
        if n == 0 {
            return Err(400);
        }
        buf.extend_from_slice(&chunk[..n]);
        if buf.windows(4).any(|w| w == b"\r\n\r\n") {
            return Ok(buf);
        }
        if buf.len() > MAX_HEAD {
            return Err(431);
        }
    }
}

async fn handle(mut stream: TcpStream, sources: Arc<Sources>) {
    let exchange = async {
        let (code, kind, body, head_only) = match read_head(&mut stream).await {
            Ok(head) => {
                let req = parse(&head);
                let head_only = matches!(req, Request::Get { head: true, .. });
                let (code, kind, body) = answer(&sources, req);
                (code, kind, body, head_only)
            }
            Err(code) => (code, "text/plain", String::new(), false),
        };
        let mut out = format!(
            "HTTP/1.1 {code} {}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n",
            reason(code),
            body.len()
        )
        .into_bytes();
        if !head_only {
            out.extend_from_slice(body.as_bytes());
        }
        stream.write_all(&out).await?;
        stream.shutdown().await
    };
    if let Ok(Err(e)) = tokio::time::timeout(IO_TIMEOUT, exchange).await {
        tracing::debug!("status request not answered: {e}");
    }
}

/// Resolves once `shutdown` turns true (the guard `wait_for` returns is not `Send`).
async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|s| *s).await;
}

/// Serves the listener until `shutdown` turns true.
pub async fn serve(
    listener: TcpListener,
    sources: Arc<Sources>,
    mut shutdown: watch::Receiver<bool>,
) {
    let permits = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let permit = tokio::select! {
            p = permits.clone().acquire_owned() => p.expect("the semaphore is never closed"),
            _ = stopped(&mut shutdown) => return,
        };
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    tracing::warn!("status listener accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = stopped(&mut shutdown) => return,
        };
        let sources = sources.clone();
        tokio::spawn(async move {
            handle(stream, sources).await;
            drop(permit);
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_lines_are_read_strictly() {
        assert_eq!(
            parse(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"),
            Request::Get {
                path: "/metrics",
                head: false
            }
        );
        assert_eq!(
            parse(b"HEAD /health?x=1 HTTP/1.0\r\n\r\n"),
            Request::Get {
                path: "/health",
                head: true
            }
        );
        assert_eq!(parse(b"POST /status HTTP/1.1\r\n\r\n"), Request::Method);
        assert_eq!(parse(b"GET /status\r\n\r\n"), Request::Bad);
        assert_eq!(parse(b"GET status HTTP/1.1\r\n\r\n"), Request::Bad);
        assert_eq!(parse(b"\xff\xfe\r\n\r\n"), Request::Bad);
    }
}
