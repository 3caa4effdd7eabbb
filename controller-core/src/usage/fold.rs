//! How accounting readings become usage, as a pure function: every session's counters only
//! grow, so a session's usage is the highest value of each counter ever reported for it, and
//! what a batch adds is how far it raised those highs. Replayed, duplicated or reordered
//! records raise nothing twice: the total of everything [`fold`] ever adds for a session is
//! exactly its highest counters, whatever order and batches the records came in.

use std::collections::{BTreeMap, HashMap};

/// One session's cumulative counters (or what they grew by).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    /// Online time in seconds.
    pub secs: i64,
    /// Octets from the subscriber.
    pub bytes_in: i64,
    /// Octets to the subscriber.
    pub bytes_out: i64,
}

impl Counters {
    /// Each counter's higher value.
    pub fn max(self, other: Counters) -> Counters {
        Counters {
            secs: self.secs.max(other.secs),
            bytes_in: self.bytes_in.max(other.bytes_in),
            bytes_out: self.bytes_out.max(other.bytes_out),
        }
    }

    /// How far `self` is above `below` (never negative: counters that went down add nothing).
    pub fn above(self, below: Counters) -> Counters {
        Counters {
            secs: (self.secs - below.secs).max(0),
            bytes_in: (self.bytes_in - below.bytes_in).max(0),
            bytes_out: (self.bytes_out - below.bytes_out).max(0),
        }
    }

    fn is_zero(self) -> bool {
        self == Counters::default()
    }

    /// Adds `other` to each counter (saturating).
    pub(crate) fn add(&mut self, other: Counters) {
        self.secs = self.secs.saturating_add(other.secs);
        self.bytes_in = self.bytes_in.saturating_add(other.bytes_in);
        self.bytes_out = self.bytes_out.saturating_add(other.bytes_out);
    }
}

/// A session within one site: the NAS that reported it and its Acct-Session-Id (the id is
/// only unique per NAS).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionKey {
    /// NAS-Identifier.
    pub nas: String,
    /// Acct-Session-Id.
    pub session: String,
}

/// One Start, Interim-Update or Stop as usage sees it.
#[derive(Debug, Clone)]
pub struct Reading {
    /// The session it reports.
    pub key: SessionKey,
    /// The account (voucher code or PPPoE username).
    pub username: String,
    /// When the NAS sent it (unix ms).
    pub at: i64,
    /// The session's counters so far.
    pub counters: Counters,
}

/// What one account used on one local day at one site.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DayUsage {
    /// Counters added that day.
    pub used: Counters,
    /// Sessions first seen that day.
    pub sessions: i64,
}

/// A session's highs after a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionHigh {
    /// The account.
    pub username: String,
    /// Highest counters seen.
    pub counters: Counters,
    /// Earliest and latest reading seen (unix ms).
    pub first_at: i64,
    /// Latest reading seen.
    pub last_at: i64,
}

/// What a batch changes.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Folded {
    /// Sessions whose highs or times moved, with their new values.
    pub sessions: BTreeMap<SessionKey, SessionHigh>,
    /// Usage added, per (local day start, username).
    pub days: BTreeMap<(i64, String), DayUsage>,
}

/// Folds `readings` into the sessions' known highs `known` (only the sessions the batch
/// names need be there). Growth is credited to the local day (UTC offset `offset_min`) of
/// the reading that brought it; a session new to the ledger counts once, on the day of its
/// earliest reading in the batch.
pub fn fold(
    known: &HashMap<SessionKey, SessionHigh>,
    readings: &[Reading],
    offset_min: i32,
) -> Folded {
    // Earliest first, so growth lands on the day it happened even within one batch.
    let mut order: Vec<&Reading> = readings.iter().collect();
    order.sort_by_key(|r| r.at);
    let mut out = Folded::default();
    for r in order {
        let day = crate::stats::local_day_start(r.at, offset_min);
        let current = out
            .sessions
            .get(&r.key)
            .or_else(|| known.get(&r.key))
            .cloned();
        let (before, high) = match current {
            Some(h) => (
                h.counters,
                SessionHigh {
                    username: h.username,
                    counters: h.counters.max(r.counters),
                    first_at: h.first_at.min(r.at),
                    last_at: h.last_at.max(r.at),
                },
            ),
            None => {
                out.days
                    .entry((day, r.username.clone()))
                    .or_default()
                    .sessions += 1;
                (
                    Counters::default(),
                    SessionHigh {
                        username: r.username.clone(),
                        counters: r.counters,
                        first_at: r.at,
                        last_at: r.at,
                    },
                )
            }
        };
        let grown = high.counters.above(before);
        if !grown.is_zero() {
            // Growth belongs to the account that opened the session, even if a later record
            // names it differently.
            out.days
                .entry((day, high.username.clone()))
                .or_default()
                .used
                .add(grown);
        }
        out.sessions.insert(r.key.clone(), high);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const DAY: i64 = 86_400_000;

    fn reading(session: &str, user: &str, at: i64, secs: i64, bin: i64, bout: i64) -> Reading {
        Reading {
            key: SessionKey {
                nas: "nas1".into(),
                session: session.into(),
            },
            username: user.into(),
            at,
            counters: Counters {
                secs,
                bytes_in: bin,
                bytes_out: bout,
            },
        }
    }

    /// Applies batches one after another as ingest does, returning the totals per user.
    fn run(batches: &[Vec<Reading>]) -> (HashMap<String, DayUsage>, usize) {
        let mut known: HashMap<SessionKey, SessionHigh> = HashMap::new();
        let mut totals: HashMap<String, DayUsage> = HashMap::new();
        for b in batches {
            let f = fold(&known, b, 420);
            for ((_, user), u) in f.days {
                let t = totals.entry(user).or_default();
                t.used.add(u.used);
                t.sessions += u.sessions;
            }
            known.extend(f.sessions);
        }
        (totals, known.len())
    }

    #[test]
    fn interim_updates_add_what_they_grew_by() {
        let b = vec![
            reading("s1", "u", 1_000, 60, 100, 1_000),
            reading("s1", "u", 61_000, 120, 250, 3_000),
        ];
        let (t, n) = run(&[b]);
        assert_eq!(n, 1);
        assert_eq!(
            t["u"].used,
            Counters {
                secs: 120,
                bytes_in: 250,
                bytes_out: 3_000
            }
        );
        assert_eq!(t["u"].sessions, 1);
    }

    #[test]
    fn a_replayed_batch_adds_nothing() {
        let b = vec![reading("s1", "u", 1_000, 60, 100, 1_000)];
        let known = HashMap::new();
        let first = fold(&known, &b, 0);
        let known: HashMap<_, _> = first.sessions.into_iter().collect();
        let again = fold(&known, &b, 0);
        assert!(again.days.is_empty(), "{:?}", again.days);
    }

    #[test]
    fn growth_lands_on_the_local_day_it_happened() {
        // 16:30 and 17:30 UTC are either side of midnight in WIB (UTC+7).
        let before = 16 * 3_600_000 + 1_800_000;
        let after = before + 3_600_000;
        let b = vec![
            reading("s1", "u", before, 100, 10, 10),
            reading("s1", "u", after, 300, 30, 40),
        ];
        let f = fold(&HashMap::new(), &b, 420);
        let days: Vec<_> = f.days.iter().map(|((d, _), u)| (*d, u.used.secs)).collect();
        assert_eq!(days.len(), 2, "{days:?}");
        assert_eq!(days[1].0 - days[0].0, DAY);
        assert_eq!((days[0].1, days[1].1), (100, 200));
    }

    #[test]
    fn a_new_session_of_the_same_user_counts_from_zero() {
        let (t, n) = run(&[
            vec![reading("s1", "u", 1_000, 600, 5_000, 9_000)],
            vec![reading("s2", "u", 900_000, 60, 100, 200)],
        ]);
        assert_eq!(n, 2);
        assert_eq!(t["u"].used.secs, 660);
        assert_eq!(t["u"].sessions, 2);
    }

    fn arb_readings() -> impl Strategy<Value = Vec<Reading>> {
        // A few sessions of a few users, each with growing counters.
        prop::collection::vec((0u8..4, 1u8..6), 1..8).prop_map(|sessions| {
            let mut out = Vec::new();
            for (i, (user, steps)) in sessions.into_iter().enumerate() {
                for s in 1..=steps as i64 {
                    out.push(reading(
                        &format!("s{i}"),
                        &format!("u{user}"),
                        s * 7_200_000 + i as i64,
                        s * 300,
                        s * 1_000 + i as i64,
                        s * 5_000,
                    ));
                }
            }
            out
        })
    }

    proptest! {
        /// Whatever the order, batching and duplication, each user's total is the sum of
        /// its sessions' highest counters and each session counts once.
        #[test]
        fn totals_do_not_depend_on_order_batches_or_replays(
            readings in arb_readings(),
            seed in any::<u64>(),
            cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..4),
            replay in prop::collection::vec(any::<prop::sample::Index>(), 0..6),
        ) {
            let mut expected: HashMap<String, DayUsage> = HashMap::new();
            let mut highs: BTreeMap<SessionKey, (String, Counters)> = BTreeMap::new();
            for r in &readings {
                let e = highs.entry(r.key.clone()).or_insert((r.username.clone(), Counters::default()));
                e.1 = e.1.max(r.counters);
            }
            for (user, c) in highs.values() {
                let t = expected.entry(user.clone()).or_default();
                t.used.add(*c);
                t.sessions += 1;
            }
            // Shuffle deterministically, duplicate some, cut into batches.
            let mut stream: Vec<Reading> = readings.clone();
            for i in &replay {
                stream.push(readings[i.index(readings.len())].clone());
            }
            let mut state = seed | 1;
            for i in (1..stream.len()).rev() {
                state ^= state << 13; state ^= state >> 7; state ^= state << 17;
                stream.swap(i, (state % (i as u64 + 1)) as usize);
            }
            let mut bounds: Vec<usize> = cuts.iter().map(|c| c.index(stream.len() + 1)).collect();
            bounds.push(0);
            bounds.push(stream.len());
            bounds.sort();
            let batches: Vec<Vec<Reading>> =
                bounds.windows(2).map(|w| stream[w[0]..w[1]].to_vec()).collect();
            let (totals, n) = run(&batches);
            prop_assert_eq!(n, highs.len());
            prop_assert_eq!(totals, expected);
        }
    }
}
