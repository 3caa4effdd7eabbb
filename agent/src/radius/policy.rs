//! The access decision: one pure function from a cached account, its plan, its local usage
//! and its open sessions to an accept with limits or a reject with a reason. No I/O, no
//! clock reads: everything it needs comes in as arguments, so it is tested exhaustively.

use mikrobill_protocol::items::{AccountStatus, Plan, User, Voucher, VoucherStatus};

/// Address list and router group an isolated (overdue) account is put in.
pub const ISOLATION_PROFILE: &str = "isolir";

/// The account a login names, as cached.
#[derive(Debug, Clone, Copy)]
pub enum Account<'a> {
    /// A hotspot voucher.
    Voucher(&'a Voucher),
    /// A named account.
    User(&'a User),
}

impl Account<'_> {
    /// The secret the credentials are checked against.
    pub fn password(&self) -> &str {
        match self {
            Account::Voucher(v) => v.password.as_deref().unwrap_or(&v.code),
            Account::User(u) => &u.password,
        }
    }

    /// The plan id.
    pub fn plan_id(&self) -> &str {
        match self {
            Account::Voucher(v) => &v.plan_id,
            Account::User(u) => &u.plan_id,
        }
    }
}

/// What an account has used: this site's table, and for a voucher the other sites' use as
/// last synced on top of it (`fleet::usage`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// First use seen here (UTC ms).
    pub activated_at_ms: Option<i64>,
    /// Online seconds used (closed and open sessions).
    pub time_secs: u64,
    /// Octets used, both directions (closed and open sessions).
    pub bytes: u64,
}

/// What a login is for, as the request tells (RouterOS's PPP sends Framed-Protocol = PPP).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    /// The hotspot's login page (vouchers and hotspot users).
    Hotspot,
    /// A PPP dialer (PPPoE subscribers).
    Ppp,
}

/// Why a login was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RejectReason {
    /// No such voucher or user in the cache.
    UnknownAccount,
    /// Wrong password or response.
    BadCredentials,
    /// The plan the account names is not cached.
    PlanMissing,
    /// Voucher revoked or withdrawn.
    Revoked,
    /// Validity window over.
    Expired,
    /// Time limit used up.
    TimeExhausted,
    /// Data limit used up.
    DataExhausted,
    /// Account suspended.
    Suspended,
    /// All allowed concurrent sessions are in use.
    TooManySessions {
        /// The limit.
        limit: u32,
    },
    /// A MAC-locked voucher asked for from another device than the one it is bound to.
    MacLocked,
}

impl RejectReason {
    /// Short stable name for logs and metrics.
    pub fn code(&self) -> &'static str {
        match self {
            RejectReason::UnknownAccount => "unknown_account",
            RejectReason::BadCredentials => "bad_credentials",
            RejectReason::PlanMissing => "plan_missing",
            RejectReason::Revoked => "revoked",
            RejectReason::Expired => "expired",
            RejectReason::TimeExhausted => "time_exhausted",
            RejectReason::DataExhausted => "data_exhausted",
            RejectReason::Suspended => "suspended",
            RejectReason::TooManySessions { .. } => "too_many_sessions",
            RejectReason::MacLocked => "mac_locked",
        }
    }

    /// Text for the subscriber (Reply-Message), in the terms of the service they log in to:
    /// a voucher on the hotspot's login page, a user name in a PPPoE dialer's error.
    pub fn message(&self, service: Service) -> String {
        match self {
            RejectReason::UnknownAccount | RejectReason::BadCredentials => match service {
                Service::Hotspot => "Invalid voucher code or password".into(),
                Service::Ppp => "Wrong PPPoE user name or password".into(),
            },
            RejectReason::PlanMissing => "Account not available at this site yet".into(),
            RejectReason::Revoked => "This voucher is no longer valid".into(),
            RejectReason::Expired => "This voucher has expired".into(),
            RejectReason::TimeExhausted => "Time limit used up".into(),
            RejectReason::DataExhausted => "Data quota used up".into(),
            RejectReason::Suspended => "Account suspended, please contact your provider".into(),
            RejectReason::TooManySessions { limit } => {
                format!("Already logged in on {limit} device(s)")
            }
            RejectReason::MacLocked => "This voucher is locked to another device".into(),
        }
    }
}

/// What an accepted login gets.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Grant {
    /// Session-Timeout: seconds left (time limit and validity window).
    pub session_timeout_secs: Option<u64>,
    /// Mikrotik-Total-Limit: bytes left.
    pub total_limit_bytes: Option<u64>,
    /// Mikrotik-Rate-Limit.
    pub rate_limit: Option<String>,
    /// Acct-Interim-Interval.
    pub interim_interval_secs: Option<u32>,
    /// Mikrotik-Group.
    pub router_group: Option<String>,
    /// Mikrotik-Address-List.
    pub address_list: Option<String>,
    /// Port-Limit (shared users).
    pub port_limit: u32,
    /// Framed-IP-Address.
    pub framed_ip: Option<std::net::Ipv4Addr>,
    /// This login is the voucher's first use: record the activation.
    pub activates: bool,
    /// The account is isolated: [`isolated_rate_limit`] decides its speed.
    pub isolated: bool,
    /// The account's data limit is used and its plan's fair-usage rate applies.
    pub throttled: bool,
}

/// The Rate-Limit of an isolated session: the operator's isolation speed when one is set
/// (a Rate-Limit attribute overrides the isolir profile's, so the plan's would keep the
/// subscriber at full speed), else the plan's as before.
pub fn isolated_rate_limit(
    plan_rate: Option<String>,
    isolation_rate: Option<&str>,
) -> Option<String> {
    isolation_rate.map(str::to_string).or(plan_rate)
}

/// Decides a login whose credentials were already verified.
pub fn decide(
    account: Account<'_>,
    plan: Option<&Plan>,
    usage: &Usage,
    open_sessions: u32,
    now_ms: i64,
) -> Result<Grant, RejectReason> {
    let plan = plan.ok_or(RejectReason::PlanMissing)?;
    let mut grant = Grant {
        rate_limit: plan.rate_limit.clone(),
        interim_interval_secs: plan.interim_interval_secs,
        router_group: plan.router_group.clone(),
        address_list: plan.address_list.clone(),
        port_limit: plan.shared_users.max(1),
        ..Grant::default()
    };
    // What the controller already accounted (all sites) or the fleet-wide use the caller
    // worked out (`fleet::usage`), whichever is more: never less than either, so a quota
    // cannot be reset by a stale cache.
    let (used_time, used_bytes, activated_at) = match account {
        Account::Voucher(v) => {
            match v.status {
                VoucherStatus::Revoked => return Err(RejectReason::Revoked),
                VoucherStatus::Expired => return Err(RejectReason::Expired),
                // Used up at the controller (the fleet's total): say which limit, as a local
                // decision below would.
                VoucherStatus::Exhausted => {
                    let bytes = v.used_bytes.max(usage.bytes);
                    let data = plan.fup_rate_limit.is_none()
                        && plan.data_limit_bytes.is_some_and(|l| bytes >= l);
                    return Err(if data {
                        RejectReason::DataExhausted
                    } else {
                        RejectReason::TimeExhausted
                    });
                }
                VoucherStatus::New | VoucherStatus::Sold | VoucherStatus::Active => {}
            }
            let activated = match (v.activated_at_ms, usage.activated_at_ms) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            (
                v.used_time_secs.max(usage.time_secs),
                v.used_bytes.max(usage.bytes),
                activated,
            )
        }
        Account::User(u) => {
            match u.status {
                AccountStatus::Suspended => return Err(RejectReason::Suspended),
                AccountStatus::Isolated => {
                    grant.router_group = Some(ISOLATION_PROFILE.into());
                    grant.address_list = Some(ISOLATION_PROFILE.into());
                    grant.isolated = true;
                }
                AccountStatus::Active => {}
            }
            grant.framed_ip = u.static_ip;
            (usage.time_secs, usage.bytes, usage.activated_at_ms)
        }
    };

    let mut timeout: Option<u64> = None;
    if let Some(validity) = plan.validity_secs {
        let start = activated_at.unwrap_or(now_ms);
        let end = start.saturating_add((validity.min(i64::MAX as u64 / 1000) * 1000) as i64);
        if now_ms >= end {
            return Err(RejectReason::Expired);
        }
        timeout = Some(((end - now_ms) as u64).div_ceil(1000));
    }
    if let Some(limit) = plan.time_limit_secs {
        let left = limit.saturating_sub(used_time);
        if left == 0 {
            return Err(RejectReason::TimeExhausted);
        }
        timeout = Some(timeout.map_or(left, |t| t.min(left)));
    }
    if let Some(limit) = plan.data_limit_bytes {
        let left = limit.saturating_sub(used_bytes);
        match &plan.fup_rate_limit {
            // Fair usage: the data limit slows the account down instead of ending it, so the
            // router gets no byte limit that would end the session there; the agent sends a
            // CoA when a running session reaches it.
            Some(fup) => {
                if left == 0 {
                    grant.rate_limit = Some(fup.clone());
                    grant.throttled = true;
                }
            }
            None if left == 0 => return Err(RejectReason::DataExhausted),
            None => grant.total_limit_bytes = Some(left),
        }
    }
    if open_sessions >= grant.port_limit {
        return Err(RejectReason::TooManySessions {
            limit: grant.port_limit,
        });
    }
    grant.session_timeout_secs = timeout;
    grant.activates = matches!(account, Account::Voucher(_)) && activated_at.is_none();
    Ok(grant)
}

/// Whether an account has used up its plan mid-session (time, or data without fair usage),
/// for disconnects.
pub fn exhausted(plan: &Plan, used_time_secs: u64, used_bytes: u64) -> Option<RejectReason> {
    if plan.time_limit_secs.is_some_and(|l| used_time_secs >= l) {
        return Some(RejectReason::TimeExhausted);
    }
    if plan.fup_rate_limit.is_none() && plan.data_limit_bytes.is_some_and(|l| used_bytes >= l) {
        return Some(RejectReason::DataExhausted);
    }
    None
}

/// The fair-usage rate a running session of an account that used `used_bytes` must be
/// slowed to: its plan's, once the data limit is reached; `None` otherwise.
pub fn fair_usage_rate(plan: &Plan, used_bytes: u64) -> Option<&str> {
    let limit = plan.data_limit_bytes?;
    plan.fup_rate_limit
        .as_deref()
        .filter(|_| used_bytes >= limit)
}

/// How long an open session may stay silent before it no longer holds a shared-users seat:
/// two missed interim updates and a minute for the network. A session that ended without a
/// Stop (power cut at the CPE) frees its seat this soon instead of after half an hour.
pub fn stale_after_ms(interim_secs: u32) -> i64 {
    2 * i64::from(interim_secs) * 1000 + 60_000
}

/// What a session got at login that RouterOS cannot change mid-session: a CoA-Request can
/// set Mikrotik-Group, Rate-Limit, Session-Timeout and the like, but not Mikrotik-Address-List
/// or Mikrotik-Total-Limit. Kept per account when a login is accepted.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FixedAtLogin {
    /// Mikrotik-Address-List.
    pub address_list: Option<String>,
    /// Whether a Mikrotik-Total-Limit (data cap) was set.
    pub total_limit: bool,
}

impl FixedAtLogin {
    /// What `grant` fixes for the session it opens.
    pub fn of(grant: &Grant) -> FixedAtLogin {
        FixedAtLogin {
            address_list: grant.address_list.clone(),
            total_limit: grant.total_limit_bytes.is_some(),
        }
    }
}

/// Whether running sessions that logged in with `before` (unknown for a session that began
/// before the agent kept it) can take `after` by CoA; otherwise they must be disconnected
/// so that their next login gets it. A data cap is never changed by CoA, even to the same
/// plan's: what is left of it is counted from the login.
pub fn coa_can_apply(before: Option<&FixedAtLogin>, after: &Grant) -> bool {
    let after = FixedAtLogin::of(after);
    if after.total_limit {
        return false;
    }
    match before {
        Some(before) => *before == after,
        None => after == FixedAtLogin::default(),
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    fn grant_with(list: Option<&str>, cap: Option<u64>) -> Grant {
        Grant {
            rate_limit: Some("5M/10M".into()),
            address_list: list.map(str::to_string),
            total_limit_bytes: cap,
            ..Grant::default()
        }
    }

    #[test]
    fn silent_sessions_free_their_seat_after_two_missed_updates() {
        assert_eq!(stale_after_ms(300), 660_000);
        assert_eq!(stale_after_ms(60), 180_000);
        assert!(stale_after_ms(u32::MAX) > 0);
    }

    #[test]
    fn coa_carries_only_what_routeros_changes_mid_session() {
        let plain = grant_with(None, None);
        assert!(coa_can_apply(None, &plain));
        assert!(coa_can_apply(Some(&FixedAtLogin::default()), &plain));
        let listed = grant_with(Some("gold"), None);
        assert!(!coa_can_apply(None, &listed), "unknown login, new list");
        assert!(coa_can_apply(Some(&FixedAtLogin::of(&listed)), &listed));
        assert!(
            !coa_can_apply(Some(&FixedAtLogin::of(&listed)), &plain),
            "a list cannot be taken away by CoA"
        );
        let capped = grant_with(None, Some(1 << 30));
        assert!(!coa_can_apply(Some(&FixedAtLogin::of(&capped)), &capped));
        assert!(!coa_can_apply(None, &capped));
    }

    proptest! {
        #[test]
        fn a_coa_never_needs_a_list_or_cap_change(
            before_list in proptest::option::of("[a-c]"),
            before_cap: bool,
            after_list in proptest::option::of("[a-c]"),
            after_cap in proptest::option::of(0u64..10),
            known: bool,
        ) {
            let before = FixedAtLogin { address_list: before_list, total_limit: before_cap };
            let after = grant_with(after_list.as_deref(), after_cap);
            if coa_can_apply(known.then_some(&before), &after) {
                prop_assert!(after.total_limit_bytes.is_none());
                let now = FixedAtLogin::of(&after);
                if known {
                    prop_assert_eq!(before, now);
                } else {
                    prop_assert_eq!(now, FixedAtLogin::default());
                }
            }
        }
    }

    use super::*;

    const NOW: i64 = 1_800_000_000_000;

    fn plan() -> Plan {
        Plan {
            id: "p".into(),
            name: "Harian".into(),
            rate_limit: Some("2M/5M".into()),
            time_limit_secs: Some(3 * 3600),
            data_limit_bytes: Some(5_000_000_000),
            validity_secs: Some(86_400),
            shared_users: 1,
            interim_interval_secs: Some(300),
            router_group: None,
            address_list: None,
            mac_lock: false,
            fup_rate_limit: None,
        }
    }

    fn voucher() -> Voucher {
        Voucher {
            code: "ABC".into(),
            password: None,
            plan_id: "p".into(),
            status: VoucherStatus::Sold,
            activated_at_ms: None,
            used_time_secs: 0,
            used_bytes: 0,
            sites: Vec::new(),
            bound_mac: None,
        }
    }

    fn user(status: AccountStatus) -> User {
        User {
            username: "budi".into(),
            password: "x".into(),
            plan_id: "p".into(),
            status,
            static_ip: Some([10, 9, 0, 7].into()),
        }
    }

    #[test]
    fn first_use_of_a_voucher_activates_it_and_limits_by_the_smaller_window() {
        let g = decide(
            Account::Voucher(&voucher()),
            Some(&plan()),
            &Usage::default(),
            0,
            NOW,
        )
        .unwrap();
        assert!(g.activates);
        assert_eq!(
            g.session_timeout_secs,
            Some(3 * 3600),
            "time limit is shorter than validity"
        );
        assert_eq!(g.total_limit_bytes, Some(5_000_000_000));
        assert_eq!(g.rate_limit.as_deref(), Some("2M/5M"));
        assert_eq!(g.port_limit, 1);
    }

    #[test]
    fn a_voucher_the_controller_used_up_is_refused_for_the_limit_it_reached() {
        let spent = |used_time_secs, used_bytes| Voucher {
            status: VoucherStatus::Exhausted,
            used_time_secs,
            used_bytes,
            ..voucher()
        };
        let decide_for = |v: &Voucher| {
            decide(
                Account::Voucher(v),
                Some(&plan()),
                &Usage::default(),
                0,
                NOW,
            )
        };
        assert_eq!(
            decide_for(&spent(60, 5_000_000_000)),
            Err(RejectReason::DataExhausted)
        );
        assert_eq!(
            decide_for(&spent(3 * 3600, 10)),
            Err(RejectReason::TimeExhausted)
        );
    }

    #[test]
    fn validity_counts_from_activation() {
        let usage = Usage {
            activated_at_ms: Some(NOW - 86_400_000 + 600_000),
            time_secs: 60,
            bytes: 0,
        };
        let g = decide(Account::Voucher(&voucher()), Some(&plan()), &usage, 0, NOW).unwrap();
        assert!(!g.activates);
        assert_eq!(
            g.session_timeout_secs,
            Some(600),
            "ten minutes of validity left"
        );
        let usage = Usage {
            activated_at_ms: Some(NOW - 86_400_000),
            ..usage
        };
        assert_eq!(
            decide(Account::Voucher(&voucher()), Some(&plan()), &usage, 0, NOW),
            Err(RejectReason::Expired)
        );
        // The controller's activation time counts too (first use at another site).
        let v = Voucher {
            activated_at_ms: Some(NOW - 90_000_000),
            ..voucher()
        };
        assert_eq!(
            decide(
                Account::Voucher(&v),
                Some(&plan()),
                &Usage::default(),
                0,
                NOW
            ),
            Err(RejectReason::Expired)
        );
    }

    #[test]
    fn limits_use_the_larger_of_local_and_controller_usage() {
        let v = Voucher {
            used_time_secs: 3 * 3600 - 30,
            ..voucher()
        };
        let g = decide(
            Account::Voucher(&v),
            Some(&plan()),
            &Usage {
                time_secs: 10,
                ..Usage::default()
            },
            0,
            NOW,
        )
        .unwrap();
        assert_eq!(g.session_timeout_secs, Some(30));
        let usage = Usage {
            bytes: 5_000_000_000,
            ..Usage::default()
        };
        assert_eq!(
            decide(Account::Voucher(&voucher()), Some(&plan()), &usage, 0, NOW),
            Err(RejectReason::DataExhausted)
        );
        let usage = Usage {
            time_secs: 3 * 3600,
            ..Usage::default()
        };
        assert_eq!(
            decide(Account::Voucher(&voucher()), Some(&plan()), &usage, 0, NOW),
            Err(RejectReason::TimeExhausted)
        );
    }

    #[test]
    fn statuses_and_shared_users() {
        for (status, reason) in [
            (VoucherStatus::Revoked, RejectReason::Revoked),
            (VoucherStatus::Expired, RejectReason::Expired),
            (VoucherStatus::Exhausted, RejectReason::TimeExhausted),
        ] {
            let v = Voucher {
                status,
                ..voucher()
            };
            assert_eq!(
                decide(
                    Account::Voucher(&v),
                    Some(&plan()),
                    &Usage::default(),
                    0,
                    NOW
                ),
                Err(reason)
            );
        }
        assert_eq!(
            decide(
                Account::Voucher(&voucher()),
                Some(&plan()),
                &Usage::default(),
                1,
                NOW
            ),
            Err(RejectReason::TooManySessions { limit: 1 })
        );
        let shared = Plan {
            shared_users: 3,
            ..plan()
        };
        assert_eq!(
            decide(
                Account::Voucher(&voucher()),
                Some(&shared),
                &Usage::default(),
                2,
                NOW
            )
            .unwrap()
            .port_limit,
            3
        );
        assert_eq!(
            decide(
                Account::Voucher(&voucher()),
                None,
                &Usage::default(),
                0,
                NOW
            ),
            Err(RejectReason::PlanMissing)
        );
    }

    #[test]
    fn users_get_static_ip_and_isolation() {
        let monthly = Plan {
            time_limit_secs: None,
            data_limit_bytes: None,
            validity_secs: None,
            ..plan()
        };
        let g = decide(
            Account::User(&user(AccountStatus::Active)),
            Some(&monthly),
            &Usage::default(),
            0,
            NOW,
        )
        .unwrap();
        assert_eq!(g.framed_ip, Some([10, 9, 0, 7].into()));
        assert_eq!(g.session_timeout_secs, None);
        assert!(!g.activates);
        let g = decide(
            Account::User(&user(AccountStatus::Isolated)),
            Some(&monthly),
            &Usage::default(),
            0,
            NOW,
        )
        .unwrap();
        assert_eq!(g.address_list.as_deref(), Some(ISOLATION_PROFILE));
        assert_eq!(g.router_group.as_deref(), Some(ISOLATION_PROFILE));
        assert!(g.isolated);
        assert_eq!(
            isolated_rate_limit(g.rate_limit.clone(), Some("64k/64k")).as_deref(),
            Some("64k/64k")
        );
        assert_eq!(
            isolated_rate_limit(g.rate_limit.clone(), None),
            g.rate_limit
        );
        assert_eq!(
            decide(
                Account::User(&user(AccountStatus::Suspended)),
                Some(&monthly),
                &Usage::default(),
                0,
                NOW
            ),
            Err(RejectReason::Suspended)
        );
    }

    fn fup_plan() -> Plan {
        Plan {
            fup_rate_limit: Some("256k/512k".into()),
            ..plan()
        }
    }

    #[test]
    fn fair_usage_slows_a_login_past_the_data_limit_instead_of_refusing_it() {
        let usage = Usage {
            bytes: 5_000_000_000,
            ..Usage::default()
        };
        let g = decide(
            Account::Voucher(&voucher()),
            Some(&fup_plan()),
            &usage,
            0,
            NOW,
        )
        .unwrap();
        assert_eq!(g.rate_limit.as_deref(), Some("256k/512k"));
        assert!(g.throttled);
        assert_eq!(g.total_limit_bytes, None);
        assert_eq!(g.session_timeout_secs, Some(3 * 3600), "time still limits");
        // Below the limit: the full rate, and no byte limit the router would cut at.
        let g = decide(
            Account::Voucher(&voucher()),
            Some(&fup_plan()),
            &Usage::default(),
            0,
            NOW,
        )
        .unwrap();
        assert_eq!(g.rate_limit.as_deref(), Some("2M/5M"));
        assert!(!g.throttled);
        assert_eq!(g.total_limit_bytes, None);
        // Time still exhausts it.
        let spent = Usage {
            time_secs: 3 * 3600,
            bytes: 6_000_000_000,
            ..Usage::default()
        };
        assert_eq!(
            decide(
                Account::Voucher(&voucher()),
                Some(&fup_plan()),
                &spent,
                0,
                NOW
            ),
            Err(RejectReason::TimeExhausted)
        );
        assert_eq!(exhausted(&fup_plan(), 0, 6_000_000_000), None);
        assert_eq!(
            fair_usage_rate(&fup_plan(), 6_000_000_000),
            Some("256k/512k")
        );
        assert_eq!(fair_usage_rate(&fup_plan(), 4_999_999_999), None);
        assert_eq!(fair_usage_rate(&plan(), 6_000_000_000), None);
    }

    proptest! {
        #[test]
        fn fair_usage_changes_only_what_the_data_limit_did(
            time_limit in proptest::option::of(1u64..10_000),
            data_limit in 1u64..10_000_000,
            validity in proptest::option::of(1u64..100_000),
            used_secs in 0u64..20_000,
            used_bytes in 0u64..20_000_000,
            activated_ago_ms in proptest::option::of(0i64..200_000_000),
            open in 0u32..3,
            shared in 1u32..3,
        ) {
            let base = Plan {
                time_limit_secs: time_limit,
                data_limit_bytes: Some(data_limit),
                validity_secs: validity,
                shared_users: shared,
                ..plan()
            };
            let fup = Plan { fup_rate_limit: Some("64k/128k".into()), ..base.clone() };
            let unlimited = Plan { data_limit_bytes: None, ..base.clone() };
            let usage = Usage {
                activated_at_ms: activated_ago_ms.map(|a| NOW - a),
                time_secs: used_secs,
                bytes: used_bytes,
            };
            let v = voucher();
            let with_fup = decide(Account::Voucher(&v), Some(&fup), &usage, open, NOW);
            let without = decide(Account::Voucher(&v), Some(&base), &usage, open, NOW);
            let no_data = decide(Account::Voucher(&v), Some(&unlimited), &usage, open, NOW);
            let reached = used_bytes >= data_limit;
            // Under fair usage data never refuses: time, validity and seats decide as if
            // there were no data limit at all, with the same timeout.
            prop_assert_eq!(with_fup.as_ref().err(), no_data.as_ref().err());
            prop_assert_ne!(with_fup.as_ref().err(), Some(&RejectReason::DataExhausted));
            if let (Ok(g), Ok(n)) = (&with_fup, &no_data) {
                prop_assert_eq!(g.session_timeout_secs, n.session_timeout_secs);
                prop_assert_eq!(g.total_limit_bytes, None);
                prop_assert_eq!(g.throttled, reached);
                let rate = if reached { fup.fup_rate_limit.clone() } else { base.rate_limit.clone() };
                prop_assert_eq!(&g.rate_limit, &rate);
            }
            // Without it, reaching the data limit refuses, as before.
            if reached && no_data.is_ok() {
                prop_assert_eq!(without, Err(RejectReason::DataExhausted));
            }
            // Mid-session: never a data disconnect under fair usage, the rate instead.
            prop_assert_ne!(exhausted(&fup, used_secs, used_bytes), Some(RejectReason::DataExhausted));
            prop_assert_eq!(fair_usage_rate(&fup, used_bytes).is_some(), reached);
            prop_assert_eq!(fair_usage_rate(&base, used_bytes), None);
        }
    }

    #[test]
    fn mid_session_exhaustion() {
        assert_eq!(
            exhausted(&plan(), 3 * 3600, 0),
            Some(RejectReason::TimeExhausted)
        );
        assert_eq!(
            exhausted(&plan(), 0, 5_000_000_000),
            Some(RejectReason::DataExhausted)
        );
        assert_eq!(exhausted(&plan(), 10, 10), None);
    }
}
