//! API rate limits: a token bucket per bearer token, sized by the caller's role. Buckets live
//! in this process, so the limits hold per replica (N replicas let a token through N times
//! as fast); the README says so.

use mikrobill_core::auth::Role;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// One role's limit: a sustained rate and the burst a quiet token may spend at once.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limit {
    /// Requests per second, sustained.
    pub per_second: f64,
    /// Requests a full bucket holds.
    pub burst: f64,
}

impl Limit {
    /// Parses `RATE/BURST` (requests per second and bucket size), or `RATE` with a burst of
    /// twice the rate.
    pub fn parse(text: &str) -> Result<Limit, String> {
        let (rate, burst) = match text.split_once('/') {
            Some((r, b)) => (r, Some(b)),
            None => (text, None),
        };
        let per_second: f64 = rate
            .trim()
            .parse()
            .ok()
            .filter(|r: &f64| r.is_finite() && *r > 0.0)
            .ok_or_else(|| {
                format!("rate {rate:?} is not a positive number of requests per second")
            })?;
        let burst = match burst {
            Some(b) => b
                .trim()
                .parse()
                .ok()
                .filter(|b: &f64| b.is_finite() && *b >= 1.0)
                .ok_or_else(|| format!("burst {b:?} is not a number of requests of at least 1"))?,
            None => (per_second * 2.0).max(1.0),
        };
        Ok(Limit { per_second, burst })
    }
}

/// The limit of every role.
#[derive(Debug, Clone, PartialEq)]
pub struct RateLimits(HashMap<Role, Limit>);

impl Default for RateLimits {
    /// Generous for people and scripts alike; resellers, who act on their own balance only,
    /// get the smallest share.
    fn default() -> Self {
        let l = |per_second, burst| Limit { per_second, burst };
        RateLimits(HashMap::from([
            (Role::Admin, l(50.0, 200.0)),
            (Role::Operator, l(50.0, 200.0)),
            (Role::Cashier, l(20.0, 100.0)),
            (Role::Reseller, l(10.0, 50.0)),
            (Role::Viewer, l(20.0, 100.0)),
        ]))
    }
}

impl RateLimits {
    /// Overrides from `role=RATE/BURST` entries, separated by commas or given one by one.
    pub fn with_overrides<'a>(
        mut self,
        entries: impl IntoIterator<Item = &'a str>,
    ) -> Result<RateLimits, String> {
        for entry in entries
            .into_iter()
            .flat_map(|e| e.split(','))
            .map(str::trim)
            .filter(|e| !e.is_empty())
        {
            let (role, limit) = entry
                .split_once('=')
                .ok_or_else(|| format!("{entry:?} is not ROLE=RATE/BURST, e.g. reseller=5/20"))?;
            let role: Role = role
                .trim()
                .parse()
                .map_err(|_| format!("{role:?} in {entry:?} is not a role"))?;
            let limit = Limit::parse(limit).map_err(|e| format!("{entry:?}: {e}"))?;
            self.0.insert(role, limit);
        }
        Ok(self)
    }

    /// The limit of `role`.
    pub fn of(&self, role: Role) -> Limit {
        self.0.get(&role).copied().unwrap_or(Limit {
            per_second: 10.0,
            burst: 20.0,
        })
    }
}

/// A bucket's fill at an instant.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bucket {
    /// Requests it can still take.
    pub tokens: f64,
    /// When `tokens` was computed.
    pub at: Instant,
}

impl Bucket {
    /// A full bucket.
    pub fn full(limit: Limit, now: Instant) -> Bucket {
        Bucket {
            tokens: limit.burst,
            at: now,
        }
    }
}

/// Takes one request from `bucket` at `now`: the bucket after, and either `Ok` or how long
/// until a request would be let through.
pub fn take(bucket: Bucket, limit: Limit, now: Instant) -> (Bucket, Result<(), Duration>) {
    let elapsed = now.saturating_duration_since(bucket.at).as_secs_f64();
    let tokens = (bucket.tokens + elapsed * limit.per_second).min(limit.burst);
    if tokens >= 1.0 {
        (
            Bucket {
                tokens: tokens - 1.0,
                at: now,
            },
            Ok(()),
        )
    } else {
        let wait = (1.0 - tokens) / limit.per_second;
        (
            Bucket { tokens, at: now },
            Err(Duration::from_secs_f64(wait)),
        )
    }
}

/// Buckets kept before idle ones are swept out.
const SWEEP_AT: usize = 10_000;

/// The buckets of this process, one per token.
#[derive(Debug)]
pub struct RateLimiter {
    limits: RateLimits,
    buckets: Mutex<HashMap<String, Bucket>>,
}

impl RateLimiter {
    /// A limiter with empty buckets.
    pub fn new(limits: RateLimits) -> RateLimiter {
        RateLimiter {
            limits,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Lets a request of token `token_id` (held by a `role`) through, or says how long until
    /// one would be.
    pub fn check(&self, token_id: &str, role: Role, now: Instant) -> Result<(), Duration> {
        let limit = self.limits.of(role);
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if buckets.len() >= SWEEP_AT && !buckets.contains_key(token_id) {
            // A bucket that has refilled is the same as no bucket: forget it.
            let refill = Duration::from_secs_f64(limit.burst / limit.per_second);
            buckets.retain(|_, b| now.saturating_duration_since(b.at) < refill);
        }
        let bucket = buckets
            .get(token_id)
            .copied()
            .unwrap_or_else(|| Bucket::full(limit, now));
        let (after, verdict) = take(bucket, limit, now);
        buckets.insert(token_id.to_string(), after);
        if verdict.is_err() {
            metrics::counter!("mikrobill_api_rate_limited_total", "role" => role.as_str())
                .increment(1);
        }
        verdict
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Over any stretch of time, a bucket lets through at most its burst plus what the
        /// rate refilled, and a caller told to wait is let through once it has waited.
        #[test]
        fn a_bucket_never_lets_more_than_burst_plus_rate(
            per_second in 0.5f64..100.0,
            burst in 1.0f64..50.0,
            gaps in proptest::collection::vec(0u64..500, 1..300),
        ) {
            let limit = Limit { per_second, burst };
            let start = Instant::now();
            let mut now = start;
            let mut bucket = Bucket::full(limit, start);
            let mut allowed = 0u32;
            for gap in gaps {
                now += Duration::from_millis(gap);
                let (after, verdict) = take(bucket, limit, now);
                bucket = after;
                match verdict {
                    Ok(()) => allowed += 1,
                    Err(wait) => {
                        let (_, again) = take(bucket, limit, now + wait + Duration::from_micros(1));
                        prop_assert!(again.is_ok(), "waited {:?} and was refused again", wait);
                    }
                }
                let elapsed = now.duration_since(start).as_secs_f64();
                prop_assert!(f64::from(allowed) <= burst + elapsed * per_second + 1e-6);
            }
        }
    }

    #[test]
    fn limits_are_parsed_per_role_with_clear_errors() {
        let limits = RateLimits::default()
            .with_overrides(["reseller=5/20, viewer=2", "admin=1000/1000"])
            .unwrap();
        assert_eq!(
            limits.of(Role::Reseller),
            Limit {
                per_second: 5.0,
                burst: 20.0
            }
        );
        assert_eq!(limits.of(Role::Viewer).burst, 4.0);
        assert_eq!(limits.of(Role::Admin).per_second, 1000.0);
        assert_eq!(
            limits.of(Role::Cashier),
            RateLimits::default().of(Role::Cashier)
        );
        for bad in ["boss=1/2", "admin", "admin=0/5", "admin=5/0.5", "admin=x"] {
            let err = RateLimits::default().with_overrides([bad]).unwrap_err();
            assert!(err.contains(bad.split('=').next().unwrap()), "{bad}: {err}");
        }
    }

    #[test]
    fn the_limiter_counts_each_token_apart() {
        let limiter = RateLimiter::new(
            RateLimits::default()
                .with_overrides(["viewer=1/2"])
                .unwrap(),
        );
        let now = Instant::now();
        assert!(limiter.check("a", Role::Viewer, now).is_ok());
        assert!(limiter.check("a", Role::Viewer, now).is_ok());
        let wait = limiter.check("a", Role::Viewer, now).unwrap_err();
        assert!(wait <= Duration::from_secs(1) && wait > Duration::from_millis(900));
        assert!(limiter.check("b", Role::Viewer, now).is_ok());
        assert!(
            limiter
                .check("a", Role::Viewer, now + Duration::from_secs(1))
                .is_ok()
        );
    }
}
