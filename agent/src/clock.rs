//! The agent's wall clock: what every subscriber-facing decision and timestamp reads (RADIUS
//! validity, time budgets and Session-Timeout, accounting event times, session staleness,
//! command expiry, the outbox's and the link's ages in `/status`).
//!
//! The running binary always reads the system clock. A [`ManualClock`] stands in for it in
//! tests that run a site through days of subscriber time in seconds (an outage of 72 hours,
//! say): the test moves it, nothing else does. Decisions never read a clock themselves; the
//! I/O code reads this one once per request and passes `now` in.
//!
//! Three things stay on the system clock ([`crate::now_ms`]) whatever this one says:
//! certificate renewal (rustls checks certificates against the system time, so renewal
//! decided on any other time would disagree with the handshake it keeps working), command
//! deadlines and their stored outcomes' age (the controller set them by its own clock), and
//! the managed router's check and drift times (the router's business, not a subscriber's).

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A source of the current UTC time in unix milliseconds; the system clock by default.
#[derive(Debug, Clone, Default)]
pub struct Clock {
    manual: Option<Arc<AtomicI64>>,
}

impl Clock {
    /// The system clock.
    pub fn system() -> Clock {
        Clock::default()
    }

    /// Current time as UTC unix milliseconds.
    pub fn now_ms(&self) -> i64 {
        match &self.manual {
            Some(at) => at.load(Ordering::SeqCst),
            None => system_now_ms(),
        }
    }

    /// Whether this is the system clock (not a test's [`ManualClock`]).
    pub fn is_system(&self) -> bool {
        self.manual.is_none()
    }
}

/// A clock that stands still until it is moved: the controllable time of tests.
#[derive(Debug, Clone)]
pub struct ManualClock {
    at: Arc<AtomicI64>,
}

impl ManualClock {
    /// A clock showing `at_ms` (UTC unix milliseconds).
    pub fn at(at_ms: i64) -> ManualClock {
        ManualClock {
            at: Arc::new(AtomicI64::new(at_ms)),
        }
    }

    /// The [`Clock`] to hand an agent; it reads whatever this one is moved to.
    pub fn clock(&self) -> Clock {
        Clock {
            manual: Some(self.at.clone()),
        }
    }

    /// The time it shows.
    pub fn now_ms(&self) -> i64 {
        self.at.load(Ordering::SeqCst)
    }

    /// Moves it forward by `by`; returns the new time.
    pub fn advance(&self, by: Duration) -> i64 {
        let by = i64::try_from(by.as_millis()).unwrap_or(i64::MAX);
        let before = self
            .at
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |t| {
                Some(t.saturating_add(by))
            })
            .expect("the update always succeeds");
        before.saturating_add(by)
    }
}

/// The system clock as UTC unix milliseconds (0 before 1970).
pub fn system_now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manual_clock_moves_only_when_told_and_every_copy_sees_it() {
        let manual = ManualClock::at(1_000);
        let (a, b) = (manual.clock(), manual.clock().clone());
        assert!(!a.is_system());
        assert_eq!(a.now_ms(), 1_000);
        assert_eq!(manual.advance(Duration::from_secs(72 * 3600)), 259_201_000);
        assert_eq!((a.now_ms(), b.now_ms()), (259_201_000, 259_201_000));
        manual.at.store(i64::MAX - 1, Ordering::SeqCst);
        assert_eq!(
            manual.advance(Duration::from_secs(1)),
            i64::MAX,
            "saturates"
        );
    }

    #[test]
    fn the_default_clock_is_the_system_clock() {
        let clock = Clock::default();
        assert!(clock.is_system());
        let before = system_now_ms();
        let now = clock.now_ms();
        assert!(now >= before && now > 1_700_000_000_000);
    }
}
