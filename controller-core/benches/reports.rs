//! Report latency over a large generated ledger: 100,000 customers with a PPPoE subscription
//! each, three invoices per customer (one in ten unpaid), a payment per paid invoice and
//! 200,000 cash voucher sales in the revenue ledger, isolation events, and 10,000,000
//! accounting records whose usage ledger (`usage_sessions`, `usage_daily`) is derived from
//! them as the 0015 migration's backfill does (and `revenue_daily` from the revenue rows, the
//! monthly, per-customer, per-account, per-site and voucher sales summaries by the data
//! steps). Every report the admin page and the API serve
//! is then run repeatedly through the same `reports::*` functions; the table shows p50, p99
//! and max per report. Rows are generated inside the database (a recursive series), so
//! building the data set is bounded by the engine, not the bench.
//!
//! `cargo bench -p mikrobill-core --bench reports` (SQLite in a temporary directory; with
//! `BENCH_POSTGRES_URL` set, PostgreSQL as well). `BENCH_CUSTOMERS` and `BENCH_RECORDS` scale
//! the data set, `BENCH_RUNS` the repetitions (default 50); `BENCH_SKIP_SQLITE` runs
//! PostgreSQL alone; `BENCH_DIR` keeps the SQLite database there, `BENCH_KEEP_POSTGRES` the
//! PostgreSQL one. A database that already holds the data (`BENCH_DIR` of an earlier run, or
//! `BENCH_POSTGRES_DB` naming a kept one) is migrated and measured again without generating.

use mikrobill_core::db::{Backend, Db};
use mikrobill_core::reports::receivables;
use mikrobill_core::reports::revenue::{self, RevenueBy};
use mikrobill_core::reports::subscribers;
use mikrobill_core::reports::usage::{self, UsageBy};
use mikrobill_core::reports::voucher_sales::{self, SalesBy};
use mikrobill_core::reports::{Period, Range};
use std::time::{Duration, Instant};

const DAY: i64 = 86_400_000;
const SITES: i64 = 20;
const OFFSET: i32 = 420;

fn knob(name: &str, default: i64) -> i64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A subquery of one column `i` counting from 0 to `n - 1`.
fn series(db: &Db, n: i64) -> String {
    match db.backend {
        // BIGINT, so day arithmetic on `i` cannot overflow PostgreSQL's 32-bit integer.
        Backend::Postgres => format!(
            "(SELECT CAST(generate_series(0, {}) AS BIGINT) AS i) AS n",
            n - 1
        ),
        Backend::Sqlite => format!(
            "(WITH RECURSIVE s(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM s WHERE i < {}) SELECT i FROM s) AS n",
            n - 1
        ),
    }
}

async fn exec(db: &Db, sql: String) {
    sqlx::query(sqlx::AssertSqlSafe(sql.clone()))
        .execute(&db.pool)
        .await
        .unwrap_or_else(|e| panic!("{e}: {sql}"));
}

async fn generate(db: &Db, customers: i64, records: i64, now: i64) {
    for s in 0..SITES {
        exec(
            db,
            format!(
                "INSERT INTO sites (id, name, created_at) VALUES ('site{s}', 'Site {s}', {now})"
            ),
        )
        .await;
    }
    for p in 0..5 {
        exec(db, format!(
            "INSERT INTO plans (id, name, price, kind, created_at) VALUES ('p{p}', 'Home {p}', {}, 'pppoe', {now})",
            100_000 + p * 50_000
        ))
        .await;
    }
    for h in 0..3 {
        exec(db, format!(
            "INSERT INTO plans (id, name, price, kind, created_at) VALUES ('h{h}', 'Voucher {h}', {}, 'hotspot', {now})",
            3_000 + h * 2_000
        ))
        .await;
    }
    let c = series(db, customers);
    exec(
        db,
        format!(
            "INSERT INTO customers (id, number, name, created_at, updated_at) \
         SELECT 'c' || i, 'C' || i, 'Customer ' || i, {now} - (i % 700) * {DAY}, {now} FROM {c}"
        ),
    )
    .await;
    exec(db, format!(
        "INSERT INTO subscriptions (id, customer_id, plan_id, site_id, username, password, billing_day, due_days, \
         grace_days, status, next_cycle_at, started_at, created_at, updated_at) \
         SELECT 's' || i, 'c' || i, 'p' || (i % 5), 'site' || (i % {SITES}), 'u' || i, 'x', 1, 7, 3, \
         CASE WHEN i % 50 = 0 THEN 'isolated' ELSE 'active' END, {now}, {now} - (i % 700) * {DAY}, \
         {now} - (i % 700) * {DAY}, {now} FROM {c}"
    ))
    .await;
    let inv = series(db, customers * 3);
    exec(db, format!(
        "INSERT INTO invoices (id, number, customer_id, subscription_id, kind, subtotal, tax, total, tax_rate_bp, \
         tax_inclusive, amount_paid, status, issued_at, due_at) \
         SELECT 'i' || i, 'INV' || i, 'c' || (i / 3), 's' || (i / 3), 'subscription', 150000, 0, 150000, 0, 0, \
         CASE WHEN i % 10 = 0 THEN 0 ELSE 150000 END, CASE WHEN i % 10 = 0 THEN 'unpaid' ELSE 'paid' END, \
         {now} - (i % 3) * 30 * {DAY} - (i % 29) * {DAY}, {now} - (i % 3) * 30 * {DAY} - (i % 29) * {DAY} + 7 * {DAY} \
         FROM {inv}"
    ))
    .await;
    exec(db, format!(
        "INSERT INTO revenue (source, reference, amount, received_at, method, plan_id, site_id) \
         SELECT 'payment', 'pay' || i, 150000, {now} - (i % 365) * {DAY} - (i % 86400) * 1000, \
         CASE WHEN i % 3 = 0 THEN 'transfer' WHEN i % 7 = 0 THEN 'gateway' ELSE 'cash' END, \
         'p' || (i % 5), 'site' || (i % {SITES}) FROM {inv} WHERE i % 10 <> 0"
    ))
    .await;
    let v = series(db, 200_000);
    exec(
        db,
        format!(
            "INSERT INTO vouchers (code, plan_id, site_id, status, created_at, price, sold_at) \
         SELECT 'V' || i, 'h' || (i % 3), 'site' || (i % {SITES}), 'sold', {}, 5000, \
         {now} - (i % 365) * {DAY} - (i % 86400) * 1000 FROM {v}",
            now - 400 * DAY
        ),
    )
    .await;
    exec(
        db,
        "INSERT INTO revenue (source, reference, amount, received_at, method, plan_id, site_id) \
         SELECT 'voucher_sale', code, price, sold_at, 'cash', plan_id, site_id FROM vouchers"
            .into(),
    )
    .await;
    let e = series(db, customers / 10);
    exec(db, format!(
        "INSERT INTO events (kind, customer_id, subscription_id, payload, created_at) \
         SELECT CASE WHEN i % 3 = 0 THEN 'subscription.reactivated' ELSE 'subscription.isolated' END, \
         'c' || i, 's' || i, '{{}}', {now} - (i % 365) * {DAY} FROM {e}"
    ))
    .await;
    // Ten records per session (Start, eight Interim-Updates, Stop), each session on one of the
    // last 90 days, spread over every customer's account.
    let r = series(db, records);
    exec(db, format!(
        "INSERT INTO accounting_records (site_id, record_id, nas_identifier, session_id, username, status, event_time, \
         session_time_secs, input_octets, output_octets, input_packets, output_packets, received_at) \
         SELECT 'site' || ((i / 10) % {customers} % {SITES}), 'r' || i, 'nas', 'sess' || (i / 10), \
         'u' || ((i / 10) % {customers}), \
         CASE WHEN i % 10 = 0 THEN 'start' WHEN i % 10 = 9 THEN 'stop' ELSE 'interim-update' END, \
         {now} - ((i / 10) % 90) * {DAY} - (10 - i % 10) * 300000, (i % 10) * 300, (i % 10) * 1000000, \
         (i % 10) * 8000000, 0, 0, {now} FROM {r}"
    ))
    .await;
    exec(
        db,
        "INSERT INTO usage_sessions (site_id, nas_identifier, session_id, username, session_time_secs, \
         input_octets, output_octets, first_at, last_at) \
         SELECT site_id, nas_identifier, session_id, MIN(username), MAX(session_time_secs), MAX(input_octets), \
         MAX(output_octets), MIN(event_time), MAX(event_time) FROM accounting_records \
         GROUP BY site_id, nas_identifier, session_id"
            .into(),
    )
    .await;
    let off = i64::from(OFFSET) * 60_000;
    exec(db, format!(
        "INSERT INTO usage_daily (day, site_id, username, session_time_secs, input_octets, output_octets, sessions) \
         SELECT ((last_at + {off}) / {DAY}) * {DAY} - {off}, site_id, username, SUM(session_time_secs), \
         SUM(input_octets), SUM(output_octets), COUNT(*) FROM usage_sessions \
         GROUP BY ((last_at + {off}) / {DAY}) * {DAY} - {off}, site_id, username"
    ))
    .await;
    // The months of that usage, as the data step files days stored before usage_monthly,
    // and the customers' months and the voucher sales' days, as 0027's steps file rows
    // stored before those summaries.
    exec(
        db,
        "DELETE FROM data_migrations WHERE name IN ('0019_usage_monthly', \
         '0027_usage_customer_monthly', '0027_voucher_sales_daily', \
         '0030_usage_account_monthly', '0030_usage_site_daily')"
            .into(),
    )
    .await;
    mikrobill_core::db::data_steps::run_pending(db)
        .await
        .expect("usage months");
    // The revenue rows went in by SQL: file them under their days as the ledger would have.
    mikrobill_core::revenue::rebuild_daily(db)
        .await
        .expect("revenue summary");
    // Fresh statistics, as a database that has been running would have.
    exec(db, "ANALYZE".into()).await;
}

/// Runs `f` `runs` times after one warm-up; returns (p50, p99, max).
async fn time<F, Fut>(runs: usize, mut f: F) -> (Duration, Duration, Duration)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    f().await;
    let mut samples = Vec::with_capacity(runs);
    for _ in 0..runs {
        let t = Instant::now();
        f().await;
        samples.push(t.elapsed());
    }
    samples.sort();
    let at =
        |q: f64| samples[((samples.len() as f64 * q).ceil() as usize).clamp(1, samples.len()) - 1];
    (at(0.50), at(0.99), *samples.last().unwrap())
}

fn ms(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1000.0)
}

async fn bench(name: &str, url: &str, customers: i64, records: i64, runs: usize) {
    let db = Db::open(url).await.expect("database");
    let now = mikrobill_core::db::now_ms();
    let started = Instant::now();
    let kept: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM sites")
        .fetch_one(&db.pool)
        .await
        .expect("count sites");
    if kept == 0 {
        generate(&db, customers, records, now).await;
    } else {
        println!("\n{name}: measuring the data an earlier run kept");
    }
    let built = (kept == 0).then(|| started.elapsed());
    let month = Range::default_for(Period::Month, now, OFFSET);
    let days = Range::default_for(Period::Day, now, OFFSET);
    if let Some(built) = built {
        println!(
            "\n{name}: {customers} customers, {records} accounting records generated in {:.0} s",
            built.as_secs_f64()
        );
    }
    println!("\n| report | p50 ms | p99 ms | max ms |\n|---|---:|---:|---:|");
    macro_rules! row {
        ($label:expr, $body:expr) => {{
            let label = $label;
            let (p50, p99, max) = time(runs, || async {
                $body.await.expect("report");
            })
            .await;
            println!("| {} | {} | {} | {} |", label, ms(p50), ms(p99), ms(max));
        }};
    }
    row!(
        "dashboard summary",
        mikrobill_core::stats::summary(&db, now, OFFSET)
    );
    row!(
        "revenue by source, 12 months",
        revenue::report(&db, month, Period::Month, RevenueBy::Source, OFFSET)
    );
    row!(
        "revenue by site, 30 days",
        revenue::report(&db, days, Period::Day, RevenueBy::Site, OFFSET)
    );
    row!(
        "revenue by plan, 12 months",
        revenue::report(&db, month, Period::Month, RevenueBy::Plan, OFFSET)
    );
    row!(
        "voucher sales by plan, 30 days",
        voucher_sales::report(&db, days, Period::Day, SalesBy::Plan, OFFSET)
    );
    row!(
        "voucher sales by site, 12 months",
        voucher_sales::report(&db, month, Period::Month, SalesBy::Site, OFFSET)
    );
    row!(
        "receivables aging, top 50",
        receivables::report(&db, now, 50)
    );
    row!(
        "subscriber movements, 12 months",
        subscribers::report(&db, month, Period::Month, OFFSET)
    );
    let this_month = Range::last_months(now, OFFSET, 1);
    let last_month = Range {
        from: Range::last_months(now, OFFSET, 2).from,
        to: this_month.from,
    };
    for (label, by) in [
        ("site", UsageBy::Site),
        ("customer, top 50", UsageBy::Customer),
        ("account, top 50", UsageBy::Account),
    ] {
        row!(
            format!("usage by {label}, this month so far"),
            usage::ranking(&db, this_month, by, 50, OFFSET, now)
        );
        row!(
            format!("usage by {label}, last whole month"),
            usage::ranking(&db, last_month, by, 50, OFFSET, now)
        );
        // Sites over exactly the 30 days; customers and accounts over the two whole months
        // those days touch (see `usage::ranking_range`).
        let covers = if by == UsageBy::Site {
            "30 days"
        } else {
            "its 2 whole months"
        };
        row!(
            format!("usage by {label}, last 30 days ({covers})"),
            usage::ranking(&db, days, by, 50, OFFSET, now)
        );
    }
    row!(
        "usage of one account per day, 30 days",
        usage::series(
            &db,
            days,
            Period::Day,
            Some((UsageBy::Account, "u4242")),
            OFFSET
        )
    );
    row!(
        "usage of everything per day, 30 days",
        usage::series(&db, days, Period::Day, None, OFFSET)
    );
    db.close().await;
}

#[tokio::main]
async fn main() {
    let customers = knob("BENCH_CUSTOMERS", 100_000);
    let records = knob("BENCH_RECORDS", 10_000_000);
    let runs = knob("BENCH_RUNS", 50) as usize;
    let dir = tempfile::tempdir().expect("temporary directory");
    // BENCH_DIR keeps the generated SQLite database for a look with `sqlite3` afterwards.
    let keep = std::env::var("BENCH_DIR")
        .ok()
        .map(std::path::PathBuf::from);
    let url = mikrobill_core::db::sqlite_url_for_dir(keep.as_deref().unwrap_or(dir.path()));
    if std::env::var("BENCH_SKIP_SQLITE").is_err() {
        bench("SQLite", &url, customers, records, runs).await;
    }
    if let Ok(admin_url) = std::env::var("BENCH_POSTGRES_URL") {
        // A database of its own, dropped afterwards: the bench fills every table.
        let reuse = std::env::var("BENCH_POSTGRES_DB").ok();
        let name = reuse
            .clone()
            .unwrap_or_else(|| format!("mbbench_reports_{}", std::process::id()));
        let admin = Db::connect(&admin_url).await.expect("PostgreSQL");
        if reuse.is_none() {
            exec(&admin, format!("CREATE DATABASE {name}")).await;
        }
        let base = admin_url
            .rsplit_once('/')
            .map_or(admin_url.as_str(), |(b, _)| b);
        bench(
            "PostgreSQL",
            &format!("{base}/{name}"),
            customers,
            records,
            runs,
        )
        .await;
        // BENCH_KEEP_POSTGRES keeps it for a look with `psql` afterwards.
        if std::env::var("BENCH_KEEP_POSTGRES").is_ok() || reuse.is_some() {
            println!("\nkept PostgreSQL database {name}");
        } else {
            exec(&admin, format!("DROP DATABASE {name}")).await;
        }
    }
}
