//! The reports page: revenue, voucher sales, receivables aging, subscriber movements and
//! usage, each as a chart, a table and a CSV download of the same figures; and CSV exports
//! of whole lists, streamed. Every view and export checks its own permission.

use super::ctx::Ctx;
use super::error::WebError;
use crate::server::AppState;
use crate::web::chart::{self, Bar};
use crate::{csv, report_csv};
use axum::extract::{Path, Query, State};
use axum::response::Response;
use mikrobill_core::auth::Perm;
use mikrobill_core::db::now_ms;
use mikrobill_core::locale::dates::parse_local_date;
use mikrobill_core::locale::format_bytes;
use mikrobill_core::reports::period::{DAY_MS, starts};
use mikrobill_core::reports::receivables::{self, Aging};
use mikrobill_core::reports::revenue::{self, RevenueBy};
use mikrobill_core::reports::subscribers::{self, Movements};
use mikrobill_core::reports::usage::{self, UsageBy, UsageLine};
use mikrobill_core::reports::voucher_sales::{self, SalesBy};
use mikrobill_core::reports::{Line, Period, Range};
use serde::Deserialize;
use serde::de::DeserializeOwned;

/// Customers or accounts a ranking shows on the page and in its CSV.
const TOP: u32 = 50;
/// Text keys of the aging buckets, in `receivables::BUCKET_NAMES` order.
const BUCKET_KEYS: [&str; receivables::BUCKETS] = [
    "report.bucket.current",
    "report.bucket.1_30",
    "report.bucket.31_60",
    "report.bucket.61_90",
    "report.bucket.over_90",
];

/// A report of the page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    /// Revenue.
    Revenue,
    /// Voucher sales.
    Sales,
    /// Receivables aging.
    Receivables,
    /// Subscriber movements.
    Subscribers,
    /// Usage.
    Usage,
}

impl View {
    const ALL: [View; 5] = [
        View::Revenue,
        View::Sales,
        View::Receivables,
        View::Subscribers,
        View::Usage,
    ];

    /// Its name in links.
    pub fn name(self) -> &'static str {
        match self {
            View::Revenue => "revenue",
            View::Sales => "voucher-sales",
            View::Receivables => "receivables",
            View::Subscribers => "subscribers",
            View::Usage => "usage",
        }
    }

    /// The text key of its title.
    pub fn title(self) -> &'static str {
        match self {
            View::Revenue => "report.revenue",
            View::Sales => "report.sales",
            View::Receivables => "report.receivables",
            View::Subscribers => "report.subscribers",
            View::Usage => "report.usage",
        }
    }

    fn perm(self) -> Perm {
        match self {
            View::Revenue => Perm::ReadPayments,
            View::Sales => Perm::ReadVouchers,
            View::Receivables => Perm::ReadInvoices,
            View::Subscribers | View::Usage => Perm::ReadSubscriptions,
        }
    }

    /// The groupings it offers, the first being the default.
    pub fn groupings(self) -> &'static [&'static str] {
        match self {
            View::Revenue => &["source", "method", "site", "plan", "reseller"],
            View::Sales => &["plan", "batch", "reseller", "site"],
            View::Usage => &["site", "customer", "account"],
            View::Receivables | View::Subscribers => &[],
        }
    }

    /// Whether it covers a time range (aging is always as of now).
    pub fn ranged(self) -> bool {
        self != View::Receivables
    }
}

/// The form above the report (all optional).
#[derive(Debug, Default, Deserialize)]
pub struct ReportForm {
    view: Option<String>,
    period: Option<String>,
    by: Option<String>,
    /// First local day shown (`2026-12-01`).
    from: Option<String>,
    /// Last local day shown, included.
    to: Option<String>,
}

/// What the form asked for, checked.
struct Chosen {
    view: View,
    period: Period,
    by: &'static str,
    range: Range,
    from: String,
    to: String,
}

fn named<T: DeserializeOwned>(name: &str) -> Option<T> {
    serde_json::from_value(serde_json::Value::String(name.to_string())).ok()
}

fn bad(c: &Ctx, field: &str, text: &str) -> WebError {
    WebError::BadRequest(c.lang, format!("{field}: {text}"))
}

fn choose(c: &Ctx, f: &ReportForm) -> Result<Chosen, WebError> {
    let allowed: Vec<View> = View::ALL.into_iter().filter(|v| c.can(v.perm())).collect();
    let view = match f.view.as_deref().filter(|v| !v.is_empty()) {
        None => *allowed.first().ok_or(WebError::Forbidden(c.lang))?,
        Some(name) => View::ALL
            .into_iter()
            .find(|v| v.name() == name)
            .ok_or_else(|| bad(c, "view", c.t("report.bad_view")))?,
    };
    c.require(view.perm())?;
    let period = match f.period.as_deref().filter(|p| !p.is_empty()) {
        None => Period::Day,
        Some(p) => named(p).ok_or_else(|| bad(c, "period", c.t("report.bad_period")))?,
    };
    let by = match f.by.as_deref().filter(|b| !b.is_empty()) {
        None => view.groupings().first().copied().unwrap_or(""),
        Some(b) => view
            .groupings()
            .iter()
            .copied()
            .find(|g| *g == b)
            .ok_or_else(|| bad(c, "by", c.t("report.bad_by")))?,
    };
    let offset = c.settings.utc_offset_minutes;
    // Usage ranks this month by default: whole months read one row per account.
    let default = if view == View::Usage {
        Range::last_months(now_ms(), offset, 1)
    } else {
        Range::default_for(period, now_ms(), offset)
    };
    let day = |field: &str, v: &Option<String>, or: i64| match v.as_deref().map(str::trim) {
        None | Some("") => Ok(or),
        Some(text) => {
            parse_local_date(text, offset).ok_or_else(|| bad(c, field, c.t("report.bad_date")))
        }
    };
    let from = day("from", &f.from, default.from)?;
    let to = day("to", &f.to, default.to - DAY_MS)? + DAY_MS;
    let range = Range::new(from, to).map_err(|e| WebError::BadRequest(c.lang, e.to_string()))?;
    Ok(Chosen {
        view,
        period,
        by,
        range,
        from: c.date(range.from),
        to: c.date(range.to - DAY_MS),
    })
}

/// A report's figures.
enum Figures {
    Money(Vec<Line>),
    Aging(Aging),
    Movements(Vec<Movements>),
    Usage {
        ranking: Vec<UsageLine>,
        series: Vec<UsageLine>,
    },
}

async fn load(state: &AppState, ch: &Chosen, offset: i32) -> Result<Figures, WebError> {
    let db = &state.db;
    let (range, period) = (ch.range, ch.period);
    Ok(match ch.view {
        View::Revenue => {
            let by: RevenueBy = named(ch.by).unwrap_or(RevenueBy::Source);
            Figures::Money(revenue::report(db, range, period, by, offset).await?)
        }
        View::Sales => {
            let by: SalesBy = named(ch.by).unwrap_or(SalesBy::Plan);
            Figures::Money(voucher_sales::report(db, range, period, by, offset).await?)
        }
        View::Receivables => Figures::Aging(receivables::report(db, now_ms(), TOP).await?),
        View::Subscribers => {
            Figures::Movements(subscribers::report(db, range, period, offset).await?)
        }
        View::Usage => {
            let by: UsageBy = named(ch.by).unwrap_or(UsageBy::Site);
            Figures::Usage {
                ranking: usage::ranking(db, range, by, TOP, offset, now_ms()).await?,
                series: usage::series(db, range, period, None, offset).await?,
            }
        }
    })
}

/// A table as the page shows it: headings (with whether the column is a number) and rows.
pub struct Table {
    /// Column headings and whether they hold numbers.
    pub head: Vec<(&'static str, bool)>,
    /// Cells, row by row.
    pub rows: Vec<Vec<String>>,
}

impl Table {
    /// Whether column `i` holds numbers (right-aligned).
    pub fn is_num(&self, i: &usize) -> bool {
        self.head.get(*i).is_some_and(|h| h.1)
    }
}

/// A tab of the page.
pub struct Tab {
    /// Link.
    pub href: String,
    /// Text.
    pub label: &'static str,
    /// Whether it is shown now.
    pub current: bool,
}

#[derive(askama::Template)]
#[template(path = "admin/reports.html")]
struct ReportsPage<'a> {
    c: &'a Ctx,
    tabs: Vec<Tab>,
    view: View,
    title: &'static str,
    period: &'static str,
    by: &'static str,
    from: String,
    to: String,
    chart_title: &'static str,
    chart: String,
    /// What range the ranking covers, when it is not the chosen one.
    note: String,
    tables: Vec<(&'static str, Table)>,
    csv_href: String,
    exports: Vec<&'static str>,
}

impl ReportsPage<'_> {
    /// The text of a grouping.
    fn by_label(&self, by: &str) -> &'static str {
        self.c.t(&format!("report.by.{by}"))
    }

    /// The text of an export.
    fn export_label(&self, name: &str) -> &'static str {
        self.c.t(&format!("export.{name}"))
    }
}

fn period_label(c: &Ctx, start: i64, period: Period) -> String {
    report_csv::period_label(start, period, c.settings.utc_offset_minutes)
}

/// A short x-axis label: the day of the month, or the month.
fn tick(c: &Ctx, start: i64, period: Period) -> String {
    let full = period_label(c, start, period);
    match period {
        Period::Day => full.get(8..).unwrap_or(&full).to_string(),
        Period::Month => full.get(5..).unwrap_or(&full).to_string(),
    }
}

fn money_tables(c: &Ctx, lines: &[Line], period: Period) -> Vec<(&'static str, Table)> {
    // Totals per group over the whole range, largest first.
    let mut totals: Vec<(String, i64, i64)> = Vec::new();
    for l in lines {
        match totals.iter_mut().find(|t| t.0 == l.label) {
            Some(t) => {
                t.1 += l.count;
                t.2 += l.amount;
            }
            None => totals.push((l.label.clone(), l.count, l.amount)),
        }
    }
    totals.sort_by(|a, b| b.2.cmp(&a.2).then_with(|| a.0.cmp(&b.0)));
    let label = |s: &str| {
        if s.is_empty() {
            "–".to_string()
        } else {
            s.to_string()
        }
    };
    let head = vec![
        ("report.group", false),
        ("report.count", true),
        ("report.amount", true),
    ];
    let total_rows = totals
        .iter()
        .map(|(l, n, a)| vec![label(l), n.to_string(), c.money(*a)])
        .collect();
    let detail_rows = lines
        .iter()
        .map(|l| {
            vec![
                period_label(c, l.period_start, period),
                label(&l.label),
                l.count.to_string(),
                c.money(l.amount),
            ]
        })
        .collect();
    vec![
        (
            "report.totals",
            Table {
                head,
                rows: total_rows,
            },
        ),
        (
            "report.per_period",
            Table {
                head: vec![
                    ("report.period", false),
                    ("report.group", false),
                    ("report.count", true),
                    ("report.amount", true),
                ],
                rows: detail_rows,
            },
        ),
    ]
}

fn money_chart(c: &Ctx, lines: &[Line], ch: &Chosen) -> Vec<Bar> {
    starts(ch.range, ch.period, c.settings.utc_offset_minutes)
        .into_iter()
        .map(|s| {
            let total: i64 = lines
                .iter()
                .filter(|l| l.period_start == s)
                .map(|l| l.amount)
                .sum();
            Bar {
                label: tick(c, s, ch.period),
                value: total,
                shown: format!("{} {}", period_label(c, s, ch.period), c.money(total)),
            }
        })
        .collect()
}

fn usage_row(c: &Ctx, first: String, l: &UsageLine) -> Vec<String> {
    vec![
        first,
        crate::web::admin::form_values::duration(l.online_secs),
        format_bytes(l.bytes_in, c.lang),
        format_bytes(l.bytes_out, c.lang),
        l.sessions.to_string(),
    ]
}

fn usage_head(first: &'static str) -> Vec<(&'static str, bool)> {
    vec![
        (first, false),
        ("report.online", true),
        ("report.bytes_in", true),
        ("report.bytes_out", true),
        ("report.sessions", true),
    ]
}

/// The chart and tables of a report.
fn present(
    c: &Ctx,
    ch: &Chosen,
    figures: &Figures,
) -> (&'static str, Vec<Bar>, Vec<(&'static str, Table)>) {
    match figures {
        Figures::Money(lines) => (
            if ch.view == View::Revenue {
                "report.chart.revenue"
            } else {
                "report.chart.sales"
            },
            money_chart(c, lines, ch),
            money_tables(c, lines, ch.period),
        ),
        Figures::Aging(aging) => {
            let bars = aging
                .buckets
                .iter()
                .zip(BUCKET_KEYS)
                .map(|(b, key)| Bar {
                    label: c.t(key).to_string(),
                    value: b.amount,
                    shown: format!("{} ({})", c.money(b.amount), b.invoices),
                })
                .collect();
            let mut head = vec![("customer.name", false)];
            head.extend(BUCKET_KEYS.iter().map(|k| (*k, true)));
            head.push(("report.total", true));
            let rows = aging
                .customers
                .iter()
                .map(|cu| {
                    let mut row = vec![format!("{} {}", cu.number, cu.name)];
                    row.extend(cu.amounts.iter().map(|a| c.money(*a)));
                    row.push(c.money(cu.total));
                    row
                })
                .collect();
            let buckets = Table {
                head: vec![
                    ("report.bucket", false),
                    ("report.invoices", true),
                    ("report.amount", true),
                ],
                rows: aging
                    .buckets
                    .iter()
                    .zip(BUCKET_KEYS)
                    .map(|(b, key)| {
                        vec![
                            c.t(key).to_string(),
                            b.invoices.to_string(),
                            c.money(b.amount),
                        ]
                    })
                    .collect(),
            };
            (
                "report.chart.aging",
                bars,
                vec![
                    ("report.buckets", buckets),
                    ("report.top_debtors", Table { head, rows }),
                ],
            )
        }
        Figures::Movements(rows) => {
            let bars = rows
                .iter()
                .map(|m| Bar {
                    label: tick(c, m.period_start, ch.period),
                    value: m.new,
                    shown: format!("{} {}", period_label(c, m.period_start, ch.period), m.new),
                })
                .collect();
            let table = Table {
                head: vec![
                    ("report.period", false),
                    ("report.new", true),
                    ("report.isolated", true),
                    ("report.reactivated", true),
                    ("report.terminated", true),
                ],
                rows: rows
                    .iter()
                    .rev()
                    .map(|m| {
                        vec![
                            period_label(c, m.period_start, ch.period),
                            m.new.to_string(),
                            m.isolated.to_string(),
                            m.reactivated.to_string(),
                            m.terminated.to_string(),
                        ]
                    })
                    .collect(),
            };
            ("report.chart.new", bars, vec![("report.per_period", table)])
        }
        Figures::Usage { ranking, series } => {
            let bars = series
                .iter()
                .map(|l| {
                    let start = l.period_start.unwrap_or_default();
                    let total = l.bytes_in.saturating_add(l.bytes_out);
                    Bar {
                        label: tick(c, start, ch.period),
                        value: total,
                        shown: format!(
                            "{} {}",
                            period_label(c, start, ch.period),
                            format_bytes(total, c.lang)
                        ),
                    }
                })
                .collect();
            let top = Table {
                head: usage_head("report.group"),
                rows: ranking
                    .iter()
                    .map(|l| usage_row(c, l.label.clone(), l))
                    .collect(),
            };
            let per = Table {
                head: usage_head("report.period"),
                rows: series
                    .iter()
                    .rev()
                    .map(|l| {
                        let start = l.period_start.unwrap_or_default();
                        usage_row(c, period_label(c, start, ch.period), l)
                    })
                    .collect(),
            };
            (
                "report.chart.usage",
                bars,
                vec![("report.top", top), ("report.per_period", per)],
            )
        }
    }
}

fn query(ch: &Chosen) -> String {
    let period = if ch.period == Period::Month {
        "month"
    } else {
        "day"
    };
    crate::web::pager::query(&[
        ("view", ch.view.name()),
        ("period", period),
        ("by", ch.by),
        ("from", &ch.from),
        ("to", &ch.to),
    ])
}

/// `GET /reports`.
pub async fn page(
    State(state): State<AppState>,
    c: Ctx,
    Query(f): Query<ReportForm>,
) -> Result<Response, WebError> {
    let ch = choose(&c, &f)?;
    let figures = load(&state, &ch, c.settings.utc_offset_minutes).await?;
    let (chart_key, bars, tables) = present(&c, &ch, &figures);
    let tabs = View::ALL
        .into_iter()
        .filter(|v| c.can(v.perm()))
        .map(|v| Tab {
            href: format!("/reports?view={}", v.name()),
            label: c.t(v.title()),
            current: v == ch.view,
        })
        .collect();
    let exports = mikrobill_core::exports::EXPORTS
        .iter()
        .filter(|e| c.can(e.perm))
        .map(|e| e.name)
        .collect();
    Ok(c.render(&ReportsPage {
        c: &c,
        tabs,
        view: ch.view,
        title: c.t(ch.view.title()),
        period: if ch.period == Period::Month {
            "month"
        } else {
            "day"
        },
        by: ch.by,
        from: ch.from.clone(),
        to: ch.to.clone(),
        chart_title: c.t(chart_key),
        chart: chart::bars(c.t(chart_key), &bars),
        note: ranking_note(&c, &ch),
        tables,
        csv_href: format!("/reports/csv{}", query(&ch)),
        exports,
    }))
}

/// The whole months a ranking of customers or accounts covers, said when they are more
/// than the chosen days (see [`usage::ranking_range`]).
fn ranking_note(c: &Ctx, ch: &Chosen) -> String {
    let by: Option<UsageBy> = named(ch.by);
    match by {
        Some(by) if ch.view == View::Usage => {
            let offset = c.settings.utc_offset_minutes;
            let covered = usage::ranking_range(ch.range, by, offset, now_ms());
            if covered == ch.range {
                return String::new();
            }
            format!(
                "{} {} – {}",
                c.t("report.ranking_months"),
                c.date(covered.from),
                c.date(covered.to - 1)
            )
        }
        _ => String::new(),
    }
}

/// `GET /reports/csv`: the report on the page as CSV.
pub async fn download(
    State(state): State<AppState>,
    c: Ctx,
    Query(f): Query<ReportForm>,
) -> Result<Response, WebError> {
    let ch = choose(&c, &f)?;
    let offset = c.settings.utc_offset_minutes;
    let body = match load(&state, &ch, offset).await? {
        Figures::Money(lines) => report_csv::money(&lines, ch.period, offset),
        Figures::Aging(aging) => report_csv::aging(&aging),
        Figures::Movements(rows) => report_csv::movements(&rows, ch.period, offset),
        Figures::Usage { ranking, .. } => report_csv::usage(&ranking, ch.period, offset),
    };
    Ok(csv::response(ch.view.name(), body))
}

/// `GET /exports/{name}`: a whole list as CSV, streamed.
pub async fn export(
    State(state): State<AppState>,
    c: Ctx,
    Path(name): Path<String>,
) -> Result<Response, WebError> {
    let export = mikrobill_core::exports::find(name.trim_end_matches(".csv"))
        .ok_or(WebError::NotFound(c.lang))?;
    c.require(export.perm)?;
    Ok(csv::stream(
        state.db.clone(),
        export,
        i64::MIN,
        i64::MAX,
        c.settings.utc_offset_minutes,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::web::Lang;
    use crate::web::admin::texts::text;

    #[test]
    fn every_grouping_export_and_bucket_has_a_text() {
        let mut keys: Vec<String> = View::ALL
            .iter()
            .flat_map(|v| v.groupings().iter().map(|g| format!("report.by.{g}")))
            .collect();
        keys.extend(
            mikrobill_core::exports::EXPORTS
                .iter()
                .map(|e| format!("export.{}", e.name)),
        );
        keys.extend(BUCKET_KEYS.iter().map(|k| k.to_string()));
        keys.extend(View::ALL.iter().map(|v| v.title().to_string()));
        for key in keys {
            for lang in Lang::ALL {
                assert_ne!(text(lang, &key), "??", "no text for {key}");
            }
        }
    }

    #[test]
    fn groupings_name_what_the_core_reports_accept() {
        for g in View::Revenue.groupings() {
            assert!(named::<RevenueBy>(g).is_some(), "{g}");
        }
        for g in View::Sales.groupings() {
            assert!(named::<SalesBy>(g).is_some(), "{g}");
        }
        for g in View::Usage.groupings() {
            assert!(named::<UsageBy>(g).is_some(), "{g}");
        }
        assert_eq!(named::<Period>("month"), Some(Period::Month));
        assert_eq!(named::<Period>("week"), None);
    }
}
