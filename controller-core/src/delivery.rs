//! Rules shared by everything the controller delivers to the outside (outgoing webhooks,
//! notifications): exponential retry delays with jitter, and a circuit breaker per target.

use std::time::Duration;

/// Default delay before the first retry.
pub const DEFAULT_RETRY_BASE: Duration = Duration::from_secs(2);

/// Delay before retry number `attempt` (1-based): exponential from `base`, at most an hour,
/// with ±50 % jitter so a recovering receiver is not hit by every retry at once.
pub fn retry_delay(attempt: i64, base: Duration) -> Duration {
    use backoff::backoff::Backoff;
    let mut b = backoff::ExponentialBackoff {
        initial_interval: base,
        randomization_factor: 0.5,
        multiplier: 2.0,
        max_interval: Duration::from_secs(3600),
        max_elapsed_time: None,
        ..Default::default()
    };
    // The default's current interval is its own 500 ms, not `base`: start from `base`.
    b.reset();
    let mut d = base;
    for _ in 0..attempt.max(1) {
        d = b.next_backoff().unwrap_or(b.max_interval);
    }
    d
}

/// Consecutive failures of one target that open its breaker.
pub const BREAKER_THRESHOLD: u32 = 5;

/// Circuit breakers per target (a webhook, a notification channel; per replica): after
/// [`BREAKER_THRESHOLD`] failures in a row the target's messages wait out a cool-down instead
/// of being tried, so a dead receiver costs one probe per cool-down and does not hold the
/// queue for the others.
#[derive(Debug)]
pub struct Breakers {
    /// What the targets are, for logs and the trip counter (`webhook`, `channel`).
    what: &'static str,
    state: std::sync::Mutex<std::collections::HashMap<String, (u32, i64)>>,
}

impl Breakers {
    /// Breakers for targets of one kind.
    pub fn new(what: &'static str) -> Breakers {
        Breakers {
            what,
            state: Default::default(),
        }
    }

    /// Targets whose breaker is open at `now`.
    pub fn open(&self, now: i64) -> Vec<String> {
        let state = self.state.lock().expect("breakers");
        state
            .iter()
            .filter(|(_, (failures, until))| *failures >= BREAKER_THRESHOLD && *until > now)
            .map(|(id, _)| id.clone())
            .collect()
    }

    /// Counts a success (closes the breaker) or a failure (opens it at the threshold).
    pub fn record(&self, target: &str, ok: bool, now: i64, cooldown: Duration) {
        let mut state = self.state.lock().expect("breakers");
        if ok {
            state.remove(target);
            return;
        }
        let entry = state.entry(target.to_string()).or_insert((0, 0));
        entry.0 += 1;
        if entry.0 >= BREAKER_THRESHOLD {
            // Open (or re-open after a failed probe) for one cool-down.
            if entry.1 <= now {
                tracing::warn!(target, failures = entry.0, "{} breaker open", self.what);
                metrics::counter!("mikrobill_breaker_trips_total", "target" => self.what)
                    .increment(1);
                // The webhook-specific name predates the shared breaker; dashboards use it.
                if self.what == "webhook" {
                    metrics::counter!("mikrobill_webhook_breaker_trips_total").increment(1);
                }
            }
            entry.1 = now + cooldown.as_millis() as i64;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_delays_grow_and_stay_bounded() {
        let first = retry_delay(1, DEFAULT_RETRY_BASE);
        assert!(
            first >= Duration::from_secs(1) && first <= Duration::from_secs(3),
            "{first:?}"
        );
        let late = retry_delay(30, DEFAULT_RETRY_BASE);
        assert!(late <= Duration::from_secs(5400), "{late:?}");
        assert!(retry_delay(6, DEFAULT_RETRY_BASE) > retry_delay(1, DEFAULT_RETRY_BASE));
    }

    #[test]
    fn breaker_opens_after_the_threshold_and_closes_on_success() {
        let b = Breakers::new("test");
        let cool = Duration::from_secs(10);
        for i in 0..BREAKER_THRESHOLD - 1 {
            b.record("w", false, i as i64, cool);
        }
        assert!(b.open(10).is_empty());
        b.record("w", false, 10, cool);
        assert_eq!(b.open(11), vec!["w".to_string()]);
        assert!(
            b.open(10 + 10_001).is_empty(),
            "half-open after the cool-down"
        );
        b.record("w", false, 20_000, cool);
        assert_eq!(
            b.open(20_001),
            vec!["w".to_string()],
            "a failed probe re-opens it"
        );
        b.record("w", true, 40_000, cool);
        assert!(b.open(40_001).is_empty());
    }
}
