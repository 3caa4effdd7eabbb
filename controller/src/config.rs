//! Configuration: command line, environment (`MIKROBILL_*`) and an optional TOML file, in
//! that order of precedence.

use anyhow::Context;
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// Default HTTP listen address.
pub const DEFAULT_API_LISTEN: &str = "127.0.0.1:8080";
/// Default QUIC edge listen address.
pub const DEFAULT_EDGE_LISTEN: &str = "0.0.0.0:4433";
/// Default data directory.
pub const DEFAULT_DATA_DIR: &str = "/var/lib/mikrobill";

/// Keys accepted in the configuration file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// Data directory (CA, SQLite database).
    pub data_dir: Option<PathBuf>,
    /// Database URL; SQLite in the data directory when absent.
    pub database_url: Option<String>,
    /// HTTP listen address.
    pub api_listen: Option<SocketAddr>,
    /// QUIC edge listen address.
    pub edge_listen: Option<SocketAddr>,
    /// Address agents dial, written into enrollment tokens.
    pub edge_advertise: Option<String>,
    /// `text` or `json`.
    pub log_format: Option<String>,
    /// How often scheduled jobs run, e.g. `60s`.
    pub job_interval: Option<String>,
    /// Midtrans server key; enables the Midtrans payment webhook and Snap payment links.
    pub midtrans_server_key: Option<String>,
    /// Midtrans Snap base URL; the sandbox or production URL by `midtrans_production`.
    pub midtrans_snap_url: Option<String>,
    /// Use Midtrans production instead of the sandbox.
    pub midtrans_production: Option<bool>,
    /// Browsers reach the HTTP listener over TLS: session cookies get `Secure`.
    pub behind_tls: Option<bool>,
    /// Delay before the first retry of a failed webhook delivery, e.g. `2s`.
    pub webhook_retry_base: Option<String>,
    /// How long one notification send may take, e.g. `15s`.
    pub notify_send_timeout: Option<String>,
}

impl FileConfig {
    /// Reads a configuration file.
    pub fn load(path: &Path) -> anyhow::Result<FileConfig> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read config file {}", path.display()))?;
        toml::from_str(&text).with_context(|| format!("invalid config file {}", path.display()))
    }
}

/// Where the data lives, shared by every subcommand.
#[derive(Debug, Clone)]
pub struct StoreConfig {
    /// Data directory.
    pub data_dir: PathBuf,
    /// Explicit database URL, if any.
    pub database_url: Option<String>,
}

impl StoreConfig {
    /// The database URL in effect.
    pub fn database_url(&self) -> String {
        self.database_url
            .clone()
            .unwrap_or_else(|| crate::db::sqlite_url_for_dir(&self.data_dir))
    }
}

/// Everything `serve` needs.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    /// Where the data lives.
    pub store: StoreConfig,
    /// HTTP listen address.
    pub api_listen: SocketAddr,
    /// QUIC edge listen address.
    pub edge_listen: SocketAddr,
    /// Address agents dial.
    pub edge_advertise: Option<String>,
    /// How often scheduled jobs run.
    pub job_interval: std::time::Duration,
    /// Midtrans server key, when the Midtrans webhook is enabled.
    pub midtrans_server_key: Option<String>,
    /// Midtrans Snap base URL payment links are created at.
    pub midtrans_snap_url: String,
    /// Browsers reach the HTTP listener over TLS: session cookies get `Secure`.
    pub behind_tls: bool,
    /// Delay before the first retry of a failed webhook delivery or notification; it doubles
    /// per attempt.
    pub webhook_retry_base: std::time::Duration,
    /// How long one notification send may take.
    pub notify_send_timeout: std::time::Duration,
}

/// Default interval of scheduled jobs.
pub const DEFAULT_JOB_INTERVAL: std::time::Duration = std::time::Duration::from_secs(60);
