//! The agent's RADIUS counters, carried to the controller so that one scrape of the
//! controller's `/metrics` shows every site's logins, rejects and accounting, sites behind
//! NAT included (Prometheus cannot reach an agent's own status port there).

use serde::{Deserialize, Serialize};

/// What the agent's RADIUS server has answered since the agent started (protocol 9 and
/// later, sent before each heartbeat). Counters only grow within one `since_ms`; a new
/// `since_ms` means the agent restarted and counts from zero again, as a Prometheus counter
/// reset does.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RadiusCounters {
    /// When the agent started counting (UTC unix milliseconds).
    pub since_ms: i64,
    /// Access-Accepts sent.
    pub accepted: u64,
    /// Access-Rejects sent, by reason code (`expired`, `time_exhausted`, ...); reasons
    /// with no reject are left out.
    pub rejected: Vec<(String, u64)>,
    /// Accounting requests stored and answered.
    pub accounted: u64,
    /// Requests dropped without an answer, by reason; reasons with none are left out.
    pub dropped: Vec<(String, u64)>,
}

/// Longest reason code a controller stores; a longer one is a malformed report.
pub const MAX_REASON_LEN: usize = 64;
/// Most reasons one list carries.
pub const MAX_REASONS: usize = 32;

impl RadiusCounters {
    /// Whether the report is within the bounds a controller stores: few, short reason
    /// codes made of lower-case letters and underscores (they become label values).
    pub fn is_well_formed(&self) -> bool {
        let ok = |list: &[(String, u64)]| {
            list.len() <= MAX_REASONS
                && list.iter().all(|(code, _)| {
                    !code.is_empty()
                        && code.len() <= MAX_REASON_LEN
                        && code.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
                })
        };
        ok(&self.rejected) && ok(&self.dropped)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reason_codes_must_be_label_safe() {
        let mut c = RadiusCounters {
            since_ms: 1,
            accepted: 2,
            rejected: vec![("expired".into(), 1)],
            accounted: 3,
            dropped: vec![("unknown_client".into(), 4)],
        };
        assert!(c.is_well_formed());
        c.rejected.push(("x\"} 1\nfake".into(), 1));
        assert!(!c.is_well_formed());
        c.rejected.pop();
        c.dropped = (0..=MAX_REASONS).map(|i| (format!("r{i}"), 1)).collect();
        assert!(!c.is_well_formed());
    }
}
