//! Usage per site, per customer or per account over a range, and per local day or month
//! for one of them, read from the usage ledger's summaries (`usage_site_daily`,
//! `usage_customer_monthly`, `usage_account_monthly`, `usage_daily` for one account's or
//! customer's days), never from raw accounting.

use super::period::{DAY_MS, Period, Range, start_of};
use super::top_of_sums::TopOfSums;
use crate::db::params::{MAX_PARAMS, Params};
use crate::db::{Backend, Db, DbError};
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

/// The range a ranking over `range` covers. Sites are ranked over exactly `range`
/// (`usage_site_daily`, one row per site and day). Customers and accounts are ranked over
/// the whole local months `range` touches: their order is read from a monthly summary's
/// index, which no window of days has (an exact top list over an arbitrary window sums every
/// active account's days: 380-830 ms for 100,000 accounts), and a month is what their usage
/// is compared with (monthly plans, invoices, fair-usage limits). The end stays at `range.to`
/// when it is no earlier than the end of today: the current month's row holds everything so
/// far.
pub fn ranking_range(range: Range, by: UsageBy, offset_min: i32, now: i64) -> Range {
    if by == UsageBy::Site {
        return range;
    }
    let from = local_month_start(range.from, offset_min);
    let last = local_month_start(range.to - 1, offset_min);
    let next = start_of(last + 32 * DAY_MS, Period::Month, offset_min);
    let today_end = local_day_start(now, offset_min) + DAY_MS;
    Range {
        from,
        to: next.min(range.to.max(today_end)),
    }
}

/// The `top` groups that moved most traffic over [`ranking_range`], largest first.
pub async fn ranking(
    db: &Db,
    range: Range,
    by: UsageBy,
    top: u32,
    offset_min: i32,
    now: i64,
) -> Result<Vec<UsageLine>, DbError> {
    let covered = ranking_range(range, by, offset_min, now);
    // One month is a row per group with that month: the first `top` entries of the ranking
    // index. Several are searched through their months' ranking indexes (`TopOfSums`), and
    // summed per group (a row per group and month) only when that search gives up.
    let one_month = local_month_start(covered.to - 1, offset_min) == covered.from;
    let (table, key, label, join) = match by {
        UsageBy::Site => {
            let rows = sqlx::query(
                "SELECT u.site_id AS k, s.name AS l, CAST(SUM(u.session_time_secs) AS BIGINT) AS secs, \
                 CAST(SUM(u.input_octets) AS BIGINT) AS bin, CAST(SUM(u.output_octets) AS BIGINT) AS bout, \
                 CAST(SUM(u.sessions) AS BIGINT) AS n FROM usage_site_daily u JOIN sites s ON s.id = u.site_id \
                 WHERE u.day >= $1 AND u.day < $2 GROUP BY u.site_id, s.name \
                 ORDER BY CAST(SUM(u.input_octets + u.output_octets) AS BIGINT) DESC, u.site_id LIMIT $3",
            )
            .bind(covered.from)
            .bind(covered.to)
            .bind(i64::from(top))
            .fetch_all(&db.pool)
            .await?;
            return rows.iter().map(|r| line(r, None)).collect();
        }
        UsageBy::Customer => (
            "usage_customer_monthly",
            "customer_id",
            "c.name",
            "JOIN customers c ON c.id = y.k",
        ),
        UsageBy::Account => ("usage_account_monthly", "username", "y.k", ""),
    };
    if !one_month {
        let mut tx = match db.backend {
            // A deferred transaction: one snapshot for every read, and no write lock.
            Backend::Sqlite => db.pool.begin().await?,
            Backend::Postgres => {
                db.pool
                    .begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
                    .await?
            }
        };
        let months = month_starts(covered, offset_min);
        let keys = match top_over_months(&mut tx, table, key, &months, covered, top).await? {
            Searched::Top(keys) => keys,
            // Only the ranking's sum per group; the other sums are read for the top ones.
            Searched::GaveUp(search) => {
                let pruned = match &search {
                    Some(search) => {
                        top_above_floors(&mut tx, (table, key), &months, covered, top, search)
                            .await?
                    }
                    None => None,
                };
                tracing::debug!(
                    months = months.len(),
                    pruned = pruned.is_some(),
                    "usage ranking sums groups"
                );
                match pruned {
                    Some(keys) => keys,
                    None => {
                        sqlx::query_scalar::<_, String>(sqlx::AssertSqlSafe(format!(
                            "SELECT u.{key} FROM {table} u WHERE u.month >= $1 AND u.month < $2 \
                             GROUP BY u.{key} ORDER BY CAST(SUM(u.octets) AS BIGINT) DESC, u.{key} LIMIT $3"
                        )))
                        .bind(covered.from)
                        .bind(covered.to)
                        .bind(i64::from(top))
                        .fetch_all(&mut *tx)
                        .await?
                    }
                }
            }
        };
        let lines = lines_of(&mut tx, (table, key, label, join), covered, &keys).await?;
        tx.commit().await?;
        return Ok(lines);
    }
    let sql = format!(
        "SELECT y.k, {label} AS l, y.secs, y.bin, y.bout, y.n FROM \
         (SELECT u.{key} AS k, u.session_time_secs AS secs, u.input_octets AS bin, \
          u.output_octets AS bout, u.sessions AS n, u.octets AS o FROM {table} u \
          WHERE u.month = $1 ORDER BY u.octets DESC, u.{key} LIMIT $2) y {join} \
         ORDER BY y.o DESC, y.k"
    );
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(covered.from)
        .bind(i64::from(top))
        .fetch_all(&db.pool)
        .await?;
    rows.iter().map(|r| line(r, None)).collect()
}

/// Keys a ranking over several months may look at before it sums every group instead. Where
/// the heavy users of one month are those of the next the search settles within its first
/// pages (512 keys over two months); where they are not (flat-rate usage, where last month's
/// top is this month's middle) it would read most of a month, so it stops early and wastes
/// little (two rounds, about 1,500 index entries) before the sum.
const GIVE_UP_AFTER: usize = 1_024;

/// The local month starts from `covered.from` to before `covered.to`.
fn month_starts(covered: Range, offset_min: i32) -> Vec<i64> {
    let mut months = Vec::new();
    let mut m = covered.from;
    while m < covered.to {
        months.push(m);
        m = start_of(m + 32 * DAY_MS, Period::Month, offset_min);
    }
    months
}

/// What the search over months' ranking indexes found.
enum Searched {
    /// The top keys, in ranking order.
    Top(Vec<String>),
    /// It gave up, with what it had learnt when it had read anything.
    GaveUp(Option<TopOfSums>),
}

/// Groups a ranking sums only those of, after the search gave up, when one month's floor
/// narrows them to at most this many; past it summing every group costs about as much.
const PRUNE_UP_TO: i64 = 25_000;

/// The top keys over the groups that hold their floor in one month ([`TopOfSums::floors`]),
/// or `None` when no month narrows them to [`PRUNE_UP_TO`].
///
/// A key of the top ranks at least as high as the `top`-th known, (`least`, `last`): it totals
/// more than `least`, and then holds the floors of `least + 1`; or it totals `least` and its
/// key is no later than `last`, and it holds the floors of `least`, one octet less. One month
/// where the first floor is above one narrows both: its rows with at least that floor, and
/// those with one octet less whose key is no later than `last` (on flat usage, where many
/// keys share the top total, that bound is what narrows).
async fn top_above_floors(
    conn: &mut sqlx::AnyConnection,
    (table, key): (&str, &str),
    months: &[i64],
    covered: Range,
    top: u32,
    search: &TopOfSums,
) -> Result<Option<Vec<String>>, DbError> {
    let Some((last, least)) = search.top_known() else {
        return Ok(None);
    };
    let Some(floors) = search.floors(least.saturating_add(1)) else {
        return Ok(None);
    };
    let mut narrowest: Option<(i64, i64, i64)> = None;
    for (month, floor) in months.iter().zip(floors) {
        // A key totalling `least` may lack a row in a month whose floor is one or less.
        if floor <= 1 {
            continue;
        }
        // Counted on the ranking index (month, octets DESC, key) alone.
        let n: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT COUNT(*) FROM {table} WHERE month = $1 AND octets >= $2"
        )))
        .persistent(false)
        .bind(*month)
        .bind(floor)
        .fetch_one(&mut *conn)
        .await?;
        if n <= PRUNE_UP_TO && narrowest.is_none_or(|(_, _, fewest)| n < fewest) {
            narrowest = Some((*month, floor, n));
        }
    }
    let Some((month, floor, _)) = narrowest else {
        return Ok(None);
    };
    let keys = sqlx::query_scalar::<_, String>(sqlx::AssertSqlSafe(format!(
        "SELECT u.{key} FROM {table} u WHERE u.month >= $1 AND u.month < $2 AND u.{key} IN \
         (SELECT c.{key} FROM {table} c WHERE c.month = $3 AND c.octets >= $4 \
          AND (c.octets >= $5 OR c.{key} <= $6)) \
         GROUP BY u.{key} ORDER BY CAST(SUM(u.octets) AS BIGINT) DESC, u.{key} LIMIT $7"
    )))
    .persistent(false)
    .bind(covered.from)
    .bind(covered.to)
    .bind(month)
    .bind(floor - 1)
    .bind(floor)
    .bind(last)
    .bind(i64::from(top))
    .fetch_all(&mut *conn)
    .await?;
    Ok(Some(keys))
}

/// The `top` keys of `table` with the most octets over `months`, in ranking order, read
/// from each month's ranking index ([`TopOfSums`]), unless the search gave up.
async fn top_over_months(
    conn: &mut sqlx::AnyConnection,
    table: &str,
    key: &str,
    months: &[i64],
    covered: Range,
    top: u32,
) -> Result<Searched, DbError> {
    // A long top list (the API allows 10,000) would see more keys in its first pages than
    // the search may look at: sum at once.
    if top as usize * months.len() > GIVE_UP_AFTER {
        return Ok(Searched::GaveUp(None));
    }
    let mut search = TopOfSums::new(months.len(), top as usize, GIVE_UP_AFTER);
    while !search.settled() {
        if search.gave_up() {
            return Ok(Searched::GaveUp(Some(search)));
        }
        for read in search.reads() {
            let mut p = Params::of(conn);
            let sql = match &read.after {
                None => format!(
                    "SELECT {key} AS k, octets AS o FROM {table} WHERE month = {} \
                     ORDER BY octets DESC, {key} LIMIT {}",
                    p.one(),
                    p.one()
                ),
                Some(_) => format!(
                    "SELECT {key} AS k, octets AS o FROM {table} WHERE month = {} AND octets <= {} \
                     AND (octets < {} OR {key} > {}) ORDER BY octets DESC, {key} LIMIT {}",
                    p.one(),
                    p.one(),
                    p.one(),
                    p.one(),
                    p.one()
                ),
            };
            // Planned for the bounds at hand, as `fetch_for_keys` is.
            let mut q = sqlx::query_as::<_, (String, i64)>(sqlx::AssertSqlSafe(sql))
                .persistent(false)
                .bind(months[read.month]);
            if let Some((octets, after)) = &read.after {
                q = q.bind(*octets).bind(*octets).bind(after.clone());
            }
            let rows = q.bind(read.limit as i64).fetch_all(&mut *conn).await?;
            search.on_page(&read, rows);
        }
        let unknown = search.unknown();
        for chunk in unknown.chunks(MAX_PARAMS - 2) {
            let mut p = Params::of(conn);
            let sql = format!(
                "SELECT {key} AS k, CAST(SUM(octets) AS BIGINT) AS o FROM {table} \
                 WHERE {key} IN ({}) AND month >= {} AND month < {} GROUP BY {key}",
                p.list(chunk.len()),
                p.one(),
                p.one()
            );
            let rows = fetch_for_keys(conn, sql, chunk, covered).await?;
            let totals = rows
                .iter()
                .map(|r| Ok((r.try_get("k")?, r.try_get("o")?)))
                .collect::<Result<Vec<(String, i64)>, sqlx::Error>>()?;
            search.on_totals(totals);
        }
        search.next_round();
    }
    Ok(Searched::Top(
        search.best().into_iter().map(|(k, _)| k).collect(),
    ))
}

/// Runs `sql`, whose placeholders take `keys` and then `covered`'s ends.
async fn fetch_for_keys(
    conn: &mut sqlx::AnyConnection,
    sql: String,
    keys: &[String],
    covered: Range,
) -> Result<Vec<sqlx::any::AnyRow>, DbError> {
    // Planned for these keys each time: after a few runs PostgreSQL may keep a prepared
    // statement's generic plan, which for a list of hundreds of keys took 5 to 12 s instead
    // of milliseconds on the reports bench.
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).persistent(false);
    for k in keys {
        q = q.bind(k.clone());
    }
    Ok(q.bind(covered.from)
        .bind(covered.to)
        .fetch_all(&mut *conn)
        .await?)
}

/// The usage lines of `keys` over `covered`, in the order of `keys`.
async fn lines_of(
    conn: &mut sqlx::AnyConnection,
    (table, key, label, join): (&str, &str, &str, &str),
    covered: Range,
    keys: &[String],
) -> Result<Vec<UsageLine>, DbError> {
    let mut lines = Vec::with_capacity(keys.len());
    for chunk in keys.chunks(MAX_PARAMS - 2) {
        let mut p = Params::of(conn);
        let sql = format!(
            "SELECT y.k, {label} AS l, y.secs, y.bin, y.bout, y.n FROM \
             (SELECT u.{key} AS k, CAST(SUM(u.session_time_secs) AS BIGINT) AS secs, \
              CAST(SUM(u.input_octets) AS BIGINT) AS bin, CAST(SUM(u.output_octets) AS BIGINT) AS bout, \
              CAST(SUM(u.sessions) AS BIGINT) AS n FROM {table} u \
              WHERE u.{key} IN ({}) AND u.month >= {} AND u.month < {} GROUP BY u.{key}) y {join}",
            p.list(chunk.len()),
            p.one(),
            p.one()
        );
        for r in fetch_for_keys(conn, sql, chunk, covered).await? {
            lines.push(line(&r, None)?);
        }
    }
    let order: std::collections::HashMap<&str, usize> = keys
        .iter()
        .enumerate()
        .map(|(i, k)| (k.as_str(), i))
        .collect();
    lines.sort_by_key(|l| order.get(l.key.as_str()).copied().unwrap_or(usize::MAX));
    Ok(lines)
}

/// Usage per `period` in `range`, of everything or of one site, customer or account.
pub async fn series(
    db: &Db,
    range: Range,
    period: Period,
    only: Option<(UsageBy, &str)>,
    offset_min: i32,
) -> Result<Vec<UsageLine>, DbError> {
    // All usage and a site's read one row per site and day; an account's or a customer's
    // read their accounts' days by username.
    let (table, join, cond) = match only {
        None => ("usage_site_daily", "", String::new()),
        Some((UsageBy::Site, _)) => ("usage_site_daily", "", " AND u.site_id = $3".to_string()),
        Some((by, _)) => {
            let (key, _, join) = by.sql();
            ("usage_daily", join, format!(" AND {key} = $3"))
        }
    };
    let mut q = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT u.day AS d, '' AS k, '' AS l, {SUMS} FROM {table} u {join} \
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
    use proptest::prelude::*;

    const WIB: i32 = 420;

    #[test]
    fn customers_and_accounts_are_ranked_over_whole_months() {
        // 2026-11-25 03:00 WIB.
        let now = 1_795_550_400_000;
        let this_month = local_month_start(now, WIB);
        let today_end = local_day_start(now, WIB) + DAY_MS;
        let last_month = local_month_start(this_month - 1, WIB);
        let r = |from, to| Range { from, to };
        for by in [UsageBy::Customer, UsageBy::Account] {
            let covered = |range| ranking_range(range, by, WIB, now);
            assert_eq!(covered(r(this_month, today_end)), r(this_month, today_end));
            assert_eq!(
                covered(r(last_month, this_month)),
                r(last_month, this_month)
            );
            // The last 30 days: last month and this month so far.
            assert_eq!(
                covered(Range::last_days(now, WIB, 30)),
                r(last_month, today_end)
            );
            // Mid-month in the past: that whole month.
            assert_eq!(
                covered(r(last_month + DAY_MS, last_month + 3 * DAY_MS)),
                r(last_month, this_month)
            );
        }
        // Sites are ranked over exactly the days asked for.
        let days = Range::last_days(now, WIB, 30);
        assert_eq!(ranking_range(days, UsageBy::Site, WIB, now), days);
    }

    proptest! {
        #[test]
        fn a_ranking_covers_the_smallest_whole_months_holding_the_range(
            from in 0i64..4_000_000_000_000, span in 1i64..400 * DAY_MS,
            ahead in -400i64..400, offset in -720i32..=840, account in any::<bool>(),
        ) {
            let range = Range { from, to: from + span };
            let now = from + ahead * DAY_MS;
            let by = if account { UsageBy::Account } else { UsageBy::Customer };
            let c = ranking_range(range, by, offset, now);
            let today_end = local_day_start(now, offset) + DAY_MS;
            // It holds the range, starts on the first month it touches, ends in the month of
            // the range's last instant: on the next month's start, or (in the current month)
            // at the end of today or of the range, whichever is later.
            prop_assert!(c.from <= range.from && c.to >= range.to);
            prop_assert_eq!(c.from, local_month_start(range.from, offset));
            prop_assert_eq!(local_month_start(c.to - 1, offset), local_month_start(range.to - 1, offset));
            prop_assert!(local_month_start(c.to, offset) == c.to || c.to == range.to.max(today_end));
        }
    }
}
