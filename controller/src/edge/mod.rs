//! The edge: the QUIC server agents connect to.
//!
//! One UDP port serves two ALPNs: `mikrobill-enroll` (server-authenticated TLS, one CSR
//! exchange) and `mikrobill-session` (mutual TLS, the long-lived agent session). The TLS
//! layer verifies any client certificate against the CA; the session code then requires one
//! and checks its serial against the database, which is what makes revocation immediate and
//! works across replicas.

mod enroll;
mod registry;
mod session;
mod tls;
mod watcher;

use registry::Registry;

use mikrobill_core::db::Db;
use mikrobill_core::pki::CaSet;
use mikrobill_protocol::{ALPN_ENROLL, ALPN_SESSION};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// How often the edge polls the database for changes made by other processes.
pub const POLL_INTERVAL: Duration = Duration::from_millis(200);
/// Shortest time between two stateless resets: 10,000 a second, a fleet's keep-alives.
const RESET_INTERVAL: Duration = Duration::from_micros(100);

/// Shared state of all connections.
pub(crate) struct EdgeContext {
    pub db: Db,
    /// Gathers the accounting batches of every session into group commits.
    pub ingester: mikrobill_core::accounting::writer::Ingester,
    /// The CAs of the current rotation phase; the watcher replaces them after each step.
    pub ca: watch::Receiver<Arc<CaSet>>,
    pub registry: Registry,
    /// Newest change-log sequence, updated by the watcher.
    pub head: watch::Receiver<u64>,
    /// Newest command id, updated by the watcher: wakes sessions to deliver commands.
    pub commands: watch::Receiver<i64>,
    /// This database's change-log epoch; fixed for the life of the process.
    pub epoch: String,
    pub heartbeat_interval_secs: u32,
}

/// A bound edge server.
pub struct Edge {
    endpoint: quinn::Endpoint,
    ctx: Arc<EdgeContext>,
    watcher: tokio::task::JoinHandle<()>,
    fingerprint: watch::Receiver<[u8; 32]>,
}

/// Errors starting the edge.
#[derive(Debug, thiserror::Error)]
pub enum EdgeError {
    /// TLS configuration failed.
    #[error("edge TLS setup failed: {0}")]
    Tls(String),
    /// Binding the UDP socket failed.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// What the system said.
        source: std::io::Error,
    },
    /// Database access failed.
    #[error(transparent)]
    Db(#[from] mikrobill_core::db::DbError),
    /// PKI failed.
    #[error(transparent)]
    Pki(#[from] mikrobill_core::pki::PkiError),
    /// The CA rotation's state could not be read.
    #[error(transparent)]
    Rotation(#[from] mikrobill_core::ca_rotation::RotationError),
}

/// Where the edge's CAs come from, to load them again after a rotation step.
#[derive(Debug, Clone)]
pub struct CaSource {
    /// The data directory with the CA files.
    pub dir: PathBuf,
    /// Validity of the agent certificates the issuing CA signs.
    pub agent_validity: Duration,
}

impl CaSource {
    /// The CAs of the current phase.
    pub async fn load(&self, db: &Db) -> Result<CaSet, EdgeError> {
        let mut set = mikrobill_core::ca_rotation::load(db, &self.dir).await?;
        set.active = set.active.with_agent_validity(self.agent_validity);
        Ok(set)
    }
}

impl Edge {
    /// Binds the edge server on `addr`.
    pub async fn bind(
        addr: SocketAddr,
        db: Db,
        source: CaSource,
        heartbeat_interval_secs: u32,
    ) -> Result<Edge, EdgeError> {
        let ca = Arc::new(source.load(&db).await?);
        let config = tls::server_config(&ca)?;
        // Both keys persist across restarts: the CID key so a restarted edge still recognises
        // the connection IDs it handed out, the reset key so it can then reset those stale
        // connections and agents reconnect at once instead of after a timeout.
        let secret = ca.active.edge_reset_secret()?;
        let reset_key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &secret);
        let cid_key = u64::from_be_bytes(secret[..8].try_into().expect("8 bytes"));
        let mut endpoint_config = quinn::EndpointConfig::new(Arc::new(reset_key));
        endpoint_config.cid_generator(move || {
            Box::new(quinn_proto::HashedConnectionIdGenerator::from_key(cid_key))
        });
        // After a restart every agent's next keep-alive must meet a reset. quinn's default
        // (one reset per 20 ms) answered only some of 500 agents' keep-alives, and the rest
        // waited out the idle timeout (45 s). Resets go only to connection IDs this edge
        // issued (the hashed generator validates them) and are smaller than what incited
        // them, so a fast rate amplifies nothing.
        endpoint_config.min_reset_interval(RESET_INTERVAL);
        let socket =
            std::net::UdpSocket::bind(addr).map_err(|source| EdgeError::Bind { addr, source })?;
        let endpoint = quinn::Endpoint::new(
            endpoint_config,
            Some(config),
            socket,
            Arc::new(quinn::TokioRuntime),
        )
        .map_err(|source| EdgeError::Bind { addr, source })?;
        // Read (or created) once here rather than on every agent session.
        let epoch = mikrobill_core::sync_log::epoch(&db).await?;
        let head = mikrobill_core::sync_log::head(&db).await?;
        let (head_tx, head_rx) = watch::channel(head);
        let (commands_tx, commands_rx) = watch::channel(mikrobill_core::commands::head(&db).await?);
        let registry = Registry::default();
        let (fingerprint_tx, fingerprint_rx) = watch::channel(ca.active.fingerprint());
        let (ca_tx, ca_rx) = watch::channel(ca);
        let watcher = tokio::spawn(watcher::run(
            db.clone(),
            registry.clone(),
            head_tx,
            commands_tx,
            watcher::Rotation {
                source,
                endpoint: endpoint.clone(),
                sets: ca_tx,
                fingerprint: fingerprint_tx,
                stamp: mikrobill_core::ca_rotation::stamp(&db).await?,
            },
        ));
        let ctx = Arc::new(EdgeContext {
            ingester: mikrobill_core::accounting::writer::Ingester::start(&db),
            db,
            ca: ca_rx,
            registry,
            head: head_rx,
            commands: commands_rx,
            epoch,
            heartbeat_interval_secs,
        });
        Ok(Edge {
            endpoint,
            ctx,
            watcher,
            fingerprint: fingerprint_rx,
        })
    }

    /// The issuing CA's fingerprint (for enrollment tokens), following rotation steps.
    pub fn enrollment_fingerprint(&self) -> watch::Receiver<[u8; 32]> {
        self.fingerprint.clone()
    }

    /// The bound address.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.endpoint.local_addr()
    }

    /// Accepts connections until `shutdown` resolves, then closes them all.
    pub async fn run(self, shutdown: impl std::future::Future<Output = ()>) {
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                _ = &mut shutdown => break,
                incoming = self.endpoint.accept() => {
                    let Some(incoming) = incoming else { break };
                    let ctx = self.ctx.clone();
                    tokio::spawn(async move { handle_incoming(ctx, incoming).await });
                }
            }
        }
        self.watcher.abort();
        self.endpoint.close(
            mikrobill_protocol::close_code::SHUTDOWN.into(),
            b"controller shutting down",
        );
        let _ = tokio::time::timeout(Duration::from_secs(2), self.endpoint.wait_idle()).await;
    }
}

async fn handle_incoming(ctx: Arc<EdgeContext>, incoming: quinn::Incoming) {
    let remote = incoming.remote_address();
    let conn = match incoming.await {
        Ok(conn) => conn,
        Err(e) => {
            tracing::info!(%remote, "edge handshake failed: {e}");
            return;
        }
    };
    let alpn = conn
        .handshake_data()
        .and_then(|d| d.downcast::<quinn::crypto::rustls::HandshakeData>().ok())
        .and_then(|d| d.protocol);
    match alpn.as_deref() {
        Some(p) if p == ALPN_ENROLL => enroll::handle(ctx, conn).await,
        Some(p) if p == ALPN_SESSION => {
            let span = tracing::info_span!("edge.session", remote = %conn.remote_address());
            tracing::Instrument::instrument(session::handle(ctx, conn), span).await
        }
        _ => conn.close(
            mikrobill_protocol::close_code::PROTOCOL_ERROR.into(),
            b"unknown application protocol",
        ),
    }
}
