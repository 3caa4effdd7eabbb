//! Usage per site, per customer or per account over a range, and per local day or month
//! for one of them, read from the usage ledger (`usage_daily`), never from raw accounting.

use super::period::{DAY_MS, Period, Range, start_of};
use crate::db::{Db, DbError};
use crate::stats::{local_day_start, local_month_start};
use sqlx::Row;

/// What usage is grouped by.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize, utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum UsageBy {
    /// The site the sessions ran at.
    Site,
    /// The customer owning the PPPoE subscription (voucher use names no customer).
    Customer,
    /// The account: voucher code or PPPoE username.
    Account,
}

/// One group's usage, or one period's.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct UsageLine {
    /// Start of the local day or month, for a series; absent for a ranking.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub period_start: Option<i64>,
    /// Site id, customer id or account name.
    pub key: String,
    /// What a person reads for the key.
    pub label: String,
    /// Online time in seconds.
    pub online_secs: i64,
    /// Octets from subscribers.
    pub bytes_in: i64,
    /// Octets to subscribers.
    pub bytes_out: i64,
    /// Sessions started.
    pub sessions: i64,
}

impl UsageBy {
    fn sql(self) -> (&'static str, &'static str, &'static str) {
        match self {
            UsageBy::Site => ("u.site_id", "s.name", "JOIN sites s ON s.id = u.site_id"),
            UsageBy::Customer => (
                "c.id",
                "c.name",
                "JOIN subscriptions sub ON sub.username = u.username \
                 JOIN customers c ON c.id = sub.customer_id",
            ),
            UsageBy::Account => ("u.username", "u.username", ""),
        }
    }
}

const SUMS: &str = "CAST(SUM(u.session_time_secs) AS BIGINT) AS secs, \
    CAST(SUM(u.input_octets) AS BIGINT) AS bin, CAST(SUM(u.output_octets) AS BIGINT) AS bout, \
    CAST(SUM(u.sessions) AS BIGINT) AS n";

fn line(r: &sqlx::any::AnyRow, period_start: Option<i64>) -> Result<UsageLine, DbError> {
    Ok(UsageLine {
        period_start,
        key: r.try_get("k")?,
        label: r.try_get("l")?,
        online_secs: r.try_get("secs")?,
        bytes_in: r.try_get("bin")?,
        bytes_out: r.try_get("bout")?,
        sessions: r.try_get("n")?,
    })
}

/// The summary a ranking over `range` reads, and its time column: `usage_monthly` when the
/// range is whole local months (its end may be the end of today: the current month's row
/// holds everything so far), `usage_daily` otherwise.
pub fn source(range: Range, offset_min: i32, now: i64) -> (&'static str, &'static str) {
    let from_month = local_month_start(range.from, offset_min) == range.from;
    let to_month = local_month_start(range.to, offset_min) == range.to
        || range.to >= local_day_start(now, offset_min) + DAY_MS;
    if from_month && to_month {
        ("usage_monthly", "month")
    } else {
        ("usage_daily", "day")
    }
}

/// The `top` groups that moved most traffic in `range`, largest first (`now` and the
/// offset decide whether whole months can be read, see [`source`]).
pub async fn ranking(
    db: &Db,
    range: Range,
    by: UsageBy,
    top: u32,
    offset_min: i32,
    now: i64,
) -> Result<Vec<UsageLine>, DbError> {
    let (table, col) = source(range, offset_min, now);
    if by == UsageBy::Customer {
        if table == "usage_monthly" {
            return customer_months(db, range, top, offset_min).await;
        }
        return by_customer(db, range, top, table, col).await;
    }
    let (key, label, join) = by.sql();
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {key} AS k, {label} AS l, {SUMS} FROM {table} u {join} \
         WHERE u.{col} >= $1 AND u.{col} < $2 GROUP BY {key}, {label} \
         ORDER BY CAST(SUM(u.input_octets + u.output_octets) AS BIGINT) DESC, {key} LIMIT $3"
    )))
    .bind(range.from)
    .bind(range.to)
    .bind(i64::from(top))
    .fetch_all(&db.pool)
    .await?;
    rows.iter().map(|r| line(r, None)).collect()
}

/// The `top` customers by traffic over whole months, from the per-customer summary
/// (`usage_customer_monthly`, usage_monthly mapped to customers as it is written). One month
/// is the first `top` entries of its ranking index; several are summed per customer.
async fn customer_months(
    db: &Db,
    range: Range,
    top: u32,
    offset_min: i32,
) -> Result<Vec<UsageLine>, DbError> {
    // `source` chose months, so `range.from` starts one; a range within it names that row
    // by equality, which the ranking index serves in order.
    let one_month = super::period::starts(range, Period::Month, offset_min).len() == 1;
    let sql = if one_month {
        "SELECT c.id AS k, c.name AS l, u.session_time_secs AS secs, u.input_octets AS bin, \
         u.output_octets AS bout, u.sessions AS n FROM usage_customer_monthly u \
         JOIN customers c ON c.id = u.customer_id WHERE u.month = $1 \
         ORDER BY u.octets DESC, u.customer_id LIMIT $2"
    } else {
        "SELECT c.id AS k, c.name AS l, y.secs, y.bin, y.bout, y.n FROM \
         (SELECT u.customer_id AS cid, CAST(SUM(u.session_time_secs) AS BIGINT) AS secs, \
          CAST(SUM(u.input_octets) AS BIGINT) AS bin, CAST(SUM(u.output_octets) AS BIGINT) AS bout, \
          CAST(SUM(u.sessions) AS BIGINT) AS n, CAST(SUM(u.octets) AS BIGINT) AS o \
          FROM usage_customer_monthly u WHERE u.month >= $1 AND u.month < $2 \
          GROUP BY u.customer_id ORDER BY CAST(SUM(u.octets) AS BIGINT) DESC, u.customer_id \
          LIMIT $3) y JOIN customers c ON c.id = y.cid ORDER BY y.o DESC, c.id"
    };
    let mut q = sqlx::query(sql).bind(range.from);
    if !one_month {
        q = q.bind(range.to);
    }
    let rows = q.bind(i64::from(top)).fetch_all(&db.pool).await?;
    rows.iter().map(|r| line(r, None)).collect()
}

/// The `top` customers by traffic over days: usage is summed per account first (one pass
/// over the range's days), and only those sums are mapped to their customers, instead of
/// joining every day's row to its subscription.
async fn by_customer(
    db: &Db,
    range: Range,
    top: u32,
    table: &str,
    col: &str,
) -> Result<Vec<UsageLine>, DbError> {
    // Days are summed per account before the join (several rows per account). Customers'
    // names are looked up for the top ones only.
    let per_account = format!(
        "(SELECT u.username, SUM(u.session_time_secs) AS secs, SUM(u.input_octets) AS bin, \
         SUM(u.output_octets) AS bout, SUM(u.sessions) AS n FROM {table} u \
         WHERE u.{col} >= $1 AND u.{col} < $2 GROUP BY u.username)"
    );
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT c.id AS k, c.name AS l, y.secs, y.bin, y.bout, y.n FROM \
         (SELECT sub.customer_id AS cid, CAST(SUM(x.secs) AS BIGINT) AS secs, \
          CAST(SUM(x.bin) AS BIGINT) AS bin, CAST(SUM(x.bout) AS BIGINT) AS bout, \
          CAST(SUM(x.n) AS BIGINT) AS n FROM {per_account} x \
          JOIN subscriptions sub ON sub.username = x.username GROUP BY sub.customer_id \
          ORDER BY CAST(SUM(x.bin + x.bout) AS BIGINT) DESC, sub.customer_id LIMIT $3) y \
         JOIN customers c ON c.id = y.cid ORDER BY y.bin + y.bout DESC, c.id"
    )))
    .bind(range.from)
    .bind(range.to)
    .bind(i64::from(top))
    .fetch_all(&db.pool)
    .await?;
    rows.iter().map(|r| line(r, None)).collect()
}

/// Usage per `period` in `range`, of everything or of one site, customer or account.
pub async fn series(
    db: &Db,
    range: Range,
    period: Period,
    only: Option<(UsageBy, &str)>,
    offset_min: i32,
) -> Result<Vec<UsageLine>, DbError> {
    let (join, cond) = match only {
        None => ("", String::new()),
        Some((by, _)) => {
            let (key, _, join) = by.sql();
            (join, format!(" AND {key} = $3"))
        }
    };
    let mut q = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT u.day AS d, '' AS k, '' AS l, {SUMS} FROM usage_daily u {join} \
         WHERE u.day >= $1 AND u.day < $2{cond} GROUP BY u.day"
    )))
    .bind(range.from)
    .bind(range.to);
    if let Some((_, key)) = only {
        q = q.bind(key.to_string());
    }
    let rows = q.fetch_all(&db.pool).await?;
    let mut out: Vec<UsageLine> = super::period::starts(range, period, offset_min)
        .into_iter()
        .map(|s| UsageLine {
            period_start: Some(s),
            ..UsageLine::default()
        })
        .collect();
    for r in rows {
        let day: i64 = r.try_get("d")?;
        let start = start_of(day, period, offset_min);
        let got = line(&r, None)?;
        if let Some(slot) = out.iter_mut().find(|l| l.period_start == Some(start)) {
            slot.online_secs += got.online_secs;
            slot.bytes_in += got.bytes_in;
            slot.bytes_out += got.bytes_out;
            slot.sessions += got.sessions;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_months_read_the_monthly_summary() {
        const WIB: i32 = 420;
        // 2026-11-25 03:00 WIB.
        let now = 1_795_550_400_000;
        let this_month = local_month_start(now, WIB);
        let today_end = local_day_start(now, WIB) + DAY_MS;
        let last_month = local_month_start(this_month - 1, WIB);
        let monthly = ("usage_monthly", "month");
        let daily = ("usage_daily", "day");
        let r = |from, to| Range { from, to };
        assert_eq!(source(r(this_month, today_end), WIB, now), monthly);
        assert_eq!(source(r(last_month, this_month), WIB, now), monthly);
        assert_eq!(source(r(last_month, today_end), WIB, now), monthly);
        // Ending mid-month in the past, or starting mid-month: only days are exact.
        assert_eq!(source(r(last_month, this_month + DAY_MS), WIB, now), daily);
        assert_eq!(source(r(this_month + DAY_MS, today_end), WIB, now), daily);
        assert_eq!(source(Range::last_days(now, WIB, 30), WIB, now), daily);
    }
}
