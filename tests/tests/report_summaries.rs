//! The report summaries of migrations 0027 and 0030 against what they sum, on both engines:
//! an account's usage (`usage_account_monthly`) is its usage in the ledger's days over the
//! whole months a range touches, a site's (`usage_site_daily`) its days in the range, and a
//! customer's (`usage_customer_monthly`) the sum of the usage of the accounts its
//! subscriptions hold, also after a subscription is renamed or moved to another customer and
//! after the backfills; voucher
//! sales (read from `voucher_sales_daily`) count and price exactly the sold vouchers, sold at
//! the desk, in a batch to a reseller, bought by a reseller and paid online.

use mikrobill_core::audit::Actor;
use mikrobill_core::db::{Db, now_ms};
use mikrobill_core::plans::{PlanInput, PlanKind};
use mikrobill_core::reports::period::DAY_MS;
use mikrobill_core::reports::usage::{self, UsageBy, UsageLine};
use mikrobill_core::reports::voucher_sales::{self, SalesBy};
use mikrobill_core::reports::{Period, Range};
use mikrobill_core::stats::{local_day_start, local_month_start};
use mikrobill_core::vouchers::ScopeKind;
use mikrobill_core::vouchers::batch::BatchSpec;
use mikrobill_protocol::accounting::{AccountingRecord, AcctStatus, RecordId};
use mikrobill_tests::{Backend, TestDb, init_tracing};
use sqlx::Row;
use std::collections::BTreeMap;

mikrobill_tests::on_both_backends!(
    a_ranking_over_months_is_the_exact_top,
    the_dashboard_counts_each_overdue_subscription_once,
    customer_usage_is_the_sum_of_its_accounts,
    voucher_sales_summary_counts_every_sold_voucher
);

/// The operator's default offset (UTC+7).
const WIB: i32 = 420;

async fn open(backend: Backend) -> (Db, Option<TestDb>, tempfile::TempDir) {
    init_tracing();
    mikrobill_tests::db::open_core(backend).await
}

async fn exec(db: &Db, sql: &str) {
    sqlx::query(sqlx::AssertSqlSafe(sql.to_string()))
        .execute(&db.pool)
        .await
        .unwrap_or_else(|e| panic!("{e}: {sql}"));
}

/// One session of `user` at `at`: a Start and a Stop with `secs` and `octets` (a fifth of it
/// upstream).
fn session(
    site: &str,
    user: &str,
    id: &str,
    at: i64,
    secs: u64,
    octets: u64,
) -> Vec<AccountingRecord> {
    [(AcctStatus::Start, 0), (AcctStatus::Stop, 1)]
        .into_iter()
        .map(|(status, k)| AccountingRecord {
            id: RecordId::derive(site, id, status, secs * k),
            nas_identifier: "router-1".into(),
            nas_ip: None,
            session_id: id.to_string(),
            username: user.to_string(),
            status,
            event_time_ms: at + k as i64 * secs as i64 * 1000,
            session_time_secs: secs * k,
            input_octets: octets / 5 * k,
            output_octets: octets * k,
            input_packets: 0,
            output_packets: 0,
            terminate_cause: None,
            framed_ip: None,
            calling_station_id: None,
        })
        .collect()
}

async fn ingest(db: &Db, site: &str, records: Vec<AccountingRecord>) {
    mikrobill_core::accounting::ingest(db, site, &records)
        .await
        .expect("ingest");
}

/// Usage as (online secs, bytes in, bytes out, sessions).
type Used = (i64, i64, i64, i64);

fn used(l: &UsageLine) -> Used {
    (l.online_secs, l.bytes_in, l.bytes_out, l.sessions)
}

fn add(a: Used, b: Used) -> Used {
    (a.0 + b.0, a.1 + b.1, a.2 + b.2, a.3 + b.3)
}

async fn ranking(db: &Db, range: Range, by: UsageBy, now: i64) -> BTreeMap<String, Used> {
    usage::ranking(db, range, by, 100, WIB, now)
        .await
        .unwrap()
        .iter()
        .map(|l| (l.key.clone(), used(l)))
        .collect()
}

/// Usage per account (`by` = "username") or site (`by` = "site_id") in the usage ledger's
/// days (`usage_daily`, what ingest folds accounting into) from `from` to `to`.
async fn ledger(db: &Db, by: &str, range: Range) -> BTreeMap<String, Used> {
    let rows: Vec<(String, i64, i64, i64, i64)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {by}, CAST(SUM(session_time_secs) AS BIGINT), CAST(SUM(input_octets) AS BIGINT), \
         CAST(SUM(output_octets) AS BIGINT), CAST(SUM(sessions) AS BIGINT) FROM usage_daily \
         WHERE day >= $1 AND day < $2 GROUP BY {by}"
    )))
    .bind(range.from)
    .bind(range.to)
    .fetch_all(&db.pool)
    .await
    .unwrap();
    rows.into_iter()
        .map(|(k, a, b, c, d)| (k, (a, b, c, d)))
        .collect()
}

/// Checks, for every range, that accounts are ranked with their usage in the ledger's days
/// over the whole months the range touches, sites with theirs over the range itself, and each
/// customer with the sum of the account lines of the usernames `owners` gives it; and that
/// a range ranks customers and accounts as the whole months it touches do.
async fn check(db: &Db, ranges: &[Range], owners: &[(&str, &[&str])], now: i64) {
    for range in ranges {
        let months = usage::ranking_range(*range, UsageBy::Account, WIB, now);
        assert_eq!(
            usage::ranking_range(*range, UsageBy::Customer, WIB, now),
            months
        );
        assert_eq!(
            usage::ranking_range(*range, UsageBy::Site, WIB, now),
            *range
        );
        let accounts = ranking(db, *range, UsageBy::Account, now).await;
        assert_eq!(
            accounts,
            ledger(db, "username", months).await,
            "accounts over {range:?}"
        );
        assert_eq!(accounts, ranking(db, months, UsageBy::Account, now).await);
        let sites = ranking(db, *range, UsageBy::Site, now).await;
        assert_eq!(
            sites,
            ledger(db, "site_id", *range).await,
            "sites over {range:?}"
        );
        let customers = ranking(db, *range, UsageBy::Customer, now).await;
        assert_eq!(customers, ranking(db, months, UsageBy::Customer, now).await);
        let mut want = BTreeMap::new();
        for (customer, users) in owners {
            let sum = users
                .iter()
                .filter_map(|u| accounts.get(*u))
                .fold((0, 0, 0, 0), |a, b| add(a, *b));
            if users.iter().any(|u| accounts.contains_key(*u)) {
                want.insert(customer.to_string(), sum);
            }
        }
        assert_eq!(customers, want, "customers over {range:?}");
        // The chart of all usage (from the sites' days) adds up to the ledger's days.
        let series = usage::series(db, *range, Period::Day, None, WIB)
            .await
            .unwrap();
        let total = series.iter().fold((0, 0, 0, 0), |a, l| add(a, used(l)));
        let want = sites.values().fold((0, 0, 0, 0), |a, b| add(a, *b));
        assert_eq!(total, want, "all usage per day over {range:?}");
    }
}

async fn customer_usage_is_the_sum_of_its_accounts(backend: Backend) {
    let (db, pg, _dir) = open(backend).await;
    let now = now_ms();
    for sql in [
        format!(
            "INSERT INTO sites (id, name, created_at) VALUES ('n', 'North', {now}), ('s', 'South', {now})"
        ),
        format!(
            "INSERT INTO plans (id, name, price, kind, created_at) VALUES ('p', 'Home', 100000, 'pppoe', {now})"
        ),
        format!(
            "INSERT INTO customers (id, number, name, created_at, updated_at) VALUES \
             ('ca', 'C1', 'Ani', {now}, {now}), ('cb', 'C2', 'Budi', {now}, {now}), ('cc', 'C3', 'Citra', {now}, {now})"
        ),
    ] {
        exec(&db, &sql).await;
    }
    let subscribe = |id: &str, customer: &str, site: &str, user: &str| {
        format!(
            "INSERT INTO subscriptions (id, customer_id, plan_id, site_id, username, password, billing_day, \
             due_days, grace_days, status, next_cycle_at, started_at, created_at, updated_at) VALUES \
             ('{id}', '{customer}', 'p', '{site}', '{user}', 'x', 1, 7, 3, 'active', {now}, {now}, {now}, {now})"
        )
    };
    // Ani holds two accounts at two sites, Budi one; "tamu" is a voucher (no customer).
    exec(&db, &subscribe("s1", "ca", "n", "ani")).await;
    exec(&db, &subscribe("s2", "ca", "s", "ani2")).await;
    exec(&db, &subscribe("s3", "cb", "n", "budi")).await;
    let this_month = local_month_start(now, WIB);
    let last_month = local_month_start(this_month - 1, WIB);
    // Sessions this month (an hour ago, or on its first day if that is today) and last month.
    let recent = (now - 3_600_000).max(this_month);
    let old = last_month + 3 * DAY_MS;
    ingest(&db, "n", session("n", "ani", "a1", recent, 600, 50_000)).await;
    ingest(&db, "n", session("n", "ani", "a2", old, 300, 10_000)).await;
    ingest(&db, "s", session("s", "ani2", "a3", recent, 60, 7_000)).await;
    ingest(&db, "n", session("n", "budi", "b1", old, 900, 80_000)).await;
    // Budi's account is also used at South, in one batch with a voucher's session.
    let mut batch = session("s", "budi", "b2", recent, 120, 30_000);
    batch.extend(session("s", "tamu", "t1", recent, 30, 999_000));
    ingest(&db, "s", batch).await;

    let today_end = local_day_start(now, WIB) + DAY_MS;
    let r = |from, to| Range { from, to };
    // Whole months, and days that are not: the last 30 days, a day before this month
    // (customers and accounts over last month too, sites over that day), last month without
    // the day of its sessions, the day of the old sessions alone.
    let ranges = [
        r(this_month, today_end),
        r(last_month, this_month),
        r(last_month, today_end),
        Range::last_days(now, WIB, 30),
        r(this_month - DAY_MS, today_end),
        r(last_month + 4 * DAY_MS, this_month),
        r(old - 3_600_000, old + DAY_MS),
    ];
    let whole = ranges[2];
    let owners: &[(&str, &[&str])] = &[("ca", &["ani", "ani2"]), ("cb", &["budi"])];
    check(&db, &ranges, owners, now).await;
    let months = ranking(&db, whole, UsageBy::Customer, now).await;
    assert_eq!(months["ca"], (960, 13_400, 67_000, 3));
    // Days that are not whole months rank customers over the months they touch.
    assert_eq!(
        ranking(
            &db,
            r(last_month + 4 * DAY_MS, this_month),
            UsageBy::Customer,
            now
        )
        .await["cb"],
        (900, 16_000, 80_000, 1)
    );
    assert_eq!(months["cb"], (1_020, 22_000, 110_000, 2));
    assert!(!months.contains_key("cc"), "no usage, no line");

    // Ani's second account is renamed: its usage so far stays with the old name, which no
    // subscription holds any more, and new usage comes under the new name.
    exec(
        &db,
        "UPDATE subscriptions SET username = 'ani-baru' WHERE id = 's2'",
    )
    .await;
    ingest(
        &db,
        "s",
        session("s", "ani-baru", "a4", recent + 1_000, 45, 4_000),
    )
    .await;
    check(
        &db,
        &ranges,
        &[("ca", &["ani", "ani-baru"]), ("cb", &["budi"])],
        now,
    )
    .await;
    // Budi's account moves to Citra, with its history.
    exec(
        &db,
        "UPDATE subscriptions SET customer_id = 'cc' WHERE id = 's3'",
    )
    .await;
    ingest(
        &db,
        "n",
        session("n", "budi", "b3", recent + 2_000, 10, 1_000),
    )
    .await;
    let after: &[(&str, &[&str])] = &[("ca", &["ani", "ani-baru"]), ("cc", &["budi"])];
    check(&db, &ranges, after, now).await;
    // A subscription created for an account that was already used brings its usage along,
    // and one deleted takes it away.
    exec(&db, &subscribe("s4", "cb", "s", "tamu")).await;
    check(
        &db,
        &ranges,
        &[
            ("ca", &["ani", "ani-baru"]),
            ("cb", &["tamu"]),
            ("cc", &["budi"]),
        ],
        now,
    )
    .await;
    exec(&db, "DELETE FROM subscriptions WHERE id = 's4'").await;
    check(&db, &ranges, after, now).await;

    // The backfill of a database whose summary was never written files the same rows.
    let before = ranking(&db, whole, UsageBy::Customer, now).await;
    exec(&db, "DELETE FROM usage_customer_monthly").await;
    exec(
        &db,
        "DELETE FROM data_migrations WHERE name = '0027_usage_customer_monthly'",
    )
    .await;
    assert!(ranking(&db, whole, UsageBy::Customer, now).await.is_empty());
    mikrobill_core::db::data_steps::run_pending(&db)
        .await
        .unwrap();
    assert_eq!(ranking(&db, whole, UsageBy::Customer, now).await, before);
    check(&db, &ranges, after, now).await;
    // So does the backfill of the accounts' months and the sites' days (migration 0030).
    let accounts = ranking(&db, whole, UsageBy::Account, now).await;
    let sites = ranking(&db, whole, UsageBy::Site, now).await;
    exec(&db, "DELETE FROM usage_account_monthly").await;
    exec(&db, "DELETE FROM usage_site_daily").await;
    exec(
        &db,
        "DELETE FROM data_migrations WHERE name IN ('0030_usage_account_monthly', '0030_usage_site_daily')",
    )
    .await;
    assert!(ranking(&db, whole, UsageBy::Account, now).await.is_empty());
    mikrobill_core::db::data_steps::run_pending(&db)
        .await
        .unwrap();
    assert_eq!(ranking(&db, whole, UsageBy::Account, now).await, accounts);
    assert_eq!(ranking(&db, whole, UsageBy::Site, now).await, sites);
    check(&db, &ranges, after, now).await;

    db.close().await;
    if let Some(pg) = pg {
        pg.cleanup().await;
    }
}

/// What each grouping of the sales report should show per local day, computed from the sold
/// vouchers themselves: (day start, key) -> (count, amount).
async fn sold_per_day(db: &Db, by: SalesBy) -> BTreeMap<(i64, Option<String>), (i64, i64)> {
    let col = match by {
        SalesBy::Batch => "batch_id",
        SalesBy::Plan => "plan_id",
        SalesBy::Reseller => "sold_to",
        SalesBy::Site => "site_id",
    };
    let rows: Vec<(Option<String>, i64, i64)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {col}, sold_at, price FROM vouchers WHERE sold_at IS NOT NULL"
    )))
    .fetch_all(&db.pool)
    .await
    .unwrap();
    let mut out = BTreeMap::new();
    for (key, at, price) in rows {
        let e = out.entry((local_day_start(at, WIB), key)).or_insert((0, 0));
        e.0 += 1;
        e.1 += price;
    }
    out
}

async fn sales_report(
    db: &Db,
    by: SalesBy,
    now: i64,
) -> BTreeMap<(i64, Option<String>), (i64, i64)> {
    let range = Range::last_days(now, WIB, 30);
    voucher_sales::report(db, range, Period::Day, by, WIB)
        .await
        .unwrap()
        .into_iter()
        .map(|l| ((l.period_start, l.key), (l.count, l.amount)))
        .collect()
}

async fn voucher_sales_summary_counts_every_sold_voucher(backend: Backend) {
    use mikrobill_core::vouchers::sale;
    let (db, pg, _dir) = open(backend).await;
    let actor = Actor::cli();
    let now = now_ms();
    let north = mikrobill_core::sites::create(&db, &actor, "North")
        .await
        .unwrap();
    let plan = |name: &str, price: i64| PlanInput {
        name: name.into(),
        kind: PlanKind::Hotspot,
        price,
        rate_limit: None,
        time_limit_secs: Some(86_400),
        data_limit_bytes: None,
        validity_secs: Some(86_400),
        shared_users: Some(1),
        interim_interval_secs: Some(300),
        router_group: None,
        address_list: None,
        mac_lock: false,
        fup_rate_limit: None,
        isolation_profile: None,
    };
    let mut tx = db.begin().await.unwrap();
    let day = mikrobill_core::plans::create_in(&mut tx, &actor, &plan("Harian", 5_000), now)
        .await
        .unwrap();
    let week = mikrobill_core::plans::create_in(&mut tx, &actor, &plan("Mingguan", 20_000), now)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let spec = |plan_id: &str, count: i64, site: Option<&str>| BatchSpec {
        plan_id: plan_id.into(),
        count,
        scope: if site.is_some() {
            ScopeKind::Site
        } else {
            ScopeKind::All
        },
        site_id: site.map(str::to_string),
        group_id: None,
        prefix: None,
        length: Some(8),
        password_mode: None,
        password_length: None,
        password_digits: false,
        price: None,
        note: None,
    };
    let reseller = mikrobill_core::admins::create(
        &db,
        &actor,
        mikrobill_core::admins::NewAdmin {
            username: "toko".into(),
            password: "reseller-password-1".into(),
            role: mikrobill_core::auth::Role::Reseller,
            display_name: None,
        },
    )
    .await
    .unwrap();
    mikrobill_core::admins::credit_reseller(&db, &actor, &reseller.id, 1_000_000, None)
        .await
        .unwrap();

    // At the desk: two of a North batch, one at another price; the third is never sold.
    let desk =
        mikrobill_core::vouchers::batch::generate(&db, &actor, spec(&day.id, 3, Some(&north.id)))
            .await
            .unwrap();
    let codes: Vec<String> =
        sqlx::query_scalar("SELECT code FROM vouchers WHERE batch_id = $1 ORDER BY code")
            .bind(&desk.id)
            .fetch_all(&db.pool)
            .await
            .unwrap();
    sale::sell_voucher(&db, &actor, &codes[0], None)
        .await
        .unwrap();
    sale::sell_voucher(&db, &actor, &codes[1], Some(4_500))
        .await
        .unwrap();
    // A sold voucher revoked afterwards still was sold.
    mikrobill_core::vouchers::revoke_voucher(&db, &actor, &codes[1])
        .await
        .unwrap();
    // A batch sold to the reseller after one of its vouchers went at the desk: the rest.
    let sold_batch =
        mikrobill_core::vouchers::batch::generate(&db, &actor, spec(&week.id, 4, None))
            .await
            .unwrap();
    let first: String = sqlx::query_scalar("SELECT MIN(code) FROM vouchers WHERE batch_id = $1")
        .bind(&sold_batch.id)
        .fetch_one(&db.pool)
        .await
        .unwrap();
    sale::sell_voucher(&db, &actor, &first, None).await.unwrap();
    let s = sale::sell_batch(&db, &actor, &sold_batch.id, &reseller.id)
        .await
        .unwrap();
    assert_eq!(s.sold, 3);
    // The reseller buys a batch of its own; a buyer pays one online.
    sale::buy(&db, &actor, &reseller.id, spec(&day.id, 5, Some(&north.id)))
        .await
        .unwrap();
    let mut tx = db.begin().await.unwrap();
    sale::issue_paid(&mut tx, &actor, &week.id, None, 19_000, "gateway")
        .await
        .unwrap();
    tx.commit().await.unwrap();

    for by in [
        SalesBy::Batch,
        SalesBy::Plan,
        SalesBy::Reseller,
        SalesBy::Site,
    ] {
        let want = sold_per_day(&db, by).await;
        assert_eq!(sales_report(&db, by, now).await, want, "{by:?}");
    }
    let total: (i64, i64) = sales_report(&db, SalesBy::Plan, now)
        .await
        .values()
        .fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1));
    assert_eq!(
        total,
        (
            2 + 1 + 3 + 5 + 1,
            5_000 + 4_500 + 4 * 20_000 + 5 * 5_000 + 19_000
        )
    );

    // Sales moved back in time by SQL (as the demo does) are refiled by a rebuild, and the
    // backfill of a database that never had the summary files the same rows.
    exec(
        &db,
        &format!(
            "UPDATE vouchers SET sold_at = sold_at - {} WHERE batch_id = '{}'",
            3 * DAY_MS,
            sold_batch.id
        ),
    )
    .await;
    mikrobill_core::vouchers::sales_daily::rebuild(&db)
        .await
        .unwrap();
    let moved = sales_report(&db, SalesBy::Batch, now).await;
    assert_eq!(moved, sold_per_day(&db, SalesBy::Batch).await);
    exec(&db, "DELETE FROM voucher_sales_daily").await;
    exec(
        &db,
        "DELETE FROM data_migrations WHERE name = '0027_voucher_sales_daily'",
    )
    .await;
    assert!(sales_report(&db, SalesBy::Batch, now).await.is_empty());
    mikrobill_core::db::data_steps::run_pending(&db)
        .await
        .unwrap();
    assert_eq!(sales_report(&db, SalesBy::Batch, now).await, moved);

    db.close().await;
    if let Some(pg) = pg {
        pg.cleanup().await;
    }
}

/// A ranking of accounts over several months (read month by month from the ranking indexes
/// until no unread account can enter) is the exact top of the sums, ties broken by the smaller
/// name: when the heavy users of every month are the same, when every account ties (flat-rate
/// usage, where the search settles on names), when usage is scattered, some months with no
/// row or zero octets, and when one month's heaviest are the next one's lightest (the search
/// gives up and every account is summed).
async fn a_ranking_over_months_is_the_exact_top(backend: Backend) {
    let (db, _t, _dir) = open(backend).await;
    let now = now_ms();
    let this = local_month_start(now, WIB);
    let m0 = local_month_start(this - DAY_MS, WIB);
    let m1 = local_month_start(m0 - DAY_MS, WIB);
    let months = [m1, m0, this];
    let range = Range { from: m1, to: now };
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    for shape in ["skewed", "flat", "scattered", "anti", "ties"] {
        exec(&db, "DELETE FROM usage_account_monthly").await;
        let mut sums: BTreeMap<String, i64> = BTreeMap::new();
        let mut values = Vec::new();
        // Enough accounts that the search gives up on the last shape before it has read them all.
        let accounts = if matches!(shape, "anti" | "ties") {
            10_000
        } else {
            3_000
        };
        for i in 0..accounts {
            let name = format!("a{i:05}");
            for (j, month) in months.iter().enumerate() {
                seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
                let octets = match shape {
                    "skewed" => 1_000_000_000 / (i + 1) + j as i64,
                    "flat" => 3_000_000,
                    // Last month's heaviest are this month's lightest: the search cannot
                    // settle early, gives up and sums every account.
                    "anti" => match j {
                        0 => accounts - i,
                        1 => 2 * i,
                        _ => 1,
                    },
                    // The reports bench's shape: a few monthly figures shared by thousands,
                    // and no account at the top of both months, so the top total is shared
                    // too. The search gives up; the sum narrows to one month's heavier rows
                    // and the keys before the last of the top known.
                    "ties" => match (j, i % 3 == 0, i % 10 == 1) {
                        (0, true, _) => 4_000_000,
                        (0, false, _) => 3_000_000,
                        (1, true, _) => 1_000_000,
                        (1, false, true) => 2_000_000,
                        (1, false, false) => 1_000_000,
                        _ => 0,
                    },
                    _ => match (seed >> 33) % 7 {
                        0 => continue,
                        1 => 0,
                        r => (r as i64) * 1_000 + ((seed >> 40) % 3) as i64,
                    },
                };
                *sums.entry(name.clone()).or_default() += octets;
                values.push(format!(
                    "('{name}', {month}, 60, {}, {}, 1, {octets})",
                    octets / 4,
                    octets - octets / 4
                ));
            }
        }
        for chunk in values.chunks(500) {
            exec(
                &db,
                &format!(
                    "INSERT INTO usage_account_monthly (username, month, session_time_secs, \
                     input_octets, output_octets, sessions, octets) VALUES {}",
                    chunk.join(", ")
                ),
            )
            .await;
        }
        let mut want: Vec<(String, i64)> = sums.into_iter().collect();
        want.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        // 50 as the pages show; 1,000 is summed at once (more than the search may look at).
        for top in [50, 1_000] {
            let got: Vec<(String, i64)> =
                usage::ranking(&db, range, UsageBy::Account, top as u32, WIB, now)
                    .await
                    .unwrap()
                    .into_iter()
                    .map(|l| (l.key, l.bytes_in + l.bytes_out))
                    .collect();
            assert_eq!(got, want[..top.min(want.len())], "{shape} usage, top {top}");
        }
    }
}

/// The dashboard's overdue count and each subscription's stored `overdue_after` (migration
/// 0033's triggers) against `billing::overdue` over the invoices as they stand: grace days
/// from none to three, invoices due just before, at and just after the end of their grace,
/// paid and void ones, unpaid invoices of no subscription; then again after invoices are
/// paid, voided, reopened, moved to another due date or subscription and deleted, and grace
/// days change.
async fn the_dashboard_counts_each_overdue_subscription_once(backend: Backend) {
    let (db, _t, _dir) = open(backend).await;
    let now = now_ms();
    exec(
        &db,
        &format!("INSERT INTO sites (id, name, created_at) VALUES ('site', 'Site', {now})"),
    )
    .await;
    exec(&db, &format!(
        "INSERT INTO plans (id, name, price, kind, created_at) VALUES ('p', 'Home', 100000, 'pppoe', {now})"
    ))
    .await;
    let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = |n: u64| {
        seed = seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (seed >> 33) % n
    };
    const SUBSCRIPTIONS: u64 = 120;
    let mut invoices = 0;
    for i in 0..SUBSCRIPTIONS {
        let grace = i % 4;
        let status = if i % 7 == 0 { "isolated" } else { "active" };
        exec(
            &db,
            &format!(
                "INSERT INTO customers (id, number, name, created_at, updated_at) \
             VALUES ('c{i}', 'C{i}', 'Customer {i}', {now}, {now})"
            ),
        )
        .await;
        exec(&db, &format!(
            "INSERT INTO subscriptions (id, customer_id, plan_id, site_id, username, password, billing_day, \
             due_days, grace_days, status, next_cycle_at, started_at, created_at, updated_at) \
             VALUES ('s{i}', 'c{i}', 'p', 'site', 'u{i}', 'x', 1, 7, {grace}, '{status}', {now}, {now}, {now}, {now})"
        ))
        .await;
        for _ in 0..next(5) {
            // Around the end of the grace period: a day either side, or the very millisecond.
            let end = now - grace as i64 * DAY_MS;
            let due = end + [0, -1, 1, -DAY_MS, DAY_MS][next(5) as usize];
            let state = ["unpaid", "unpaid", "paid", "void"][next(4) as usize];
            invoices += 1;
            exec(&db, &format!(
                "INSERT INTO invoices (id, number, customer_id, subscription_id, kind, period_start, subtotal, \
                 tax, total, tax_rate_bp, tax_inclusive, status, issued_at, due_at) VALUES \
                 ('i{invoices}', 'INV{invoices}', 'c{i}', 's{i}', 'cycle', {invoices}, 1000, 0, 1000, 0, 0, \
                 '{state}', {due}, {due})"
            ))
            .await;
        }
        if i % 10 == 0 {
            // An overdue invoice of the customer's own, outside any subscription.
            invoices += 1;
            exec(&db, &format!(
                "INSERT INTO invoices (id, number, customer_id, kind, subtotal, tax, total, tax_rate_bp, \
                 tax_inclusive, status, issued_at, due_at) VALUES ('i{invoices}', 'INV{invoices}', 'c{i}', \
                 'manual', 1000, 0, 1000, 0, 0, 'unpaid', 0, 0)"
            ))
            .await;
        }
    }
    check_overdue(&db, now, 10).await;

    for n in 1..=invoices {
        let change = match next(8) {
            0 => "status = 'paid'".to_string(),
            1 => "status = 'void'".to_string(),
            2 => "status = 'unpaid'".to_string(),
            3 => format!(
                "due_at = due_at + {}",
                [-DAY_MS, DAY_MS, -1, 1][next(4) as usize]
            ),
            4 => format!("subscription_id = 's{}'", next(SUBSCRIPTIONS)),
            5 => {
                exec(&db, &format!("DELETE FROM invoices WHERE id = 'i{n}'")).await;
                continue;
            }
            _ => continue,
        };
        exec(
            &db,
            &format!("UPDATE invoices SET {change} WHERE id = 'i{n}'"),
        )
        .await;
    }
    for i in 0..SUBSCRIPTIONS {
        if next(3) == 0 {
            exec(
                &db,
                &format!(
                    "UPDATE subscriptions SET grace_days = {} WHERE id = 's{i}'",
                    next(4)
                ),
            )
            .await;
        }
    }
    check_overdue(&db, now, 10).await;
    let summary = mikrobill_core::stats::summary(&db, now, WIB).await.unwrap();
    assert_eq!(summary.isolated_subscriptions, 18);
}

/// Checks every subscription's `overdue_after` and the dashboard's count against the
/// invoices and grace days in the database, expecting more than `at_least` overdue.
async fn check_overdue(db: &Db, now: i64, at_least: i64) {
    use mikrobill_core::billing::overdue;
    let mut unpaid: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    for r in sqlx::query(
        "SELECT subscription_id, due_at FROM invoices WHERE status = 'unpaid' AND subscription_id IS NOT NULL",
    )
    .fetch_all(&db.pool)
    .await
    .unwrap()
    {
        unpaid.entry(r.get("subscription_id")).or_default().push(r.get("due_at"));
    }
    let mut want = 0;
    for r in sqlx::query("SELECT id, grace_days, overdue_after FROM subscriptions")
        .fetch_all(&db.pool)
        .await
        .unwrap()
    {
        let id: String = r.get("id");
        let grace: i64 = r.get("grace_days");
        let dues = unpaid.get(&id).cloned().unwrap_or_default();
        let stored: Option<i64> = r.get("overdue_after");
        let expected = dues
            .iter()
            .min()
            .map(|due| overdue::overdue_after(*due, grace));
        assert_eq!(
            stored, expected,
            "{id}: unpaid invoices due {dues:?}, {grace} grace days"
        );
        if overdue::any_overdue(&dues, grace, now) {
            want += 1;
        }
    }
    assert!(
        want > at_least,
        "the data holds overdue subscriptions ({want})"
    );
    let summary = mikrobill_core::stats::summary(db, now, WIB).await.unwrap();
    assert_eq!(summary.overdue_subscriptions, want);
}
