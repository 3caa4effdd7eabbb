//! When use ends a voucher: a pure decision from its plan's limits, its fleet-wide usage from
//! the ledger, its first use and `now` (passed in, never read), to the lifecycle state it
//! moves to. Ingest asks it for every voucher a batch names; the expiry sweep filters by the
//! same validity rule in SQL ([`expired_sql`]), and the portal shows [`validity_end`]. A plan
//! with fair usage never ends a voucher for data: reaching its data limit throttles it
//! instead ([`throttled`], in SQL [`throttled_sql`] for the read model).

use super::lifecycle::{self, Event, State};

/// What a voucher's plan allows; `None` is unlimited.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Limits {
    /// Online time, seconds.
    pub time_secs: Option<i64>,
    /// Data, both directions, bytes.
    pub data_bytes: Option<i64>,
    /// Validity after first use, seconds.
    pub validity_secs: Option<i64>,
    /// The plan has a fair-usage rate: reaching `data_bytes` slows the voucher down
    /// instead of using it up.
    pub fair_usage: bool,
}

/// What a voucher used at every site together.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Used {
    /// Online time, seconds.
    pub secs: i64,
    /// Data, both directions, bytes.
    pub bytes: i64,
}

/// When a voucher stops being valid (unix ms): the earlier of its plan's validity after first
/// use and its own fixed expiry; `None` when neither applies yet.
pub fn validity_end(
    activated_at: Option<i64>,
    validity_secs: Option<i64>,
    expires_at: Option<i64>,
) -> Option<i64> {
    let after_use = match (activated_at, validity_secs) {
        (Some(at), Some(secs)) => Some(at.saturating_add(secs.saturating_mul(1000))),
        _ => None,
    };
    match (after_use, expires_at) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// Whether `used` reaches the time or the data limit (reaching it is using it up, as the
/// agent's login decision counts it); under fair usage only the time limit uses it up.
pub fn used_up(limits: &Limits, used: Used) -> bool {
    limits.time_secs.is_some_and(|l| used.secs >= l)
        || data_reached(limits, used) && !limits.fair_usage
}

fn data_reached(limits: &Limits, used: Used) -> bool {
    limits.data_bytes.is_some_and(|l| used.bytes >= l)
}

/// Whether a voucher in `state` runs at its plan's fair-usage rate: active, and its data
/// limit reached under fair usage.
pub fn throttled(state: State, limits: &Limits, used: Used) -> bool {
    state == State::Active && limits.fair_usage && data_reached(limits, used)
}

/// SQL condition of [`throttled`] over a voucher row `v` and its plan row `p`.
pub fn throttled_sql(v: &str, p: &str) -> String {
    format!(
        "({v}.status = 'active' AND {p}.fup_rate_limit IS NOT NULL \
         AND {p}.data_limit_bytes IS NOT NULL AND {v}.used_bytes >= {p}.data_limit_bytes)"
    )
}

/// The state a voucher in `from` moves to at `now` (unix ms), or `None` when it stays: used
/// up is `Exhausted`, else past its validity is `Expired`; the lifecycle table decides
/// whether that applies to `from`, so an ended voucher never comes back.
pub fn decide(
    from: State,
    limits: &Limits,
    used: Used,
    activated_at: Option<i64>,
    expires_at: Option<i64>,
    now: i64,
) -> Option<State> {
    if used_up(limits, used) {
        return lifecycle::next(from, Event::Exhaust);
    }
    if validity_end(activated_at, limits.validity_secs, expires_at).is_some_and(|end| end <= now) {
        return lifecycle::next(from, Event::Expire);
    }
    None
}

/// SQL condition of [`validity_end`] `<= now` over a voucher row `v` and its plan row `p`,
/// with `now` a bound parameter such as `$1`; the expiry sweep selects by it.
pub fn expired_sql(v: &str, p: &str, now: &str) -> String {
    format!(
        "(({v}.expires_at IS NOT NULL AND {v}.expires_at <= {now}) \
         OR ({p}.validity_secs IS NOT NULL AND {v}.activated_at IS NOT NULL \
             AND {v}.activated_at + {p}.validity_secs * 1000 <= {now}))"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn limits() -> impl Strategy<Value = Limits> {
        (
            proptest::option::of(1i64..10_000),
            proptest::option::of(1i64..10_000_000),
            proptest::option::of(1i64..100_000),
            any::<bool>(),
        )
            .prop_map(
                |(time_secs, data_bytes, validity_secs, fair_usage)| Limits {
                    time_secs,
                    data_bytes,
                    validity_secs,
                    fair_usage,
                },
            )
    }

    fn used() -> impl Strategy<Value = Used> {
        (0i64..20_000, 0i64..20_000_000).prop_map(|(secs, bytes)| Used { secs, bytes })
    }

    fn state() -> impl Strategy<Value = State> {
        proptest::sample::select(State::ALL.to_vec())
    }

    const T0: i64 = 1_780_000_000_000;

    proptest! {
        #[test]
        fn never_un_exhausts_or_restarts(
            from in state(), l in limits(), u in used(),
            act in proptest::option::of(T0..T0 + 1_000_000),
            exp in proptest::option::of(T0..T0 + 200_000_000),
            now in T0..T0 + 300_000_000,
        ) {
            let to = decide(from, &l, u, act, exp, now);
            if matches!(from, State::Exhausted | State::Expired | State::Revoked) {
                prop_assert_eq!(to, None);
            }
            prop_assert!(matches!(to, None | Some(State::Exhausted) | Some(State::Expired)));
        }

        #[test]
        fn exhausted_exactly_when_a_limit_is_reached(
            l in limits(), u in used(),
            act in proptest::option::of(T0..T0 + 1_000_000),
            now in T0..T0 + 300_000_000,
        ) {
            let reached = l.time_secs.is_some_and(|t| u.secs >= t)
                || (!l.fair_usage && l.data_bytes.is_some_and(|d| u.bytes >= d));
            let to = decide(State::Active, &l, u, act, None, now);
            prop_assert_eq!(to == Some(State::Exhausted), reached);
        }

        #[test]
        fn fair_usage_throttles_instead_of_exhausting_for_data(
            l in limits(), u in used(),
            act in proptest::option::of(T0..T0 + 1_000_000),
            now in T0..T0 + 300_000_000,
        ) {
            let fup = Limits { fair_usage: true, ..l };
            let data_only = Used { secs: 0, ..u };
            let time_left = fup.time_secs.is_none_or(|t| t > 0);
            // Data alone never ends a fair-usage voucher; it throttles it once reached.
            if time_left {
                prop_assert_ne!(decide(State::Active, &fup, data_only, act, None, now), Some(State::Exhausted));
            }
            prop_assert_eq!(
                throttled(State::Active, &fup, u),
                fup.data_bytes.is_some_and(|d| u.bytes >= d)
            );
            // Without fair usage nothing is ever throttled, and an ended voucher is not.
            let plain = Limits { fair_usage: false, ..l };
            prop_assert!(!throttled(State::Active, &plain, u));
            prop_assert!(!throttled(State::Expired, &fup, u));
        }

        #[test]
        fn more_use_never_un_exhausts(
            l in limits(), u in used(), more in used(), now in T0..T0 + 1_000,
        ) {
            let bigger = Used { secs: u.secs + more.secs, bytes: u.bytes + more.bytes };
            if decide(State::Active, &l, u, Some(T0), None, now) == Some(State::Exhausted) {
                prop_assert_eq!(decide(State::Active, &l, bigger, Some(T0), None, now), Some(State::Exhausted));
            }
        }

        #[test]
        fn expired_exactly_when_validity_passed(
            l in limits(),
            act in proptest::option::of(T0..T0 + 1_000_000),
            exp in proptest::option::of(T0..T0 + 200_000_000),
            now in T0..T0 + 300_000_000,
        ) {
            // Nothing used, so only validity can end it.
            let to = decide(State::Active, &l, Used::default(), act, exp, now);
            let after_use = act.zip(l.validity_secs).is_some_and(|(a, v)| a + v * 1000 <= now);
            let fixed = exp.is_some_and(|e| e <= now);
            prop_assert_eq!(to == Some(State::Expired), after_use || fixed);
        }

        #[test]
        fn usage_moves_only_active_vouchers(
            from in proptest::sample::select(vec![State::New, State::Sold]),
            l in limits(), u in used(), now in T0..T0 + 1_000,
        ) {
            // Ingest activates a voucher on first use before judging its usage, so one still
            // new or sold here is one this site may not use: its usage must not end it.
            prop_assert_eq!(decide(from, &l, u, None, None, now), None);
        }
    }

    #[test]
    fn the_edges() {
        let l = Limits {
            time_secs: Some(300),
            data_bytes: None,
            validity_secs: Some(3600),
            fair_usage: false,
        };
        let at = |secs| Used { secs, bytes: 0 };
        assert_eq!(decide(State::Active, &l, at(299), Some(T0), None, T0), None);
        assert_eq!(
            decide(State::Active, &l, at(300), Some(T0), None, T0),
            Some(State::Exhausted)
        );
        let end = T0 + 3_600_000;
        assert_eq!(
            decide(State::Active, &l, at(0), Some(T0), None, end - 1),
            None
        );
        assert_eq!(
            decide(State::Active, &l, at(0), Some(T0), None, end),
            Some(State::Expired)
        );
        assert_eq!(
            decide(State::Active, &l, at(0), Some(T0), Some(T0 + 10), T0 + 10),
            Some(State::Expired)
        );
        assert_eq!(validity_end(None, Some(60), None), None);
        assert_eq!(
            expired_sql("v", "p", "$1"),
            "((v.expires_at IS NOT NULL AND v.expires_at <= $1) \
             OR (p.validity_secs IS NOT NULL AND v.activated_at IS NOT NULL \
             AND v.activated_at + p.validity_secs * 1000 <= $1))"
        );
    }
}
