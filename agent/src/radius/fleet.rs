//! The fleet ledger's rule at one site: what a voucher has used across every site, and how
//! many of its sessions are open elsewhere, from the controller's last synced view and this
//! site's own session table. Pure, `now` passed in.
//!
//! The controller syncs a voucher's totals split by site (`Voucher::sites`). This site's
//! table holds every record it ever answered, each folded here before it entered the outbox,
//! so per session it is never behind what the controller folded from this site. The use is
//!
//! ```text
//! max(fleet total, Σ other sites' shares + max(this site's share, local use))
//! ```
//!
//! Other sites' records are counted only through their shares and this site's only once,
//! through whichever view is further along: nothing is counted twice, and nothing the agent
//! knows is left out. The outer `max` keeps the older rule for a voucher whose split is not
//! known (synced by a controller before protocol 4).

use super::policy::Usage;
use mikrobill_protocol::items::Voucher;

/// Interim intervals a session elsewhere may stay silent before it stops holding a seat
/// here: the controller's rule for its list of who is online (`usage/online.rs`).
const STALE_INTERIMS_X2: i64 = 5;

/// The voucher's use across the fleet as this site knows it: the controller's per-site view
/// when it was synced, with this site's share replaced by `local` where that is further along.
pub fn usage(voucher: &Voucher, own_site: &str, local: &Usage) -> Usage {
    let (mut others, mut own) = ((0u64, 0u64), (0u64, 0u64));
    for s in &voucher.sites {
        let share = if s.site_id == own_site {
            &mut own
        } else {
            &mut others
        };
        share.0 = share.0.saturating_add(s.time_secs);
        share.1 = share.1.saturating_add(s.bytes);
    }
    let time = others.0.saturating_add(own.0.max(local.time_secs));
    let bytes = others.1.saturating_add(own.1.max(local.bytes));
    Usage {
        activated_at_ms: local.activated_at_ms,
        time_secs: voucher.used_time_secs.max(time),
        bytes: voucher.used_bytes.max(bytes),
    }
}

/// Sessions of the voucher open at other sites that still hold a seat at `now_ms`: those
/// heard of within 2.5 interim intervals, so a site that lost the controller stops waiting
/// for them as the controller would.
pub fn open_elsewhere(voucher: &Voucher, own_site: &str, interim_secs: u32, now_ms: i64) -> u32 {
    let window = i64::from(interim_secs) * 1000 * STALE_INTERIMS_X2 / 2;
    let open = voucher
        .sites
        .iter()
        .filter(|s| s.site_id != own_site)
        .flat_map(|s| &s.open_last_seen_ms)
        .filter(|&&seen| now_ms - seen < window)
        .count();
    u32::try_from(open).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use mikrobill_protocol::items::{SiteUsage, VoucherStatus};
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    fn voucher(sites: Vec<SiteUsage>) -> Voucher {
        Voucher {
            code: "V".into(),
            password: None,
            plan_id: "p".into(),
            status: VoucherStatus::Active,
            activated_at_ms: None,
            used_time_secs: sites.iter().map(|s| s.time_secs).sum(),
            used_bytes: sites.iter().map(|s| s.bytes).sum(),
            sites,
            bound_mac: None,
        }
    }

    fn share(site: &str, time_secs: u64, open: Vec<i64>) -> SiteUsage {
        SiteUsage {
            site_id: site.into(),
            time_secs,
            bytes: time_secs * 10,
            open_last_seen_ms: open,
        }
    }

    fn local(time_secs: u64) -> Usage {
        Usage {
            activated_at_ms: None,
            time_secs,
            bytes: time_secs * 10,
        }
    }

    #[test]
    fn use_at_another_site_adds_to_what_this_site_recorded_since() {
        // 290 s at B known, 200 s recorded here that the controller has not folded yet.
        let v = voucher(vec![share("B", 290, vec![])]);
        assert_eq!(usage(&v, "A", &local(200)).time_secs, 490);
        // The controller folded 150 s of ours: still 490, not 640.
        let v = voucher(vec![share("B", 290, vec![]), share("A", 150, vec![])]);
        assert_eq!(usage(&v, "A", &local(200)).time_secs, 490);
        // Our table lost (a reinstalled agent): the controller's share stands in.
        assert_eq!(usage(&v, "A", &local(0)).time_secs, 440);
        // A voucher synced without a split: the larger of the total and our own.
        let mut old = voucher(vec![]);
        old.used_time_secs = 290;
        assert_eq!(usage(&old, "A", &local(200)).time_secs, 290);
    }

    #[test]
    fn sessions_elsewhere_hold_a_seat_until_two_and_a_half_intervals_of_silence() {
        let v = voucher(vec![share("B", 0, vec![1_000]), share("A", 0, vec![1_000])]);
        assert_eq!(
            open_elsewhere(&v, "A", 60, 1_000),
            1,
            "our own are not counted"
        );
        assert_eq!(open_elsewhere(&v, "A", 60, 1_000 + 149_999), 1);
        assert_eq!(open_elsewhere(&v, "A", 60, 1_000 + 150_000), 0);
    }

    /// One step of the fleet: a record at a site, a delivery of a site's outbox to the
    /// controller, or a sync of the controller's view to this site (site 0).
    #[derive(Debug, Clone)]
    enum Step {
        Record {
            site: usize,
            session: usize,
            grow: u64,
        },
        Deliver {
            site: usize,
            records: usize,
        },
        Replay {
            site: usize,
        },
        Sync,
    }

    fn step() -> impl Strategy<Value = Step> {
        prop_oneof![
            (0..3usize, 0..3usize, 0..50u64).prop_map(|(site, session, grow)| Step::Record {
                site,
                session,
                grow
            }),
            (0..3usize, 0..4usize).prop_map(|(site, records)| Step::Deliver { site, records }),
            (0..3usize).prop_map(|site| Step::Replay { site }),
            Just(Step::Sync),
        ]
    }

    fn site_name(i: usize) -> String {
        format!("S{i}")
    }

    proptest! {
        /// Over any interleaving of records (cumulative counters per session), outbox
        /// deliveries (acknowledged records, replays included) and syncs, the decided use is
        /// at least what this site knows (the last sync's other shares plus its own records)
        /// and never more than the fleet truly used: no record is counted twice.
        #[test]
        fn never_below_what_is_known_never_above_the_truth(
            steps in proptest::collection::vec(step(), 0..80)
        ) {
            // Per site: session -> highest counter recorded there; the outbox of records
            // (session, counter) not delivered yet, and the delivered ones (for replays).
            let mut recorded: Vec<BTreeMap<usize, u64>> = vec![BTreeMap::new(); 3];
            let mut outbox: Vec<Vec<(usize, u64)>> = vec![Vec::new(); 3];
            let mut delivered: Vec<Vec<(usize, u64)>> = vec![Vec::new(); 3];
            // The controller's fold: (site, session) -> highest counter ingested.
            let mut folded: BTreeMap<(usize, usize), u64> = BTreeMap::new();
            let mut synced = voucher(vec![]);
            for step in steps {
                match step {
                    Step::Record { site, session, grow } => {
                        let c = recorded[site].entry(session).or_default();
                        *c += grow;
                        outbox[site].push((session, *c));
                    }
                    Step::Deliver { site, records } => {
                        let n = records.min(outbox[site].len());
                        for (session, c) in outbox[site].drain(..n) {
                            let high = folded.entry((site, session)).or_default();
                            *high = (*high).max(c);
                            delivered[site].push((session, c));
                        }
                    }
                    Step::Replay { site } => {
                        for &(session, c) in &delivered[site] {
                            let high = folded.entry((site, session)).or_default();
                            *high = (*high).max(c);
                        }
                    }
                    Step::Sync => {
                        let shares = (0..3)
                            .map(|site| {
                                let t = folded
                                    .iter()
                                    .filter(|((s, _), _)| *s == site)
                                    .map(|(_, c)| *c)
                                    .sum();
                                share(&site_name(site), t, vec![])
                            })
                            .filter(|s| s.time_secs > 0)
                            .collect();
                        synced = voucher(shares);
                    }
                }
                let own: u64 = recorded[0].values().sum();
                let decided = usage(&synced, &site_name(0), &local(own));
                let others: u64 = synced
                    .sites
                    .iter()
                    .filter(|s| s.site_id != site_name(0))
                    .map(|s| s.time_secs)
                    .sum();
                let truth: u64 = recorded.iter().flat_map(|r| r.values()).sum();
                prop_assert!(decided.time_secs >= others + own);
                prop_assert!(decided.time_secs >= synced.used_time_secs);
                prop_assert!(decided.time_secs <= truth, "{} > {}", decided.time_secs, truth);
                prop_assert_eq!(decided.bytes, decided.time_secs * 10);
            }
        }
    }
}
