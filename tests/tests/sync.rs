//! Cache sync: items created at the controller reach a connected agent, and items changed
//! while the agent was away reach it after it reconnects.

use mikrobill_tests::{Backend, Controller, TestDb, agents, eventually, init_tracing};
use std::time::{Duration, Instant};

mikrobill_tests::on_both_backends!(
    live_changes_reach_a_connected_agent,
    changes_made_while_offline_arrive_on_reconnect
);

async fn live_changes_reach_a_connected_agent(backend: Backend) {
    init_tracing();
    let db = TestDb::new(backend).await;
    let dir = tempfile::tempdir().unwrap();
    let ctl = Controller::start(dir.path(), &db).await;
    ctl.cli(&[
        "plan",
        "add",
        "Harian",
        "--rate-limit",
        "2M/5M",
        "--validity",
        "1day",
        "--price",
        "5000",
    ]);
    let agent_dir = tempfile::tempdir().unwrap();
    agents::enroll(&ctl.add_site("pasar"), agent_dir.path()).await;
    ctl.add_site("other-site");
    let agent = agents::start(agent_dir.path(), None).await;
    agents::wait_connected(&agent).await;
    let cache = agent.cache().clone();

    // The snapshot brought the plan.
    eventually(Duration::from_secs(10), "plan in cache", || async {
        let cursor = cache.cursor().unwrap();
        (cursor.seq >= 1).then_some(())
    })
    .await;

    // A voucher for this site, created by the CLI while the agent is connected.
    let started = Instant::now();
    ctl.cli(&[
        "voucher",
        "add",
        "--plan",
        "Harian",
        "--site",
        "pasar",
        "--code",
        "PSR-1234",
        "--password",
        "rahasia",
    ]);
    let v = eventually(Duration::from_secs(10), "voucher in cache", || async {
        cache.voucher("PSR-1234").unwrap()
    })
    .await;
    println!(
        "voucher reached the agent {:?} after the CLI started",
        started.elapsed()
    );
    assert_eq!(v.password.as_deref(), Some("rahasia"));
    let plan = cache
        .plan(&v.plan_id)
        .unwrap()
        .expect("the voucher's plan is cached");
    assert_eq!(plan.rate_limit.as_deref(), Some("2M/5M"));
    assert_eq!(plan.validity_secs, Some(86_400));

    // Vouchers for all sites arrive; another site's do not.
    let all = ctl.cli(&[
        "voucher", "add", "--plan", "Harian", "--count", "3", "--prefix", "ALL",
    ]);
    ctl.cli(&[
        "voucher",
        "add",
        "--plan",
        "Harian",
        "--site",
        "other-site",
        "--code",
        "ELSEWHERE",
    ]);
    for code in all.lines() {
        eventually(Duration::from_secs(10), "all-sites voucher", || async {
            cache.voucher(code).unwrap()
        })
        .await;
    }
    // A revocation is a deletion in the cache.
    ctl.cli(&["voucher", "revoke", "PSR-1234"]);
    eventually(Duration::from_secs(10), "revoked voucher gone", || async {
        cache.voucher("PSR-1234").unwrap().is_none().then_some(())
    })
    .await;
    // By now the other site's voucher, written before the revocation, would have arrived.
    assert!(
        cache.voucher("ELSEWHERE").unwrap().is_none(),
        "another site's voucher leaked into this cache"
    );
    agent.shutdown().await;
    db.cleanup().await;
}

async fn changes_made_while_offline_arrive_on_reconnect(backend: Backend) {
    init_tracing();
    let db = TestDb::new(backend).await;
    let dir = tempfile::tempdir().unwrap();
    let ctl = Controller::start(dir.path(), &db).await;
    ctl.cli(&["plan", "add", "Mingguan", "--time-limit", "10h"]);
    let agent_dir = tempfile::tempdir().unwrap();
    agents::enroll(&ctl.add_site("desa"), agent_dir.path()).await;
    ctl.cli(&[
        "voucher", "add", "--plan", "Mingguan", "--site", "desa", "--code", "KEEP",
    ]);
    ctl.cli(&[
        "voucher", "add", "--plan", "Mingguan", "--site", "desa", "--code", "DROPME",
    ]);

    let agent = agents::start(agent_dir.path(), None).await;
    agents::wait_connected(&agent).await;
    let cache = agent.cache().clone();
    eventually(Duration::from_secs(10), "initial vouchers", || async {
        cache.voucher("DROPME").unwrap()
    })
    .await;
    let before = cache.cursor().unwrap();
    drop(cache);
    agent.shutdown().await;

    // While the agent is away: one voucher added, one revoked.
    ctl.cli(&[
        "voucher", "add", "--plan", "Mingguan", "--site", "desa", "--code", "NEWONE",
    ]);
    ctl.cli(&["voucher", "revoke", "DROPME"]);

    // The agent comes back with its cache and cursor from disk and catches up.
    let agent = agents::start(agent_dir.path(), None).await;
    let cache = agent.cache().clone();
    assert!(
        cache.voucher("KEEP").unwrap().is_some(),
        "cache must survive a restart"
    );
    assert_eq!(cache.cursor().unwrap(), before);
    agents::wait_connected(&agent).await;
    eventually(Duration::from_secs(10), "offline changes", || async {
        (cache.voucher("NEWONE").unwrap().is_some() && cache.voucher("DROPME").unwrap().is_none())
            .then_some(())
    })
    .await;
    assert!(cache.voucher("KEEP").unwrap().is_some());
    assert!(cache.cursor().unwrap().seq > before.seq);
    assert_eq!(
        cache.cursor().unwrap().epoch,
        before.epoch,
        "catch-up must use the same log, not a new snapshot epoch"
    );
    agent.shutdown().await;
    db.cleanup().await;
}
