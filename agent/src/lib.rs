//! MikroBill agent: the daemon beside each MikroTik router.
//!
//! `cache` holds what the controller synced, `outbox` what must reach the controller,
//! `uplink` moves both over the mutually authenticated QUIC link, `identity`/`tls`/`enroll`
//! give the agent its certificate. The RADIUS server reads the cache and writes the outbox,
//! and never waits on the uplink. `router` manages the MikroTik router over its API, in
//! its own tasks, so neither RADIUS nor the uplink ever waits on the router. `commands`
//! applies what the controller asks of the site (Disconnect, isolation, plan changes,
//! router resync) through RADIUS CoA/Disconnect and the router API. `status` tells what the
//! running agent does (`/metrics`, `/health`, `/status` on a local port). `mapped_alloc` is
//! the static build's allocator.

#![warn(missing_docs, unreachable_pub)]

pub mod cache;
pub mod cli;
pub mod clock;
pub mod commands;
pub mod config;
pub mod enroll;
pub mod identity;
#[cfg(target_os = "linux")]
pub mod mapped_alloc;
mod net;
pub mod outbox;
pub mod radius;
pub mod reconnect;
pub mod router;
pub mod status;
pub mod tls;
pub mod uplink;

use cache::Cache;
use outbox::Outbox;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;
use uplink::LinkState;

/// sled page cache size: plenty for 100k accounts, far below sled's 1 GiB default.
pub const CACHE_CAPACITY_BYTES: u64 = 16 * 1024 * 1024;

/// The system clock as UTC unix milliseconds: for what is compared with the controller's or
/// the certificates' time; subscriber time comes from [`AgentOptions::clock`].
pub fn now_ms() -> i64 {
    clock::system_now_ms()
}

/// Opens the agent's sled store in `data_dir` (the running agent, and `status` reading the
/// directory of a stopped one).
pub(crate) fn open_store(data_dir: &std::path::Path) -> Result<sled::Db, AgentError> {
    let path = data_dir.join("db");
    sled::Config::new()
        .path(&path)
        .cache_capacity(CACHE_CAPACITY_BYTES)
        .open()
        .map_err(|source| AgentError::Storage { path, source })
}

/// Flushes sled to disk on a blocking thread (an fsync must not stall a runtime worker).
pub(crate) async fn flush(db: &sled::Db) -> Result<(), sled::Error> {
    let db = db.clone();
    match tokio::task::spawn_blocking(move || db.flush()).await {
        Ok(result) => result.map(|_| ()),
        Err(e) => Err(sled::Error::Io(std::io::Error::other(format!(
            "flush task failed: {e}"
        )))),
    }
}

/// First certificate in a PEM text.
pub(crate) fn pem_cert(pem: &str) -> Option<rustls::pki_types::CertificateDer<'static>> {
    use rustls::pki_types::pem::PemObject;
    rustls::pki_types::CertificateDer::pem_slice_iter(pem.as_bytes())
        .next()?
        .ok()
}

/// How to run an agent.
#[derive(Debug, Clone)]
pub struct AgentOptions {
    /// Data directory with the identity and the sled database.
    pub data_dir: PathBuf,
    /// Controller address overriding the enrolled one.
    pub controller_addr: Option<String>,
    /// Longest pause between reconnect attempts.
    pub reconnect_max: Duration,
    /// The RADIUS server, when the agent should run one.
    pub radius: Option<radius::RadiusConfig>,
    /// The router to manage over its API, if any.
    pub router: Option<router::RouterConfig>,
    /// Where to serve `/metrics`, `/health` and `/status`; none when `None`.
    pub status_listen: Option<std::net::SocketAddr>,
    /// The time RADIUS decisions, accounting and status read: the system clock but in tests.
    pub clock: clock::Clock,
}

impl AgentOptions {
    /// Defaults for a data directory.
    pub fn new(data_dir: impl Into<PathBuf>) -> AgentOptions {
        AgentOptions {
            data_dir: data_dir.into(),
            controller_addr: None,
            reconnect_max: Duration::from_secs(60),
            radius: None,
            router: None,
            status_listen: None,
            clock: clock::Clock::system(),
        }
    }
}

/// Errors starting the agent.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// Identity missing or damaged.
    #[error(transparent)]
    Identity(#[from] identity::IdentityError),
    /// The local database could not be opened.
    #[error("cannot open the local database in {path}: {source}")]
    Storage {
        /// The database directory.
        path: PathBuf,
        /// What sled said.
        source: sled::Error,
    },
    /// Cache trees could not be opened.
    #[error(transparent)]
    Cache(#[from] cache::CacheError),
    /// Outbox could not be opened.
    #[error(transparent)]
    Outbox(#[from] outbox::OutboxError),
    /// Session table could not be opened.
    #[error(transparent)]
    Sessions(#[from] radius::sessions::SessionError),
    /// The RADIUS listeners could not start.
    #[error(transparent)]
    Radius(std::io::Error),
    /// The records of router items the agent made could not be opened.
    #[error("cannot open the router records: {0}")]
    RouterRecords(sled::Error),
    /// The stored outcomes of controller commands could not be opened.
    #[error("cannot open the command outcomes: {0}")]
    Commands(sled::Error),
}

/// A running agent.
pub struct Agent {
    cache: Arc<Cache>,
    outbox: Arc<Outbox>,
    sessions: Arc<radius::Sessions>,
    radius: Option<radius::RadiusServer>,
    db: sled::Db,
    link: watch::Receiver<LinkState>,
    shutdown: watch::Sender<bool>,
    uplink: tokio::task::JoinHandle<()>,
    router: Option<(router::Router, tokio::task::JoinHandle<()>)>,
    commands: Arc<commands::Applier>,
    site_name: String,
    status: Arc<status::Sources>,
    status_addr: Option<std::net::SocketAddr>,
}

impl Agent {
    /// Opens the local state and starts the uplink.
    pub async fn start(options: AgentOptions) -> Result<Agent, AgentError> {
        let identity = identity::load(&options.data_dir)?;
        let clock = options.clock.clone();
        let db = open_store(&options.data_dir)?;
        let cache = Arc::new(Cache::open(&db, &identity.state.site_id)?);
        let outbox = Outbox::open(&db)?;
        let sessions = Arc::new(radius::Sessions::open(&db)?);
        // RADIUS starts before the uplink: the router is served from the cache whatever the link does.
        let radius = match options.radius.clone() {
            Some(config) => Some(
                radius::RadiusServer::start_with_clock(
                    config,
                    cache.clone(),
                    outbox.clone(),
                    sessions.clone(),
                    clock.clone(),
                )
                .await
                .map_err(AgentError::Radius)?,
            ),
            None => None,
        };
        let controller_addr = options
            .controller_addr
            .clone()
            .unwrap_or_else(|| identity.state.controller_addr.clone());
        let site_name = identity.state.site_name.clone();
        let site_id = identity.state.site_id.clone();
        let certificate_expires_ms = Arc::new(std::sync::atomic::AtomicI64::new(
            identity::cert_not_after_ms(&identity.cert).unwrap_or(0),
        ));
        if let Some(secs) = identity::cert_expires_in_secs(&identity.cert)
            && secs < 30 * 24 * 3600
        {
            tracing::warn!(
                days_left = secs / 86400,
                "the agent certificate expires soon: re-enroll with `site token`"
            );
        }
        let (link_tx, link) = watch::channel(LinkState::Connecting);
        let (shutdown, shutdown_rx) = watch::channel(false);
        // The router comes before the uplink: commands arriving over the link need its handle.
        let (router, managed) = match options.router {
            Some(config) => {
                let owned = router::Owned::open(&db).map_err(AgentError::RouterRecords)?;
                let drift = router::DriftLog::open(&db).map_err(AgentError::RouterRecords)?;
                let handle = router::Router::spawn(&config);
                tracing::info!(router = %config.address, mode = ?config.mode, "managing the router");
                let managed = commands::ManagedRouter {
                    router: handle.clone(),
                    config: config.clone(),
                    owned: owned.clone(),
                    drift: drift.clone(),
                };
                let task = tokio::spawn(router::run(
                    handle.clone(),
                    config,
                    cache.clone(),
                    owned,
                    drift,
                    shutdown_rx.clone(),
                ));
                (Some((handle, task)), Some(managed))
            }
            None => (None, None),
        };
        let drift_reports = managed.as_ref().map(|m| m.drift.subscribe());
        let clients = options
            .radius
            .as_ref()
            .map(|r| r.clients.clone())
            .unwrap_or_default();
        let commands = Arc::new(
            commands::Applier::open(&db, cache.clone(), sessions.clone(), clients, managed)
                .map_err(AgentError::Commands)?
                .with_clock(clock.clone()),
        );
        let started_at_ms = clock.now_ms();
        let uplink_stats = Arc::new(uplink::UplinkStats::starting(clock.clone()));
        let status = Arc::new(status::Sources {
            site_id,
            site_name: site_name.clone(),
            controller_addr: controller_addr.clone(),
            certificate_expires_ms: certificate_expires_ms.clone(),
            started_at_ms,
            clock: clock.clone(),
            cache: cache.clone(),
            outbox: outbox.clone(),
            link: link.clone(),
            uplink: uplink_stats.clone(),
            radius: radius.as_ref().map(|r| status::RadiusSource {
                stats: r.stats.clone(),
                auth_addr: r.auth_addr,
                acct_addr: r.acct_addr,
                tasks: r.task_handles(),
            }),
            router: router.as_ref().map(|(r, _)| r.clone()),
        });
        // A status port that cannot be bound must not cost the site its RADIUS service.
        let status_addr = match options.status_listen {
            Some(addr) => match tokio::net::TcpListener::bind(addr).await {
                Ok(listener) => {
                    let bound = listener.local_addr().ok();
                    tokio::spawn(status::http::serve(
                        listener,
                        status.clone(),
                        shutdown_rx.clone(),
                    ));
                    bound
                }
                Err(e) => {
                    tracing::error!(%addr, "cannot serve /metrics, /health and /status: {e}");
                    None
                }
            },
            None => None,
        };
        let ctx = Arc::new(uplink::UplinkContext {
            identity: std::sync::Mutex::new(identity),
            data_dir: options.data_dir.clone(),
            certificate_expires_ms,
            controller_addr,
            cache: cache.clone(),
            outbox: outbox.clone(),
            commands: commands.clone(),
            router_state: router.as_ref().map(|(r, _)| r.state()),
            drift: drift_reports,
            link: link_tx,
            radius_stats: radius.as_ref().map(|r| r.stats.clone()),
            started_at_ms,
            reconnect_max: options.reconnect_max,
            started: Instant::now(),
            stats: uplink_stats,
            trust_changed: tokio::sync::Notify::new(),
        });
        let uplink = tokio::spawn(uplink::run(ctx, shutdown_rx));
        Ok(Agent {
            cache,
            outbox,
            sessions,
            radius,
            db,
            link,
            shutdown,
            uplink,
            router,
            commands,
            site_name,
            status,
            status_addr,
        })
    }

    /// What the agent is doing now.
    pub fn status(&self) -> status::report::StatusReport {
        self.status.collect(self.status.clock.now_ms())
    }

    /// Where `/metrics`, `/health` and `/status` are served, if they are.
    pub fn status_addr(&self) -> Option<std::net::SocketAddr> {
        self.status_addr
    }

    /// The synced cache.
    pub fn cache(&self) -> &Arc<Cache> {
        &self.cache
    }

    /// The accounting outbox.
    pub fn outbox(&self) -> &Arc<Outbox> {
        &self.outbox
    }

    /// The local session table.
    pub fn sessions(&self) -> &Arc<radius::Sessions> {
        &self.sessions
    }

    /// The RADIUS server, if running.
    pub fn radius(&self) -> Option<&radius::RadiusServer> {
        self.radius.as_ref()
    }

    /// The link state, updated as it changes.
    pub fn link(&self) -> watch::Receiver<LinkState> {
        self.link.clone()
    }

    /// The managed router, if configured.
    pub fn router(&self) -> Option<&router::Router> {
        self.router.as_ref().map(|(r, _)| r)
    }

    /// Applies the controller's commands; the uplink hands it every command stream.
    pub fn commands(&self) -> &Arc<commands::Applier> {
        &self.commands
    }

    /// The enrolled site's name.
    pub fn site_name(&self) -> &str {
        &self.site_name
    }

    /// Stops the uplink and flushes local state.
    pub async fn shutdown(self) {
        if let Some(radius) = self.radius {
            radius.stop().await;
        }
        let _ = self.shutdown.send(true);
        if let Some((router, task)) = self.router {
            router.shutdown();
            let _ = task.await;
        }
        let _ = self.uplink.await;
        if let Err(e) = flush(&self.db).await {
            tracing::error!("cannot flush local state at shutdown: {e}");
        }
    }
}
