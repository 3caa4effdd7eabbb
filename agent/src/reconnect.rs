//! Reconnect pacing: exponential backoff with jitter that never gives up. The `backoff`
//! crate is kept to this file so it can be swapped out.

use backoff::ExponentialBackoff;
use backoff::backoff::Backoff;
use std::time::Duration;

/// Delays between connection attempts.
pub struct Reconnect {
    inner: ExponentialBackoff,
    max: Duration,
}

impl Reconnect {
    /// Starts at half a second and grows to `max`, each delay randomised by ±50 %.
    pub fn new(max: Duration) -> Reconnect {
        let initial = Duration::from_millis(500).min(max);
        let inner = ExponentialBackoff {
            current_interval: initial,
            initial_interval: initial,
            randomization_factor: 0.5,
            multiplier: 2.0,
            max_interval: max,
            // The default gives up after 15 minutes; an agent must retry for ever.
            max_elapsed_time: None,
            ..ExponentialBackoff::default()
        };
        Reconnect { inner, max }
    }

    /// The next delay.
    pub fn next_delay(&mut self) -> Duration {
        self.inner.next_backoff().unwrap_or(self.max)
    }

    /// The longest delay, used after the controller refused the agent.
    pub fn max_delay(&self) -> Duration {
        self.max
    }

    /// Back to short delays after a good session.
    pub fn reset(&mut self) {
        self.inner.reset();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_to_the_cap_and_never_stops() {
        let mut r = Reconnect::new(Duration::from_secs(8));
        let delays: Vec<_> = (0..200).map(|_| r.next_delay()).collect();
        assert!(delays[0] <= Duration::from_millis(750));
        assert!(
            delays.iter().all(|d| *d <= Duration::from_secs(12)),
            "jitter stays within 1.5x the cap"
        );
        assert!(delays[150..].iter().all(|d| *d >= Duration::from_secs(4)));
        r.reset();
        assert!(r.next_delay() <= Duration::from_millis(750));
    }
}
