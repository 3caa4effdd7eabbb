//! What a running agent tells about itself: `report` (the status value and its text for a
//! technician), `prometheus` (`/metrics`), `http` (the local listener serving `/metrics`,
//! `/health` and `/status`), `local` (the `status` command: ask the running agent, else read
//! the data directory). [`Sources`] reads the live parts into a report.

pub mod http;
pub mod local;
pub mod prometheus;
pub mod report;

use crate::cache::Cache;
use crate::outbox::Outbox;
use crate::radius::RadiusStats;
use crate::router::Router;
use crate::uplink::{LinkState, UplinkStats};
use report::{CacheReport, LinkReport, OutboxReport, RadiusReport, RouterReport, StatusReport};
use std::sync::Arc;
use tokio::sync::watch;

/// The default local status listener of `mikrobill-agent run` (and where `status` looks).
pub const DEFAULT_LISTEN: &str = "127.0.0.1:9465";

/// The RADIUS server as the status sees it.
pub struct RadiusSource {
    /// Its counters.
    pub stats: Arc<RadiusStats>,
    /// Authentication listener.
    pub auth_addr: std::net::SocketAddr,
    /// Accounting listener.
    pub acct_addr: std::net::SocketAddr,
    /// Its tasks, to tell whether they still run.
    pub tasks: Vec<tokio::task::AbortHandle>,
}

impl RadiusSource {
    /// Whether every listener and worker task still runs.
    fn running(&self) -> bool {
        self.tasks.iter().all(|t| !t.is_finished())
    }
}

/// The live parts of an agent a status report is read from.
pub struct Sources {
    /// Enrolled site id.
    pub site_id: String,
    /// Enrolled site name.
    pub site_name: String,
    /// The edge address dialled.
    pub controller_addr: String,
    /// End of the certificate's validity (UTC ms, 0 when unreadable); renewal moves it.
    pub certificate_expires_ms: Arc<std::sync::atomic::AtomicI64>,
    /// When the agent started (UTC ms).
    pub started_at_ms: i64,
    /// The cache.
    pub cache: Arc<Cache>,
    /// The outbox.
    pub outbox: Arc<Outbox>,
    /// The link state.
    pub link: watch::Receiver<LinkState>,
    /// What the link did.
    pub uplink: Arc<UplinkStats>,
    /// The RADIUS server, if it runs.
    pub radius: Option<RadiusSource>,
    /// The managed router, if any.
    pub router: Option<Router>,
    /// The agent's clock: reports are "as of" its time, as the times in them are.
    pub clock: crate::clock::Clock,
}

fn some(ms: i64) -> Option<i64> {
    (ms != 0).then_some(ms)
}

impl Sources {
    /// Reads everything now (peeks at the outbox head: cheap, but not for a hot path).
    pub fn collect(&self, now: i64) -> StatusReport {
        let (state, reason) = match &*self.link.borrow() {
            LinkState::Connected { .. } => ("up", None),
            LinkState::Connecting => ("connecting", None),
            LinkState::Disconnected { reason } => ("down", Some(reason.clone())),
            LinkState::Refused { reason } => ("refused", Some(reason.clone())),
        };
        let u = &self.uplink;
        let (plans, vouchers, users) = self.cache.counts();
        let cursor = self.cache.cursor().unwrap_or_default();
        let oldest_event_ms = self
            .outbox
            .peek(1)
            .ok()
            .and_then(|e| e.first().map(|e| e.record.event_time_ms));
        let radius = self.radius.as_ref().map(|r| {
            let get = RadiusStats::get;
            RadiusReport {
                auth_listen: r.auth_addr.to_string(),
                acct_listen: r.acct_addr.to_string(),
                running: r.running(),
                accepted: get(&r.stats.accepted),
                rejected: get(&r.stats.rejected),
                accounted: get(&r.stats.accounted),
                dropped: r.stats.dropped().iter().map(|(_, n)| n).sum(),
                recent_rejects: r.stats.recent_rejects(),
            }
        });
        let router = self.router.as_ref().map(|r| {
            let st = r.state().borrow().clone();
            RouterReport {
                address: r.address().to_string(),
                reachable: st.reachable,
                breaker_open: r.breaker_open(),
                version: st.version,
                identity: st.identity,
                last_error: st.last_error,
            }
        });
        StatusReport {
            version: env!("CARGO_PKG_VERSION").to_string(),
            now_ms: now,
            started_at_ms: self.started_at_ms,
            site_id: self.site_id.clone(),
            site_name: self.site_name.clone(),
            controller_addr: self.controller_addr.clone(),
            certificate_expires_ms: some(
                self.certificate_expires_ms
                    .load(std::sync::atomic::Ordering::Relaxed),
            ),
            link: LinkReport {
                state: state.to_string(),
                reason,
                up_since_ms: some(UplinkStats::get(&u.up_since_ms)),
                down_since_ms: some(UplinkStats::get(&u.down_since_ms)),
                last_contact_ms: some(UplinkStats::get(&u.last_contact_ms)),
                connects: u.connects.load(std::sync::atomic::Ordering::Relaxed),
            },
            cache: CacheReport {
                plans,
                vouchers,
                users,
                sync_epoch: cursor.epoch,
                sync_seq: cursor.seq,
                last_sync_ms: some(UplinkStats::get(&u.last_sync_ms)),
            },
            outbox: OutboxReport {
                pending: self.outbox.len(),
                oldest_event_ms,
                set_aside: self.outbox.rejected_len(),
                delivered: u.delivered.load(std::sync::atomic::Ordering::Relaxed),
            },
            radius,
            router,
        }
    }

    /// `/metrics`.
    pub fn metrics(&self, now: i64) -> String {
        prometheus::render(
            &self.collect(now),
            self.radius.as_ref().map(|r| r.stats.as_ref()),
        )
    }

    /// Whether the agent does its job: RADIUS listeners running (a lost controller link is
    /// normal operation at a site, not ill health).
    pub fn healthy(&self) -> bool {
        self.radius.as_ref().is_none_or(RadiusSource::running)
    }
}
