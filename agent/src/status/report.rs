//! The agent's status in one value: what `/status` serves as JSON, what `/metrics` renders
//! and what `mikrobill-agent status` prints for a technician on site.

use crate::radius::stats::RecentReject;
use serde::{Deserialize, Serialize};
use std::fmt;

/// Everything a technician or a monitoring system asks of a running agent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatusReport {
    /// Agent version.
    pub version: String,
    /// When this was read (UTC ms).
    pub now_ms: i64,
    /// When the agent started (UTC ms).
    pub started_at_ms: i64,
    /// Enrolled site id.
    pub site_id: String,
    /// Enrolled site name.
    pub site_name: String,
    /// The controller's edge address the agent dials.
    pub controller_addr: String,
    /// End of the agent certificate's validity (UTC ms).
    pub certificate_expires_ms: Option<i64>,
    /// The controller link.
    pub link: LinkReport,
    /// The synced cache.
    pub cache: CacheReport,
    /// Accounting waiting for the controller.
    pub outbox: OutboxReport,
    /// The RADIUS server, when it runs.
    pub radius: Option<RadiusReport>,
    /// The managed router, when one is configured.
    pub router: Option<RouterReport>,
}

/// The controller link.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkReport {
    /// `up`, `connecting`, `down` or `refused`.
    pub state: String,
    /// Why it is down or refused.
    pub reason: Option<String>,
    /// Since when it is up.
    pub up_since_ms: Option<i64>,
    /// Since when it is not up.
    pub down_since_ms: Option<i64>,
    /// Last frame or acknowledgement from the controller.
    pub last_contact_ms: Option<i64>,
    /// Sessions established since the agent started.
    pub connects: u64,
}

/// The synced cache.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CacheReport {
    /// Plans cached.
    pub plans: u64,
    /// Vouchers cached.
    pub vouchers: u64,
    /// PPPoE users cached.
    pub users: u64,
    /// The controller log's epoch the cursor belongs to.
    pub sync_epoch: String,
    /// The last change applied.
    pub sync_seq: u64,
    /// When a sync message last moved the cursor (this run).
    pub last_sync_ms: Option<i64>,
}

/// Accounting waiting for the controller.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboxReport {
    /// Records stored and not yet acknowledged.
    pub pending: u64,
    /// Event time of the oldest of them (UTC ms).
    pub oldest_event_ms: Option<i64>,
    /// Records the controller refused as malformed, kept aside.
    pub set_aside: u64,
    /// Records the controller acknowledged since the agent started.
    pub delivered: u64,
}

/// The RADIUS server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RadiusReport {
    /// Authentication listener.
    pub auth_listen: String,
    /// Accounting listener.
    pub acct_listen: String,
    /// Whether every listener task runs.
    pub running: bool,
    /// Access-Accepts sent.
    pub accepted: u64,
    /// Access-Rejects sent.
    pub rejected: u64,
    /// Accounting requests stored and answered.
    pub accounted: u64,
    /// Requests dropped without an answer (unknown client, wrong secret, malformed).
    pub dropped: u64,
    /// The last rejects, newest first.
    pub recent_rejects: Vec<RecentReject>,
}

/// The managed router.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouterReport {
    /// API address.
    pub address: String,
    /// Whether the API connection is up.
    pub reachable: bool,
    /// Whether the circuit breaker is open (calls fail fast).
    pub breaker_open: bool,
    /// RouterOS version.
    pub version: Option<String>,
    /// `/system/identity`.
    pub identity: Option<String>,
    /// The last failure.
    pub last_error: Option<String>,
}

/// "3m ago", "2d 4h ago": how long before `now` `at` was.
fn ago(at: i64, now: i64) -> String {
    let secs = (now - at).max(0) / 1000;
    let text = match secs {
        0..60 => format!("{secs}s"),
        60..3600 => format!("{}m {}s", secs / 60, secs % 60),
        3600..86400 => format!("{}h {}m", secs / 3600, secs % 3600 / 60),
        _ => format!("{}d {}h", secs / 86400, secs % 86400 / 3600),
    };
    format!("{text} ago")
}

fn when(at: Option<i64>, now: i64) -> String {
    at.map_or_else(|| "never".to_string(), |t| ago(t, now))
}

impl fmt::Display for StatusReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let now = self.now_ms;
        writeln!(f, "site:        {} ({})", self.site_name, self.site_id)?;
        writeln!(
            f,
            "agent:       {} running since {}",
            self.version,
            ago(self.started_at_ms, now)
        )?;
        let link = &self.link;
        match link.state.as_str() {
            "up" => writeln!(
                f,
                "controller:  {} link up (since {}, last contact {})",
                self.controller_addr,
                when(link.up_since_ms, now),
                when(link.last_contact_ms, now)
            )?,
            state => writeln!(
                f,
                "controller:  {} link {state} (since {}, last contact {}){}",
                self.controller_addr,
                when(link.down_since_ms, now),
                when(link.last_contact_ms, now),
                link.reason
                    .as_deref()
                    .map(|r| format!(": {r}"))
                    .unwrap_or_default()
            )?,
        }
        let c = &self.cache;
        writeln!(
            f,
            "sync:        change {} (last applied {})",
            c.sync_seq,
            when(c.last_sync_ms, now)
        )?;
        writeln!(
            f,
            "cache:       {} plans, {} vouchers, {} PPPoE users",
            c.plans, c.vouchers, c.users
        )?;
        let o = &self.outbox;
        writeln!(
            f,
            "outbox:      {} records waiting{}; {} delivered since start{}",
            o.pending,
            o.oldest_event_ms
                .map(|t| format!(" (oldest {})", ago(t, now)))
                .unwrap_or_default(),
            o.delivered,
            if o.set_aside > 0 {
                format!("; {} set aside as malformed", o.set_aside)
            } else {
                String::new()
            }
        )?;
        match &self.router {
            Some(r) => writeln!(
                f,
                "router:      {} {}{}{}",
                r.address,
                if r.reachable {
                    "reachable"
                } else {
                    "UNREACHABLE"
                },
                r.version
                    .as_deref()
                    .map(|v| format!(", RouterOS {v}"))
                    .unwrap_or_default(),
                match (&r.last_error, r.reachable, r.breaker_open) {
                    (Some(e), false, true) => format!(" (breaker open; last error: {e})"),
                    (Some(e), false, false) => format!(" (last error: {e})"),
                    _ => String::new(),
                }
            )?,
            None => writeln!(f, "router:      not managed (no [router] configured)")?,
        }
        match &self.radius {
            Some(r) => {
                writeln!(
                    f,
                    "RADIUS:      auth {}, accounting {}{}; {} accepted, {} rejected, {} accounted, {} dropped",
                    r.auth_listen,
                    r.acct_listen,
                    if r.running { "" } else { " (NOT RUNNING)" },
                    r.accepted,
                    r.rejected,
                    r.accounted,
                    r.dropped
                )?;
                for rej in &r.recent_rejects {
                    writeln!(
                        f,
                        "  rejected {} at {}: {} ({})",
                        rej.username,
                        rej.nas,
                        rej.reason,
                        ago(rej.at_ms, now)
                    )?;
                }
            }
            None => writeln!(f, "RADIUS:      not running")?,
        }
        match self.certificate_expires_ms {
            Some(t) if t <= now => writeln!(f, "certificate: EXPIRED {}", ago(t, now)),
            Some(t) => writeln!(f, "certificate: expires in {} days", (t - now) / 86_400_000),
            None => writeln!(f, "certificate: unreadable"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_like_a_person_says_them() {
        assert_eq!(ago(0, 5_000), "5s ago");
        assert_eq!(ago(0, 125_000), "2m 5s ago");
        assert_eq!(ago(0, 3 * 3_600_000 + 60_000), "3h 1m ago");
        assert_eq!(ago(0, 2 * 86_400_000 + 4 * 3_600_000), "2d 4h ago");
        assert_eq!(ago(10, 0), "0s ago", "a clock step back is not negative");
    }
}
