//! Offline double use: whether a voucher's sessions across the fleet break its plan in a way
//! no single site could have prevented. Each site enforces what it knows, so while sites are
//! cut off from the controller the same voucher can be used at several of them; when their
//! records arrive, this decides whether that happened: (a) the fleet total is over the time
//! or data limit and more than one site contributed (one site over its own limit is ordinary
//! exhaustion), (b) at some instant more sessions overlapped than shared users allows, from
//! different sites, (c) a MAC-locked voucher was used by different devices. Pure, `now`
//! passed in; `metered.rs` loads the sessions and `conflicts.rs` stores the outcome.

use super::fleet::LedgerSession;
use crate::usage::online::STALE_INTERIMS;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// What a voucher's plan allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Allowance {
    /// Online time, seconds; `None` is unlimited.
    pub time_secs: Option<i64>,
    /// Data, both directions, bytes; `None` is unlimited.
    pub data_bytes: Option<i64>,
    /// Sessions allowed at once.
    pub shared_users: i64,
    /// Whether the voucher is bound to its first device.
    pub mac_lock: bool,
}

/// How a voucher was overused.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum ConflictKind {
    /// Used beyond its time or data limit, at more than one site.
    OverBudget,
    /// More sessions at once than shared users allows, at more than one site.
    TooManyDevices,
    /// A MAC-locked voucher used by more than one device.
    MacLock,
}

impl ConflictKind {
    /// Every kind.
    pub const ALL: [ConflictKind; 3] = [
        ConflictKind::OverBudget,
        ConflictKind::TooManyDevices,
        ConflictKind::MacLock,
    ];

    /// Storage name.
    pub fn as_str(self) -> &'static str {
        match self {
            ConflictKind::OverBudget => "over_budget",
            ConflictKind::TooManyDevices => "too_many_devices",
            ConflictKind::MacLock => "mac_lock",
        }
    }

    /// Parses a storage name.
    pub fn parse(s: &str) -> Option<ConflictKind> {
        ConflictKind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// One session a conflict involves.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SessionRef {
    /// The site that reported it.
    pub site_id: String,
    /// Acct-Session-Id.
    pub session_id: String,
    /// The NAS that ran it.
    pub nas_identifier: String,
    /// Its first record (unix ms).
    pub started_at: i64,
    /// Its latest record (unix ms).
    pub last_at: i64,
    /// The device (upper case, `:` separated), when the NAS named one.
    pub mac: Option<String>,
    /// Online seconds.
    pub secs: i64,
    /// Octets both directions.
    pub bytes: i64,
}

/// A detected overuse.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Conflict {
    /// How.
    pub kind: ConflictKind,
    /// The sites involved, sorted.
    pub sites: Vec<String>,
    /// The sessions involved, by start.
    pub sessions: Vec<SessionRef>,
    /// Seconds beyond the time limit (over budget).
    pub over_secs: i64,
    /// Bytes beyond the data limit (over budget).
    pub over_bytes: i64,
    /// Devices beyond what the plan allows (too many devices, MAC lock).
    pub over_devices: i64,
}

/// The device a session names, normalised as the MAC lock compares them.
fn mac(s: &LedgerSession) -> Option<String> {
    let m = s.calling_station_id.as_deref()?.trim();
    (!m.is_empty()).then(|| m.to_ascii_uppercase().replace('-', ":"))
}

fn reference(s: &LedgerSession) -> SessionRef {
    SessionRef {
        site_id: s.site_id.clone(),
        session_id: s.session_id.clone(),
        nas_identifier: s.nas_identifier.clone(),
        started_at: s.first_at,
        last_at: s.last_at,
        mac: mac(s),
        secs: s.secs.max(0),
        bytes: s.bytes.max(0),
    }
}

fn conflict(kind: ConflictKind, involved: &[&LedgerSession]) -> Conflict {
    let mut sessions: Vec<SessionRef> = involved.iter().map(|s| reference(s)).collect();
    sessions.sort_by(|a, b| {
        (a.started_at, &a.site_id, &a.session_id, &a.nas_identifier).cmp(&(
            b.started_at,
            &b.site_id,
            &b.session_id,
            &b.nas_identifier,
        ))
    });
    sessions.dedup();
    let sites: BTreeSet<&str> = sessions.iter().map(|s| s.site_id.as_str()).collect();
    Conflict {
        kind,
        sites: sites.into_iter().map(str::to_string).collect(),
        sessions,
        over_secs: 0,
        over_bytes: 0,
        over_devices: 0,
    }
}

/// The conflicts `sessions` show at `now` for a plan allowing `allow` and reporting every
/// `interim_secs`, at most one of each kind, in [`ConflictKind`] order. An open session
/// heard of within the stale window lasts until `now`; one silent longer ended at its last
/// record, as the online list counts it.
pub fn detect(
    allow: &Allowance,
    sessions: &[LedgerSession],
    interim_secs: i64,
    now: i64,
) -> Vec<Conflict> {
    let mut out = Vec::new();
    if let Some(c) = over_budget(allow, sessions) {
        out.push(c);
    }
    if let Some(c) = too_many_devices(allow, sessions, interim_secs, now) {
        out.push(c);
    }
    if let Some(c) = mac_lock(allow, sessions) {
        out.push(c);
    }
    out
}

fn over_budget(allow: &Allowance, sessions: &[LedgerSession]) -> Option<Conflict> {
    let over = |limit: Option<i64>, of: fn(&LedgerSession) -> i64| -> (i64, Vec<&LedgerSession>) {
        let Some(limit) = limit else {
            return (0, Vec::new());
        };
        let using: Vec<&LedgerSession> = sessions.iter().filter(|s| of(s) > 0).collect();
        let total = using.iter().fold(0i64, |t, s| t.saturating_add(of(s)));
        let sites: BTreeSet<&str> = using.iter().map(|s| s.site_id.as_str()).collect();
        if total > limit && sites.len() > 1 {
            (total - limit, using)
        } else {
            (0, Vec::new())
        }
    };
    let (over_secs, by_time) = over(allow.time_secs, |s| s.secs.max(0));
    let (over_bytes, by_data) = over(allow.data_bytes, |s| s.bytes.max(0));
    if over_secs == 0 && over_bytes == 0 {
        return None;
    }
    let involved: Vec<&LedgerSession> = by_time.into_iter().chain(by_data).collect();
    Some(Conflict {
        over_secs,
        over_bytes,
        ..conflict(ConflictKind::OverBudget, &involved)
    })
}

fn too_many_devices(
    allow: &Allowance,
    sessions: &[LedgerSession],
    interim_secs: i64,
    now: i64,
) -> Option<Conflict> {
    let window = (interim_secs as f64 * STALE_INTERIMS * 1000.0) as i64;
    let end = |s: &LedgerSession| {
        if !s.stopped && now - s.last_at < window {
            s.last_at.max(now)
        } else {
            s.last_at
        }
    };
    // The most sessions at once is reached at some session's start; a session ending as
    // another starts does not overlap it. One sweep by start keeps the sessions still open
    // (a voucher's sessions are many over a month, but few at once).
    let mut by_start: Vec<&LedgerSession> = sessions.iter().collect();
    by_start.sort_by_key(|s| s.first_at);
    let mut open: Vec<&LedgerSession> = Vec::new();
    let mut worst: Option<Vec<&LedgerSession>> = None;
    let mut i = 0;
    // Earliest first, so of equally bad instants the first is reported whatever the order.
    while i < by_start.len() {
        let at = by_start[i].first_at;
        while i < by_start.len() && by_start[i].first_at == at {
            open.push(by_start[i]);
            i += 1;
        }
        open.retain(|s| at < end(s));
        let sites: BTreeSet<&str> = open.iter().map(|s| s.site_id.as_str()).collect();
        if open.len() as i64 > allow.shared_users.max(1)
            && sites.len() > 1
            && worst.as_ref().is_none_or(|w| open.len() > w.len())
        {
            worst = Some(open.clone());
        }
    }
    let worst = worst?;
    Some(Conflict {
        over_devices: worst.len() as i64 - allow.shared_users.max(1),
        ..conflict(ConflictKind::TooManyDevices, &worst)
    })
}

fn mac_lock(allow: &Allowance, sessions: &[LedgerSession]) -> Option<Conflict> {
    if !allow.mac_lock {
        return None;
    }
    let named: Vec<(&LedgerSession, String)> = sessions
        .iter()
        .filter_map(|s| mac(s).map(|m| (s, m)))
        .collect();
    let devices: BTreeSet<&str> = named.iter().map(|(_, m)| m.as_str()).collect();
    if devices.len() < 2 {
        return None;
    }
    let involved: Vec<&LedgerSession> = named.iter().map(|(s, _)| *s).collect();
    Some(Conflict {
        over_devices: devices.len() as i64 - 1,
        ..conflict(ConflictKind::MacLock, &involved)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const T0: i64 = 1_780_000_000_000;
    const INTERIM: i64 = 60;

    fn session(site: &str, id: &str, from_s: i64, to_s: i64, stopped: bool) -> LedgerSession {
        LedgerSession {
            site_id: site.into(),
            session_id: id.into(),
            nas_identifier: format!("{site}-nas"),
            first_at: T0 + from_s * 1000,
            last_at: T0 + to_s * 1000,
            stopped,
            secs: to_s - from_s,
            bytes: (to_s - from_s) * 1000,
            calling_station_id: None,
        }
    }

    fn allow(time: Option<i64>, shared: i64) -> Allowance {
        Allowance {
            time_secs: time,
            data_bytes: None,
            shared_users: shared,
            mac_lock: false,
        }
    }

    #[test]
    fn a_voucher_used_offline_at_two_sites_is_over_by_the_sum() {
        // 72 hours apart from the controller, each site gave the 300 s voucher 200 s.
        let sessions = [
            session("north", "n1", 0, 200, true),
            session("south", "s1", 3600, 3800, true),
        ];
        let found = detect(
            &allow(Some(300), 1),
            &sessions,
            INTERIM,
            T0 + 72 * 3_600_000,
        );
        assert_eq!(found.len(), 1, "{found:?}");
        let c = &found[0];
        assert_eq!(c.kind, ConflictKind::OverBudget);
        assert_eq!(c.sites, ["north", "south"]);
        assert_eq!(c.over_secs, 100);
        assert_eq!(c.over_bytes, 0, "no data limit");
        assert_eq!(
            c.sessions
                .iter()
                .map(|s| s.session_id.as_str())
                .collect::<Vec<_>>(),
            ["n1", "s1"]
        );
    }

    #[test]
    fn one_site_over_its_limit_is_exhaustion_not_a_conflict() {
        let sessions = [
            session("north", "n1", 0, 250, true),
            session("north", "n2", 300, 400, true),
        ];
        assert!(detect(&allow(Some(300), 1), &sessions, INTERIM, T0 + 1_000_000).is_empty());
    }

    #[test]
    fn overlapping_sessions_at_two_sites_are_too_many_devices() {
        let sessions = [
            session("north", "n1", 0, 100, true),
            session("south", "s1", 50, 150, true),
            // Starts as n1 ends: it overlaps s1 only.
            session("north", "n2", 100, 120, true),
        ];
        let found = detect(&allow(None, 1), &sessions, INTERIM, T0 + 1_000_000);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].kind, ConflictKind::TooManyDevices);
        assert_eq!(found[0].over_devices, 1);
        assert_eq!(found[0].sites, ["north", "south"]);
        // Two at once are what two shared users allow.
        assert!(detect(&allow(None, 2), &sessions, INTERIM, T0 + 1_000_000).is_empty());
    }

    #[test]
    fn an_open_session_lasts_until_now_while_it_is_heard_of() {
        let open = session("north", "n1", 0, 10, false);
        let later = session("south", "s1", 100, 110, true);
        let now = T0 + 111_000;
        let found = detect(
            &allow(None, 1),
            &[open.clone(), later.clone()],
            INTERIM,
            now,
        );
        assert_eq!(found.len(), 1, "{found:?}");
        // Silent for longer than the stale window: it ended at its last record.
        let now = T0 + 10_000 + INTERIM * 2_500;
        assert!(detect(&allow(None, 1), &[open, later], INTERIM, now).is_empty());
    }

    #[test]
    fn a_mac_locked_voucher_used_by_two_devices() {
        let mut a = session("north", "n1", 0, 10, true);
        a.calling_station_id = Some("aa-bb-cc-00-00-01".into());
        let mut b = session("south", "s1", 20, 30, true);
        b.calling_station_id = Some("AA:BB:CC:00:00:02".into());
        let mut c = session("south", "s2", 40, 50, true);
        c.calling_station_id = Some("AA:BB:CC:00:00:01".into());
        let locked = Allowance {
            mac_lock: true,
            ..allow(None, 1)
        };
        let found = detect(&locked, &[a.clone(), b.clone(), c.clone()], INTERIM, T0);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].kind, ConflictKind::MacLock);
        assert_eq!(found[0].over_devices, 1);
        assert_eq!(
            found[0].sessions[0].mac.as_deref(),
            Some("AA:BB:CC:00:00:01")
        );
        assert!(detect(&allow(None, 1), &[a, b, c], INTERIM, T0).is_empty());
    }

    fn sessions() -> impl Strategy<Value = Vec<LedgerSession>> {
        proptest::collection::vec(
            (
                0usize..3,
                0i64..1_000,
                0i64..400,
                any::<bool>(),
                proptest::option::of(0usize..3),
            ),
            0..8,
        )
        .prop_map(|v| {
            v.into_iter()
                .enumerate()
                .map(|(i, (site, from, len, stopped, mac))| {
                    let mut s = session(
                        ["a", "b", "c"][site],
                        &format!("x{i}"),
                        from,
                        from + len,
                        stopped,
                    );
                    s.calling_station_id = mac.map(|m| format!("aa:bb:cc:00:00:0{m}"));
                    s
                })
                .collect()
        })
    }

    fn allowance() -> impl Strategy<Value = Allowance> {
        (
            proptest::option::of(1i64..1_500),
            proptest::option::of(1i64..1_500_000),
            1i64..4,
            any::<bool>(),
        )
            .prop_map(
                |(time_secs, data_bytes, shared_users, mac_lock)| Allowance {
                    time_secs,
                    data_bytes,
                    shared_users,
                    mac_lock,
                },
            )
    }

    proptest! {
        #[test]
        fn one_site_alone_never_conflicts_but_by_devices(
            a in allowance(), mut s in sessions(), now in T0..T0 + 2_000_000,
        ) {
            for x in &mut s {
                x.site_id = "a".into();
            }
            for c in detect(&a, &s, INTERIM, now) {
                prop_assert_eq!(c.kind, ConflictKind::MacLock);
            }
        }

        #[test]
        fn over_budget_is_exactly_the_fleet_total_past_the_limit(
            a in allowance(), s in sessions(), now in T0..T0 + 2_000_000,
        ) {
            let found = detect(&a, &s, INTERIM, now);
            let c = found.iter().find(|c| c.kind == ConflictKind::OverBudget);
            let total: i64 = s.iter().map(|x| x.secs).sum();
            let sites: BTreeSet<&str> =
                s.iter().filter(|x| x.secs > 0).map(|x| x.site_id.as_str()).collect();
            let want = a.time_secs.filter(|l| total > *l && sites.len() > 1).map(|l| total - l);
            prop_assert_eq!(c.map(|c| c.over_secs).filter(|o| *o > 0), want);
            if let Some(c) = c {
                prop_assert!(c.sites.len() > 1);
                prop_assert!(c.over_secs > 0 || c.over_bytes > 0);
            }
        }

        #[test]
        fn too_many_devices_lists_sessions_open_together(
            a in allowance(), s in sessions(), now in T0..T0 + 2_000_000,
        ) {
            for c in detect(&a, &s, INTERIM, now) {
                if c.kind != ConflictKind::TooManyDevices {
                    continue;
                }
                prop_assert!(c.sites.len() > 1);
                prop_assert_eq!(c.sessions.len() as i64, a.shared_users + c.over_devices);
                prop_assert!(c.over_devices > 0);
                // The latest start among them is an instant they all cover.
                let at = c.sessions.iter().map(|x| x.started_at).max().unwrap();
                for x in &c.sessions {
                    prop_assert!(x.started_at <= at);
                }
            }
        }

        #[test]
        fn the_worst_instant_is_the_most_sessions_open_at_any_start(
            a in allowance(), s in sessions(), now in T0..T0 + 2_000_000,
        ) {
            // Brute force over every start: the most sessions covering it, from 2+ sites.
            let window = (INTERIM as f64 * STALE_INTERIMS * 1000.0) as i64;
            let end = |x: &LedgerSession| {
                if !x.stopped && now - x.last_at < window { x.last_at.max(now) } else { x.last_at }
            };
            let most = s
                .iter()
                .map(|at| {
                    let open: Vec<&LedgerSession> =
                        s.iter().filter(|x| x.first_at <= at.first_at && at.first_at < end(x)).collect();
                    let sites: BTreeSet<&str> = open.iter().map(|x| x.site_id.as_str()).collect();
                    if sites.len() > 1 { open.len() as i64 } else { 0 }
                })
                .filter(|n| *n > a.shared_users)
                .max();
            let found = detect(&a, &s, INTERIM, now)
                .into_iter()
                .find(|c| c.kind == ConflictKind::TooManyDevices)
                .map(|c| c.over_devices + a.shared_users);
            prop_assert_eq!(found, most);
        }

        #[test]
        fn sessions_one_after_another_never_overlap(
            a in allowance(), n in 0usize..6, now in T0..T0 + 2_000_000,
        ) {
            let s: Vec<LedgerSession> = (0..n)
                .map(|i| session(["a", "b"][i % 2], &format!("x{i}"), i as i64 * 100, i as i64 * 100 + 100, true))
                .collect();
            prop_assert!(detect(&a, &s, INTERIM, now).iter().all(|c| c.kind != ConflictKind::TooManyDevices));
        }

        #[test]
        fn the_order_records_arrive_in_does_not_matter(
            a in allowance(), s in sessions(), now in T0..T0 + 2_000_000,
        ) {
            let mut reversed = s.clone();
            reversed.reverse();
            prop_assert_eq!(detect(&a, &s, INTERIM, now), detect(&a, &reversed, INTERIM, now));
        }

        #[test]
        fn one_device_never_breaks_the_mac_lock(
            a in allowance(), mut s in sessions(), now in T0..T0 + 2_000_000,
        ) {
            for x in &mut s {
                x.calling_station_id = Some("AA:BB:CC:00:00:09".into());
            }
            prop_assert!(detect(&a, &s, INTERIM, now).iter().all(|c| c.kind != ConflictKind::MacLock));
        }
    }
}
