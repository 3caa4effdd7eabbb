//! A fleet against one controller (issue 17): many sites provisioned in bulk through the API,
//! one in-process agent per site running the real uplink (no RADIUS listener, no router), and
//! what an operator of a large fleet would ask of the controller:
//!
//! - how long the fleet takes to enroll and to connect, and what the controller then holds in
//!   memory and spent in CPU;
//! - sync latency: one plan created through the API until every agent has it in its cache;
//! - command delivery: one command per site queued through the API until the controller
//!   records each agent's answer (server timestamps);
//! - accounting: every agent's outbox filled at once until all are empty and stored;
//! - recovery: the controller killed with SIGKILL and started again until every agent has a
//!   session again, and the error lines the controller logged meanwhile.
//!
//! ```sh
//! cargo build --release -p mikrobill-controller
//! BENCH_SITES=1000 cargo bench -p mikrobill-tests --bench fleet
//! ```
//!
//! Knobs: `BENCH_SITES` (200), `BENCH_RECORDS_PER_SITE` (200), `BENCH_BACKEND` (`sqlite` or
//! `postgres`, which reads `MIKROBILL_TEST_POSTGRES_URL`).

use mikrobill_agent::uplink::LinkState;
use mikrobill_agent::{Agent, AgentOptions};
use mikrobill_protocol::accounting::AcctStatus;
use mikrobill_tests::bench::{self, env_or};
use mikrobill_tests::{Backend, Scenario, agents};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// p-th percentile (0-100) of sorted values.
fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

/// Resident memory (MiB) and CPU time used so far (seconds) of process `pid`.
fn usage(pid: u32) -> (f64, f64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let rss_kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(f64::NAN);
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name, which may hold spaces: utime and stime are 14th and 15th.
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 = fields
        .get(11..13)
        .map(|f| f.iter().filter_map(|v| v.parse::<f64>().ok()).sum())
        .unwrap_or(f64::NAN);
    (rss_kib / 1024.0, ticks / 100.0)
}

fn connected(agent: &Agent) -> bool {
    matches!(*agent.link().borrow(), LinkState::Connected { .. })
}

/// Waits until `done(i)` holds for every index; returns each one's time since `from`.
async fn each_until(
    n: usize,
    from: Instant,
    timeout: Duration,
    what: &str,
    mut done: impl FnMut(usize) -> bool,
) -> Vec<f64> {
    let mut at: Vec<Option<f64>> = vec![None; n];
    let mut left = n;
    while left > 0 {
        for (i, slot) in at.iter_mut().enumerate() {
            if slot.is_none() && done(i) {
                *slot = Some(from.elapsed().as_secs_f64() * 1000.0);
                left -= 1;
            }
        }
        assert!(
            from.elapsed() < timeout,
            "{left} of {n} agents never {what} within {timeout:?}"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let mut out: Vec<f64> = at.into_iter().map(Option::unwrap).collect();
    out.sort_by(f64::total_cmp);
    out
}

async fn start_agent(dir: &std::path::Path) -> Agent {
    let options = AgentOptions {
        data_dir: dir.to_path_buf(),
        controller_addr: None,
        // The shipped default: how fast a real fleet comes back.
        reconnect_max: Duration::from_secs(60),
        radius: None,
        router: None,
        status_listen: None,
        clock: mikrobill_agent::clock::Clock::system(),
    };
    Agent::start(options).await.expect("agent start")
}

fn main() {
    eprintln!(
        "controller binary: {}",
        mikrobill_tests::bin("mikrobill-controller").display()
    );
    let sites: usize = env_or("BENCH_SITES", 200);
    let records_per_site: u64 = env_or("BENCH_RECORDS_PER_SITE", 200);
    let backend = bench::backend();
    let runtime = bench::runtime();
    let rows = runtime.block_on(run(backend, sites, records_per_site));
    println!("\n**{backend:?}: {sites} sites, one controller**\n");
    println!("| measure | value |");
    println!("|---|---:|");
    for (name, value) in rows {
        println!("| {name} | {value} |");
    }
}

async fn run(backend: Backend, n: usize, records_per_site: u64) -> Vec<(String, String)> {
    let mut rows: Vec<(String, String)> = Vec::new();
    let mut s = Scenario::start(backend).await;
    let admin = &s.admin;

    // Provisioning: sites and tokens in bulk, then every agent enrolls (eight at a time, as
    // a field team's installs would never all land in the same second).
    let started = Instant::now();
    let mut tokens = Vec::with_capacity(n);
    for first in (0..n).step_by(1000) {
        let names: Vec<String> = (first..(first + 1000).min(n))
            .map(|i| format!("Site {i:05}"))
            .collect();
        let made = admin
            .post("/api/v1/sites/bulk", &json!({ "names": names }))
            .await
            .expect(201);
        for item in made["items"].as_array().unwrap() {
            tokens.push((
                item["site"]["id"].as_str().unwrap().to_string(),
                item["token"].as_str().unwrap().to_string(),
            ));
        }
    }
    rows.push((
        "sites created through the bulk API, s".into(),
        format!("{:.1}", started.elapsed().as_secs_f64()),
    ));
    let started = Instant::now();
    let dirs: Vec<tempfile::TempDir> = (0..n).map(|_| tempfile::tempdir().unwrap()).collect();
    let permits = Arc::new(tokio::sync::Semaphore::new(8));
    let mut enrolls = tokio::task::JoinSet::new();
    for ((_, token), dir) in tokens.iter().zip(&dirs) {
        let (token, path, permits) = (token.clone(), dir.path().to_path_buf(), permits.clone());
        enrolls.spawn(async move {
            let _permit = permits.acquire().await.unwrap();
            agents::enroll(&token, &path).await;
        });
    }
    while let Some(done) = enrolls.join_next().await {
        done.unwrap();
    }
    rows.push((
        "agents enrolled, s".into(),
        format!("{:.1}", started.elapsed().as_secs_f64()),
    ));

    // Connect.
    let pid = s.ctl.pid().expect("controller running");
    let (_, cpu_before) = usage(pid);
    let started = Instant::now();
    let mut fleet = Vec::with_capacity(n);
    for dir in &dirs {
        fleet.push(start_agent(dir.path()).await);
    }
    let up = each_until(n, started, Duration::from_secs(600), "connected", |i| {
        connected(&fleet[i])
    })
    .await;
    rows.push((
        "every agent connected, s (p50 / p99 / last)".into(),
        format!(
            "{:.1} / {:.1} / {:.1}",
            percentile(&up, 50.0) / 1000.0,
            percentile(&up, 99.0) / 1000.0,
            up[n - 1] / 1000.0
        ),
    ));
    tokio::time::sleep(Duration::from_secs(5)).await;
    let (rss, cpu) = usage(pid);
    rows.push((
        "controller RSS with the fleet connected, MiB".into(),
        format!("{rss:.0}"),
    ));
    rows.push((
        "controller CPU to connect the fleet, s".into(),
        format!("{:.1}", cpu - cpu_before),
    ));
    let (_, cpu_idle_start) = usage(pid);
    tokio::time::sleep(Duration::from_secs(10)).await;
    let (_, cpu_idle_end) = usage(pid);
    rows.push((
        "controller CPU with the fleet idle, % of one core".into(),
        format!("{:.1}", (cpu_idle_end - cpu_idle_start) * 10.0),
    ));

    // One change for every site.
    let started = Instant::now();
    let plan = admin
        .post(
            "/api/v1/plans",
            &json!({"name": "Fleet 10M", "kind": "hotspot", "price": 5000,
                    "rate_limit": "10M/10M", "validity_secs": 86400}),
        )
        .await
        .expect(201);
    let plan_id = plan["id"].as_str().unwrap().to_string();
    let synced = each_until(
        n,
        started,
        Duration::from_secs(300),
        "received the plan",
        |i| fleet[i].cache().plan(&plan_id).ok().flatten().is_some(),
    )
    .await;
    rows.push((
        "sync of one plan to every site, ms (p50 / p99 / last)".into(),
        format!(
            "{:.0} / {:.0} / {:.0}",
            percentile(&synced, 50.0),
            percentile(&synced, 99.0),
            synced[n - 1]
        ),
    ));

    // One command per site.
    let started = Instant::now();
    let mut ids = Vec::with_capacity(n);
    for (site_id, _) in &tokens {
        let queued: Value = admin
            .post(
                &format!("/api/v1/sites/{site_id}/commands"),
                &json!({"command": {"kind": "resync_router"}}),
            )
            .await
            .expect(201);
        ids.push(queued["id"].as_i64().unwrap());
    }
    let queued_in = started.elapsed().as_secs_f64();
    let db = s.ctl.db().await;
    let latencies: Vec<f64> = loop {
        let rows: Vec<(i64, Option<i64>)> = sqlx::query_as(
            "SELECT created_at, completed_at FROM commands WHERE kind = 'resync_router'",
        )
        .fetch_all(&db.pool)
        .await
        .unwrap();
        if rows.len() == n && rows.iter().all(|(_, done)| done.is_some()) {
            let mut l: Vec<f64> = rows
                .iter()
                .map(|(at, done)| (done.unwrap() - at) as f64)
                .collect();
            l.sort_by(f64::total_cmp);
            break l;
        }
        assert!(
            started.elapsed() < Duration::from_secs(300),
            "commands not answered in 5 minutes"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    rows.push((
        format!("command queued to answer, ms (p50 / p99 / max; queued in {queued_in:.1} s)"),
        format!(
            "{:.0} / {:.0} / {:.0}",
            percentile(&latencies, 50.0),
            percentile(&latencies, 99.0),
            latencies[n - 1]
        ),
    ));

    // Accounting from every site at once.
    let t0 = mikrobill_core::db::now_ms() - 3_600_000;
    let started = Instant::now();
    let mut appends = tokio::task::JoinSet::new();
    for (i, agent) in fleet.iter().enumerate() {
        let outbox = agent.outbox().clone();
        let records: Vec<_> = (0..records_per_site)
            .map(|r| {
                let user = r % 50;
                let round = r / 50;
                agents::reading(
                    &format!("nas-{i}"),
                    &format!("s{user}"),
                    &format!("user-{i}-{user}"),
                    if round == 0 {
                        AcctStatus::Start
                    } else {
                        AcctStatus::InterimUpdate
                    },
                    t0 + round as i64 * 300_000,
                    round * 300,
                    round * 1_000_000,
                )
            })
            .collect();
        appends.spawn(async move { outbox.append(records).await.unwrap() });
    }
    while let Some(done) = appends.join_next().await {
        done.unwrap();
    }
    each_until(n, started, Duration::from_secs(1800), "drained", |i| {
        fleet[i].outbox().is_empty()
    })
    .await;
    let secs = started.elapsed().as_secs_f64();
    let stored: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM accounting_records")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    let total = records_per_site * n as u64;
    assert_eq!(stored, total as i64, "records stored");
    rows.push((
        format!("accounting from every site at once ({total} records), records/s"),
        format!("{:.0}", total as f64 / secs),
    ));
    drop(db);

    // SIGKILL and restart.
    let mut links: Vec<_> = fleet.iter().map(Agent::link).collect();
    for link in &mut links {
        link.borrow_and_update();
    }
    let started = Instant::now();
    s.ctl.kill();
    s.ctl.restart().await;
    let restarted_in = started.elapsed().as_secs_f64();
    // Back: the link changed since the kill (each agent must lose its session and find the
    // new process) and is connected.
    let back = each_until(n, started, Duration::from_secs(600), "came back", |i| {
        links[i].has_changed().unwrap_or(false)
            && matches!(*links[i].borrow(), LinkState::Connected { .. })
    })
    .await;
    // The new process's log only.
    let errors = s.ctl.log().lines().filter(|l| l.contains("ERROR")).count();
    rows.push((
        format!("every agent back after SIGKILL, s (p50 / p99 / last; process up in {restarted_in:.1} s)"),
        format!(
            "{:.1} / {:.1} / {:.1}",
            percentile(&back, 50.0) / 1000.0,
            percentile(&back, 99.0) / 1000.0,
            back[n - 1] / 1000.0
        ),
    ));
    rows.push((
        "controller ERROR lines since the restart".into(),
        errors.to_string(),
    ));
    let (rss, _) = usage(s.ctl.pid().expect("controller running"));
    rows.push((
        "controller RSS after the fleet came back, MiB".into(),
        format!("{rss:.0}"),
    ));
    let (bench_rss, _) = usage(std::process::id());
    rows.push((
        "this process (every agent) RSS, MiB".into(),
        format!("{bench_rss:.0}"),
    ));
    for agent in fleet {
        agent.shutdown().await;
    }
    s.finish().await;
    rows
}
