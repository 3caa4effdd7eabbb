//! Business figures and reports: the dashboard's headline numbers, revenue, voucher sales,
//! receivables aging, subscriber movements and usage, each as JSON or (`format=csv`) CSV;
//! and every list as a streamed CSV export.

use crate::api::extract::{Caller, Query};
use crate::csv;
use crate::report_csv;
use crate::server::AppState;
use crate::server::problem::{ApiResult, Problem};
use axum::Json;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use mikrobill_core::auth::Perm;
use mikrobill_core::db::now_ms;
use mikrobill_core::reports::receivables::{self, Aging};
use mikrobill_core::reports::revenue::{self, RevenueBy};
use mikrobill_core::reports::subscribers::{self, Movements};
use mikrobill_core::reports::usage::{self, UsageBy, UsageLine};
use mikrobill_core::reports::voucher_sales::{self, SalesBy};
use mikrobill_core::reports::{Line, Period, Range};
use mikrobill_core::stats::{self, Summary};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Routes of this module.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(summary))
        .routes(routes!(revenue_report))
        .routes(routes!(voucher_sales_report))
        .routes(routes!(receivables_report))
        .routes(routes!(subscribers_report))
        .routes(routes!(usage_report))
        .routes(routes!(export_list))
}

/// The largest ranking one request may ask for.
const MAX_TOP: u32 = 10_000;

/// JSON (the default) or CSV.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// A JSON document.
    #[default]
    Json,
    /// A CSV file (times and periods at the operator's local offset, money in minor units).
    Csv,
}

/// Time range, grouping and format of a report.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ReportQuery {
    /// Rows per local `day` (default) or `month`.
    pub period: Option<Period>,
    /// From (unix ms); default: 30 days back by day, 12 months back by month.
    pub from: Option<i64>,
    /// Until, excluded (unix ms); default: the end of today.
    pub to: Option<i64>,
    /// `json` (default) or `csv`.
    pub format: Option<Format>,
}

struct Resolved {
    period: Period,
    range: Range,
    offset: i32,
    csv: bool,
}

async fn resolve(state: &AppState, q: &ReportQuery) -> ApiResult<Resolved> {
    let offset = mikrobill_core::settings::billing(&state.db)
        .await?
        .utc_offset_minutes;
    let period = q.period.unwrap_or(Period::Day);
    let default = Range::default_for(period, now_ms(), offset);
    let range = Range::new(q.from.unwrap_or(default.from), q.to.unwrap_or(default.to))?;
    Ok(Resolved {
        period,
        range,
        offset,
        csv: q.format == Some(Format::Csv),
    })
}

/// A money report: its parameters and lines.
#[derive(Debug, Serialize, ToSchema)]
pub struct MoneyReport {
    /// `day` or `month`.
    pub period: Period,
    /// Range start (unix ms).
    pub from: i64,
    /// Range end, excluded (unix ms).
    pub to: i64,
    /// One line per period and group, by period, then largest amount first.
    pub lines: Vec<Line>,
}

fn money_answer(name: &str, r: &Resolved, lines: Vec<Line>) -> Response {
    if r.csv {
        return csv::response(name, report_csv::money(&lines, r.period, r.offset));
    }
    Json(MoneyReport {
        period: r.period,
        from: r.range.from,
        to: r.range.to,
        lines,
    })
    .into_response()
}

/// The dashboard's headline figures now, in the operator's local day and month: revenue
/// (payments, cash voucher sales and reseller top-ups), vouchers sold, overdue and isolated
/// subscriptions.
#[utoipa::path(get, path = "/reports/summary", tag = "reports", security(("bearer" = [])),
    responses((status = 200, body = Summary), (status = 403, body = Problem)))]
async fn summary(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<Summary>> {
    caller.require(Perm::ReadPayments)?;
    let offset = mikrobill_core::settings::billing(&state.db)
        .await?
        .utc_offset_minutes;
    Ok(Json(stats::summary(&state.db, now_ms(), offset).await?))
}

/// Grouping of the revenue report.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RevenueQuery {
    /// `source` (default), `method`, `site`, `plan` or `reseller`.
    pub by: Option<RevenueBy>,
}

/// Revenue per local day or month, by source, payment method, site, plan or reseller (the
/// revenue ledger: payments, cash voucher sales, reseller top-ups).
#[utoipa::path(get, path = "/reports/revenue", tag = "reports", security(("bearer" = [])),
    params(ReportQuery, RevenueQuery),
    responses((status = 200, description = "The report: JSON, or CSV with `format=csv`", content((MoneyReport = "application/json"), (String = "text/csv"))), (status = 403, body = Problem), (status = 422, body = Problem)))]
async fn revenue_report(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<ReportQuery>,
    Query(by): Query<RevenueQuery>,
) -> ApiResult<Response> {
    caller.require(Perm::ReadPayments)?;
    let r = resolve(&state, &q).await?;
    let by = by.by.unwrap_or(RevenueBy::Source);
    let lines = revenue::report(&state.db, r.range, r.period, by, r.offset).await?;
    Ok(money_answer("revenue", &r, lines))
}

/// Grouping of the voucher sales report.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SalesQuery {
    /// `plan` (default), `batch`, `reseller` or `site`.
    pub by: Option<SalesBy>,
}

/// Vouchers sold per local day or month (count and price), by batch, plan, reseller or site.
#[utoipa::path(get, path = "/reports/voucher-sales", tag = "reports", security(("bearer" = [])),
    params(ReportQuery, SalesQuery),
    responses((status = 200, description = "The report: JSON, or CSV with `format=csv`", content((MoneyReport = "application/json"), (String = "text/csv"))), (status = 403, body = Problem), (status = 422, body = Problem)))]
async fn voucher_sales_report(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<ReportQuery>,
    Query(by): Query<SalesQuery>,
) -> ApiResult<Response> {
    caller.require(Perm::ReadVouchers)?;
    let r = resolve(&state, &q).await?;
    let by = by.by.unwrap_or(SalesBy::Plan);
    let lines = voucher_sales::report(&state.db, r.range, r.period, by, r.offset).await?;
    Ok(money_answer("voucher-sales", &r, lines))
}

/// How many top entries a ranking shows, and the format.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TopQuery {
    /// Entries (1-10000, default 50).
    pub top: Option<u32>,
    /// `json` (default) or `csv`.
    pub format: Option<Format>,
}

impl TopQuery {
    fn top(&self) -> Result<u32, Problem> {
        match self.top {
            None => Ok(50),
            Some(n) if (1..=MAX_TOP).contains(&n) => Ok(n),
            Some(_) => Err(Problem::invalid(
                "top",
                format!("must be between 1 and {MAX_TOP}"),
            )),
        }
    }
}

/// Receivables aging now: unpaid invoices by days past due (not yet due, 1-30, 31-60, 61-90,
/// over 90), and the customers who owe most.
#[utoipa::path(get, path = "/reports/receivables", tag = "reports", security(("bearer" = [])),
    params(TopQuery),
    responses((status = 200, description = "The report: JSON, or CSV with `format=csv`", content((Aging = "application/json"), (String = "text/csv"))), (status = 403, body = Problem), (status = 422, body = Problem)))]
async fn receivables_report(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<TopQuery>,
) -> ApiResult<Response> {
    caller.require(Perm::ReadInvoices)?;
    let aging = receivables::report(&state.db, now_ms(), q.top()?).await?;
    if q.format == Some(Format::Csv) {
        return Ok(csv::response("receivables", report_csv::aging(&aging)));
    }
    Ok(Json(aging).into_response())
}

/// Subscriber movements per local day or month: created, isolated, re-activated, terminated.
#[utoipa::path(get, path = "/reports/subscribers", tag = "reports", security(("bearer" = [])),
    params(ReportQuery),
    responses((status = 200, description = "The report: JSON, or CSV with `format=csv`", content((Vec<Movements> = "application/json"), (String = "text/csv"))), (status = 403, body = Problem), (status = 422, body = Problem)))]
async fn subscribers_report(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<ReportQuery>,
) -> ApiResult<Response> {
    caller.require(Perm::ReadSubscriptions)?;
    let r = resolve(&state, &q).await?;
    let rows = subscribers::report(&state.db, r.range, r.period, r.offset).await?;
    if r.csv {
        let body = report_csv::movements(&rows, r.period, r.offset);
        return Ok(csv::response("subscribers", body));
    }
    Ok(Json(rows).into_response())
}

/// What the usage report ranks, or whose usage it shows over time.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UsageQuery {
    /// Rank by `site` (default), `customer` or `account`.
    pub by: Option<UsageBy>,
    /// With `by`: show this site id, customer id or account per period instead of a ranking.
    pub key: Option<String>,
    /// Entries in a ranking (1-10000, default 50).
    pub top: Option<u32>,
}

/// Usage (online time, traffic, sessions) from the usage ledger: the top sites, customers or
/// accounts in a range, or (with `key`) one of them per local day or month. Sites are ranked
/// over the range itself; customers and accounts over the whole local months it touches
/// (read in order from a monthly summary: a ranking over days would sum every account).
#[utoipa::path(get, path = "/reports/usage", tag = "reports", security(("bearer" = [])),
    params(ReportQuery, UsageQuery),
    responses((status = 200, description = "The report: JSON, or CSV with `format=csv`", content((Vec<UsageLine> = "application/json"), (String = "text/csv"))), (status = 403, body = Problem), (status = 422, body = Problem)))]
async fn usage_report(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<ReportQuery>,
    Query(u): Query<UsageQuery>,
) -> ApiResult<Response> {
    caller.require(Perm::ReadSubscriptions)?;
    let r = resolve(&state, &q).await?;
    let by = u.by.unwrap_or(UsageBy::Site);
    let top = TopQuery {
        top: u.top,
        format: None,
    }
    .top()?;
    let rows = match &u.key {
        Some(key) => usage::series(&state.db, r.range, r.period, Some((by, key)), r.offset).await?,
        None => {
            // A ranking without a range covers this local month: the first entries of its
            // monthly summary.
            let range = if q.from.is_none() && q.to.is_none() {
                Range::last_months(now_ms(), r.offset, 1)
            } else {
                r.range
            };
            usage::ranking(&state.db, range, by, top, r.offset, now_ms()).await?
        }
    };
    if r.csv {
        return Ok(csv::response(
            "usage",
            report_csv::usage(&rows, r.period, r.offset),
        ));
    }
    Ok(Json(rows).into_response())
}

/// Range of a list export.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ExportQuery {
    /// From (unix ms); default: everything.
    pub from: Option<i64>,
    /// Until, excluded (unix ms); default: everything.
    pub to: Option<i64>,
}

/// A whole list as CSV, newest first, streamed as it is read: `customers`, `subscriptions`,
/// `invoices`, `payments`, `revenue`, `vouchers` (codes without passwords), `accounting` or
/// `audit`. Times are local at the operator's offset, money in minor units.
#[utoipa::path(get, path = "/exports/{name}", tag = "reports", security(("bearer" = [])),
    params(("name" = String, Path, description = "the list"), ExportQuery),
    responses((status = 200, content_type = "text/csv", body = String), (status = 403, body = Problem),
              (status = 404, body = Problem)))]
async fn export_list(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    Query(q): Query<ExportQuery>,
) -> ApiResult<Response> {
    let Some(export) = mikrobill_core::exports::find(name.trim_end_matches(".csv")) else {
        let known: Vec<&str> = mikrobill_core::exports::EXPORTS
            .iter()
            .map(|e| e.name)
            .collect();
        return Err(Problem::not_found(format!(
            "no export {name:?}; there are {}",
            known.join(", ")
        )));
    };
    caller.require(export.perm)?;
    let offset = mikrobill_core::settings::billing(&state.db)
        .await?
        .utc_offset_minutes;
    let (from, to) = (q.from.unwrap_or(i64::MIN), q.to.unwrap_or(i64::MAX));
    if from >= to {
        return Err(Problem::invalid("from", "must be before `to`"));
    }
    Ok(csv::stream(state.db.clone(), export, from, to, offset))
}
