//! What the RADIUS server did: counters by outcome and reject reason, latency histograms
//! and the last few rejects, all lock-free on the request path except the short ring of
//! rejects. `/metrics` and `mikrobill-agent status` read them.

use super::policy::RejectReason;
use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds (seconds) of the latency histogram buckets; the last bucket is +Inf.
pub const LATENCY_BUCKETS: [f64; 10] = [
    0.0002, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5,
];
/// The reject reasons, in the order of [`RadiusStats::rejected_by`].
pub const REJECT_CODES: [&str; 10] = [
    "unknown_account",
    "bad_credentials",
    "plan_missing",
    "revoked",
    "expired",
    "time_exhausted",
    "data_exhausted",
    "suspended",
    "too_many_sessions",
    "mac_locked",
];
/// Rejects kept for `status`.
const RECENT: usize = 10;

fn reason_index(code: &str) -> usize {
    REJECT_CODES
        .iter()
        .position(|c| *c == code)
        .expect("every reject reason has a code in REJECT_CODES")
}

/// A latency histogram: cumulative-on-read bucket counts and the sum in microseconds.
#[derive(Debug, Default)]
pub struct Latency {
    buckets: [AtomicU64; LATENCY_BUCKETS.len() + 1],
    sum_micros: AtomicU64,
}

impl Latency {
    /// Records one request's time.
    pub fn observe(&self, took: Duration) {
        let secs = took.as_secs_f64();
        let i = LATENCY_BUCKETS
            .iter()
            .position(|b| secs <= *b)
            .unwrap_or(LATENCY_BUCKETS.len());
        self.buckets[i].fetch_add(1, Ordering::Relaxed);
        self.sum_micros
            .fetch_add(took.as_micros() as u64, Ordering::Relaxed);
    }

    /// Count per bucket (not cumulative; the last is above every bound) and the sum in
    /// seconds.
    pub fn snapshot(&self) -> (Vec<u64>, f64) {
        (
            self.buckets
                .iter()
                .map(|b| b.load(Ordering::Relaxed))
                .collect(),
            self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6,
        )
    }
}

/// One refused login, for the technician's `status`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RecentReject {
    /// When (UTC ms).
    pub at_ms: i64,
    /// The user name or voucher code that was tried.
    pub username: String,
    /// The NAS (router) that asked.
    pub nas: String,
    /// The reason's code (see [`REJECT_CODES`]).
    pub reason: String,
}

/// Counters of what the server did and dropped.
#[derive(Debug, Default)]
pub struct RadiusStats {
    /// Access-Accepts sent.
    pub accepted: AtomicU64,
    /// Access-Rejects sent.
    pub rejected: AtomicU64,
    /// Access-Rejects by reason, in the order of [`REJECT_CODES`].
    pub rejected_by: [AtomicU64; REJECT_CODES.len()],
    /// Accounting requests stored and answered.
    pub accounted: AtomicU64,
    /// Packets from addresses that are not configured clients.
    pub unknown_client: AtomicU64,
    /// Packets whose authenticator or Message-Authenticator did not verify.
    pub bad_authenticator: AtomicU64,
    /// Access-Requests without the Message-Authenticator their client must send.
    pub missing_message_authenticator: AtomicU64,
    /// Undecodable or unexpected packets.
    pub malformed: AtomicU64,
    /// Retransmissions answered from the reply cache.
    pub retransmits: AtomicU64,
    /// Accounting requests that could not be stored (not answered, the NAS retries).
    pub accounting_failed: AtomicU64,
    /// Disconnect-Requests sent for exhausted quotas.
    pub disconnects: AtomicU64,
    /// Sessions slowed to their plan's fair-usage rate (CoA acknowledged).
    pub fup_throttles: AtomicU64,
    /// Time to decide an Access-Request.
    pub auth_latency: Latency,
    /// Time to store and answer an Accounting-Request (the disk flush included).
    pub acct_latency: Latency,
    recent: Mutex<VecDeque<RecentReject>>,
}

impl RadiusStats {
    pub(super) fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Reads a counter.
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }

    /// Counts a reject and keeps it among the recent ones.
    pub(super) fn reject(&self, reason: &RejectReason, username: &str, nas: &str, now: i64) {
        Self::bump(&self.rejected);
        Self::bump(&self.rejected_by[reason_index(reason.code())]);
        let mut recent = self.recent.lock().unwrap_or_else(|p| p.into_inner());
        if recent.len() == RECENT {
            recent.pop_front();
        }
        recent.push_back(RecentReject {
            at_ms: now,
            username: username.to_string(),
            nas: nas.to_string(),
            reason: reason.code().to_string(),
        });
    }

    /// The last few rejects, newest first.
    pub fn recent_rejects(&self) -> Vec<RecentReject> {
        let recent = self.recent.lock().unwrap_or_else(|p| p.into_inner());
        recent.iter().rev().cloned().collect()
    }

    /// The counters the controller is told of, counted since `since_ms`; reasons that
    /// never happened are left out.
    pub fn counters(&self, since_ms: i64) -> mikrobill_protocol::radius_counters::RadiusCounters {
        let nonzero = |list: &mut dyn Iterator<Item = (&str, u64)>| {
            list.filter(|(_, n)| *n > 0)
                .map(|(code, n)| (code.to_string(), n))
                .collect()
        };
        mikrobill_protocol::radius_counters::RadiusCounters {
            since_ms,
            accepted: Self::get(&self.accepted),
            rejected: nonzero(
                &mut REJECT_CODES
                    .iter()
                    .zip(&self.rejected_by)
                    .map(|(code, n)| (*code, Self::get(n))),
            ),
            accounted: Self::get(&self.accounted),
            dropped: nonzero(&mut self.dropped().into_iter()),
        }
    }

    /// Packets dropped without an answer, by reason, for `/metrics`.
    pub fn dropped(&self) -> [(&'static str, u64); 5] {
        [
            ("unknown_client", Self::get(&self.unknown_client)),
            ("bad_authenticator", Self::get(&self.bad_authenticator)),
            (
                "missing_message_authenticator",
                Self::get(&self.missing_message_authenticator),
            ),
            ("malformed", Self::get(&self.malformed)),
            ("accounting_not_stored", Self::get(&self.accounting_failed)),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reject_reason_has_a_counter() {
        let all = [
            RejectReason::UnknownAccount,
            RejectReason::BadCredentials,
            RejectReason::PlanMissing,
            RejectReason::Revoked,
            RejectReason::Expired,
            RejectReason::TimeExhausted,
            RejectReason::DataExhausted,
            RejectReason::Suspended,
            RejectReason::TooManySessions { limit: 1 },
            RejectReason::MacLocked,
        ];
        let stats = RadiusStats::default();
        for (i, r) in all.iter().enumerate() {
            stats.reject(r, &format!("u{i}"), "nas", i as i64);
        }
        assert!(stats.rejected_by.iter().all(|c| RadiusStats::get(c) == 1));
        let recent = stats.recent_rejects();
        assert_eq!(recent.len(), all.len());
        assert_eq!(
            recent[0].username,
            format!("u{}", all.len() - 1),
            "newest first"
        );
        for i in 0..5 {
            stats.reject(&all[0], "again", "nas", 100 + i);
        }
        assert_eq!(stats.recent_rejects().len(), RECENT);
    }

    #[test]
    fn latency_lands_in_its_bucket() {
        let l = Latency::default();
        l.observe(Duration::from_micros(150));
        l.observe(Duration::from_millis(3));
        l.observe(Duration::from_secs(2));
        let (buckets, sum) = l.snapshot();
        assert_eq!(buckets[0], 1);
        assert_eq!(buckets[4], 1, "3 ms is in the 5 ms bucket");
        assert_eq!(buckets[LATENCY_BUCKETS.len()], 1, "above every bound");
        assert!((sum - 2.00315).abs() < 1e-9);
    }
}
