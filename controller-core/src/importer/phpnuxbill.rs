//! What a PHPNuxBill database becomes in MikroBill, decided purely from its rows and `now`:
//! routers → sites, plans → hotspot and PPPoE plans, customers with their balances, active
//! PPPoE recharges → subscriptions billed from their expiration, active hotspot recharges →
//! vouchers already in use until their expiration, unused vouchers → new vouchers. Rows
//! that cannot be carried over are skipped with the table, line, field and reason.

use super::mysqldump::{Dump, Row};
use super::report::{Entry, Kind, Note, Outcome, Source};
use crate::billing::cycle;
use crate::customers::CustomerInput;
use crate::plans::{PlanInput, PlanKind};
use std::collections::{BTreeMap, BTreeSet};
use time::Date;

/// The tables an import reads.
pub const TABLES: [&str; 6] = [
    "tbl_routers",
    "tbl_bandwidth",
    "tbl_plans",
    "tbl_customers",
    "tbl_user_recharges",
    "tbl_voucher",
];

/// What the mapping needs besides the rows.
#[derive(Debug, Clone)]
pub struct Options {
    /// The current time (unix ms).
    pub now: i64,
    /// The operator's UTC offset in minutes; PHPNuxBill's dates and times are local.
    pub utc_offset_minutes: i32,
    /// Decimal places of the ledger's minor unit (0 for rupiah).
    pub currency_exponent: u32,
    /// The MikroBill site for rows whose router is not among the imported ones (RADIUS plans).
    pub site_for_unassigned: Option<String>,
}

/// Which site a row belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SiteRef {
    /// The site imported from this router (its source id).
    Router(String),
    /// The site named by `--site-for-unassigned`.
    Named(String),
    /// An existing site, by id (the router an import reads from).
    Id(String),
}

/// A router to create as a site.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSite {
    /// Where it came from.
    pub source: Source,
    /// The site name.
    pub name: String,
}

/// A plan to create.
#[derive(Debug, Clone)]
pub struct NewPlan {
    /// Where it came from.
    pub source: Source,
    /// The plan.
    pub input: PlanInput,
    /// Archived once everything on it is imported: the source had it disabled, so it sells
    /// nothing new while what was sold on it keeps working.
    pub archived: bool,
}

/// A customer to create.
#[derive(Debug, Clone)]
pub struct NewCustomer {
    /// Where it came from.
    pub source: Source,
    /// The customer.
    pub input: CustomerInput,
    /// The balance, minor units.
    pub balance: i64,
}

/// A subscription to create for an active PPPoE recharge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSubscription {
    /// Where it came from (`tbl_user_recharges`).
    pub source: Source,
    /// The customer's source id.
    pub customer: String,
    /// The plan's source id.
    pub plan: String,
    /// Its site.
    pub site: SiteRef,
    /// PPPoE user name.
    pub username: String,
    /// PPPoE secret.
    pub password: String,
    /// Service start (local date of the recharge, at most a year back).
    pub start_date: Date,
    /// First day billed: the expiration, up to which PHPNuxBill was paid.
    pub bill_from: Date,
    /// A fixed IPv4 address.
    pub static_ip: Option<String>,
    /// Imported isolated (by hand: only an operator lifts it), for the reason given: the
    /// customer was blocked in the source.
    pub isolated: Option<String>,
}

/// A voucher to create: unused, or an active hotspot login.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewVoucher {
    /// `Voucher` for unused ones, `ActiveVoucher` for active recharges.
    pub kind: Kind,
    /// Where it came from.
    pub source: Source,
    /// The plan's source id.
    pub plan: String,
    /// Its site.
    pub site: SiteRef,
    /// The login code.
    pub code: String,
    /// A separate password, when the login has one.
    pub password: Option<String>,
    /// First use (unix ms), for an active login.
    pub activated_at: Option<i64>,
    /// End of validity (unix ms), for an active login.
    pub expires_at: Option<i64>,
    /// Use the other system already counted: (seconds online, bytes both ways).
    pub used: Option<(u64, u64)>,
}

/// Everything an import would create, and the rows it skips.
#[derive(Debug, Clone, Default)]
pub struct Mapped {
    /// Sites.
    pub sites: Vec<NewSite>,
    /// Plans.
    pub plans: Vec<NewPlan>,
    /// Customers.
    pub customers: Vec<NewCustomer>,
    /// Subscriptions.
    pub subscriptions: Vec<NewSubscription>,
    /// Vouchers (active logins first, then unused codes).
    pub vouchers: Vec<NewVoucher>,
    /// Skipped rows.
    pub skipped: Vec<Entry>,
    /// Rows imported differently from how the source had them.
    pub notes: Vec<Note>,
}

/// A row's problem: the field (when one is at fault) and why.
/// Why a source row was skipped: the field at fault, if one is, and the reason.
pub(super) type Problem = (Option<&'static str>, String);

fn field(f: &'static str, why: impl Into<String>) -> Problem {
    (Some(f), why.into())
}

fn source(table: &'static str, row: &Row) -> Source {
    Source {
        table,
        id: row.get("id").unwrap_or("?").to_string(),
        line: row.line,
        name: None,
    }
}

/// Records a skipped row in the mapping's report.
pub(super) fn skip(out: &mut Mapped, kind: Kind, source: Source, (f, reason): Problem) {
    out.skipped.push(Entry {
        kind,
        source,
        outcome: Outcome::Skipped {
            field: f.map(str::to_string),
            reason,
        },
    });
}

fn required<'a>(row: &'a Row, f: &'static str) -> Result<&'a str, Problem> {
    match row.get(f).map(str::trim) {
        Some(v) if !v.is_empty() => Ok(v),
        _ => Err(field(f, "is empty")),
    }
}

fn number(row: &Row, f: &'static str) -> Result<i64, Problem> {
    required(row, f)?
        .parse()
        .map_err(|_| field(f, "is not a whole number"))
}

/// A decimal amount (`15000.00`) in minor units of `exponent` places; more places than the
/// ledger keeps must be zeros, as money is never rounded away.
pub fn parse_amount(s: &str, exponent: u32) -> Option<i64> {
    let s = s.trim();
    let (whole, frac) = s.split_once('.').unwrap_or((s, ""));
    if whole.is_empty() || !whole.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    if !frac.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let exp = exponent as usize;
    let (kept, dropped) = frac.split_at(frac.len().min(exp));
    if dropped.chars().any(|c| c != '0') {
        return None;
    }
    let digits = format!("{whole}{kept:0<exp$}");
    let v: i64 = digits.parse().ok()?;
    (v <= crate::tax::MAX_AMOUNT).then_some(v)
}

/// A local date `YYYY-MM-DD` and optional time `HH:MM[:SS]` as unix ms.
fn local_instant(date: &str, time: Option<&str>, offset_minutes: i32) -> Option<(Date, i64)> {
    let d = crate::subscriptions::parse_date("date", date.trim()).ok()?;
    let mut secs = 0i64;
    if let Some(t) = time.map(str::trim).filter(|t| !t.is_empty()) {
        let parts: Vec<&str> = t.split(':').collect();
        if !(2..=3).contains(&parts.len()) {
            return None;
        }
        let p = |i: usize| parts.get(i).map_or(Some(0), |s| s.parse::<i64>().ok());
        let (h, m, s) = (p(0)?, p(1)?, p(2)?);
        if !(0..24).contains(&h) || !(0..60).contains(&m) || !(0..60).contains(&s) {
            return None;
        }
        secs = h * 3600 + m * 60 + s;
    }
    Some((d, cycle::local_midnight_ms(d, offset_minutes) + secs * 1000))
}

/// A site name MikroBill accepts: the router's own when it is one, else its letters and
/// digits with other characters as `-`.
pub fn site_name(router: &str) -> Option<String> {
    let cleaned: String = router
        .trim()
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || matches!(c, '-' | '_' | '.' | ' ') {
                c
            } else {
                '-'
            }
        })
        .take(64)
        .collect();
    let cleaned = cleaned.trim().to_string();
    (!cleaned.is_empty()).then_some(cleaned)
}

/// Maps a dump's rows to what an import creates; pure, with `now` in `opts`.
pub fn map(dump: &Dump, opts: &Options) -> Mapped {
    let mut out = Mapped::default();
    let routers = map_routers(dump, &mut out);
    let plans = map_plans(dump, opts, &mut out);
    let customers = map_customers(dump, opts, &mut out);
    let site_of = |name: Option<&str>| -> Result<SiteRef, Problem> {
        let name = name.unwrap_or("").trim();
        if let Some(id) = routers.get(name) {
            return Ok(SiteRef::Router(id.clone()));
        }
        match &opts.site_for_unassigned {
            Some(site) => Ok(SiteRef::Named(site.clone())),
            None => Err(field(
                "routers",
                format!(
                    "router {name:?} is not among the imported routers; name a site with --site-for-unassigned"
                ),
            )),
        }
    };
    map_recharges(dump, opts, &plans, &customers, &site_of, &mut out);
    map_vouchers(dump, &plans, &site_of, &mut out);
    out
}

fn map_routers(dump: &Dump, out: &mut Mapped) -> BTreeMap<String, String> {
    let mut by_name = BTreeMap::new();
    let mut taken = BTreeSet::new();
    for row in dump.rows("tbl_routers") {
        let src = source("tbl_routers", row);
        let r = (|| {
            let raw = required(row, "name")?;
            let name = site_name(raw).ok_or_else(|| field("name", "has no usable characters"))?;
            if !taken.insert(name.to_lowercase()) {
                return Err(field(
                    "name",
                    format!("another router is also named {name:?}"),
                ));
            }
            Ok((raw.to_string(), name))
        })();
        match r {
            Ok((raw, name)) => {
                by_name.insert(raw, src.id.clone());
                out.sites.push(NewSite { source: src, name });
            }
            Err(p) => skip(out, Kind::Site, src, p),
        }
    }
    by_name
}

/// A plan's source id → its kind, for the rows that name it.
type PlanKinds = BTreeMap<String, PlanKind>;

fn unit_secs(unit: &str) -> Option<u64> {
    match unit {
        "Mins" => Some(60),
        "Hrs" => Some(3600),
        "Days" => Some(86_400),
        // PHPNuxBill adds calendar months; a plan's validity here is a fixed length, so a
        // month is 30 days (the import notes it, see `map_plans`).
        "Months" => Some(30 * 86_400),
        _ => None,
    }
}

fn rate(bw: &Row) -> Result<String, Problem> {
    let part = |value: &'static str, unit: &'static str| -> Result<String, Problem> {
        let v: u64 = required(bw, value)?
            .parse()
            .map_err(|_| field(value, "is not a whole number"))?;
        let suffix = match bw.get(unit) {
            Some("Kbps") => "k",
            Some("Mbps") => "M",
            _ => return Err(field(unit, "must be Kbps or Mbps")),
        };
        Ok(format!("{v}{suffix}"))
    };
    // RouterOS reads rx/tx from the router's side: the subscriber's upload first.
    Ok(format!(
        "{}/{}",
        part("rate_up", "rate_up_unit")?,
        part("rate_down", "rate_down_unit")?
    ))
}

fn plan_input(
    row: &Row,
    bandwidth: &BTreeMap<&str, &Row>,
    opts: &Options,
) -> Result<PlanInput, Problem> {
    let kind = match row.get("type") {
        Some("Hotspot") => PlanKind::Hotspot,
        Some("PPPOE") => PlanKind::Pppoe,
        Some("Balance") => {
            return Err(field(
                "type",
                "a balance top-up package is not a service plan",
            ));
        }
        other => return Err(field("type", format!("unknown plan type {other:?}"))),
    };
    let name = required(row, "name_plan")?.to_string();
    let price = parse_amount(required(row, "price")?, opts.currency_exponent)
        .ok_or_else(|| field("price", "is not an amount in the ledger's currency"))?;
    let bw_id = required(row, "id_bw")?;
    let bw = bandwidth
        .get(bw_id)
        .ok_or_else(|| field("id_bw", format!("no bandwidth profile {bw_id}")))?;
    let rate_limit = rate(bw).map_err(|(f, why)| {
        field(
            "id_bw",
            format!("bandwidth {bw_id}: {} {why}", f.unwrap_or("")),
        )
    })?;
    let validity = number(row, "validity")?;
    let unit = row.get("validity_unit").unwrap_or("");
    let shared_users = row
        .get("shared_users")
        .and_then(|s| s.trim().parse::<u32>().ok())
        .filter(|&n| n > 0);
    let mut input = PlanInput {
        name,
        kind,
        price,
        rate_limit: Some(rate_limit),
        time_limit_secs: None,
        data_limit_bytes: None,
        validity_secs: None,
        shared_users,
        interim_interval_secs: None,
        router_group: None,
        address_list: None,
        isolation_profile: None,
        mac_lock: false,
        fup_rate_limit: None,
    };
    match kind {
        PlanKind::Pppoe => {
            // MikroBill bills PPPoE per month: a plan of another length has no monthly price.
            let monthly = matches!((unit, validity), ("Months", 1) | ("Period", _))
                || (unit == "Days" && (28..=31).contains(&validity));
            if !monthly {
                return Err(field(
                    "validity",
                    format!("{validity} {unit}: MikroBill bills PPPoE plans per month"),
                ));
            }
        }
        PlanKind::Hotspot => {
            let per = unit_secs(unit).ok_or_else(|| {
                field(
                    "validity_unit",
                    format!("{unit:?} is not a hotspot validity"),
                )
            })?;
            if validity <= 0 {
                return Err(field("validity", "must be positive"));
            }
            input.validity_secs = Some(validity as u64 * per);
            if row.get("typebp") == Some("Limited") {
                let lt = row.get("limit_type").unwrap_or("");
                if matches!(lt, "Time_Limit" | "Both_Limit") {
                    let t = number(row, "time_limit")?;
                    let per = match row.get("time_unit") {
                        Some("Mins") => 60,
                        Some("Hrs") => 3600,
                        _ => return Err(field("time_unit", "must be Mins or Hrs")),
                    };
                    if t <= 0 {
                        return Err(field("time_limit", "must be positive"));
                    }
                    input.time_limit_secs = Some(t as u64 * per);
                }
                if matches!(lt, "Data_Limit" | "Both_Limit") {
                    let d = number(row, "data_limit")?;
                    let per: u64 = match row.get("data_unit") {
                        Some("MB") => 1 << 20,
                        Some("GB") => 1 << 30,
                        _ => return Err(field("data_unit", "must be MB or GB")),
                    };
                    if d <= 0 {
                        return Err(field("data_limit", "must be positive"));
                    }
                    input.data_limit_bytes = Some(d as u64 * per);
                }
                if !matches!(lt, "Time_Limit" | "Data_Limit" | "Both_Limit") {
                    return Err(field("limit_type", format!("unknown limit type {lt:?}")));
                }
            }
        }
    }
    Ok(input)
}

fn map_plans(dump: &Dump, opts: &Options, out: &mut Mapped) -> PlanKinds {
    let bandwidth: BTreeMap<&str, &Row> = dump
        .rows("tbl_bandwidth")
        .iter()
        .filter_map(|r| Some((r.get("id")?, r)))
        .collect();
    let mut kinds = PlanKinds::new();
    let mut names = BTreeSet::new();
    for row in dump.rows("tbl_plans") {
        let src = source("tbl_plans", row);
        match plan_input(row, &bandwidth, opts) {
            Ok(input) if !names.insert(input.name.clone()) => skip(
                out,
                Kind::Plan,
                src,
                field(
                    "name_plan",
                    format!("another plan is also named {:?}", input.name),
                ),
            ),
            Ok(input) => {
                kinds.insert(src.id.clone(), input.kind);
                let months = (input.kind == PlanKind::Hotspot
                    && row.get("validity_unit") == Some("Months"))
                .then(|| row.get("validity").unwrap_or("").trim().to_string());
                if let Some(n) = months {
                    out.notes.push(Note {
                        kind: Kind::Plan,
                        source: src.clone(),
                        text: format!(
                            "validity {n} Months becomes {} days: a MikroBill plan's validity \
                             is a fixed length, not calendar months",
                            input.validity_secs.unwrap_or(0) / 86_400
                        ),
                    });
                }
                // PHPNuxBill's `enabled` is 1 or 0; a disabled plan sells nothing new.
                let archived = row.get("enabled").map(str::trim) == Some("0");
                if archived {
                    out.notes.push(Note {
                        kind: Kind::Plan,
                        source: src.clone(),
                        text: "archived: the plan is disabled in PHPNuxBill".into(),
                    });
                }
                out.plans.push(NewPlan {
                    source: src,
                    input,
                    archived,
                });
            }
            Err(p) => skip(out, Kind::Plan, src, p),
        }
    }
    kinds
}

/// A customer's logins, for the recharges that name them.
struct Logins {
    username: String,
    password: String,
    pppoe_username: String,
    pppoe_password: String,
    /// The PHPNuxBill status, when it keeps the customer from the service.
    blocked: Option<String>,
}

/// PHPNuxBill's customer statuses that keep a customer off the service. `Inactive` and
/// `Limited` do not (they are noted on the customer).
const BLOCKED: [&str; 3] = ["Banned", "Disabled", "Suspended"];

/// The customer's PHPNuxBill status when it is not `Active` (an empty or missing one is).
fn status_of(row: &Row) -> Option<&str> {
    row.get("status")
        .map(str::trim)
        .filter(|s| !s.is_empty() && *s != "Active")
}

fn customer_input(row: &Row, opts: &Options) -> Result<(CustomerInput, i64), Problem> {
    let username = required(row, "username")?;
    let name = row
        .get("fullname")
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .unwrap_or(username);
    // PHPNuxBill's defaults for "none" are '0' (phone) and '1' (e-mail).
    let phone = row
        .get("phonenumber")
        .map(str::trim)
        .filter(|p| !p.is_empty() && *p != "0");
    if let Some(p) = phone {
        crate::customers::normalize_phone(p)
            .map_err(|_| field("phonenumber", format!("{p:?} is not a phone number")))?;
    }
    let email = row
        .get("email")
        .map(str::trim)
        .filter(|e| !e.is_empty() && *e != "1" && *e != "0");
    if let Some(e) = email
        && !e.contains('@')
    {
        return Err(field("email", format!("{e:?} is not an e-mail address")));
    }
    let balance = match row.get("balance").map(str::trim).filter(|b| !b.is_empty()) {
        None => 0,
        Some(b) => parse_amount(b, opts.currency_exponent).ok_or_else(|| {
            field(
                "balance",
                format!("{b:?} is not an amount in the ledger's currency"),
            )
        })?,
    };
    Ok((
        CustomerInput {
            name: name.to_string(),
            phone: phone.map(str::to_string),
            email: email.map(str::to_string),
            address: row
                .get("address")
                .map(str::trim)
                .filter(|a| !a.is_empty())
                .map(str::to_string),
            // MikroBill customers have no status of their own: a status other than Active is
            // kept in the notes (and a blocking one isolates the subscriptions, see
            // `map_recharges`).
            notes: Some(match status_of(row) {
                Some(status) => format!("PHPNuxBill user {username}, status {status}"),
                None => format!("PHPNuxBill user {username}"),
            }),
        },
        balance,
    ))
}

fn map_customers(dump: &Dump, opts: &Options, out: &mut Mapped) -> BTreeMap<String, Logins> {
    let mut logins = BTreeMap::new();
    for row in dump.rows("tbl_customers") {
        let src = source("tbl_customers", row);
        match customer_input(row, opts) {
            Ok((input, balance)) => {
                let get = |f: &str| row.get(f).unwrap_or("").trim().to_string();
                logins.insert(
                    src.id.clone(),
                    Logins {
                        username: get("username"),
                        password: row.get("password").unwrap_or("").to_string(),
                        pppoe_username: get("pppoe_username"),
                        pppoe_password: row.get("pppoe_password").unwrap_or("").to_string(),
                        blocked: status_of(row)
                            .filter(|s| BLOCKED.contains(s))
                            .map(str::to_string),
                    },
                );
                if let Some(status) = status_of(row) {
                    let text = if BLOCKED.contains(&status) {
                        format!(
                            "{status} in PHPNuxBill: noted on the customer; its PPPoE \
                             subscriptions are isolated and its hotspot logins not carried over"
                        )
                    } else {
                        format!("{status} in PHPNuxBill: noted on the customer")
                    };
                    out.notes.push(Note {
                        kind: Kind::Customer,
                        source: src.clone(),
                        text,
                    });
                }
                out.customers.push(NewCustomer {
                    source: src,
                    input,
                    balance,
                });
            }
            Err(p) => skip(out, Kind::Customer, src, p),
        }
    }
    logins
}

fn map_recharges(
    dump: &Dump,
    opts: &Options,
    plans: &PlanKinds,
    customers: &BTreeMap<String, Logins>,
    site_of: &dyn Fn(Option<&str>) -> Result<SiteRef, Problem>,
    out: &mut Mapped,
) {
    let mut users = BTreeSet::new();
    let today = cycle::local_date(opts.now, opts.utc_offset_minutes);
    for row in dump.rows("tbl_user_recharges") {
        let src = source("tbl_user_recharges", row);
        let kind = match row.get("type") {
            Some("PPPOE") => Kind::Subscription,
            _ => Kind::ActiveVoucher,
        };
        let r = (|| {
            if !matches!(row.get("type"), Some("PPPOE" | "Hotspot")) {
                return Err(field("type", "is neither Hotspot nor PPPOE"));
            }
            if row.get("status") != Some("on") {
                return Err(field("status", "the recharge is not active"));
            }
            let (exp_date, expires_at) = local_instant(
                required(row, "expiration")?,
                row.get("time"),
                opts.utc_offset_minutes,
            )
            .ok_or_else(|| field("expiration", "is not a date and time"))?;
            if expires_at <= opts.now {
                return Err(field("expiration", format!("expired on {exp_date}")));
            }
            let (start, activated_at) = local_instant(
                required(row, "recharged_on")?,
                row.get("recharged_time"),
                opts.utc_offset_minutes,
            )
            .ok_or_else(|| field("recharged_on", "is not a date and time"))?;
            let plan = required(row, "plan_id")?.to_string();
            let want = if kind == Kind::Subscription {
                PlanKind::Pppoe
            } else {
                PlanKind::Hotspot
            };
            match plans.get(&plan) {
                Some(k) if *k == want => {}
                Some(_) => {
                    return Err(field(
                        "plan_id",
                        format!("plan {plan} is of the other type"),
                    ));
                }
                None => return Err(field("plan_id", format!("plan {plan} is not imported"))),
            }
            let customer = required(row, "customer_id")?.to_string();
            let login = customers.get(&customer);
            let site = site_of(row.get("routers"))?;
            if kind == Kind::Subscription {
                let login = login.ok_or_else(|| {
                    field(
                        "customer_id",
                        format!("customer {customer} is not imported"),
                    )
                })?;
                let (username, password) = if login.pppoe_username.is_empty() {
                    (login.username.clone(), login.password.clone())
                } else {
                    (login.pppoe_username.clone(), login.pppoe_password.clone())
                };
                let password = if password.is_empty() {
                    login.password.clone()
                } else {
                    password
                };
                if !users.insert(username.clone()) {
                    return Err(field(
                        "username",
                        format!("{username:?} has another active recharge"),
                    ));
                }
                let isolated = login
                    .blocked
                    .as_ref()
                    .map(|status| format!("the customer is {status} in PHPNuxBill"));
                // A subscription starts at most a year back; the months before were billed
                // in PHPNuxBill.
                let start_date = start.max(today - time::Duration::days(365)).min(exp_date);
                return Ok(Recharge::Sub(NewSubscription {
                    source: src.clone(),
                    customer,
                    plan,
                    site,
                    username,
                    password,
                    start_date,
                    bill_from: exp_date,
                    static_ip: None,
                    isolated,
                }));
            }
            let code = required(row, "username")?.to_string();
            if let Some(status) = login.and_then(|l| l.blocked.as_deref()) {
                return Err(field(
                    "customer_id",
                    format!("customer {customer} is {status} in PHPNuxBill"),
                ));
            }
            if !users.insert(code.clone()) {
                return Err(field(
                    "username",
                    format!("{code:?} has another active recharge"),
                ));
            }
            Ok(Recharge::Voucher(NewVoucher {
                kind,
                source: src.clone(),
                plan,
                site,
                password: login.map(|l| l.password.clone()).filter(|p| !p.is_empty()),
                code,
                activated_at: Some(activated_at.min(opts.now)),
                expires_at: Some(expires_at),
                used: None,
            }))
        })();
        match r {
            Ok(Recharge::Sub(s)) => out.subscriptions.push(s),
            Ok(Recharge::Voucher(v)) => out.vouchers.push(v),
            Err(p) => skip(out, kind, src, p),
        }
    }
}

enum Recharge {
    Sub(NewSubscription),
    Voucher(NewVoucher),
}

fn map_vouchers(
    dump: &Dump,
    plans: &PlanKinds,
    site_of: &dyn Fn(Option<&str>) -> Result<SiteRef, Problem>,
    out: &mut Mapped,
) {
    let mut codes: BTreeSet<String> = out.vouchers.iter().map(|v| v.code.clone()).collect();
    for row in dump.rows("tbl_voucher") {
        let src = source("tbl_voucher", row);
        let r = (|| {
            if row.get("status") != Some("0") {
                return Err(field(
                    "status",
                    "already used (an active login comes from its recharge)",
                ));
            }
            if row.get("type") != Some("Hotspot") {
                return Err(field("type", "MikroBill vouchers are hotspot logins"));
            }
            let plan = required(row, "id_plan")?.to_string();
            if plans.get(&plan) != Some(&PlanKind::Hotspot) {
                return Err(field(
                    "id_plan",
                    format!("hotspot plan {plan} is not imported"),
                ));
            }
            let code = required(row, "code")?.to_string();
            if !codes.insert(code.clone()) {
                return Err(field("code", format!("{code:?} appears twice")));
            }
            Ok(NewVoucher {
                kind: Kind::Voucher,
                source: src.clone(),
                plan,
                site: site_of(row.get("routers"))?,
                code,
                password: None,
                activated_at: None,
                expires_at: None,
                used: None,
            })
        })();
        match r {
            Ok(v) => out.vouchers.push(v),
            Err(p) => skip(out, Kind::Voucher, src, p),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::importer::mysqldump;

    const OFF: i32 = 7 * 60;

    fn opts(now: i64) -> Options {
        Options {
            now,
            utc_offset_minutes: OFF,
            currency_exponent: 0,
            site_for_unassigned: None,
        }
    }

    fn at(date: &str) -> i64 {
        local_instant(date, None, OFF).unwrap().1
    }

    const DUMP: &str = "\
INSERT INTO `tbl_routers` (`id`, `name`, `ip_address`, `username`, `password`, `enabled`) VALUES
(1, 'Kantor Pusat', '10.0.0.1:8728', 'admin', 'rahasia', 1),
(2, 'Kantor/Cabang', '10.0.0.2', 'admin', 'x', 1);
INSERT INTO `tbl_bandwidth` (`id`, `name_bw`, `rate_down`, `rate_down_unit`, `rate_up`, `rate_up_unit`) VALUES
(1, '10M', 10, 'Mbps', 512, 'Kbps');
INSERT INTO `tbl_plans` (`id`, `name_plan`, `id_bw`, `price`, `type`, `typebp`, `limit_type`, `time_limit`, `time_unit`, `data_limit`, `data_unit`, `validity`, `validity_unit`, `shared_users`, `routers`) VALUES
(1, 'Voucher 3 Jam', 1, '5000', 'Hotspot', 'Limited', 'Both_Limit', 3, 'Hrs', 2, 'GB', 1, 'Days', 2, 'Kantor Pusat'),
(2, 'Rumah 10M', 1, '150000', 'PPPOE', NULL, NULL, NULL, NULL, NULL, NULL, 1, 'Months', NULL, 'Kantor Pusat'),
(3, 'Mingguan', 1, '40000', 'PPPOE', NULL, NULL, NULL, NULL, NULL, NULL, 7, 'Days', NULL, 'Kantor Pusat'),
(4, 'Saldo', 1, '10000', 'Balance', NULL, NULL, NULL, NULL, NULL, NULL, 1, 'Months', NULL, '');
INSERT INTO `tbl_customers` (`id`, `username`, `password`, `pppoe_username`, `pppoe_password`, `fullname`, `address`, `phonenumber`, `email`, `balance`) VALUES
(1, 'budi', 'pw-budi', '', '', 'Budi O\\'Neil', 'Jl. Mawar', '0812-3456-7890', '1', '25000.00'),
(2, 'sari', 'pw-sari', 'sari-ppp', 'ppp-secret', 'Sari', NULL, '0', 'sari@example.com', '0.00'),
(3, 'rusak', 'x', '', '', 'Rusak', NULL, '0', '1', '12.50');
INSERT INTO `tbl_user_recharges` (`id`, `customer_id`, `username`, `plan_id`, `namebp`, `recharged_on`, `recharged_time`, `expiration`, `time`, `status`, `routers`, `type`) VALUES
(1, 2, 'sari', 2, 'Rumah 10M', '2024-05-20', '08:00:00', '2024-06-20', '08:00:00', 'on', 'Kantor Pusat', 'PPPOE'),
(2, 1, 'budi', 1, 'Voucher 3 Jam', '2024-06-01', '09:00:00', '2024-06-02', '09:00:00', 'on', 'Kantor Pusat', 'Hotspot'),
(3, 1, 'budi', 2, 'Rumah 10M', '2024-01-01', '08:00:00', '2024-02-01', '08:00:00', 'off', 'Kantor Pusat', 'PPPOE');
INSERT INTO `tbl_voucher` (`id`, `type`, `routers`, `id_plan`, `code`, `user`, `status`) VALUES
(1, 'Hotspot', 'Kantor Pusat', 1, 'ABC123', '0', '0'),
(2, 'Hotspot', 'Kantor Pusat', 1, 'USED99', 'budi', '1'),
(3, 'Hotspot', 'radius', 1, 'RAD777', '0', '0');
";

    fn mapped(site: Option<&str>) -> Mapped {
        let dump = mysqldump::read(std::io::Cursor::new(DUMP), &TABLES).unwrap();
        let mut o = opts(at("2024-06-01") + 12 * 3_600_000);
        o.site_for_unassigned = site.map(str::to_string);
        map(&dump, &o)
    }

    fn skipped(m: &Mapped, kind: Kind, id: &str) -> (Option<String>, String) {
        m.skipped
            .iter()
            .find(|e| e.kind == kind && e.source.id == id)
            .map(|e| match &e.outcome {
                Outcome::Skipped { field, reason } => (field.clone(), reason.clone()),
                _ => unreachable!(),
            })
            .unwrap_or_else(|| panic!("{kind:?} {id} not skipped: {:?}", m.skipped))
    }

    #[test]
    fn amounts_keep_every_minor_unit() {
        assert_eq!(parse_amount("25000.00", 0), Some(25000));
        assert_eq!(parse_amount("12.50", 0), None);
        assert_eq!(parse_amount("12.5", 2), Some(1250));
        assert_eq!(parse_amount("7", 2), Some(700));
        assert_eq!(parse_amount("-1", 0), None);
        assert_eq!(parse_amount("1e3", 0), None);
    }

    #[test]
    fn routers_become_sites_with_usable_names() {
        let m = mapped(None);
        let names: Vec<&str> = m.sites.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["Kantor Pusat", "Kantor-Cabang"]);
    }

    #[test]
    fn plans_carry_limits_validity_price_and_rate() {
        let m = mapped(None);
        let hs = &m.plans[0].input;
        assert_eq!(hs.kind, PlanKind::Hotspot);
        assert_eq!(hs.price, 5000);
        assert_eq!(hs.rate_limit.as_deref(), Some("512k/10M"));
        assert_eq!(hs.time_limit_secs, Some(3 * 3600));
        assert_eq!(hs.data_limit_bytes, Some(2 << 30));
        assert_eq!(hs.validity_secs, Some(86_400));
        assert_eq!(hs.shared_users, Some(2));
        let ppp = &m.plans[1].input;
        assert_eq!((ppp.kind, ppp.price), (PlanKind::Pppoe, 150_000));
        assert_eq!(skipped(&m, Kind::Plan, "3").0.as_deref(), Some("validity"));
        assert_eq!(skipped(&m, Kind::Plan, "4").0.as_deref(), Some("type"));
    }

    #[test]
    fn customers_keep_balances_and_bad_amounts_are_named() {
        let m = mapped(None);
        assert_eq!(m.customers.len(), 2);
        assert_eq!(m.customers[0].input.name, "Budi O'Neil");
        assert_eq!(m.customers[0].balance, 25000);
        assert_eq!(m.customers[0].input.email, None);
        assert_eq!(m.customers[1].input.phone, None);
        let (f, _) = skipped(&m, Kind::Customer, "3");
        assert_eq!(f.as_deref(), Some("balance"));
        let e = m
            .skipped
            .iter()
            .find(|e| e.source.id == "3" && e.kind == Kind::Customer);
        assert_eq!(e.unwrap().source.line, 14);
    }

    #[test]
    fn active_recharges_become_subscriptions_and_active_vouchers() {
        let m = mapped(None);
        assert_eq!(m.subscriptions.len(), 1);
        let s = &m.subscriptions[0];
        assert_eq!(
            (s.username.as_str(), s.password.as_str()),
            ("sari-ppp", "ppp-secret")
        );
        assert_eq!(s.bill_from.to_string(), "2024-06-20");
        assert_eq!(s.start_date.to_string(), "2024-05-20");
        assert_eq!(s.site, SiteRef::Router("1".into()));
        let v = m
            .vouchers
            .iter()
            .find(|v| v.kind == Kind::ActiveVoucher)
            .unwrap();
        assert_eq!(v.code, "budi");
        assert_eq!(v.password.as_deref(), Some("pw-budi"));
        assert_eq!(v.activated_at, Some(at("2024-06-01") + 9 * 3_600_000));
        assert_eq!(v.expires_at, Some(at("2024-06-02") + 9 * 3_600_000));
        assert_eq!(
            skipped(&m, Kind::Subscription, "3").0.as_deref(),
            Some("status")
        );
    }

    #[test]
    fn expired_recharges_are_skipped() {
        let dump = mysqldump::read(std::io::Cursor::new(DUMP), &TABLES).unwrap();
        let m = map(&dump, &opts(at("2024-06-03")));
        assert!(m.vouchers.iter().all(|v| v.kind != Kind::ActiveVoucher));
        assert!(skipped(&m, Kind::ActiveVoucher, "2").1.contains("expired"));
    }

    proptest::proptest! {
        /// A recharge is carried over exactly while its expiration is ahead of `now`, and then
        /// with the same end; amounts read back as written.
        #[test]
        fn recharges_are_active_until_their_expiration(mins in -3000i64..3000, v in 0i64..1_000_000_000) {
            let dump = mysqldump::read(std::io::Cursor::new(DUMP), &TABLES).unwrap();
            let expires = at("2024-06-02") + 9 * 3_600_000;
            let m = map(&dump, &opts(expires + mins * 60_000));
            let active = m.vouchers.iter().find(|v| v.kind == Kind::ActiveVoucher);
            proptest::prop_assert_eq!(active.is_some(), mins < 0);
            if let Some(a) = active {
                proptest::prop_assert_eq!(a.expires_at, Some(expires));
            }
            proptest::prop_assert_eq!(parse_amount(&format!("{v}.00"), 0), Some(v));
            proptest::prop_assert_eq!(parse_amount(&format!("{}.{:02}", v / 100, v % 100), 2), Some(v));
        }
    }

    #[test]
    fn unused_vouchers_only_and_unknown_routers_need_a_site() {
        let m = mapped(None);
        let unused: Vec<&str> = m
            .vouchers
            .iter()
            .filter(|v| v.kind == Kind::Voucher)
            .map(|v| v.code.as_str())
            .collect();
        assert_eq!(unused, ["ABC123"]);
        assert_eq!(skipped(&m, Kind::Voucher, "2").0.as_deref(), Some("status"));
        assert_eq!(
            skipped(&m, Kind::Voucher, "3").0.as_deref(),
            Some("routers")
        );
        let m = mapped(Some("Pusat"));
        let rad = m.vouchers.iter().find(|v| v.code == "RAD777").unwrap();
        assert_eq!(rad.site, SiteRef::Named("Pusat".into()));
    }
}
