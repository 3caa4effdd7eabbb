//! The link to the controller: connect with mutual TLS, run a session, and reconnect for
//! ever with backoff. Nothing here is on the RADIUS path: the agent serves from its cache
//! whatever the link does.

mod accounting;
mod commands;
mod renewal;
mod session;

use crate::reconnect::Reconnect;

use crate::cache::Cache;
use crate::identity::Identity;
use crate::outbox::Outbox;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// What the link is doing, for status and tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkState {
    /// Trying to connect.
    Connecting,
    /// Session up.
    Connected {
        /// The site name the controller confirmed.
        site_name: String,
    },
    /// Lost or never reached; will retry.
    Disconnected {
        /// Why.
        reason: String,
    },
    /// The controller refused this agent (revoked, unknown, incompatible); retrying slowly.
    Refused {
        /// Why.
        reason: String,
    },
}

/// What the link did, for `/metrics` and `status`: times are UTC ms, 0 for never.
#[derive(Debug, Default)]
pub struct UplinkStats {
    /// When the current session came up (0 while down).
    pub up_since_ms: AtomicI64,
    /// When the link went down (or the agent started without it; 0 while up).
    pub down_since_ms: AtomicI64,
    /// Last frame or acknowledgement from the controller.
    pub last_contact_ms: AtomicI64,
    /// Last sync message that moved the cache's cursor.
    pub last_sync_ms: AtomicI64,
    /// Accounting records the controller acknowledged as committed.
    pub delivered: AtomicU64,
    /// Sessions established since start.
    pub connects: AtomicU64,
    /// Last certificate renewal attempt (UTC ms on the system clock, which certificates
    /// are checked against; 0 for none).
    pub last_renewal_attempt_ms: AtomicI64,
    /// The agent's clock, which the other times are read from.
    pub clock: crate::clock::Clock,
}

impl UplinkStats {
    /// Stats of an agent that starts with the link down now, by `clock`.
    pub fn starting(clock: crate::clock::Clock) -> UplinkStats {
        let s = UplinkStats {
            clock,
            ..UplinkStats::default()
        };
        s.down_since_ms.store(s.clock.now_ms(), Ordering::Relaxed);
        s
    }

    /// Notes that the controller was heard from.
    pub(crate) fn contact(&self) {
        self.last_contact_ms
            .store(self.clock.now_ms(), Ordering::Relaxed);
    }

    /// Reads a time or counter.
    pub fn get(v: &AtomicI64) -> i64 {
        v.load(Ordering::Relaxed)
    }
}

/// What a session needs.
pub(crate) struct UplinkContext {
    /// Replaced when the certificate is renewed; each new connection takes the current one.
    pub identity: std::sync::Mutex<Identity>,
    /// Where the identity lives (renewed certificates are stored there).
    pub data_dir: std::path::PathBuf,
    /// End of the current certificate's validity, shared with the status report.
    pub certificate_expires_ms: Arc<AtomicI64>,
    pub controller_addr: String,
    pub cache: Arc<Cache>,
    pub outbox: Arc<Outbox>,
    pub commands: Arc<crate::commands::Applier>,
    /// The managed router's state, reported to controllers that understand it.
    pub router_state: Option<watch::Receiver<crate::router::RouterState>>,
    /// The managed router's last drift report worth sending, sent to controllers that
    /// understand it at every session start and whenever it changes.
    pub drift: Option<watch::Receiver<Option<mikrobill_protocol::drift::DriftReport>>>,
    pub link: watch::Sender<LinkState>,
    /// The RADIUS server's counters, reported to controllers that understand them.
    pub radius_stats: Option<Arc<crate::radius::RadiusStats>>,
    /// When the agent started (UTC ms): the counters' origin.
    pub started_at_ms: i64,
    pub reconnect_max: Duration,
    pub started: Instant,
    pub stats: Arc<UplinkStats>,
    /// Woken when a trust bundle changed the CAs: the renewal looks again at once.
    pub trust_changed: tokio::sync::Notify,
}

impl UplinkContext {
    /// The identity the next connection uses.
    pub(crate) fn identity(&self) -> std::sync::MutexGuard<'_, Identity> {
        // Replaced whole, never left half-written: a poisoned lock still holds a usable one.
        self.identity.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Switches to a renewed identity.
    pub(crate) fn set_identity(&self, identity: Identity) {
        *self.identity() = identity;
    }

    /// Publishes a link state, noting when the link came up or went down.
    pub(crate) fn set_link(&self, state: LinkState) {
        let now = self.stats.clock.now_ms();
        if matches!(state, LinkState::Connected { .. }) {
            self.stats.up_since_ms.store(now, Ordering::Relaxed);
            self.stats.down_since_ms.store(0, Ordering::Relaxed);
            self.stats.connects.fetch_add(1, Ordering::Relaxed);
            self.stats.contact();
        } else if self.stats.down_since_ms.load(Ordering::Relaxed) == 0 {
            self.stats.down_since_ms.store(now, Ordering::Relaxed);
            self.stats.up_since_ms.store(0, Ordering::Relaxed);
        }
        self.link.send_replace(state);
    }
}

/// Sends one request on a stream of its own and reads the controller's single answer
/// (`None` when it closed the stream without one).
pub(super) async fn request(
    conn: &quinn::Connection,
    request: &mikrobill_protocol::messages::AgentRequest,
) -> Result<Option<mikrobill_protocol::messages::ControllerReply>, String> {
    let (mut send, mut recv) = conn.open_bi().await.map_err(|e| e.to_string())?;
    mikrobill_protocol::write_frame(&mut send, request)
        .await
        .map_err(|e| e.to_string())?;
    send.finish().map_err(|e| e.to_string())?;
    mikrobill_protocol::read_frame(&mut recv)
        .await
        .map_err(|e| e.to_string())
}

/// Runs sessions until `shutdown` turns true.
pub(crate) async fn run(ctx: Arc<UplinkContext>, mut shutdown: watch::Receiver<bool>) {
    let mut pacing = Reconnect::new(ctx.reconnect_max);
    loop {
        ctx.set_link(LinkState::Connecting);
        let end = tokio::select! {
            end = session::run(&ctx) => end,
            _ = shutdown.wait_for(|s| *s) => return,
        };
        let delay = match end {
            session::End::Lost { was_up, reason } => {
                if was_up {
                    pacing.reset();
                    tracing::warn!("controller link lost: {reason}");
                } else {
                    tracing::warn!(
                        "cannot connect to the controller at {}: {reason}",
                        ctx.controller_addr
                    );
                }
                ctx.set_link(LinkState::Disconnected { reason });
                pacing.next_delay()
            }
            session::End::Refused(reason) => {
                tracing::error!("the controller refused this agent: {reason}");
                ctx.set_link(LinkState::Refused { reason });
                pacing.max_delay()
            }
        };
        tracing::debug!(?delay, "reconnecting after delay");
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = shutdown.wait_for(|s| *s) => return,
        }
    }
}
