//! Accounting delivery: at-least-once on the wire, exactly-once in the ledger, across a
//! controller that is down, a controller killed mid-batch, and a lossy or cut backhaul.

use mikrobill_tests::{
    Backend, Controller, ProxyMode, TestDb, UdpProxy, agents, eventually, init_tracing,
};
use sqlx::Row;
use std::time::Duration;

mikrobill_tests::on_both_backends!(
    records_written_while_the_controller_is_down_arrive_exactly_once,
    killing_the_controller_mid_batch_loses_and_duplicates_nothing,
    a_lossy_then_cut_backhaul_loses_and_duplicates_nothing,
);

/// Row count and a checksum over the stored records of a site.
async fn ledger(ctl: &Controller, site_id: &str) -> (i64, i64) {
    let db = ctl.db().await;
    let row = sqlx::query(
        "SELECT COUNT(*) AS n, CAST(COALESCE(SUM(session_time_secs), 0) AS BIGINT) AS t, COUNT(DISTINCT session_id) AS d \
         FROM accounting_records WHERE site_id = $1",
    )
    .bind(site_id)
    .fetch_one(&db.pool)
    .await
    .unwrap();
    let (n, d): (i64, i64) = (row.get("n"), row.get("d"));
    assert_eq!(n, d, "every stored row must be a distinct session");
    db.close().await;
    (n, row.get("t"))
}

fn expected_sum(n: u64) -> i64 {
    (n * (n - 1) / 2) as i64
}

async fn records_written_while_the_controller_is_down_arrive_exactly_once(backend: Backend) {
    init_tracing();
    let db = TestDb::new(backend).await;
    let dir = tempfile::tempdir().unwrap();
    let mut ctl = Controller::start(dir.path(), &db).await;
    let agent_dir = tempfile::tempdir().unwrap();
    agents::enroll(&ctl.add_site("offline"), agent_dir.path()).await;
    let site_id = agents::site_id(agent_dir.path());
    ctl.kill();

    let agent = agents::start(agent_dir.path(), None).await;
    const N: u64 = 2000;
    let records = agents::stop_records("down", N);
    // Many concurrent writers, as RADIUS would be; each returns once its records are durable.
    let mut writers = Vec::new();
    for chunk in records.chunks(100) {
        let outbox = agent.outbox().clone();
        let chunk = chunk.to_vec();
        writers.push(tokio::spawn(async move { outbox.append(chunk).await }));
    }
    for w in writers {
        w.await.unwrap().unwrap();
    }
    assert_eq!(agent.outbox().len(), N);

    ctl.restart().await;
    agents::wait_connected(&agent).await;
    let outbox = agent.outbox().clone();
    eventually(Duration::from_secs(60), "outbox drained", || async {
        outbox.is_empty().then_some(())
    })
    .await;
    assert_eq!(ledger(&ctl, &site_id).await, (N as i64, expected_sum(N)));

    // A replay of already-delivered records (same ids) changes nothing.
    agent
        .outbox()
        .append(records[..300].to_vec())
        .await
        .unwrap();
    eventually(Duration::from_secs(30), "replay drained", || async {
        outbox.is_empty().then_some(())
    })
    .await;
    assert_eq!(ledger(&ctl, &site_id).await, (N as i64, expected_sum(N)));
    assert_eq!(agent.outbox().rejected_len(), 0);
    agent.shutdown().await;
    db.cleanup().await;
}

async fn killing_the_controller_mid_batch_loses_and_duplicates_nothing(backend: Backend) {
    init_tracing();
    let db = TestDb::new(backend).await;
    let dir = tempfile::tempdir().unwrap();
    let mut ctl = Controller::start(dir.path(), &db).await;
    let agent_dir = tempfile::tempdir().unwrap();
    agents::enroll(&ctl.add_site("crashy"), agent_dir.path()).await;
    let site_id = agents::site_id(agent_dir.path());
    ctl.kill();

    let agent = agents::start(agent_dir.path(), None).await;
    const N: u64 = 20_000;
    agent
        .outbox()
        .append(agents::stop_records("kill", N))
        .await
        .unwrap();

    // Kill the controller (SIGKILL) twice while batches are flowing.
    for round in 0..2 {
        ctl.restart().await;
        let before = ledger(&ctl, &site_id).await.0;
        let site = site_id.clone();
        let ctl_ref = &ctl;
        let seen = eventually(Duration::from_secs(60), "some progress", || {
            let site = site.clone();
            async move {
                let n = ledger(ctl_ref, &site).await.0;
                (n > before).then_some(n)
            }
        })
        .await;
        assert!(
            seen < N as i64,
            "round {round}: everything arrived before the kill; raise N"
        );
        ctl.kill();
    }
    ctl.restart().await;
    let outbox = agent.outbox().clone();
    eventually(Duration::from_secs(120), "outbox drained", || async {
        outbox.is_empty().then_some(())
    })
    .await;
    assert_eq!(ledger(&ctl, &site_id).await, (N as i64, expected_sum(N)));
    agent.shutdown().await;
    db.cleanup().await;
}

async fn a_lossy_then_cut_backhaul_loses_and_duplicates_nothing(backend: Backend) {
    init_tracing();
    let db = TestDb::new(backend).await;
    let dir = tempfile::tempdir().unwrap();
    let ctl = Controller::start(dir.path(), &db).await;
    let proxy = UdpProxy::start(ctl.edge_addr).await;
    let agent_dir = tempfile::tempdir().unwrap();
    agents::enroll(&ctl.add_site("flaky"), agent_dir.path()).await;
    let site_id = agents::site_id(agent_dir.path());
    let agent = agents::start(agent_dir.path(), Some(proxy.addr())).await;
    agents::wait_connected(&agent).await;

    const N: u64 = 6000;
    let records = agents::stop_records("flaky", N);
    proxy.set_mode(ProxyMode::Lossy(25));
    agent
        .outbox()
        .append(records[..N as usize / 2].to_vec())
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(700)).await;
    // A two-second outage while batches are in flight, then the rest over the lossy path.
    proxy.set_mode(ProxyMode::Cut);
    agent
        .outbox()
        .append(records[N as usize / 2..].to_vec())
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    proxy.set_mode(ProxyMode::Lossy(25));
    tokio::time::sleep(Duration::from_secs(1)).await;
    proxy.set_mode(ProxyMode::Pass);
    let outbox = agent.outbox().clone();
    eventually(Duration::from_secs(120), "outbox drained", || async {
        outbox.is_empty().then_some(())
    })
    .await;
    assert!(proxy.dropped() > 0, "the proxy never dropped anything");
    assert_eq!(ledger(&ctl, &site_id).await, (N as i64, expected_sum(N)));
    agent.shutdown().await;
    db.cleanup().await;
}
