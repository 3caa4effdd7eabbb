//! Accounting ingest: records per second through `accounting::ingest`, the function the edge
//! calls for every batch an agent sends, with the fleet ledger's work included (usage per
//! session, each named voucher's per-site totals, its state, the sync of what changed).
//!
//! The load looks like a NAS, not one user with thousands of sessions: every site has
//! `BENCH_SUBSCRIBERS` subscribers online (half PPPoE accounts, each a customer's
//! subscription, half hotspot vouchers valid at every site), each sending a Start and then
//! Interim-Updates with growing counters; a tenth of them stop and start a new session each
//! round. Batches hold 500 records and every site's agent keeps four in flight, as the agent's
//! uplink does; one or four sites send at once. Each configuration runs twice: each
//! batch stored and folded before its answer (`accounting::ingest`, as the edge did before
//! group commit and the background fold) and the
//! edge's group commit (`accounting::writer::Ingester`), which answers once a group is stored
//! and folds it into the ledger in the background. The table shows records stored (answered)
//! per second, the p50/p99 of one batch from sending to its answer, and the time until the
//! ledger holds every record (`accounting::fold::fold_until_current`).
//!
//! `cargo bench -p mikrobill-core --bench ingest` (SQLite in a temporary directory; with
//! `BENCH_POSTGRES_URL`, PostgreSQL as well). `BENCH_ROUNDS` sets how many interim rounds run,
//! `BENCH_SUBSCRIBERS` the subscribers per site, `BENCH_SITES` the site counts to run (`1,4`),
//! `BENCH_BATCH` the records per batch (500, a drain's; an agent keeping up sends a few at a
//! time); `BENCH_NO_VOUCHERS=1` makes every subscriber
//! a PPPoE account, which leaves the vouchers' ledger step out.

use mikrobill_core::audit::Actor;
use mikrobill_core::db::{Db, now_ms};
use mikrobill_core::plans::{PlanInput, PlanKind};
use mikrobill_core::vouchers::ScopeKind;
use mikrobill_core::vouchers::batch::BatchSpec;
use mikrobill_protocol::accounting::{AccountingRecord, AcctStatus, RecordId};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// One subscriber's current session at a site.
struct Online {
    username: String,
    session: u32,
    seconds: u64,
    octets: u64,
}

fn record(site: &str, s: &Online, status: AcctStatus, at_ms: i64) -> AccountingRecord {
    let session_id = format!("{site}-{}-{}", s.username, s.session);
    AccountingRecord {
        id: RecordId::derive(site, &session_id, status, s.seconds),
        nas_identifier: site.to_string(),
        nas_ip: Some("10.0.0.1".parse().unwrap()),
        session_id,
        username: s.username.clone(),
        status,
        event_time_ms: at_ms,
        session_time_secs: s.seconds,
        input_octets: s.octets / 5,
        output_octets: s.octets,
        input_packets: s.octets / 1000,
        output_packets: s.octets / 800,
        terminate_cause: (status == AcctStatus::Stop).then_some(1),
        framed_ip: Some("10.5.0.9".parse().unwrap()),
        calling_station_id: Some("AA:BB:CC:00:11:22".into()),
    }
}

/// The records one site sends over the run, in the order its NAS would.
fn site_records(
    site: &str,
    vouchers: &[String],
    subscribers: usize,
    rounds: usize,
) -> Vec<AccountingRecord> {
    let start = now_ms() - (rounds as i64 + 1) * 300_000;
    let mut online: Vec<Online> = (0..subscribers)
        .map(|i| Online {
            username: if i % 2 == 0 || vouchers.is_empty() {
                format!("{site}-ppp-{i}")
            } else {
                vouchers[(i / 2) % vouchers.len()].clone()
            },
            session: 0,
            seconds: 0,
            octets: 0,
        })
        .collect();
    let mut out: Vec<AccountingRecord> = online
        .iter()
        .map(|s| record(site, s, AcctStatus::Start, start))
        .collect();
    for round in 1..=rounds {
        let at = start + round as i64 * 300_000;
        for (i, s) in online.iter_mut().enumerate() {
            s.seconds += 300;
            s.octets += 3_000_000 + (i as u64 % 7) * 1_000_000;
            if (i + round) % 10 == 0 {
                out.push(record(site, s, AcctStatus::Stop, at));
                s.session += 1;
                s.seconds = 0;
                s.octets = 0;
                out.push(record(site, s, AcctStatus::Start, at));
            } else {
                out.push(record(site, s, AcctStatus::InterimUpdate, at));
            }
        }
    }
    out
}

/// How batches reach the database.
#[derive(Clone, Copy, PartialEq)]
enum Mode {
    /// One transaction per batch.
    PerBatch,
    /// The edge's group commit.
    Grouped,
}

/// Batches each site's agent keeps in flight (the agent's `IN_FLIGHT`).
const IN_FLIGHT: usize = 4;

async fn run(name: &str, db: Arc<Db>, mode: Mode, sites: usize, subscribers: usize, rounds: usize) {
    let actor = Actor::cli();
    let now = now_ms();
    let mut site_ids = Vec::new();
    for n in 0..sites {
        let site = mikrobill_core::sites::create(&db, &actor, &format!("bench-{n}-{now}"))
            .await
            .unwrap();
        site_ids.push(site.id);
    }
    let plan = {
        let mut tx = db.begin().await.unwrap();
        let plan = mikrobill_core::plans::create_in(
            &mut tx,
            &actor,
            &PlanInput {
                name: format!("bench-{now}"),
                kind: PlanKind::Hotspot,
                price: 5000,
                rate_limit: Some("2M/10M".into()),
                time_limit_secs: Some(30 * 86_400),
                data_limit_bytes: None,
                validity_secs: Some(30 * 86_400),
                shared_users: Some(2),
                interim_interval_secs: Some(300),
                router_group: None,
                address_list: None,
                mac_lock: false,
                fup_rate_limit: None,
                isolation_profile: None,
            },
            now,
        )
        .await
        .unwrap();
        tx.commit().await.unwrap();
        plan
    };
    let voucher_count = (subscribers / 2).max(1) * sites;
    mikrobill_core::vouchers::batch::generate(
        &db,
        &actor,
        BatchSpec {
            plan_id: plan.id.clone(),
            count: voucher_count as i64,
            scope: ScopeKind::All,
            site_id: None,
            group_id: None,
            prefix: Some(format!("B{}", now % 100_000)),
            length: Some(8),
            password_mode: None,
            password_length: None,
            password_digits: false,
            price: None,
            note: None,
        },
    )
    .await
    .unwrap();
    let codes: Vec<String> = sqlx::query_scalar("SELECT code FROM vouchers WHERE plan_id = $1")
        .bind(&plan.id)
        .fetch_all(&db.pool)
        .await
        .unwrap();
    // Every PPPoE account is a customer's subscription, so ingest maps its usage to the
    // customer as it does in production.
    let pppoe = format!("bench-pppoe-{now}");
    sqlx::query(
        "INSERT INTO plans (id, name, price, kind, created_at) VALUES ($1, $1, 100000, 'pppoe', $2)",
    )
    .bind(&pppoe)
    .bind(now)
    .execute(&db.pool)
    .await
    .unwrap();
    for site in &site_ids {
        let accounts: Vec<usize> = (0..subscribers)
            .filter(|i| i % 2 == 0 || codes.is_empty())
            .collect();
        for chunk in accounts.chunks(200) {
            let customers: Vec<String> = chunk
                .iter()
                .map(|i| format!("('c-{site}-{i}', 'N-{site}-{i}', 'Customer {i}', {now}, {now})"))
                .collect();
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "INSERT INTO customers (id, number, name, created_at, updated_at) VALUES {}",
                customers.join(", ")
            )))
            .execute(&db.pool)
            .await
            .unwrap();
            let subscriptions: Vec<String> = chunk
                .iter()
                .map(|i| {
                    format!(
                        "('s-{site}-{i}', 'c-{site}-{i}', '{pppoe}', '{site}', '{site}-ppp-{i}', 'x', 1, 7, 3, \
                         'active', {now}, {now}, {now}, {now})"
                    )
                })
                .collect();
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "INSERT INTO subscriptions (id, customer_id, plan_id, site_id, username, password, \
                 billing_day, due_days, grace_days, status, next_cycle_at, started_at, created_at, \
                 updated_at) VALUES {}",
                subscriptions.join(", ")
            )))
            .execute(&db.pool)
            .await
            .unwrap();
        }
    }
    let per_site: Vec<Vec<AccountingRecord>> = site_ids
        .iter()
        .enumerate()
        .map(|(n, site)| {
            // Each site's vouchers are its own slice, as sold at that site.
            let share = codes.len() / sites;
            site_records(
                site,
                &codes[n * share..(n + 1) * share],
                subscribers,
                rounds,
            )
        })
        .collect();
    let total: usize = per_site.iter().map(Vec::len).sum();
    let ingester = mikrobill_core::accounting::writer::Ingester::start(&db);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for (site, records) in site_ids.into_iter().zip(per_site) {
        let (db, ingester) = (db.clone(), ingester.clone());
        tasks.push(tokio::spawn(async move {
            let site: Arc<str> = site.into();
            let mut in_flight = tokio::task::JoinSet::new();
            let mut answers = Vec::new();
            for batch in records.chunks(env("BENCH_BATCH", 500)) {
                if in_flight.len() == IN_FLIGHT {
                    answers.push(in_flight.join_next().await.unwrap().unwrap());
                }
                let (db, ingester, site, batch) =
                    (db.clone(), ingester.clone(), site.clone(), batch.to_vec());
                in_flight.spawn(async move {
                    let t = Instant::now();
                    match mode {
                        Mode::PerBatch => {
                            mikrobill_core::accounting::ingest(&db, &site, &batch)
                                .await
                                .unwrap();
                        }
                        Mode::Grouped => {
                            ingester.ingest(&site, batch).await.unwrap();
                        }
                    }
                    t.elapsed()
                });
            }
            while let Some(done) = in_flight.join_next().await {
                answers.push(done.unwrap());
            }
            answers
        }));
    }
    let mut commits: Vec<Duration> = Vec::new();
    for t in tasks {
        commits.extend(t.await.unwrap());
    }
    let took = started.elapsed();
    // Answered means stored; the ledger is current once the background fold has caught up.
    mikrobill_core::accounting::fold::fold_until_current(&db)
        .await
        .unwrap();
    let current = started.elapsed();
    commits.sort();
    let pct = |p: f64| commits[((commits.len() - 1) as f64 * p) as usize].as_secs_f64() * 1000.0;
    println!(
        "| {name} | {sites} | {subscribers} | {total} | {:.1} | {:.0} | {:.1} | {:.1} | {:.1} | {:.0} |",
        took.as_secs_f64(),
        total as f64 / took.as_secs_f64(),
        pct(0.5),
        pct(0.99),
        current.as_secs_f64(),
        total as f64 / current.as_secs_f64(),
    );
}

#[tokio::main]
async fn main() {
    let subscribers = env("BENCH_SUBSCRIBERS", 2_000);
    let rounds = env("BENCH_ROUNDS", 10);
    println!(
        "\n| backend, commits | sites | subscribers per site | records | seconds to store | stored records/s | batch p50 ms | batch p99 ms | seconds to ledger current | ledger records/s |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    let site_counts: Vec<usize> = std::env::var("BENCH_SITES")
        .unwrap_or_else(|_| "1,4".into())
        .split(',')
        .map(|n| {
            n.trim()
                .parse()
                .expect("BENCH_SITES: site counts separated by commas")
        })
        .collect();
    let postgres = std::env::var("BENCH_POSTGRES_URL").ok();
    let engines = std::iter::once(None).chain(postgres.iter().map(Some));
    for engine in engines {
        for &sites in &site_counts {
            for (mode, label) in [(Mode::PerBatch, "per batch"), (Mode::Grouped, "grouped")] {
                // SQLite opens as `serve` does (its checkpoint off the commit path), in a new
                // directory each run; PostgreSQL shares the server's database.
                let dir = tempfile::tempdir().unwrap();
                let (db, _checkpointer, name) = match engine {
                    None => {
                        let url = mikrobill_core::db::sqlite_url_for_dir(dir.path());
                        let (db, checkpointer) = Db::open_server(&url).await.unwrap();
                        (db, Some(checkpointer), "SQLite")
                    }
                    Some(url) => (Db::open(url).await.unwrap(), None, "PostgreSQL"),
                };
                let name = format!("{name}, {label}");
                run(&name, Arc::new(db), mode, sites, subscribers, rounds).await;
            }
        }
    }
}
