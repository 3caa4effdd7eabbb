//! `mikrobill-agent status`: asks the running agent on its status port, and when nothing
//! answers there reads the data directory itself (the agent is then not running: its store
//! would be locked otherwise).

use super::Sources;
use super::report::StatusReport;
use crate::uplink::{LinkState, UplinkStats};
use anyhow::Context;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Longest wait for the running agent's answer.
const ASK_TIMEOUT: Duration = Duration::from_secs(3);
/// Largest status answer read.
const MAX_ANSWER: u64 = 1024 * 1024;

/// `GET path` on a running agent's status port: the status code and the body.
pub async fn get(addr: SocketAddr, path: &str) -> anyhow::Result<(u16, String)> {
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(addr).await?;
        stream
            .write_all(format!("GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").as_bytes())
            .await?;
        let mut raw = Vec::new();
        (&mut stream).take(MAX_ANSWER).read_to_end(&mut raw).await?;
        Ok::<_, std::io::Error>(raw)
    };
    let raw = tokio::time::timeout(ASK_TIMEOUT, exchange)
        .await
        .context("no answer in time")??;
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .context("not an HTTP answer")?;
    let head = String::from_utf8_lossy(&raw[..split]);
    let code = head
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .context("not an HTTP status line")?;
    Ok((
        code,
        String::from_utf8_lossy(&raw[split + 4..]).into_owned(),
    ))
}

/// Fetches `/status` from a running agent at `addr`; `Err` says why none answered.
pub async fn ask(addr: SocketAddr) -> anyhow::Result<StatusReport> {
    let (code, body) = get(addr, "/status").await?;
    anyhow::ensure!(code == 200, "answered HTTP {code}");
    serde_json::from_str(&body).context("the answer is not a status report")
}

/// Reads what the data directory says of an agent that is not running.
pub async fn offline(data_dir: &Path) -> anyhow::Result<StatusReport> {
    let id = crate::identity::load(data_dir)?;
    let db =
        crate::open_store(data_dir).context("is the agent running without its status port?")?;
    let (_, link) = tokio::sync::watch::channel(LinkState::Disconnected {
        reason: "the agent is not running".into(),
    });
    let sources = Sources {
        site_id: id.state.site_id.clone(),
        site_name: id.state.site_name.clone(),
        controller_addr: id.state.controller_addr.clone(),
        certificate_expires_ms: Arc::new(std::sync::atomic::AtomicI64::new(
            crate::identity::cert_not_after_ms(&id.cert).unwrap_or(0),
        )),
        started_at_ms: 0,
        cache: Arc::new(crate::cache::Cache::open(&db, &id.state.site_id)?),
        outbox: crate::outbox::Outbox::open(&db)?,
        link,
        uplink: Arc::new(UplinkStats::default()),
        radius: None,
        router: None,
        clock: crate::clock::Clock::system(),
    };
    let mut report = sources.collect(sources.clock.now_ms());
    report.link.state = "not running".into();
    Ok(report)
}

/// Prints the status for a technician (or as JSON).
pub async fn print(data_dir: &Path, listen: &str, json: bool) -> anyhow::Result<()> {
    let addr: Option<SocketAddr> =
        if listen.eq_ignore_ascii_case("off") {
            None
        } else {
            Some(listen.parse().map_err(|_| {
                anyhow::anyhow!("--status-listen {listen:?} is not host:port or `off`")
            })?)
        };
    let live = match addr {
        Some(addr) => ask(addr)
            .await
            .map_err(|e| format!("not answering on {addr} ({e:#})")),
        None => Err("the status port is off".to_string()),
    };
    let report = match live {
        Ok(report) => report,
        Err(why) => {
            if !json {
                println!("agent:       {why}; reading {}", data_dir.display());
            }
            offline(data_dir).await?
        }
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{report}");
    }
    Ok(())
}
