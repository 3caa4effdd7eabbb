//! What the router says about itself, read periodically for status and reporting.

use super::client::Client;
use super::values::parse_duration;
use super::{RouterError, Row};
use std::time::Duration;

/// The router as last seen; fields the router did not give stay `None`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RouterState {
    /// Whether the API connection is up.
    pub reachable: bool,
    /// RouterOS version, e.g. `7.16.1`.
    pub version: Option<String>,
    /// Board name, e.g. `RB5009UG+S+`.
    pub board: Option<String>,
    /// CPU architecture, e.g. `arm64`.
    pub architecture: Option<String>,
    /// CPU load in percent.
    pub cpu_load: Option<u8>,
    /// Free RAM in bytes.
    pub free_memory: Option<u64>,
    /// Total RAM in bytes.
    pub total_memory: Option<u64>,
    /// Time since the router booted.
    pub uptime: Option<Duration>,
    /// `/system/identity` name (the NAS-Identifier it sends).
    pub identity: Option<String>,
    /// Hotspot sessions online.
    pub hotspot_active: Option<u32>,
    /// PPP sessions online.
    pub ppp_active: Option<u32>,
    /// Why the router is unreachable, or the last connection failure.
    pub last_error: Option<String>,
    /// When this was read (UTC ms).
    pub checked_at_ms: i64,
}

impl RouterState {
    /// The wire form the controller stores and shows.
    pub fn report(&self) -> mikrobill_protocol::messages::RouterReport {
        mikrobill_protocol::messages::RouterReport {
            reachable: self.reachable,
            version: self.version.clone(),
            board: self.board.clone(),
            architecture: self.architecture.clone(),
            cpu_load: self.cpu_load,
            free_memory: self.free_memory,
            total_memory: self.total_memory,
            uptime_secs: self.uptime.map(|d| d.as_secs()),
            identity: self.identity.clone(),
            hotspot_active: self.hotspot_active,
            ppp_active: self.ppp_active,
            last_error: self.last_error.clone(),
            checked_at_ms: self.checked_at_ms,
        }
    }
}

impl std::fmt::Display for RouterState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        fn show<T: std::fmt::Display>(v: &Option<T>) -> String {
            v.as_ref().map_or_else(|| "-".into(), |v| v.to_string())
        }
        let mib = |b: &Option<u64>| b.map(|b| format!("{} MiB", b / (1024 * 1024)));
        writeln!(
            f,
            "reachable:      {}",
            if self.reachable { "yes" } else { "no" }
        )?;
        writeln!(f, "identity:       {}", show(&self.identity))?;
        writeln!(f, "version:        {}", show(&self.version))?;
        writeln!(f, "board:          {}", show(&self.board))?;
        writeln!(f, "architecture:   {}", show(&self.architecture))?;
        writeln!(
            f,
            "cpu load:       {}",
            show(&self.cpu_load.map(|l| format!("{l}%")))
        )?;
        writeln!(f, "free memory:    {}", show(&mib(&self.free_memory)))?;
        writeln!(f, "total memory:   {}", show(&mib(&self.total_memory)))?;
        writeln!(
            f,
            "uptime:         {}",
            show(&self.uptime.map(super::format_duration))
        )?;
        writeln!(f, "hotspot active: {}", show(&self.hotspot_active))?;
        writeln!(f, "ppp active:     {}", show(&self.ppp_active))?;
        if let Some(e) = &self.last_error {
            writeln!(f, "last error:     {e}")?;
        }
        Ok(())
    }
}

/// Reads the state over a live connection. A missing package (no hotspot, say) leaves its
/// count `None`; a connection failure fails the whole read.
pub(crate) async fn collect(client: &Client) -> Result<RouterState, RouterError> {
    let resource = client
        .call("/system/resource/print", &[], &[])
        .await?
        .into_iter()
        .next()
        .unwrap_or_default();
    let identity = optional(client.call("/system/identity/print", &[], &[]).await)?
        .and_then(|rows| rows.into_iter().next())
        .and_then(|mut row| row.remove("name"));
    let ids = [(".proplist".to_owned(), ".id".to_owned())];
    let hotspot_active = optional(client.call("/ip/hotspot/active/print", &ids, &[]).await)?
        .map(|rows| u32::try_from(rows.len()).unwrap_or(u32::MAX));
    let ppp_active = optional(client.call("/ppp/active/print", &ids, &[]).await)?
        .map(|rows| u32::try_from(rows.len()).unwrap_or(u32::MAX));
    Ok(RouterState {
        reachable: true,
        version: text(&resource, "version"),
        board: text(&resource, "board-name"),
        architecture: text(&resource, "architecture-name"),
        cpu_load: number(&resource, "cpu-load"),
        free_memory: number(&resource, "free-memory"),
        total_memory: number(&resource, "total-memory"),
        uptime: resource.get("uptime").and_then(|u| parse_duration(u)),
        identity,
        hotspot_active,
        ppp_active,
        last_error: None,
        checked_at_ms: crate::now_ms(),
    })
}

/// A refused command becomes `None`; connection failures stay errors.
fn optional(result: Result<Vec<Row>, RouterError>) -> Result<Option<Vec<Row>>, RouterError> {
    match result {
        Ok(rows) => Ok(Some(rows)),
        Err(RouterError::Trap { path, message }) => {
            tracing::debug!(%path, "not available on this router: {message}");
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

fn text(row: &Row, key: &str) -> Option<String> {
    row.get(key).filter(|v| !v.is_empty()).cloned()
}

fn number<T: std::str::FromStr>(row: &Row, key: &str) -> Option<T> {
    row.get(key).and_then(|v| v.trim().parse().ok())
}
