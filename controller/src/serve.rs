//! `mikrobill-controller serve`: storage, PKI, edge and HTTP together.

use crate::config::ServeConfig;
use crate::edge::Edge;
use anyhow::Context;
use mikrobill_core::db::{Db, redact_url};
use std::net::SocketAddr;
use std::sync::Arc;

/// How often new events are fanned out to webhooks and due deliveries are sent.
pub const WEBHOOK_INTERVAL: std::time::Duration = std::time::Duration::from_millis(500);
/// Heartbeat interval asked of agents.
pub const HEARTBEAT_INTERVAL_SECS: u32 = 15;

/// The address to put in enrollment tokens when none is configured.
pub fn default_advertise(listen: SocketAddr) -> String {
    if listen.ip().is_unspecified() {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_string())
            .unwrap_or_default();
        let host = if host.is_empty() {
            "localhost".to_string()
        } else {
            host
        };
        format!("{host}:{}", listen.port())
    } else {
        listen.to_string()
    }
}

/// A running controller (used by `serve` and by in-process tests).
pub struct Running {
    /// Where the HTTP API listens.
    pub api_addr: SocketAddr,
    /// Where the edge listens.
    pub edge_addr: SocketAddr,
    /// Where `/metrics` is served, if it has a listener of its own.
    pub metrics_addr: Option<SocketAddr>,
    shutdown: tokio::sync::watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    _checkpointer: mikrobill_core::db::checkpoint::Checkpointer,
}

impl Running {
    /// Stops both listeners and waits for them.
    pub async fn stop(self) {
        let _ = self.shutdown.send(true);
        for t in self.tasks {
            let _ = t.await;
        }
    }
}

/// Starts the controller and returns once both listeners are bound.
pub async fn start(config: &ServeConfig) -> anyhow::Result<Running> {
    crate::config::prepare_data_dir(&config.store.data_dir, config.store.database_url.is_none())
        .with_context(|| {
            format!(
                "cannot create data directory {}",
                config.store.data_dir.display()
            )
        })?;
    let url = config.store.database_url();
    let (db, checkpointer) = Db::open_server(&url)
        .await
        .with_context(|| format!("cannot open database {}", redact_url(&url)))?;
    tracing::info!(database = %redact_url(&url), "database ready");
    ensure_first_admin(&db).await?;
    if let Some(retention) = config.sync_log_retention {
        // A setting, so the compaction job reads the same value on every replica.
        db.set_setting(
            mikrobill_core::sync_compaction::RETENTION_SETTING,
            &retention.as_secs().to_string(),
        )
        .await?;
    }
    let source = crate::edge::CaSource {
        dir: config.store.data_dir.clone(),
        agent_validity: config.agent_cert_validity,
    };
    let edge = Edge::bind(
        config.edge_listen,
        db.clone(),
        source,
        HEARTBEAT_INTERVAL_SECS,
    )
    .await?;
    let ca_fingerprint = edge.enrollment_fingerprint();
    tracing::info!(fingerprint = %hex::encode(*ca_fingerprint.borrow()), "certificate authority loaded");
    let edge_addr = edge.local_addr()?;
    let advertise = config
        .edge_advertise
        .clone()
        .unwrap_or_else(|| default_advertise(edge_addr));
    db.set_setting(mikrobill_core::sites::EDGE_ADVERTISE_SETTING, &advertise)
        .await?;
    tracing::info!(%edge_addr, %advertise, "edge listening (QUIC)");

    let listener = tokio::net::TcpListener::bind(config.api_listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.api_listen))?;
    let api_addr = listener.local_addr()?;
    tracing::info!(%api_addr, "HTTP API listening");

    let (shutdown, rx) = tokio::sync::watch::channel(false);
    let wait = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|stop| *stop).await;
    };
    // Outgoing HTTPS (webhooks, payment gateways) uses the same crypto provider as the edge.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let gateways = config.payments.gateways()?;
    tracing::info!(
        gateways = ?gateways.names(),
        links = ?gateways.links().map(|g| g.name()),
        "payment gateways"
    );
    let mut state = mikrobill_http::server::AppState::new(db.clone(), gateways, ca_fingerprint);
    state.secure_cookies = config.behind_tls;
    state.rate_limiter = Arc::new(mikrobill_http::server::rate_limit::RateLimiter::new(
        config.http.rate_limits.clone(),
    ));
    state.metrics_token = config.http.metrics_token.as_deref().map(Arc::from);
    state.data_dir = Some(Arc::from(config.store.data_dir.as_path()));
    let trusted: Arc<[ipnet::IpNet]> = config.http.trusted_proxies.clone().into();
    if !trusted.is_empty() {
        tracing::info!(proxies = ?trusted, "X-Forwarded-For is believed from these proxies only");
    }
    let limits = config.http.limits;
    let mut tasks = Vec::new();
    let metrics_addr = match config.http.metrics_listen {
        Some(addr) => {
            let metrics_listener = tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("cannot listen on {addr} for /metrics"))?;
            let bound = metrics_listener.local_addr()?;
            tracing::info!(metrics_addr = %bound, "metrics listening");
            let app = mikrobill_http::routes::metrics_router(state.clone());
            tasks.push(tokio::spawn(mikrobill_http::server::listener::serve(
                metrics_listener,
                app,
                limits,
                Arc::from(Vec::new()),
                wait(rx.clone()),
            )));
            Some(bound)
        }
        None => None,
    };
    let app = mikrobill_http::routes::router(state);
    tasks.push(tokio::spawn(mikrobill_http::server::listener::serve(
        listener,
        app,
        limits,
        trusted,
        wait(rx.clone()),
    )));
    let holder = format!("{}-{}", default_advertise(api_addr), uuid::Uuid::new_v4());
    let jobs = tokio::spawn(mikrobill_core::jobs::scheduler(
        db.clone(),
        holder.clone(),
        config.job_interval,
        wait(rx.clone()),
    ));
    let webhooks = tokio::spawn(mikrobill_core::events::webhooks::run(
        db.clone(),
        holder.clone(),
        WEBHOOK_INTERVAL,
        config.webhook_retry_base,
        wait(rx.clone()),
    ));
    let notifications = tokio::spawn(mikrobill_core::notify::worker::run(
        db.clone(),
        holder.clone(),
        mikrobill_core::notify::worker::Timing {
            poll: WEBHOOK_INTERVAL,
            send_timeout: config.notify_send_timeout,
            retry_base: config.webhook_retry_base,
        },
        wait(rx.clone()),
    ));
    if let Some(schedule) = config.backup.clone() {
        tracing::info!(dir = %schedule.dir.display(), interval = ?schedule.interval, keep = schedule.keep, sealed = schedule.passphrase_file.is_some(), "scheduled backups");
        tasks.push(tokio::spawn(crate::backup::run_schedule(
            db.clone(),
            config.store.data_dir.clone(),
            schedule,
            wait(rx.clone()),
        )));
    }
    let edge_task = tokio::spawn(edge.run(wait(rx)));
    tasks.extend([edge_task, jobs, webhooks, notifications]);
    Ok(Running {
        api_addr,
        edge_addr,
        metrics_addr,
        shutdown,
        tasks,
        _checkpointer: checkpointer,
    })
}

/// Environment variable that sets the first admin's password (containers, automation).
pub const FIRST_ADMIN_PASSWORD_ENV: &str = "MIKROBILL_ADMIN_PASSWORD";

/// Creates the first admin (`admin`) when the database has no admin user. Its password comes
/// from [`FIRST_ADMIN_PASSWORD_ENV`] or is generated and printed once on standard output,
/// never through the log.
async fn ensure_first_admin(db: &Db) -> anyhow::Result<()> {
    let (password, generated) = match std::env::var(FIRST_ADMIN_PASSWORD_ENV) {
        Ok(p) if !p.is_empty() => (p, false),
        _ => (mikrobill_core::auth::password::generate(), true),
    };
    if let Some(admin) = mikrobill_core::admins::create_first(db, "admin", &password)
        .await
        .context("cannot create the first admin user")?
    {
        tracing::info!(username = %admin.username, "first admin user created");
        if generated {
            println!(
                "\nFirst admin user created. Log in to the admin API (POST /api/v1/auth/login) with\n  username: admin\n  password: {password}\nThis password is shown once; change it after logging in.\n"
            );
        }
    }
    Ok(())
}

/// Runs until SIGINT or SIGTERM.
pub async fn run(config: ServeConfig) -> anyhow::Result<()> {
    let running = start(&config).await?;
    shutdown_signal().await;
    tracing::info!("shutting down");
    running.stop().await;
    Ok(())
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
