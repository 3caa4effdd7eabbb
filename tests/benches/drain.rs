//! How fast an agent's backlog reaches the controller's ledger after an outage (issue 17).
//!
//! A real controller process (release build) and an in-process agent behind the test's UDP
//! relay. The relay is cut, the agent's outbox is filled with a NAS's accounting (many
//! subscribers online, a Start each and then Interim-Updates with growing counters), then
//! the link comes back with a fixed delay each way and the clock runs until the outbox is
//! empty (every record stored and answered), then until the controller's background fold has
//! brought the usage ledger up to date; the controller's row count is checked against what
//! was sent.
//!
//! ```sh
//! cargo build --release -p mikrobill-controller
//! cargo bench -p mikrobill-tests --bench drain
//! ```
//!
//! Knobs: `BENCH_RECORDS` (1,000,000), `BENCH_SUBSCRIBERS` (20,000), `BENCH_RTT_MS`
//! (round trips to measure, comma separated, default `0,50`), `BENCH_BACKEND` (`sqlite` or
//! `postgres`, which reads `MIKROBILL_TEST_POSTGRES_URL`).

use mikrobill_protocol::accounting::{AccountingRecord, AcctStatus};
use mikrobill_tests::bench::{self, env_or};
use mikrobill_tests::{Backend, ProxyMode, Scenario, UdpProxy, agents};
use serde_json::json;
use std::time::{Duration, Instant};

/// Round `round` of a NAS's accounting for `subscribers` sessions: Starts first, then
/// Interim-Updates five minutes apart with counters that grow.
fn round(subscribers: u64, round: u64, t0: i64) -> Vec<AccountingRecord> {
    (0..subscribers)
        .map(|n| {
            let status = if round == 0 {
                AcctStatus::Start
            } else {
                AcctStatus::InterimUpdate
            };
            let secs = round * 300;
            agents::reading(
                "bench-nas",
                &format!("s{n}"),
                &format!("pppoe-{n}"),
                status,
                t0 + secs as i64 * 1000,
                secs,
                secs * (10_000 + n),
            )
        })
        .collect()
}

struct Row {
    rtt_ms: u64,
    records: u64,
    fill_secs: f64,
    drain_secs: f64,
    /// From the link opening until the controller's ledger held every record.
    ledger_secs: f64,
    stored: i64,
}

async fn run(backend: Backend, records: u64, subscribers: u64, rtt_ms: u64) -> Row {
    let s = Scenario::start(backend).await;
    let enr = s
        .admin
        .post(
            "/api/v1/sites",
            &json!({ "name": format!("Drain {rtt_ms}") }),
        )
        .await
        .expect(201);
    let site_id = enr["site"]["id"].as_str().unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    agents::enroll(enr["token"].as_str().unwrap(), dir.path()).await;
    let proxy = UdpProxy::start(s.ctl.edge_addr).await;
    proxy.set_mode(ProxyMode::Cut);
    let agent = agents::start(dir.path(), Some(proxy.addr())).await;

    let rounds = records.div_ceil(subscribers);
    let t0 = mikrobill_core::db::now_ms() - rounds as i64 * 300_000;
    let started = Instant::now();
    let mut left = records;
    for r in 0..rounds {
        let mut batch = round(subscribers, r, t0);
        batch.truncate(left as usize);
        left -= batch.len() as u64;
        for chunk in batch.chunks(10_000) {
            agent.outbox().append(chunk.to_vec()).await.unwrap();
        }
    }
    let fill_secs = started.elapsed().as_secs_f64();
    assert_eq!(agent.outbox().len(), records);

    proxy.set_delay(Duration::from_millis(rtt_ms) / 2);
    proxy.set_mode(ProxyMode::Pass);
    let started = Instant::now();
    let deadline = started + Duration::from_secs(1800);
    while !agent.outbox().is_empty() {
        assert!(
            Instant::now() < deadline,
            "the outbox did not drain in 30 minutes"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let drain_secs = started.elapsed().as_secs_f64();
    let db = s.ctl.db().await;
    // Answered means stored; the controller's background fold brings the ledger up to date.
    agents::folded(&db, deadline.saturating_duration_since(Instant::now())).await;
    let ledger_secs = started.elapsed().as_secs_f64();
    let stored: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM accounting_records WHERE site_id = $1")
            .bind(&site_id)
            .fetch_one(&db.pool)
            .await
            .unwrap();
    agent.shutdown().await;
    s.finish().await;
    Row {
        rtt_ms,
        records,
        fill_secs,
        drain_secs,
        ledger_secs,
        stored,
    }
}

fn main() {
    let controller = mikrobill_tests::bin("mikrobill-controller");
    eprintln!("controller binary: {}", controller.display());
    let records: u64 = env_or("BENCH_RECORDS", 1_000_000);
    let subscribers: u64 = env_or("BENCH_SUBSCRIBERS", 20_000);
    let rtts: Vec<u64> = env_or("BENCH_RTT_MS", "0,50".to_string())
        .split(',')
        .map(|v| v.trim().parse().expect("BENCH_RTT_MS: milliseconds"))
        .collect();
    let backend = bench::backend();
    let runtime = bench::runtime();
    let mut rows = Vec::new();
    for rtt in rtts {
        rows.push(runtime.block_on(run(backend, records, subscribers, rtt)));
    }
    println!("\n**{backend:?}: {records} records from {subscribers} subscribers, one agent**\n");
    println!(
        "| round trip ms | records | outbox fill s | drain s | records/s | ledger current s | stored |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|");
    for r in &rows {
        println!(
            "| {} | {} | {:.1} | {:.1} | {:.0} | {:.1} | {} |",
            r.rtt_ms,
            r.records,
            r.fill_secs,
            r.drain_secs,
            r.records as f64 / r.drain_secs,
            r.ledger_secs,
            r.stored
        );
    }
    for r in &rows {
        assert_eq!(
            r.stored, r.records as i64,
            "the controller stored {} of {} records",
            r.stored, r.records
        );
    }
}
