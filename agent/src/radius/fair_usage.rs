//! When a running session is told its fair-usage rate: the pure rule over what was sent to
//! it before. A session gets one CoA-Request per rate; one the NAS did not answer is tried
//! again, spaced out, a bounded number of times. The state is kept per session on disk
//! (`Sessions::claim_throttle`), so neither every interim update nor a restart sends again.

use serde::{Deserialize, Serialize};

/// Most CoA-Requests one session gets for one rate when its NAS does not answer.
pub const MAX_TRIES: u32 = 5;

/// What was sent to one session to slow it down.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attempt {
    /// The Mikrotik-Rate-Limit sent.
    pub rate: String,
    /// CoA-Requests sent for this rate (each with its own retransmissions).
    pub tries: u32,
    /// When the last one was sent (UTC ms).
    pub last_ms: i64,
    /// The NAS answered (ACK, or NAK, after which the session was ended instead): nothing
    /// more to send for this rate.
    pub settled: bool,
}

/// How long after its `tries`-th unanswered CoA a session is tried again: 30 s, doubling,
/// at most 16 minutes. Longer than one exchange with its retransmissions, so a request still
/// waiting for its answer is never sent twice.
pub fn retry_after_ms(tries: u32) -> i64 {
    30_000i64 << tries.saturating_sub(1).min(5)
}

/// The attempt to record and send now for a session that should run at `rate`, given the
/// one recorded before (if any); `None` when nothing is to be sent now.
pub fn next(prev: Option<&Attempt>, rate: &str, now_ms: i64) -> Option<Attempt> {
    let first = || Attempt {
        rate: rate.to_string(),
        tries: 1,
        last_ms: now_ms,
        settled: false,
    };
    match prev {
        None => Some(first()),
        // The plan's fair-usage rate changed since: the session has to learn the new one.
        Some(a) if a.rate != rate => Some(first()),
        Some(a) if a.settled || a.tries >= MAX_TRIES => None,
        Some(a) if now_ms.saturating_sub(a.last_ms) < retry_after_ms(a.tries) => None,
        Some(a) => Some(Attempt {
            tries: a.tries + 1,
            last_ms: now_ms,
            ..a.clone()
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const T0: i64 = 1_800_000_000_000;

    #[test]
    fn the_first_check_sends_and_an_answer_ends_it() {
        let a = next(None, "256k/512k", T0).unwrap();
        assert_eq!((a.tries, a.last_ms, a.settled), (1, T0, false));
        assert_eq!(next(Some(&a), "256k/512k", T0 + 29_999), None);
        let b = next(Some(&a), "256k/512k", T0 + 30_000).unwrap();
        assert_eq!(b.tries, 2);
        let done = Attempt {
            settled: true,
            ..b.clone()
        };
        assert_eq!(next(Some(&done), "256k/512k", T0 + 86_400_000), None);
        assert_eq!(next(Some(&done), "128k/256k", T0).unwrap().tries, 1);
        assert_eq!(retry_after_ms(1), 30_000);
        assert_eq!(retry_after_ms(2), 60_000);
        assert_eq!(retry_after_ms(100), 960_000);
    }

    proptest! {
        #[test]
        fn a_session_gets_few_requests_spaced_out_whatever_checks_it_sees(
            gaps in proptest::collection::vec(0i64..2_000_000, 1..200),
            answered_at in proptest::option::of(0usize..200),
        ) {
            let mut state: Option<Attempt> = None;
            let mut now = T0;
            let mut sent = Vec::new();
            for (i, gap) in gaps.iter().enumerate() {
                now += gap;
                if let Some(a) = next(state.as_ref(), "1M/1M", now) {
                    prop_assert_eq!(a.tries as usize, sent.len() + 1);
                    sent.push(now);
                    state = Some(a);
                }
                if answered_at == Some(i) && let Some(a) = &mut state {
                    a.settled = true;
                }
            }
            prop_assert!(sent.len() <= MAX_TRIES as usize);
            for (n, pair) in sent.windows(2).enumerate() {
                prop_assert!(pair[1] - pair[0] >= retry_after_ms(n as u32 + 1));
            }
            if let Some(i) = answered_at.filter(|i| *i < gaps.len()) {
                // Nothing is sent once the NAS answered.
                let answered = T0 + gaps[..=i].iter().sum::<i64>();
                prop_assert!(sent.iter().all(|t| *t <= answered));
            }
            // A new rate always goes out.
            prop_assert_eq!(next(state.as_ref(), "2M/2M", now).map(|a| a.tries), Some(1));
        }
    }
}
