//! What a router's own accounts become in MikroBill, decided purely from what the agent read
//! and `now`: hotspot users (Mikhmon's vouchers) → vouchers valid at the router's site, on a
//! hotspot plan per user profile and limits (`limit-uptime`, `limit-bytes-total`), carrying
//! the time and bytes already used so the remaining budget is the router's; PPP secrets → a
//! customer and a PPPoE subscription each, on a plan per PPP profile, billed from the next
//! month so nobody is invoiced for the past or isolated. Source ids are the router's `.id`s
//! (`import_sources.source` names the site). Entries that cannot be carried over are skipped
//! with their name, field and reason.

use super::phpnuxbill::{
    Mapped, NewCustomer, NewPlan, NewSubscription, NewVoucher, Problem, SiteRef, parse_amount, skip,
};
use super::report::{Kind, Source};
use crate::billing::cycle;
use crate::customers::CustomerInput;
use crate::plans::{PlanInput, PlanKind};
use mikrobill_protocol::inventory::{
    HotspotProfileEntry, HotspotUserEntry, PppSecretEntry, RouterAccounts,
};
use std::collections::{BTreeMap, BTreeSet};

/// Router menus, as report tables.
pub const HOTSPOT_USERS: &str = "/ip/hotspot/user";
/// Hotspot user profiles.
pub const HOTSPOT_PROFILES: &str = "/ip/hotspot/user/profile";
/// PPP secrets.
pub const PPP_SECRETS: &str = "/ppp/secret";
/// PPP profiles.
pub const PPP_PROFILES: &str = "/ppp/profile";

/// What the mapping needs besides the entries.
#[derive(Debug, Clone)]
pub struct Options {
    /// The current time (unix ms).
    pub now: i64,
    /// The site whose router was read.
    pub site_id: String,
    /// The operator's UTC offset in minutes (for the local date billing starts on).
    pub utc_offset_minutes: i32,
    /// Decimal places of the ledger's minor unit, for Mikhmon's prices.
    pub currency_exponent: u32,
}

/// An entry's problem: the router field at fault and why.
fn field(f: &'static str, why: impl Into<String>) -> Problem {
    (Some(f), why.into())
}

fn source(table: &'static str, id: &str, name: &str) -> Source {
    Source {
        table,
        id: id.to_string(),
        line: 0,
        name: Some(name.to_string()),
    }
}

/// A RouterOS duration as printed or typed: `3h`, `1d2h30m`, `1w`, `45s`, `00:30:00`,
/// `1d00:30:00`; `None` when it is none of these.
pub fn parse_duration(s: &str) -> Option<u64> {
    let s = s.trim();
    if s.is_empty() {
        return None;
    }
    let mut total: u64 = 0;
    let mut digits = String::new();
    let mut rest = s;
    while let Some(c) = rest.chars().next() {
        if c == ':' {
            // The rest is HH:MM:SS after any week/day units.
            let clock = format!("{digits}{rest}");
            let parts: Vec<&str> = clock.split(':').collect();
            let n = |p: &str| -> Option<u64> {
                if p.is_empty() || !p.chars().all(|c| c.is_ascii_digit()) {
                    return None;
                }
                p.parse().ok()
            };
            let [h, m, sec] = parts[..] else {
                return None;
            };
            let (h, m, sec) = (n(h)?, n(m)?, n(sec)?);
            if m >= 60 || sec >= 60 {
                return None;
            }
            return total.checked_add(h.checked_mul(3600)? + m * 60 + sec);
        }
        rest = &rest[c.len_utf8()..];
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        let unit = match c {
            'w' => 7 * 86_400,
            'd' => 86_400,
            'h' => 3600,
            'm' => 60,
            's' => 1,
            _ => return None,
        };
        if digits.is_empty() {
            return None;
        }
        let n: u64 = digits.parse().ok()?;
        total = total.checked_add(n.checked_mul(unit)?)?;
        digits.clear();
    }
    digits.is_empty().then_some(total)
}

/// A byte count as RouterOS prints it (`1073741824`) or an operator typed it (`1G`, `500M`,
/// `64k`, binary multiples).
pub fn parse_bytes(s: &str) -> Option<u64> {
    let s = s.trim();
    let (num, mult) = match s.chars().last()? {
        'k' | 'K' => (&s[..s.len() - 1], 1u64 << 10),
        'M' => (&s[..s.len() - 1], 1 << 20),
        'G' => (&s[..s.len() - 1], 1 << 30),
        'T' => (&s[..s.len() - 1], 1 << 40),
        _ => (s, 1),
    };
    if num.is_empty() || !num.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    num.parse::<u64>().ok()?.checked_mul(mult)
}

fn is_yes(v: Option<&str>) -> bool {
    matches!(v.map(str::trim), Some("true" | "yes"))
}

fn marked(comment: Option<&str>) -> bool {
    comment.is_some_and(|c| c.starts_with("mikrobill:"))
}

/// Mikhmon's terms of a profile, kept in its on-login script as
/// `:put (",rem,5000,1d,5000,,Disable,")` (mode, price, validity, selling price, lock).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MikhmonTerms {
    /// The price, minor units.
    pub price: Option<i64>,
    /// Validity after first use, seconds.
    pub validity_secs: Option<u64>,
    /// "Lock user": a voucher stays with the first device that uses it.
    pub lock: bool,
}

/// Reads [`MikhmonTerms`] from an on-login script; none when it holds none.
pub fn mikhmon_terms(on_login: &str, currency_exponent: u32) -> MikhmonTerms {
    let Some(start) = on_login.find(":put (\"") else {
        return MikhmonTerms::default();
    };
    let rest = &on_login[start + 7..];
    let Some(end) = rest.find('"') else {
        return MikhmonTerms::default();
    };
    let fields: Vec<&str> = rest[..end].split(',').collect();
    let price = fields
        .get(2)
        .and_then(|p| parse_amount(p, currency_exponent))
        .filter(|p| *p > 0);
    let validity_secs = fields.get(3).and_then(|v| parse_duration(v));
    let lock = fields.get(6).is_some_and(|l| l.trim() == "Enable");
    MikhmonTerms {
        price,
        validity_secs,
        lock,
    }
}

/// The limits that set a voucher's plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Limits {
    uptime_secs: Option<u64>,
    bytes: Option<u64>,
}

impl Limits {
    fn suffix(self) -> String {
        let mut parts = Vec::new();
        if let Some(s) = self.uptime_secs {
            parts.push(short_duration(s));
        }
        if let Some(b) = self.bytes {
            parts.push(short_bytes(b));
        }
        if parts.is_empty() {
            "no limit".into()
        } else {
            parts.join(" ")
        }
    }
}

/// `3h`, `1d12h`, `90s`: a plan name's suffix, as RouterOS writes durations.
fn short_duration(mut secs: u64) -> String {
    let mut out = String::new();
    for (unit, len) in [
        ("w", 7 * 86_400),
        ("d", 86_400),
        ("h", 3600),
        ("m", 60),
        ("s", 1),
    ] {
        if secs >= len {
            out.push_str(&format!("{}{unit}", secs / len));
            secs %= len;
        }
    }
    out
}

/// `1G`, `500M`, `1234`: a plan name's suffix, in the largest binary unit that divides it.
fn short_bytes(b: u64) -> String {
    for (unit, len) in [
        ("T", 1u64 << 40),
        ("G", 1 << 30),
        ("M", 1 << 20),
        ("k", 1 << 10),
    ] {
        if b >= len && b.is_multiple_of(len) {
            return format!("{}{unit}", b / len);
        }
    }
    b.to_string()
}

/// A hotspot user ready to become a voucher.
struct GoodUser<'a> {
    entry: &'a HotspotUserEntry,
    profile: &'a HotspotProfileEntry,
    limits: Limits,
    used: (u64, u64),
}

fn check_user<'a>(
    u: &'a HotspotUserEntry,
    profiles: &BTreeMap<&str, &'a HotspotProfileEntry>,
) -> Result<GoodUser<'a>, Problem> {
    if marked(u.comment.as_deref()) {
        return Err(field("comment", "MikroBill already manages this entry"));
    }
    if is_yes(u.disabled.as_deref()) {
        return Err(field("disabled", "the entry is disabled on the router"));
    }
    if !crate::vouchers::valid_code(&u.name) {
        return Err(field(
            "name",
            "a voucher code must be 1-64 letters, digits, '-', '_' or '.'",
        ));
    }
    let profile_name = u.profile.as_deref().unwrap_or("default");
    let profile = *profiles.get(profile_name).ok_or_else(|| {
        field(
            "profile",
            format!("profile {profile_name:?} is not on the router"),
        )
    })?;
    let dur = |f: &'static str, v: Option<&str>| -> Result<Option<u64>, Problem> {
        match v.map(str::trim).filter(|v| !v.is_empty()) {
            None => Ok(None),
            Some(v) => parse_duration(v)
                .map(Some)
                .ok_or_else(|| field(f, format!("{v:?} is not a RouterOS duration"))),
        }
    };
    let bytes = |f: &'static str, v: Option<&str>| -> Result<Option<u64>, Problem> {
        match v.map(str::trim).filter(|v| !v.is_empty()) {
            None => Ok(None),
            Some(v) => parse_bytes(v)
                .map(Some)
                .ok_or_else(|| field(f, format!("{v:?} is not a byte count"))),
        }
    };
    let limits = Limits {
        uptime_secs: dur("limit-uptime", u.limit_uptime.as_deref())?.filter(|s| *s > 0),
        bytes: bytes("limit-bytes-total", u.limit_bytes_total.as_deref())?.filter(|b| *b > 0),
    };
    for (f, v) in [
        ("limit-bytes-in", &u.limit_bytes_in),
        ("limit-bytes-out", &u.limit_bytes_out),
    ] {
        if bytes(f, v.as_deref())?.is_some_and(|b| b > 0) {
            return Err(field(
                f,
                "MikroBill plans limit the bytes of both directions together: use limit-bytes-total",
            ));
        }
    }
    let uptime = dur("uptime", u.uptime.as_deref())?.unwrap_or(0);
    let used_bytes = bytes("bytes-in", u.bytes_in.as_deref())?
        .unwrap_or(0)
        .saturating_add(bytes("bytes-out", u.bytes_out.as_deref())?.unwrap_or(0));
    if limits.uptime_secs.is_some_and(|l| uptime >= l) {
        return Err(field("uptime", "the voucher's limit-uptime is used up"));
    }
    if limits.bytes.is_some_and(|l| used_bytes >= l) {
        return Err(field(
            "bytes-in",
            "the voucher's limit-bytes-total is used up",
        ));
    }
    Ok(GoodUser {
        entry: u,
        profile,
        limits,
        used: (uptime, used_bytes),
    })
}

/// Maps a router's accounts to what an import creates; pure, with `now` in `opts`.
pub fn map(accounts: &RouterAccounts, opts: &Options) -> Mapped {
    let mut out = Mapped::default();
    map_hotspot(accounts, opts, &mut out);
    map_ppp(accounts, opts, &mut out);
    out
}

fn map_hotspot(accounts: &RouterAccounts, opts: &Options, out: &mut Mapped) {
    let profiles: BTreeMap<&str, &HotspotProfileEntry> = accounts
        .hotspot_profiles
        .iter()
        .map(|p| (p.name.as_str(), p))
        .collect();
    let mut good = Vec::new();
    for u in &accounts.hotspot_users {
        let kind = if u.uptime.as_deref().and_then(parse_duration).unwrap_or(0) > 0 {
            Kind::ActiveVoucher
        } else {
            Kind::Voucher
        };
        match check_user(u, &profiles) {
            Ok(g) => good.push(g),
            Err(p) => skip(out, kind, source(HOTSPOT_USERS, &u.id, &u.name), p),
        }
    }
    // A plan per profile and limits: Mikhmon sets the limits on each user, MikroBill on
    // the plan. A profile whose users share one set of limits keeps its own name.
    let mut combos: BTreeMap<&str, BTreeSet<Limits>> = BTreeMap::new();
    for g in &good {
        combos
            .entry(g.profile.name.as_str())
            .or_default()
            .insert(g.limits);
    }
    let plan_source = |p: &HotspotProfileEntry, l: Limits| -> String {
        format!(
            "{}:{}:{}",
            p.id,
            l.uptime_secs.map_or(String::new(), |s| s.to_string()),
            l.bytes.map_or(String::new(), |b| b.to_string())
        )
    };
    for (name, limits) in &combos {
        let p = profiles[name];
        let terms = p
            .on_login
            .as_deref()
            .map(|s| mikhmon_terms(s, opts.currency_exponent))
            .unwrap_or_default();
        let shared_users = p
            .shared_users
            .as_deref()
            .and_then(|s| s.trim().parse::<u32>().ok());
        for l in limits {
            let plan_name = if limits.len() == 1 {
                p.name.clone()
            } else {
                format!("{} {}", p.name, l.suffix())
            };
            out.plans.push(NewPlan {
                source: Source {
                    id: plan_source(p, *l),
                    ..source(HOTSPOT_PROFILES, &p.id, &p.name)
                },
                input: PlanInput {
                    name: plan_name.chars().take(64).collect(),
                    kind: PlanKind::Hotspot,
                    price: terms.price.unwrap_or(0),
                    rate_limit: p.rate_limit.clone(),
                    time_limit_secs: l.uptime_secs,
                    data_limit_bytes: l.bytes,
                    validity_secs: terms.validity_secs,
                    shared_users,
                    interim_interval_secs: None,
                    router_group: None,
                    address_list: None,
                    isolation_profile: None,
                    mac_lock: terms.lock,
                    fup_rate_limit: None,
                },
                archived: false,
            });
        }
    }
    for g in good {
        let used = g.used.0 > 0 || g.used.1 > 0;
        let e = g.entry;
        out.vouchers.push(NewVoucher {
            kind: if used {
                Kind::ActiveVoucher
            } else {
                Kind::Voucher
            },
            source: source(HOTSPOT_USERS, &e.id, &e.name),
            plan: plan_source(g.profile, g.limits),
            site: SiteRef::Id(opts.site_id.clone()),
            code: e.name.clone(),
            password: e.password.clone().filter(|p| !p.is_empty() && *p != e.name),
            activated_at: used.then_some(opts.now),
            expires_at: None,
            used: used.then_some(g.used),
        });
    }
}

fn check_secret(s: &PppSecretEntry) -> Result<(), Problem> {
    if marked(s.comment.as_deref()) {
        return Err(field("comment", "MikroBill already manages this entry"));
    }
    if is_yes(s.disabled.as_deref()) {
        return Err(field("disabled", "the entry is disabled on the router"));
    }
    match s.service.as_deref().unwrap_or("any") {
        "any" | "pppoe" => {}
        other => {
            return Err(field(
                "service",
                format!("{other:?} is not PPPoE; MikroBill subscriptions are PPPoE accounts"),
            ));
        }
    }
    if s.password.as_deref().is_none_or(str::is_empty) {
        return Err(field("password", "is empty"));
    }
    Ok(())
}

fn map_ppp(accounts: &RouterAccounts, opts: &Options, out: &mut Mapped) {
    let profiles: BTreeMap<&str, _> = accounts
        .ppp_profiles
        .iter()
        .map(|p| (p.name.as_str(), p))
        .collect();
    let mut used_profiles = BTreeSet::new();
    let today = cycle::local_date(opts.now, opts.utc_offset_minutes);
    // The first of next month: the account was paid for on the router until now.
    let next_month = {
        let (y, m) = if today.month() == time::Month::December {
            (today.year() + 1, time::Month::January)
        } else {
            (today.year(), today.month().next())
        };
        time::Date::from_calendar_date(y, m, 1).unwrap_or(today)
    };
    for s in &accounts.ppp_secrets {
        let src = source(PPP_SECRETS, &s.id, &s.name);
        let profile_name = s.profile.as_deref().unwrap_or("default");
        let checked = check_secret(s).and_then(|()| {
            profiles.get(profile_name).copied().ok_or_else(|| {
                field(
                    "profile",
                    format!("profile {profile_name:?} is not on the router"),
                )
            })
        });
        let profile = match checked {
            Ok(p) => p,
            Err(p) => {
                skip(out, Kind::Subscription, src, p);
                continue;
            }
        };
        used_profiles.insert(profile.name.as_str());
        let customer_name = s
            .comment
            .as_deref()
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .unwrap_or(&s.name);
        out.customers.push(NewCustomer {
            source: src.clone(),
            input: CustomerInput {
                name: customer_name.chars().take(100).collect(),
                phone: None,
                email: None,
                address: None,
                notes: Some(format!("PPP secret {} on the router", s.name)),
            },
            balance: 0,
        });
        let static_ip = s
            .remote_address
            .as_deref()
            .filter(|a| a.parse::<std::net::Ipv4Addr>().is_ok())
            .map(str::to_string);
        out.subscriptions.push(NewSubscription {
            source: src.clone(),
            customer: src.id.clone(),
            plan: profile.id.clone(),
            site: SiteRef::Id(opts.site_id.clone()),
            username: s.name.clone(),
            password: s.password.clone().unwrap_or_default(),
            start_date: today,
            bill_from: next_month,
            static_ip,
            isolated: None,
        });
    }
    for p in &accounts.ppp_profiles {
        if !used_profiles.contains(p.name.as_str()) {
            continue;
        }
        out.plans.push(NewPlan {
            source: source(PPP_PROFILES, &p.id, &p.name),
            input: PlanInput {
                name: p.name.chars().take(64).collect(),
                kind: PlanKind::Pppoe,
                price: 0,
                rate_limit: p.rate_limit.clone(),
                time_limit_secs: None,
                data_limit_bytes: None,
                validity_secs: None,
                shared_users: None,
                interim_interval_secs: None,
                router_group: None,
                address_list: None,
                isolation_profile: None,
                mac_lock: false,
                fup_rate_limit: None,
            },
            archived: false,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::importer::report::Outcome;
    use mikrobill_protocol::inventory::PppProfileEntry;
    use proptest::prelude::*;

    const NOW: i64 = 1_796_000_000_000;

    fn opts() -> Options {
        Options {
            now: NOW,
            site_id: "site-1".into(),
            utc_offset_minutes: 420,
            currency_exponent: 0,
        }
    }

    fn user(id: &str, name: &str, limit: &str, uptime: &str) -> HotspotUserEntry {
        HotspotUserEntry {
            id: id.into(),
            name: name.into(),
            password: Some(name.into()),
            profile: Some("3jam".into()),
            limit_uptime: Some(limit.into()),
            uptime: Some(uptime.into()),
            bytes_in: Some("100".into()),
            bytes_out: Some("200".into()),
            comment: Some("vc-123-08.12.26-".into()),
            disabled: Some("false".into()),
            ..HotspotUserEntry::default()
        }
    }

    fn router() -> RouterAccounts {
        RouterAccounts {
            hotspot_profiles: vec![HotspotProfileEntry {
                id: "*1".into(),
                name: "3jam".into(),
                rate_limit: Some("1M/2M".into()),
                shared_users: Some("2".into()),
                session_timeout: None,
                on_login: Some(":put (\",rem,5000,1d,5000,,Disable,\"); {}".into()),
            }],
            hotspot_users: vec![
                user("*1", "aa1", "3h", "1h"),
                user("*2", "aa2", "3h", "0s"),
                user("*3", "aa3", "5h", "0s"),
                user("*4", "aa4", "abc", "0s"),
                user("*5", "aa5", "3h", "3h"),
            ],
            ppp_profiles: vec![PppProfileEntry {
                id: "*7".into(),
                name: "10M".into(),
                rate_limit: Some("5M/10M".into()),
                ..PppProfileEntry::default()
            }],
            ppp_secrets: vec![PppSecretEntry {
                id: "*9".into(),
                name: "budi".into(),
                password: Some("rahasia".into()),
                service: Some("pppoe".into()),
                profile: Some("10M".into()),
                remote_address: Some("10.1.1.9".into()),
                disabled: None,
                comment: Some("Pak Budi".into()),
            }],
            hotspot_active: vec![],
            ppp_active: vec![],
        }
    }

    fn skipped<'a>(m: &'a Mapped, name: &str) -> (&'a Option<String>, &'a str) {
        let e = m
            .skipped
            .iter()
            .find(|e| e.source.name.as_deref() == Some(name))
            .unwrap_or_else(|| panic!("{name} not skipped"));
        match &e.outcome {
            Outcome::Skipped { field, reason } => (field, reason),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn durations_as_routeros_writes_them() {
        assert_eq!(parse_duration("3h"), Some(10_800));
        assert_eq!(parse_duration("1d2h30m"), Some(95_400));
        assert_eq!(parse_duration("1w"), Some(604_800));
        assert_eq!(parse_duration("00:30:00"), Some(1_800));
        assert_eq!(parse_duration("1d00:00:10"), Some(86_410));
        assert_eq!(parse_duration("0s"), Some(0));
        for bad in ["abc", "", "3", "h", "1x", "00:61:00", "1:2"] {
            assert_eq!(parse_duration(bad), None, "{bad:?}");
        }
        assert_eq!(parse_bytes("1073741824"), Some(1 << 30));
        assert_eq!(parse_bytes("1G"), Some(1 << 30));
        assert_eq!(parse_bytes("500M"), Some(500 << 20));
        assert_eq!(parse_bytes("1.5G"), None);
        assert_eq!(parse_bytes("abc"), None);
    }

    #[test]
    fn mikhmon_keeps_price_and_validity_in_on_login() {
        let on_login = ":put (\",rem,5000,1d,6000,,Disable,\"); {:local date}";
        let terms = mikhmon_terms(on_login, 0);
        assert_eq!(terms.price, Some(5000));
        assert_eq!(terms.validity_secs, Some(86_400));
        assert!(!terms.lock);
        assert!(mikhmon_terms(":put (\",rem,1000,3h,1000,,Enable,\")", 0).lock);
        assert_eq!(mikhmon_terms("{:log info x}", 0), MikhmonTerms::default());
        assert_eq!(
            mikhmon_terms(":put (\",ntf,0,,0,,,\")", 0),
            MikhmonTerms::default()
        );
    }

    #[test]
    fn vouchers_carry_their_use_and_plans_follow_the_limits() {
        let m = map(&router(), &opts());
        // 3h and 5h users of one profile: two plans named by their limits.
        let names: Vec<&str> = m.plans.iter().map(|p| p.input.name.as_str()).collect();
        assert_eq!(names, ["3jam 3h", "3jam 5h", "10M"]);
        let plan = &m.plans[0].input;
        assert_eq!(plan.kind, PlanKind::Hotspot);
        assert_eq!(plan.time_limit_secs, Some(10_800));
        assert_eq!(plan.price, 5000);
        assert_eq!(plan.validity_secs, Some(86_400));
        assert_eq!(plan.shared_users, Some(2));
        assert_eq!(plan.rate_limit.as_deref(), Some("1M/2M"));
        let used = m.vouchers.iter().find(|v| v.code == "aa1").unwrap();
        assert_eq!(used.kind, Kind::ActiveVoucher);
        assert_eq!(used.used, Some((3600, 300)));
        assert_eq!(used.activated_at, Some(NOW));
        assert_eq!(used.password, None, "the code is the password");
        assert_eq!(used.plan, m.plans[0].source.id);
        assert_eq!(used.site, SiteRef::Id("site-1".into()));
        let fresh = m.vouchers.iter().find(|v| v.code == "aa2").unwrap();
        assert_eq!(fresh.kind, Kind::ActiveVoucher, "bytes were used");
        assert_eq!(
            skipped(&m, "aa4"),
            (
                &Some("limit-uptime".to_string()),
                "\"abc\" is not a RouterOS duration"
            )
        );
        assert_eq!(skipped(&m, "aa5").0.as_deref(), Some("uptime"));
        assert_eq!(m.vouchers.len(), 3);
    }

    #[test]
    fn secrets_become_customers_billed_from_next_month() {
        let m = map(&router(), &opts());
        assert_eq!(m.customers[0].input.name, "Pak Budi");
        let s = &m.subscriptions[0];
        assert_eq!(s.username, "budi");
        assert_eq!(s.plan, "*7");
        assert_eq!(s.static_ip.as_deref(), Some("10.1.1.9"));
        assert_eq!(s.bill_from.day(), 1);
        assert!(s.bill_from > s.start_date);
        assert_eq!(m.plans[2].input.kind, PlanKind::Pppoe);
        assert_eq!(m.plans[2].input.rate_limit.as_deref(), Some("5M/10M"));

        let mut r = router();
        r.ppp_secrets[0].service = Some("l2tp".into());
        r.ppp_secrets.push(PppSecretEntry {
            id: "*A".into(),
            name: "off".into(),
            password: Some("x".into()),
            disabled: Some("true".into()),
            ..PppSecretEntry::default()
        });
        let m = map(&r, &opts());
        assert!(m.subscriptions.is_empty());
        assert_eq!(skipped(&m, "budi").0.as_deref(), Some("service"));
        assert_eq!(skipped(&m, "off").0.as_deref(), Some("disabled"));
        assert!(m.plans.iter().all(|p| p.input.kind == PlanKind::Hotspot));
    }

    #[test]
    fn entries_mikrobill_made_are_not_imported_again() {
        let mut r = router();
        r.hotspot_users[0].comment = Some("mikrobill:voucher".into());
        let m = map(&r, &opts());
        assert_eq!(skipped(&m, "aa1").0.as_deref(), Some("comment"));
    }

    proptest! {
        #[test]
        fn written_durations_read_back(secs in 0u64..10_000_000_000) {
            let written = short_duration(secs);
            let expected = if secs == 0 { None } else { Some(secs) };
            prop_assert_eq!(parse_duration(&written), expected);
        }

        #[test]
        fn written_byte_counts_read_back(b in 1u64..(1 << 50)) {
            prop_assert_eq!(parse_bytes(&short_bytes(b)), Some(b));
        }

        #[test]
        fn mapping_never_panics(limit in "\\PC{0,12}", uptime in "\\PC{0,12}", bytes in "\\PC{0,12}") {
            let mut r = router();
            r.hotspot_users[0].limit_uptime = Some(limit);
            r.hotspot_users[0].uptime = Some(uptime);
            r.hotspot_users[0].bytes_in = Some(bytes);
            let m = map(&r, &opts());
            prop_assert_eq!(m.vouchers.len() + m.skipped.len(), 5);
        }
    }
}
