//! The `mikrobill-controller` command line.

use crate::config::{
    DEFAULT_API_LISTEN, DEFAULT_DATA_DIR, DEFAULT_EDGE_LISTEN, FileConfig, ServeConfig, StoreConfig,
};
use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};
use mikrobill_core::audit::Actor;
use mikrobill_core::db::{Db, format_ms, now_ms, redact_url};
use mikrobill_core::sites::EDGE_ADVERTISE_SETTING;
use mikrobill_core::{ca_rotation, plans, sites, vouchers};
use mikrobill_protocol::items::Plan;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// MikroBill controller: billing, sites, agent enrollment and accounting.
#[derive(Debug, Parser)]
#[command(name = "mikrobill-controller", version, about)]
pub struct Cli {
    /// TOML configuration file: the keys of the README's configuration table (e.g. data_dir, database_url, api_listen, edge_advertise), with the `[http]` and `[payments]` tables.
    #[arg(long, global = true, env = "MIKROBILL_CONFIG")]
    pub config: Option<PathBuf>,
    /// Data directory: CA, edge certificate and the SQLite database.
    #[arg(long, global = true, env = "MIKROBILL_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Database URL (postgres://...); SQLite in the data directory when absent.
    #[arg(
        long,
        global = true,
        env = "MIKROBILL_DATABASE_URL",
        hide_env_values = true
    )]
    pub database_url: Option<String>,
    /// Log format: text or json.
    #[arg(long, global = true, env = "MIKROBILL_LOG_FORMAT")]
    pub log_format: Option<String>,
    /// Export traces over OTLP/HTTP to this collector (e.g. http://127.0.0.1:4318); off by
    /// default, or from `OTEL_EXPORTER_OTLP_ENDPOINT` / `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`.
    #[arg(long, global = true, value_name = "URL")]
    pub otlp_endpoint: Option<String>,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the controller: HTTP API and the QUIC edge for agents.
    Serve(Box<ServeArgs>),
    /// Try MikroBill: controller on SQLite, two sites with local agents serving RADIUS, sample
    /// vouchers and (on first start) three months of customers, invoices, payments and usage.
    /// The demo keeps its data in the global `--data-dir` when one is given, else in a new
    /// temporary directory (never the default data directory of `serve`).
    Demo {
        /// HTTP listen address.
        #[arg(long, default_value = "127.0.0.1:8080")]
        api_listen: SocketAddr,
        /// QUIC edge listen address.
        #[arg(long, default_value = "127.0.0.1:4433")]
        edge_listen: SocketAddr,
        /// RADIUS port of the first demo agent on 127.0.0.1 (accounting uses the next one; the
        /// second site's agent the two after).
        #[arg(long, default_value_t = 18120)]
        radius_port: u16,
    },
    /// Apply database migrations and exit.
    Migrate,
    /// Write a backup archive (SQLite snapshot taken online, CA and edge keys), optionally
    /// sealed with a passphrase; with PostgreSQL the archive holds the keys only.
    Backup(crate::backup::BackupArgs),
    /// Restore a backup archive into a new or empty data directory (`--data-dir`).
    Restore(crate::backup::RestoreArgs),
    /// Manage sites and their agents.
    #[command(subcommand)]
    Site(SiteCommand),
    /// Manage service plans.
    #[command(subcommand)]
    Plan(PlanCommand),
    /// Manage vouchers.
    #[command(subcommand)]
    Voucher(VoucherCommand),
    /// Manage admin users (the accounts of the API and web UI).
    #[command(subcommand)]
    Admin(AdminCommand),
    /// Import customers, plans, sites, subscriptions and vouchers from another billing system.
    #[command(subcommand)]
    Import(crate::import::ImportCommand),
    /// Rotate the certificate authority agents and the edge authenticate with.
    #[command(subcommand)]
    Ca(CaCommand),
}

/// `ca` subcommands: the steps of a CA rotation, in this order.
#[derive(Debug, Subcommand)]
pub enum CaCommand {
    /// Show the issuing CA, the rotation under way and the sites still on the previous CA.
    Status,
    /// Create a new CA and publish it: agents are sent it and trust both; nothing else changes.
    Rotate,
    /// Make the published CA the issuing one: the edge presents it, agents renew onto it.
    Activate,
    /// Stop trusting the previous CA (refused while live sites still run on it).
    Retire {
        /// Retire anyway; the agents still on the previous CA must be enrolled again.
        #[arg(long)]
        force: bool,
    },
}

/// `admin` subcommands.
#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Create an admin user; the password is read from standard input with
    /// --password-stdin, or generated and printed once.
    Create {
        /// Login name.
        username: String,
        /// Role: admin, operator, cashier, reseller or viewer.
        #[arg(long, default_value = "admin")]
        role: mikrobill_core::auth::Role,
        /// Read the password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Set a new password for a user (generated and printed once unless --password-stdin);
    /// the user's sessions and tokens end.
    ResetPassword {
        /// Login name.
        username: String,
        /// Read the password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Remove a user's authenticator (two-factor sign-in), e.g. the only administrator's
    /// lost phone; the user's sessions and tokens end.
    ResetTotp {
        /// Login name.
        username: String,
    },
}

fn password_from(stdin: bool) -> anyhow::Result<(String, bool)> {
    if stdin {
        let mut line = String::new();
        std::io::stdin()
            .read_line(&mut line)
            .context("cannot read the password from standard input")?;
        Ok((line.trim_end_matches(['\r', '\n']).to_string(), false))
    } else {
        Ok((mikrobill_core::auth::password::generate(), true))
    }
}

/// Options of `serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// HTTP listen address [default: 127.0.0.1:8080].
    #[arg(long, env = "MIKROBILL_API_LISTEN")]
    pub api_listen: Option<SocketAddr>,
    /// QUIC edge listen address [default: 0.0.0.0:4433].
    #[arg(long, env = "MIKROBILL_EDGE_LISTEN")]
    pub edge_listen: Option<SocketAddr>,
    /// Address agents dial (host:port), written into enrollment tokens [default: this host and the edge port].
    #[arg(long, env = "MIKROBILL_EDGE_ADVERTISE")]
    pub edge_advertise: Option<String>,
    /// How often scheduled jobs (invoice run, isolation sweep) run [default: 60s].
    #[arg(long, env = "MIKROBILL_JOB_INTERVAL", value_parser = humantime::parse_duration)]
    pub job_interval: Option<Duration>,
    /// Payment gateways.
    #[command(flatten)]
    pub payments: PaymentArgs,
    /// HTTP listener limits, proxies, metrics and API rate limits.
    #[command(flatten)]
    pub http: HttpArgs,
    /// Browsers reach the HTTP listener through a TLS-terminating proxy: session cookies get
    /// `Secure` (client addresses come from --trusted-proxies).
    #[arg(long, env = "MIKROBILL_BEHIND_TLS")]
    pub behind_tls: bool,
    /// Delay before the first retry of a failed outgoing webhook; it doubles per attempt [default: 2s].
    #[arg(long, env = "MIKROBILL_WEBHOOK_RETRY_BASE", value_parser = humantime::parse_duration)]
    pub webhook_retry_base: Option<Duration>,
    /// How long one notification send (WhatsApp, Telegram, SMTP, SMS) may take [default: 15s].
    #[arg(long, env = "MIKROBILL_NOTIFY_SEND_TIMEOUT", value_parser = humantime::parse_duration)]
    pub notify_send_timeout: Option<Duration>,
    /// Scheduled backups.
    #[command(flatten)]
    pub backup: crate::backup::ScheduleArgs,
    /// How long agent certificates are valid (enrollment and renewal; agents renew with a
    /// third of it left) [default: 365days].
    #[arg(long, env = "MIKROBILL_AGENT_CERT_VALIDITY", value_parser = humantime::parse_duration)]
    pub agent_cert_validity: Option<Duration>,
    /// How long change-log entries stay for agents that are offline; one back within it
    /// catches up from the log, later ones take a snapshot [default: 24h].
    #[arg(long, env = "MIKROBILL_SYNC_LOG_RETENTION", value_parser = humantime::parse_duration)]
    pub sync_log_retention: Option<Duration>,
}

/// HTTP options of `serve`.
#[derive(Args)]
pub struct HttpArgs {
    /// Reverse proxies whose X-Forwarded-For is believed (CIDRs or addresses, comma-separated);
    /// from anyone else the header is ignored [default: none].
    #[arg(long, env = "MIKROBILL_TRUSTED_PROXIES")]
    pub trusted_proxies: Option<String>,
    /// Time a client has to send a request head, from the connect or its first byte [default: 10s].
    #[arg(long, env = "MIKROBILL_HTTP_HEADER_TIMEOUT", value_parser = humantime::parse_duration)]
    pub http_header_timeout: Option<Duration>,
    /// Time a client has to send a request body [default: 30s].
    #[arg(long, env = "MIKROBILL_HTTP_BODY_TIMEOUT", value_parser = humantime::parse_duration)]
    pub http_body_timeout: Option<Duration>,
    /// Time a keep-alive connection may wait for its next request [default: 60s].
    #[arg(long, env = "MIKROBILL_HTTP_IDLE_TIMEOUT", value_parser = humantime::parse_duration)]
    pub http_idle_timeout: Option<Duration>,
    /// HTTP connections served at once; more are answered 503 [default: 1024].
    #[arg(long, env = "MIKROBILL_HTTP_MAX_CONNECTIONS")]
    pub http_max_connections: Option<usize>,
    /// Where /metrics is served (host:port), or `off` [default: 127.0.0.1:9464].
    #[arg(long, env = "MIKROBILL_METRICS_LISTEN")]
    pub metrics_listen: Option<String>,
    /// Bearer token that also serves /metrics on the public HTTP listener.
    #[arg(long, env = "MIKROBILL_METRICS_TOKEN", hide_env_values = true)]
    pub metrics_token: Option<String>,
    /// API rate limits per role as ROLE=RATE/BURST (requests per second, bucket size),
    /// comma-separated; roles not named keep their default.
    #[arg(long, env = "MIKROBILL_API_RATE_LIMITS")]
    pub api_rate_limits: Option<String>,
}

impl std::fmt::Debug for HttpArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpArgs")
            .field("trusted_proxies", &self.trusted_proxies)
            .field("metrics_listen", &self.metrics_listen)
            .finish_non_exhaustive()
    }
}

impl HttpArgs {
    /// The settings in effect: flags and environment over the file's `[http]` table.
    fn resolve(self, file: &crate::config::FileHttp) -> anyhow::Result<crate::config::HttpConfig> {
        use mikrobill_http::server::listener::HttpLimits;
        let defaults = HttpLimits::default();
        let duration = |flag: Option<Duration>, text: &Option<String>, key: &str, default| match (
            flag, text,
        ) {
            (Some(d), _) => Ok(d),
            (None, Some(text)) => humantime::parse_duration(text).with_context(|| {
                format!("[http] {key} {text:?} in the config file is not a duration")
            }),
            (None, None) => Ok(default),
        };
        let limits = HttpLimits {
            header_timeout: duration(
                self.http_header_timeout,
                &file.header_timeout,
                "header_timeout",
                defaults.header_timeout,
            )?,
            body_timeout: duration(
                self.http_body_timeout,
                &file.body_timeout,
                "body_timeout",
                defaults.body_timeout,
            )?,
            idle_timeout: duration(
                self.http_idle_timeout,
                &file.idle_timeout,
                "idle_timeout",
                defaults.idle_timeout,
            )?,
            max_connections: self
                .http_max_connections
                .or(file.max_connections)
                .unwrap_or(defaults.max_connections),
        };
        for (name, d) in [
            ("header", limits.header_timeout),
            ("body", limits.body_timeout),
            ("idle", limits.idle_timeout),
        ] {
            anyhow::ensure!(
                !d.is_zero(),
                "the HTTP {name} timeout must be longer than 0"
            );
        }
        anyhow::ensure!(
            limits.max_connections > 0,
            "--http-max-connections must be at least 1"
        );
        let trusted_proxies = match (self.trusted_proxies, &file.trusted_proxies) {
            (Some(text), _) => mikrobill_http::server::client_ip::parse_trusted(&text)
                .map_err(|e| anyhow::anyhow!("--trusted-proxies: {e}"))?,
            (None, Some(list)) => mikrobill_http::server::client_ip::parse_trusted(&list.join(","))
                .map_err(|e| anyhow::anyhow!("[http] trusted_proxies: {e}"))?,
            (None, None) => Vec::new(),
        };
        let metrics_listen = match self
            .metrics_listen
            .or_else(|| file.metrics_listen.clone())
            .unwrap_or_else(|| crate::config::DEFAULT_METRICS_LISTEN.to_string())
        {
            off if off.eq_ignore_ascii_case("off") => None,
            addr => Some(addr.parse::<SocketAddr>().map_err(|_| {
                anyhow::anyhow!("--metrics-listen {addr:?} is not host:port or `off`")
            })?),
        };
        let metrics_token = self
            .metrics_token
            .or_else(|| file.metrics_token.clone())
            .filter(|t| !t.is_empty());
        if let Some(t) = &metrics_token {
            anyhow::ensure!(
                t.len() >= 16,
                "the metrics token must be at least 16 characters"
            );
        }
        let overrides: Vec<String> = match self.api_rate_limits {
            Some(text) => vec![text],
            None => file.api_rate_limits.clone().unwrap_or_default(),
        };
        let rate_limits = mikrobill_http::server::rate_limit::RateLimits::default()
            .with_overrides(overrides.iter().map(String::as_str))
            .map_err(|e| anyhow::anyhow!("API rate limits: {e}"))?;
        Ok(crate::config::HttpConfig {
            limits,
            trusted_proxies,
            metrics_listen,
            metrics_token,
            rate_limits,
        })
    }
}

/// Payment gateway options of `serve`. A gateway is enabled by its keys; each webhook is
/// `POST /api/v1/payments/webhooks/{midtrans|xendit|tripay}`.
#[derive(Args)]
pub struct PaymentArgs {
    /// Midtrans server key: enables Midtrans (webhook, status checks, Snap payment links).
    #[arg(long, env = "MIKROBILL_MIDTRANS_SERVER_KEY", hide_env_values = true)]
    pub midtrans_server_key: Option<String>,
    /// Midtrans Snap base URL for portal payment links [default: the sandbox, or production with --midtrans-production].
    #[arg(long, env = "MIKROBILL_MIDTRANS_SNAP_URL")]
    pub midtrans_snap_url: Option<String>,
    /// Midtrans Core API base URL, where notifications are confirmed [default: the sandbox, or production with --midtrans-production].
    #[arg(long, env = "MIKROBILL_MIDTRANS_API_URL")]
    pub midtrans_api_url: Option<String>,
    /// Use Midtrans production (real money) instead of the sandbox.
    #[arg(long, env = "MIKROBILL_MIDTRANS_PRODUCTION")]
    pub midtrans_production: bool,
    /// Xendit secret API key: with --xendit-callback-token, enables Xendit invoices.
    #[arg(long, env = "MIKROBILL_XENDIT_SECRET_KEY", hide_env_values = true)]
    pub xendit_secret_key: Option<String>,
    /// Xendit callback verification token (Dashboard, Settings, Callbacks).
    #[arg(long, env = "MIKROBILL_XENDIT_CALLBACK_TOKEN", hide_env_values = true)]
    pub xendit_callback_token: Option<String>,
    /// Xendit API base URL [default: https://api.xendit.co].
    #[arg(long, env = "MIKROBILL_XENDIT_API_URL")]
    pub xendit_api_url: Option<String>,
    /// Tripay API key: with the private key and merchant code, enables Tripay.
    #[arg(long, env = "MIKROBILL_TRIPAY_API_KEY", hide_env_values = true)]
    pub tripay_api_key: Option<String>,
    /// Tripay private key (signs transactions and callbacks).
    #[arg(long, env = "MIKROBILL_TRIPAY_PRIVATE_KEY", hide_env_values = true)]
    pub tripay_private_key: Option<String>,
    /// Tripay merchant code.
    #[arg(long, env = "MIKROBILL_TRIPAY_MERCHANT_CODE")]
    pub tripay_merchant_code: Option<String>,
    /// Tripay payment channel of payment links [default: QRIS].
    #[arg(long, env = "MIKROBILL_TRIPAY_METHOD")]
    pub tripay_method: Option<String>,
    /// Tripay API base URL [default: the sandbox, or production with --tripay-production].
    #[arg(long, env = "MIKROBILL_TRIPAY_API_URL")]
    pub tripay_api_url: Option<String>,
    /// Use Tripay production (real money) instead of the sandbox.
    #[arg(long, env = "MIKROBILL_TRIPAY_PRODUCTION")]
    pub tripay_production: bool,
    /// The gateway the portal's Pay button uses [default: the first configured of midtrans, xendit, tripay].
    #[arg(long, env = "MIKROBILL_PAYMENT_LINK_GATEWAY")]
    pub payment_link_gateway: Option<String>,
}

impl std::fmt::Debug for PaymentArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PaymentArgs { <redacted> }")
    }
}

impl PaymentArgs {
    /// The settings in effect: flags and environment over the file's `[payments]` table
    /// (and its older top-level Midtrans keys). A gateway given only some of its keys is an
    /// error that names the missing one.
    fn resolve(
        self,
        p: &crate::config::FilePayments,
        legacy: LegacyMidtrans,
    ) -> anyhow::Result<crate::config::PaymentConfig> {
        use crate::config::{MidtransConfig, PaymentConfig, TripaySettings, XenditConfig};
        use mikrobill_core::payments::gateway::{midtrans, midtrans_snap, tripay, xendit};
        let midtrans_production = self.midtrans_production
            || p.midtrans_production == Some(true)
            || legacy.production == Some(true);
        let midtrans = self
            .midtrans_server_key
            .or_else(|| p.midtrans_server_key.clone())
            .or(legacy.server_key)
            .map(|server_key| MidtransConfig {
                server_key,
                snap_url: self
                    .midtrans_snap_url
                    .or_else(|| p.midtrans_snap_url.clone())
                    .or(legacy.snap_url)
                    .unwrap_or_else(|| {
                        if midtrans_production {
                            midtrans_snap::PRODUCTION_URL
                        } else {
                            midtrans_snap::SANDBOX_URL
                        }
                        .to_string()
                    }),
                api_url: self
                    .midtrans_api_url
                    .or_else(|| p.midtrans_api_url.clone())
                    .unwrap_or_else(|| {
                        if midtrans_production {
                            midtrans::PRODUCTION_API_URL
                        } else {
                            midtrans::SANDBOX_API_URL
                        }
                        .to_string()
                    }),
            });
        let xendit = match (
            self.xendit_secret_key
                .or_else(|| p.xendit_secret_key.clone()),
            self.xendit_callback_token
                .or_else(|| p.xendit_callback_token.clone()),
        ) {
            (None, None) => None,
            (Some(secret_key), Some(callback_token)) => Some(XenditConfig {
                secret_key,
                callback_token,
                api_url: self
                    .xendit_api_url
                    .or_else(|| p.xendit_api_url.clone())
                    .unwrap_or_else(|| xendit::API_URL.to_string()),
            }),
            (Some(_), None) => anyhow::bail!("Xendit needs --xendit-callback-token too"),
            (None, Some(_)) => anyhow::bail!("Xendit needs --xendit-secret-key too"),
        };
        let tripay_production = self.tripay_production || p.tripay_production == Some(true);
        let tripay = match (
            self.tripay_api_key.or_else(|| p.tripay_api_key.clone()),
            self.tripay_private_key
                .or_else(|| p.tripay_private_key.clone()),
            self.tripay_merchant_code
                .or_else(|| p.tripay_merchant_code.clone()),
        ) {
            (None, None, None) => None,
            (Some(api_key), Some(private_key), Some(merchant_code)) => Some(TripaySettings {
                api_key,
                private_key,
                merchant_code,
                method: self
                    .tripay_method
                    .or_else(|| p.tripay_method.clone())
                    .unwrap_or_else(|| "QRIS".to_string()),
                api_url: self
                    .tripay_api_url
                    .or_else(|| p.tripay_api_url.clone())
                    .unwrap_or_else(|| {
                        if tripay_production {
                            tripay::PRODUCTION_URL
                        } else {
                            tripay::SANDBOX_URL
                        }
                        .to_string()
                    }),
            }),
            (api, private, merchant) => {
                let missing: Vec<&str> = [
                    (api.is_none(), "--tripay-api-key"),
                    (private.is_none(), "--tripay-private-key"),
                    (merchant.is_none(), "--tripay-merchant-code"),
                ]
                .into_iter()
                .filter_map(|(m, name)| m.then_some(name))
                .collect();
                anyhow::bail!("Tripay needs {} too", missing.join(" and "))
            }
        };
        Ok(PaymentConfig {
            midtrans,
            xendit,
            tripay,
            link_gateway: self
                .payment_link_gateway
                .or_else(|| p.payment_link_gateway.clone()),
        })
    }
}

/// The Midtrans keys older config files have at the top level.
struct LegacyMidtrans {
    server_key: Option<String>,
    snap_url: Option<String>,
    production: Option<bool>,
}

/// Options shared by token-issuing commands.
#[derive(Debug, Args)]
pub struct TokenArgs {
    /// How long the token stays valid (e.g. 24h, 30m, 7days).
    #[arg(long, default_value = "24h", value_parser = humantime::parse_duration)]
    pub token_ttl: Duration,
    /// Controller edge address for the token; defaults to what `serve` advertises.
    #[arg(long)]
    pub edge_addr: Option<String>,
}

/// `site` subcommands.
#[derive(Debug, Subcommand)]
pub enum SiteCommand {
    /// Create a site and print its one-time enrollment token.
    Add {
        /// Site name.
        name: String,
        /// How long the token lives and where the agent dials.
        #[command(flatten)]
        token: TokenArgs,
    },
    /// Print a new enrollment token for an existing site (agent reinstalled).
    Token {
        /// Site name.
        name: String,
        /// How long the token lives and where the agent dials.
        #[command(flatten)]
        token: TokenArgs,
    },
    /// Create many sites at once (one transaction: a bad or taken name creates none) and
    /// print a CSV of name, site id, token, expiry and the technician's command.
    AddMany {
        /// CSV file with a `name` column (or one name per line); `-` reads standard input.
        csv: PathBuf,
        /// How long the tokens live and where the agents dial.
        #[command(flatten)]
        token: TokenArgs,
    },
    /// List sites with online/offline state and last-seen time.
    List,
    /// Lock a site's agent out now: its session is closed and its certificates refused.
    Revoke {
        /// Site name.
        name: String,
    },
}

/// `plan` subcommands.
#[derive(Debug, Subcommand)]
pub enum PlanCommand {
    /// Create a plan.
    Add(PlanArgs),
}

/// Options of `plan add`.
#[derive(Debug, Args)]
pub struct PlanArgs {
    /// Plan name.
    pub name: String,
    /// Price in minor currency units (e.g. 5000 for Rp 5.000).
    #[arg(long, default_value_t = 0)]
    pub price: i64,
    /// Speed as rx/tx from the subscriber's side, e.g. 2M/10M.
    #[arg(long)]
    pub rate_limit: Option<String>,
    /// Online time allowed (e.g. 3h).
    #[arg(long, value_parser = humantime::parse_duration)]
    pub time_limit: Option<Duration>,
    /// Data allowed, in bytes with an optional k/M/G suffix (powers of 1000).
    #[arg(long, value_parser = parse_bytes)]
    pub data_limit: Option<u64>,
    /// Validity from first use (e.g. 1day, 30days).
    #[arg(long, value_parser = humantime::parse_duration)]
    pub validity: Option<Duration>,
    /// Concurrent sessions per account.
    #[arg(long, default_value_t = 1)]
    pub shared_users: u32,
    /// Bind each voucher to the first device (MAC) that uses it, at every site.
    #[arg(long)]
    pub mac_lock: bool,
    /// Fair usage: the speed (rx/tx, e.g. 512k/1M) an account drops to once it has used
    /// --data-limit, instead of being cut off.
    #[arg(long, requires = "data_limit")]
    pub fup_rate_limit: Option<String>,
}

/// `voucher` subcommands.
#[derive(Debug, Subcommand)]
pub enum VoucherCommand {
    /// Create vouchers (random codes with --count, or one given code with --code).
    Add {
        /// Plan name.
        #[arg(long)]
        plan: String,
        /// Limit to one site (all sites when absent).
        #[arg(long)]
        site: Option<String>,
        /// Number of random codes.
        #[arg(long, default_value_t = 1, conflicts_with = "code")]
        count: usize,
        /// A specific code.
        #[arg(long)]
        code: Option<String>,
        /// A separate password (code is the password when absent).
        #[arg(long, requires = "code")]
        password: Option<String>,
        /// Prefix for random codes.
        #[arg(long, default_value = "")]
        prefix: String,
        /// Length of the random part.
        #[arg(long, default_value_t = 8)]
        length: usize,
    },
    /// Revoke a voucher everywhere.
    Revoke {
        /// Voucher code.
        code: String,
    },
}

/// Parses `1500`, `10k`, `5M`, `2G` (powers of 1000).
pub fn parse_bytes(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let (digits, mult) = match s.char_indices().last() {
        Some((i, 'k' | 'K')) => (&s[..i], 1_000),
        Some((i, 'M')) => (&s[..i], 1_000_000),
        Some((i, 'G')) => (&s[..i], 1_000_000_000),
        _ => (s, 1),
    };
    digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(mult))
        .ok_or_else(|| format!("{s:?} is not a byte count such as 500M or 2G"))
}

/// Entry point of the binary.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let file = match &cli.config {
        Some(path) => match FileConfig::load(path) {
            Ok(f) => f,
            Err(e) => {
                eprintln!("error: {e:#}");
                return ExitCode::from(2);
            }
        },
        None => FileConfig::default(),
    };
    let log_format = cli
        .log_format
        .clone()
        .or(file.log_format.clone())
        .unwrap_or_else(|| "text".into());
    if !matches!(log_format.as_str(), "text" | "json") {
        eprintln!("error: log format {log_format:?} is not one of: text, json");
        return ExitCode::from(2);
    }
    // Before the runtime: the trace exporter's HTTP client runs its own.
    let telemetry = match mikrobill_telemetry::init(mikrobill_telemetry::Options {
        service: "mikrobill-controller",
        log_format,
        otlp_endpoint: cli.otlp_endpoint.clone(),
    }) {
        Ok(guard) => guard,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let outcome = runtime.block_on(run(cli, file));
    // Exports the spans still queued.
    drop(telemetry);
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli, file: FileConfig) -> anyhow::Result<()> {
    let explicit_data_dir = cli.data_dir.clone();
    let store = StoreConfig {
        data_dir: cli
            .data_dir
            .or(file.data_dir)
            .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR)),
        database_url: cli.database_url.or(file.database_url),
    };
    match cli.command {
        Command::Serve(args) => {
            let config = ServeConfig {
                store,
                api_listen: args
                    .api_listen
                    .or(file.api_listen)
                    .unwrap_or_else(|| DEFAULT_API_LISTEN.parse().unwrap()),
                edge_listen: args
                    .edge_listen
                    .or(file.edge_listen)
                    .unwrap_or_else(|| DEFAULT_EDGE_LISTEN.parse().unwrap()),
                edge_advertise: args.edge_advertise.or(file.edge_advertise),
                job_interval: match (args.job_interval, &file.job_interval) {
                    (Some(d), _) => d,
                    (None, Some(text)) => humantime::parse_duration(text).with_context(|| {
                        format!("job_interval {text:?} in the config file is not a duration")
                    })?,
                    (None, None) => crate::config::DEFAULT_JOB_INTERVAL,
                },
                payments: args.payments.resolve(
                    &file.payments,
                    LegacyMidtrans {
                        server_key: file.midtrans_server_key,
                        snap_url: file.midtrans_snap_url,
                        production: file.midtrans_production,
                    },
                )?,
                http: args.http.resolve(&file.http)?,
                behind_tls: args.behind_tls || file.behind_tls == Some(true),
                webhook_retry_base: match (args.webhook_retry_base, &file.webhook_retry_base) {
                    (Some(d), _) => d,
                    (None, Some(text)) => humantime::parse_duration(text).with_context(|| {
                        format!("webhook_retry_base {text:?} in the config file is not a duration")
                    })?,
                    (None, None) => mikrobill_core::events::webhooks::DEFAULT_RETRY_BASE,
                },
                notify_send_timeout: match (args.notify_send_timeout, &file.notify_send_timeout) {
                    (Some(d), _) => d,
                    (None, Some(text)) => humantime::parse_duration(text).with_context(|| {
                        format!("notify_send_timeout {text:?} in the config file is not a duration")
                    })?,
                    (None, None) => mikrobill_core::notify::worker::Timing::default().send_timeout,
                },
                backup: args.backup.resolve(&file.backup)?,
                agent_cert_validity: {
                    let v = args
                        .agent_cert_validity
                        .unwrap_or(mikrobill_core::pki::AGENT_CERT_VALIDITY);
                    anyhow::ensure!(
                        v >= Duration::from_secs(300),
                        "--agent-cert-validity must be at least 5m"
                    );
                    v
                },
                sync_log_retention: args.sync_log_retention,
            };
            crate::serve::run(config).await
        }
        Command::Demo {
            api_listen,
            edge_listen,
            radius_port,
        } => {
            crate::demo::run(crate::demo::DemoOptions {
                // Only a directory asked for on the command line or in MIKROBILL_DATA_DIR:
                // the config file's is a production one.
                dir: explicit_data_dir,
                api_listen,
                edge_listen,
                radius_port,
            })
            .await
        }
        Command::Migrate => {
            open(&store).await?;
            println!("database is up to date");
            Ok(())
        }
        Command::Backup(args) => crate::backup::run_backup(&store, args).await,
        Command::Restore(args) => crate::backup::run_restore(&store, args).await,
        Command::Site(cmd) => site(&store, cmd).await,
        Command::Ca(cmd) => ca(&store, cmd).await,
        Command::Import(cmd) => crate::import::run(&open(&store).await?, cmd).await,
        Command::Plan(PlanCommand::Add(args)) => {
            let db = open(&store).await?;
            let plan = Plan {
                id: String::new(),
                name: args.name,
                rate_limit: args.rate_limit,
                time_limit_secs: args.time_limit.map(|d| d.as_secs()),
                data_limit_bytes: args.data_limit,
                validity_secs: args.validity.map(|d| d.as_secs()),
                shared_users: args.shared_users,
                interim_interval_secs: None,
                router_group: None,
                address_list: None,
                mac_lock: args.mac_lock,
                fup_rate_limit: args.fup_rate_limit,
            };
            let plan = plans::create(&db, plan, args.price).await?;
            println!("plan {:?} created (id {})", plan.name, plan.id);
            Ok(())
        }
        Command::Voucher(VoucherCommand::Add {
            plan,
            site,
            count,
            code,
            password,
            prefix,
            length,
        }) => {
            let db = open(&store).await?;
            let plan = plans::by_name(&db, &plan).await?;
            let site_id = match &site {
                Some(name) => Some(sites::by_name(&db, name).await?.id),
                None => None,
            };
            let entries = match code {
                Some(code) => vec![(code, password)],
                None => {
                    if !(4..=32).contains(&length) || count == 0 || count > 100_000 {
                        bail!("--length must be 4-32 and --count 1-100000");
                    }
                    vouchers::generate_codes(count, &prefix, length)
                        .into_iter()
                        .map(|c| (c, None))
                        .collect()
                }
            };
            for v in vouchers::create(&db, &plan.id, site_id.as_deref(), &entries).await? {
                println!("{}", v.code);
            }
            Ok(())
        }
        Command::Voucher(VoucherCommand::Revoke { code }) => {
            let db = open(&store).await?;
            vouchers::revoke(&db, &code).await?;
            println!("voucher {code} revoked");
            Ok(())
        }
        Command::Admin(AdminCommand::Create {
            username,
            role,
            password_stdin,
        }) => {
            let db = open(&store).await?;
            let (password, generated) = password_from(password_stdin)?;
            let admin = mikrobill_core::admins::create(
                &db,
                &mikrobill_core::audit::Actor::cli(),
                mikrobill_core::admins::NewAdmin {
                    username,
                    password: password.clone(),
                    role,
                    display_name: None,
                },
            )
            .await?;
            println!(
                "admin user {} created with role {}",
                admin.username,
                role.as_str()
            );
            if generated {
                println!("password: {password}");
            }
            Ok(())
        }
        Command::Admin(AdminCommand::ResetPassword {
            username,
            password_stdin,
        }) => {
            let db = open(&store).await?;
            let (admin, _) = mikrobill_core::admins::for_login(&db, &username)
                .await?
                .with_context(|| format!("no admin user named {username:?}"))?;
            let (password, generated) = password_from(password_stdin)?;
            mikrobill_core::admins::update(
                &db,
                &mikrobill_core::audit::Actor::cli(),
                &admin.id,
                mikrobill_core::admins::AdminPatch {
                    password: Some(password.clone()),
                    disabled: Some(false),
                    ..Default::default()
                },
            )
            .await?;
            println!("password of {username} reset; their sessions and tokens are revoked");
            if generated {
                println!("password: {password}");
            }
            Ok(())
        }
        Command::Admin(AdminCommand::ResetTotp { username }) => {
            let db = open(&store).await?;
            let (admin, _) = mikrobill_core::admins::for_login(&db, &username)
                .await?
                .with_context(|| format!("no admin user named {username:?}"))?;
            mikrobill_core::admin_totp::reset(&db, &mikrobill_core::audit::Actor::cli(), &admin.id)
                .await?;
            println!(
                "two-factor sign-in of {username} reset; their sessions and tokens are revoked"
            );
            Ok(())
        }
    }
}

async fn open(store: &StoreConfig) -> anyhow::Result<Db> {
    crate::config::prepare_data_dir(&store.data_dir, store.database_url.is_none())
        .with_context(|| format!("cannot create data directory {}", store.data_dir.display()))?;
    let url = store.database_url();
    Db::open(&url)
        .await
        .with_context(|| format!("cannot open database {}", redact_url(&url)))
}

async fn issue_token(
    db: &Db,
    store: &StoreConfig,
    site: &sites::Site,
    args: &TokenArgs,
) -> anyhow::Result<String> {
    let controller_addr = match &args.edge_addr {
        Some(a) => a.clone(),
        None => db.setting(EDGE_ADVERTISE_SETTING).await?.context(
            "the controller's edge address is not known yet: start `serve` once (it records it) or pass --edge-addr HOST:PORT",
        )?,
    };
    let fingerprint = ca_rotation::enrollment_fingerprint(db, &store.data_dir).await?;
    let ttl_ms = i64::try_from(args.token_ttl.as_millis()).context("token lifetime too long")?;
    Ok(sites::issue_enrollment_token(
        db,
        &Actor::cli(),
        &site.id,
        controller_addr,
        fingerprint,
        ttl_ms,
    )
    .await?)
}

fn print_rotation(r: &ca_rotation::Rotation) {
    println!("rotation:     {}", r.phase().as_str());
    println!("new CA:       {}", r.fingerprint);
    println!("previous CA:  {}", r.previous_fingerprint);
    println!("published:    {}", format_ms(r.published_at));
    if let Some(t) = r.activated_at {
        println!("activated:    {}", format_ms(t));
    }
    if let Some(t) = r.retired_at {
        println!("retired:      {}", format_ms(t));
    }
    if r.forced_pending > 0 {
        println!(
            "forced with:  {} site(s) left to enroll again",
            r.forced_pending
        );
    }
}

async fn ca(store: &StoreConfig, cmd: CaCommand) -> anyhow::Result<()> {
    let db = open(store).await?;
    let actor = Actor::cli();
    // Running controllers follow each step within a poll interval.
    match cmd {
        CaCommand::Status => {
            let set = ca_rotation::load(&db, &store.data_dir).await?;
            println!("issuing CA:   {}", set.active.fingerprint_hex());
            match ca_rotation::latest(&db).await? {
                None => println!("rotation:     none"),
                Some(r) => {
                    print_rotation(&r);
                    if r.phase() != ca_rotation::Phase::Retired {
                        let pending =
                            ca_rotation::pending_agents(&db, &r.fingerprint, now_ms()).await?;
                        println!("sites still on the previous CA: {pending}");
                    }
                }
            }
        }
        CaCommand::Rotate => {
            let r = ca_rotation::publish(&db, &store.data_dir, &actor, now_ms()).await?;
            print_rotation(&r);
            eprintln!(
                "agents are sent the new CA; once they have it (`ca status`), run `ca activate`"
            );
        }
        CaCommand::Activate => {
            let r = ca_rotation::activate(&db, &actor, now_ms()).await?;
            print_rotation(&r);
            eprintln!(
                "new enrollment tokens pin the new CA (create unused older tokens again); agents renew onto it, then run `ca retire`"
            );
        }
        CaCommand::Retire { force } => {
            let r = ca_rotation::retire(&db, &actor, force, now_ms()).await?;
            print_rotation(&r);
        }
    }
    Ok(())
}

async fn site(store: &StoreConfig, cmd: SiteCommand) -> anyhow::Result<()> {
    let db = open(store).await?;
    match cmd {
        SiteCommand::Add { name, token } => {
            let site = sites::create(&db, &Actor::cli(), &name).await?;
            let t = issue_token(&db, store, &site, &token).await?;
            eprintln!(
                "site {:?} created (id {}); enrollment token, valid {}:",
                site.name,
                site.id,
                humantime::format_duration(token.token_ttl)
            );
            println!("{t}");
            eprintln!(
                "on the agent: mikrobill-agent enroll --data-dir /var/lib/mikrobill-agent --token <token>"
            );
        }
        SiteCommand::AddMany { csv, token } => {
            use mikrobill_core::site_bulk;
            let text = if csv.as_os_str() == "-" {
                std::io::read_to_string(std::io::stdin()).context("cannot read standard input")?
            } else {
                std::fs::read_to_string(&csv)
                    .with_context(|| format!("cannot read {}", csv.display()))?
            };
            let names = site_bulk::parse_csv(&text)?;
            let addr = site_bulk::edge_addr(&db, token.edge_addr.clone()).await?.context(
                "the controller's edge address is not known yet: start `serve` once (it records it) or pass --edge-addr HOST:PORT",
            )?;
            let ttl_ms =
                i64::try_from(token.token_ttl.as_millis()).context("token lifetime too long")?;
            let fingerprint = ca_rotation::enrollment_fingerprint(&db, &store.data_dir).await?;
            let created =
                site_bulk::create(&db, &Actor::cli(), &names, &addr, fingerprint, ttl_ms).await?;
            use mikrobill_http::csv::push_record;
            let mut out = String::new();
            push_record(
                &mut out,
                ["name", "site_id", "token", "expires_at", "command"],
            );
            for (site, t) in &created {
                let expires = format_ms(t.expires_at);
                push_record(
                    &mut out,
                    [&site.name, &site.id, &t.token, &expires, &t.command],
                );
            }
            print!("{out}");
            eprintln!(
                "{} sites created; tokens valid {}",
                created.len(),
                humantime::format_duration(token.token_ttl)
            );
        }
        SiteCommand::Token { name, token } => {
            let site = sites::by_name(&db, &name).await?;
            if site.revoked_at.is_some() {
                bail!("site {name:?} is revoked");
            }
            println!("{}", issue_token(&db, store, &site, &token).await?);
        }
        SiteCommand::List => {
            let list = sites::list(&db).await?;
            println!(
                "{:<24} {:<8} {:<30} {:<10} ID",
                "NAME", "STATE", "LAST SEEN", "OUTBOX"
            );
            let now = now_ms();
            for s in list {
                let state = if s.revoked_at.is_some() {
                    "revoked"
                } else if s.online {
                    "online"
                } else {
                    "offline"
                };
                let seen = match s.last_seen_at {
                    Some(t) => format!("{} ({}s ago)", format_ms(t), (now - t).max(0) / 1000),
                    None => "never".into(),
                };
                println!(
                    "{:<24} {:<8} {:<30} {:<10} {}",
                    s.name, state, seen, s.outbox_pending, s.id
                );
            }
        }
        SiteCommand::Revoke { name } => {
            let site = sites::revoke(&db, &Actor::cli(), &name).await?;
            println!("site {:?} revoked; its agent is locked out", site.name);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_counts() {
        assert_eq!(parse_bytes("1500"), Ok(1500));
        assert_eq!(parse_bytes("10k"), Ok(10_000));
        assert_eq!(parse_bytes("5M"), Ok(5_000_000));
        assert_eq!(parse_bytes("2G"), Ok(2_000_000_000));
        assert!(parse_bytes("lots").is_err());
        assert!(parse_bytes("99999999999G").is_err());
    }

    #[test]
    fn cli_definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
