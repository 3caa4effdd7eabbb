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

/// Creates the data directory readable by this user only (0700, whatever the umask) and,
/// when the database is the embedded SQLite file, creates that file 0600 before SQLite opens
/// it, so its journal files (made with the database's mode) are private too. An existing
/// database file is narrowed to 0600.
pub fn prepare_data_dir(dir: &Path, sqlite: bool) -> std::io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
    let private = |path: &Path, mode: u32| {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
    };
    if !dir.exists() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
        // DirBuilder's mode is filtered by the umask; this is not.
        private(dir, 0o700)?;
    }
    if sqlite {
        let db = dir.join("mikrobill.db");
        if !db.exists() {
            std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(false)
                .mode(0o600)
                .open(&db)?;
        }
        for name in ["mikrobill.db", "mikrobill.db-wal", "mikrobill.db-shm"] {
            let path = dir.join(name);
            if path.exists() {
                private(&path, 0o600)?;
            }
        }
    }
    Ok(())
}

/// Keys accepted in the configuration file.
#[derive(Default, Deserialize)]
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
    /// Midtrans server key (kept for older files; `[payments]` is the place now).
    pub midtrans_server_key: Option<String>,
    /// Midtrans Snap base URL (older files; see `[payments]`).
    pub midtrans_snap_url: Option<String>,
    /// Use Midtrans production (older files; see `[payments]`).
    pub midtrans_production: Option<bool>,
    /// The `[payments]` table: payment gateways.
    #[serde(default)]
    pub payments: FilePayments,
    /// The `[http]` table: listener limits, proxies, metrics and API rate limits.
    #[serde(default)]
    pub http: FileHttp,
    /// The `[backup]` table: scheduled backups.
    #[serde(default)]
    pub backup: FileBackup,
    /// Browsers reach the HTTP listener over TLS: session cookies get `Secure`.
    pub behind_tls: Option<bool>,
    /// Delay before the first retry of a failed webhook delivery, e.g. `2s`.
    pub webhook_retry_base: Option<String>,
    /// How long one notification send may take, e.g. `15s`.
    pub notify_send_timeout: Option<String>,
}

impl std::fmt::Debug for FileConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Gateway keys live here: show where things are, never the secrets.
        f.debug_struct("FileConfig")
            .field("data_dir", &self.data_dir)
            .field("database_url", &self.database_url.as_ref().map(|_| "<set>"))
            .field("api_listen", &self.api_listen)
            .finish_non_exhaustive()
    }
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
            .unwrap_or_else(|| mikrobill_core::db::sqlite_url_for_dir(&self.data_dir))
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
    /// Payment gateways.
    pub payments: PaymentConfig,
    /// The HTTP listener's limits, proxies, metrics and rate limits.
    pub http: HttpConfig,
    /// Browsers reach the HTTP listener over TLS: session cookies get `Secure`.
    pub behind_tls: bool,
    /// Delay before the first retry of a failed webhook delivery or notification; it doubles
    /// per attempt.
    pub webhook_retry_base: std::time::Duration,
    /// How long one notification send may take.
    pub notify_send_timeout: std::time::Duration,
    /// Scheduled backups, when a backup directory is set.
    pub backup: Option<BackupSchedule>,
    /// How long agent certificates are valid.
    pub agent_cert_validity: std::time::Duration,
    /// How long change-log entries stay for offline agents (stored as a setting).
    pub sync_log_retention: Option<std::time::Duration>,
}

/// Scheduled backups in effect (`serve --backup-dir` and the `[backup]` table).
#[derive(Debug, Clone)]
pub struct BackupSchedule {
    /// Where archives go.
    pub dir: PathBuf,
    /// Time between them.
    pub interval: std::time::Duration,
    /// How many are kept.
    pub keep: usize,
    /// The passphrase file, read at each run (so it can be rotated without a restart).
    pub passphrase_file: Option<PathBuf>,
}

/// The `[backup]` table of a config file (each key also a flag and variable of `serve`).
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileBackup {
    /// Directory for scheduled backups; none are taken without it.
    pub dir: Option<PathBuf>,
    /// Time between scheduled backups, e.g. `24h`.
    pub interval: Option<String>,
    /// Scheduled backups kept.
    pub keep: Option<usize>,
    /// File whose first line seals scheduled backups.
    pub passphrase_file: Option<PathBuf>,
}

/// The `[http]` table of a config file (each key also a flag and variable of `serve`).
#[derive(Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileHttp {
    /// Reverse proxies whose `X-Forwarded-For` is believed: CIDRs or addresses.
    pub trusted_proxies: Option<Vec<String>>,
    /// Time allowed for a request head, e.g. `10s`.
    pub header_timeout: Option<String>,
    /// Time allowed for a request body, e.g. `30s`.
    pub body_timeout: Option<String>,
    /// Time a keep-alive connection may wait idle, e.g. `60s`.
    pub idle_timeout: Option<String>,
    /// Connections served at once.
    pub max_connections: Option<usize>,
    /// Where `/metrics` is served, or `off`.
    pub metrics_listen: Option<String>,
    /// A bearer token that also opens `/metrics` on the public listener.
    pub metrics_token: Option<String>,
    /// API rate limits per role, `ROLE=RATE/BURST`.
    pub api_rate_limits: Option<Vec<String>>,
}

impl std::fmt::Debug for FileHttp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileHttp")
            .field("trusted_proxies", &self.trusted_proxies)
            .field("metrics_listen", &self.metrics_listen)
            .field(
                "metrics_token",
                &self.metrics_token.as_ref().map(|_| "<set>"),
            )
            .finish_non_exhaustive()
    }
}

/// Where `/metrics` is served by default: loopback only, so the business figures it
/// carries stay on the host unless an operator opens them.
pub const DEFAULT_METRICS_LISTEN: &str = "127.0.0.1:9464";

/// The HTTP settings in effect.
#[derive(Clone, Default)]
pub struct HttpConfig {
    /// Timeouts and the connection cap.
    pub limits: mikrobill_http::server::listener::HttpLimits,
    /// Proxies whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// The separate listener of `/metrics`; none serves it only with the token.
    pub metrics_listen: Option<SocketAddr>,
    /// Bearer token that opens `/metrics` on the public listener.
    pub metrics_token: Option<String>,
    /// API rate limits per role.
    pub rate_limits: mikrobill_http::server::rate_limit::RateLimits,
}

impl std::fmt::Debug for HttpConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpConfig")
            .field("limits", &self.limits)
            .field("trusted_proxies", &self.trusted_proxies)
            .field("metrics_listen", &self.metrics_listen)
            .field(
                "metrics_token",
                &self.metrics_token.as_ref().map(|_| "<set>"),
            )
            .field("rate_limits", &self.rate_limits)
            .finish()
    }
}

/// Default interval of scheduled jobs.
pub const DEFAULT_JOB_INTERVAL: std::time::Duration = std::time::Duration::from_secs(60);

/// Payment gateway settings as a config file gives them (each also a flag and variable).
#[derive(Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FilePayments {
    /// Midtrans server key; enables the Midtrans webhook and Snap payment links.
    pub midtrans_server_key: Option<String>,
    /// Midtrans Snap base URL.
    pub midtrans_snap_url: Option<String>,
    /// Midtrans Core API base URL (the status API).
    pub midtrans_api_url: Option<String>,
    /// Use Midtrans production instead of the sandbox.
    pub midtrans_production: Option<bool>,
    /// Xendit secret API key; with the callback token, enables Xendit.
    pub xendit_secret_key: Option<String>,
    /// Xendit callback verification token.
    pub xendit_callback_token: Option<String>,
    /// Xendit API base URL.
    pub xendit_api_url: Option<String>,
    /// Tripay API key; with the private key and merchant code, enables Tripay.
    pub tripay_api_key: Option<String>,
    /// Tripay private key.
    pub tripay_private_key: Option<String>,
    /// Tripay merchant code.
    pub tripay_merchant_code: Option<String>,
    /// Tripay payment channel for payment links.
    pub tripay_method: Option<String>,
    /// Tripay API base URL.
    pub tripay_api_url: Option<String>,
    /// Use Tripay production instead of the sandbox.
    pub tripay_production: Option<bool>,
    /// The gateway the portal's Pay button uses.
    pub payment_link_gateway: Option<String>,
}

impl std::fmt::Debug for FilePayments {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FilePayments { <redacted> }")
    }
}

/// Midtrans settings in effect.
#[derive(Clone)]
pub struct MidtransConfig {
    /// Server key.
    pub server_key: String,
    /// Snap base URL.
    pub snap_url: String,
    /// Core API base URL.
    pub api_url: String,
}

/// Xendit settings in effect.
#[derive(Clone)]
pub struct XenditConfig {
    /// Secret API key.
    pub secret_key: String,
    /// Callback verification token.
    pub callback_token: String,
    /// API base URL.
    pub api_url: String,
}

/// Tripay settings in effect.
#[derive(Clone)]
pub struct TripaySettings {
    /// API key.
    pub api_key: String,
    /// Private key.
    pub private_key: String,
    /// Merchant code.
    pub merchant_code: String,
    /// Payment channel of payment links.
    pub method: String,
    /// API base URL.
    pub api_url: String,
}

/// The payment gateways in effect; secrets never appear in `Debug` output.
#[derive(Clone, Default)]
pub struct PaymentConfig {
    /// Midtrans, when configured.
    pub midtrans: Option<MidtransConfig>,
    /// Xendit, when configured.
    pub xendit: Option<XenditConfig>,
    /// Tripay, when configured.
    pub tripay: Option<TripaySettings>,
    /// The gateway payment links use; the first configured when unset.
    pub link_gateway: Option<String>,
}

impl std::fmt::Debug for PaymentConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PaymentConfig")
            .field("midtrans", &self.midtrans.as_ref().map(|m| &m.api_url))
            .field("xendit", &self.xendit.as_ref().map(|x| &x.api_url))
            .field("tripay", &self.tripay.as_ref().map(|t| &t.api_url))
            .field("link_gateway", &self.link_gateway)
            .finish()
    }
}

impl PaymentConfig {
    /// The gateways these settings enable. The process's rustls crypto provider must be
    /// installed first.
    pub fn gateways(&self) -> anyhow::Result<mikrobill_core::payments::gateway::Gateways> {
        use mikrobill_core::payments::gateway::{Gateways, midtrans, tripay, xendit};
        let mut gateways = Gateways::default();
        if let Some(m) = &self.midtrans {
            gateways = gateways.with(
                midtrans::Midtrans::new(m.server_key.clone(), &m.api_url, &m.snap_url)
                    .map_err(|e| anyhow::anyhow!("cannot set up Midtrans: {e}"))?,
            );
        }
        if let Some(x) = &self.xendit {
            gateways = gateways.with(
                xendit::Xendit::new(x.secret_key.clone(), x.callback_token.clone(), &x.api_url)
                    .map_err(|e| anyhow::anyhow!("cannot set up Xendit: {e}"))?,
            );
        }
        if let Some(t) = &self.tripay {
            gateways = gateways.with(
                tripay::Tripay::new(tripay::TripayConfig {
                    api_key: t.api_key.clone(),
                    private_key: t.private_key.clone(),
                    merchant_code: t.merchant_code.clone(),
                    method: t.method.clone(),
                    api_url: t.api_url.clone(),
                })
                .map_err(|e| anyhow::anyhow!("cannot set up Tripay: {e}"))?,
            );
        }
        if let Some(name) = &self.link_gateway
            && !gateways.links_with(name)
        {
            anyhow::bail!(
                "payment link gateway {name:?} is not configured (configured: {:?})",
                gateways.names()
            );
        }
        Ok(gateways)
    }
}
