//! The change log stays bounded: the compaction job deletes what every connected agent has
//! applied; an agent offline across it takes a snapshot on its return and ends up with the
//! same vouchers as one that stayed online; an idle site's cursor is moved up to the head
//! (`CaughtUp`), so it neither holds the log back nor needs a snapshot after a blip.

use mikrobill_tests::{Backend, Scenario, agents, eventually};
use serde_json::json;
use std::time::Duration;

mikrobill_tests::on_both_backends!(an_agent_offline_across_compaction_takes_a_snapshot);

async fn log_len(store: &mikrobill_core::db::Db) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM sync_log")
        .fetch_one(&store.pool)
        .await
        .unwrap()
}

async fn an_agent_offline_across_compaction_takes_a_snapshot(backend: Backend) {
    // No retention: whatever the connected agents applied may go at once.
    let s = Scenario::start_env(backend, &[("MIKROBILL_SYNC_LOG_RETENTION", "0s")]).await;
    let admin = &s.admin;
    let (_a_id, online, _a_dir) = agents::api_site(admin, "Online").await;
    let (_b_id, offline, b_dir) = agents::api_site(admin, "Offline").await;
    s.ctl.cli(&[
        "plan",
        "add",
        "Jam",
        "--time-limit",
        "1h",
        "--price",
        "2000",
    ]);
    let voucher = |code: &str| {
        s.ctl
            .cli(&["voucher", "add", "--plan", "Jam", "--code", code]);
    };
    voucher("V1");
    for agent in [&online, &offline] {
        let cache = agent.cache().clone();
        eventually(Duration::from_secs(15), "V1 synced", || async {
            cache.voucher("V1").unwrap().map(|_| ())
        })
        .await;
    }

    // B goes away; meanwhile V1 is revoked and two vouchers are added.
    offline.shutdown().await;
    admin
        .post("/api/v1/vouchers/V1/revoke", &json!({}))
        .await
        .expect(200);
    voucher("V2");
    voucher("V3");
    let cache = online.cache().clone();
    eventually(Duration::from_secs(15), "online agent current", || async {
        let revoked = cache
            .voucher("V1")
            .unwrap()
            .is_none_or(|v| v.status == mikrobill_protocol::items::VoucherStatus::Revoked);
        (revoked && cache.voucher("V3").unwrap().is_some()).then_some(())
    })
    .await;

    let store = s.ctl.db().await;
    // The controller has seen B go (a connected B would hold the log back).
    eventually(Duration::from_secs(15), "B seen offline", || async {
        let session: Option<String> =
            sqlx::query_scalar("SELECT session_id FROM sites WHERE name = 'Offline'")
                .fetch_one(&store.pool)
                .await
                .unwrap();
        session.is_none().then_some(())
    })
    .await;
    let before = log_len(&store).await;
    // The online agent acknowledges what it applied; wait until the controller has it.
    let head = mikrobill_core::sync_log::head(&store).await.unwrap();
    eventually(Duration::from_secs(15), "cursor acknowledged", || async {
        let seq: i64 = sqlx::query_scalar("SELECT sync_seq FROM sites WHERE name = 'Online'")
            .fetch_one(&store.pool)
            .await
            .unwrap();
        (seq as u64 >= head).then_some(())
    })
    .await;
    let run = admin
        .post("/api/v1/jobs/sync-compaction/run", &json!({}))
        .await
        .expect(200);
    assert!(run["changed"].as_u64().unwrap() > 0, "{run}");
    let after = log_len(&store).await;
    assert!(after < before, "{before} -> {after}");
    assert_eq!(
        after, 0,
        "everything was applied by the only connected agent"
    );

    // B returns behind the floor: a snapshot gives it exactly what the online agent has.
    let back = agents::restart(b_dir.path()).await;
    agents::wait_connected(&back).await;
    let cache = back.cache().clone();
    eventually(Duration::from_secs(15), "snapshot applied", || async {
        cache.voucher("V3").unwrap().map(|_| ())
    })
    .await;
    for code in ["V1", "V2", "V3"] {
        assert_eq!(
            back.cache().voucher(code).unwrap(),
            online.cache().voucher(code).unwrap(),
            "{code}"
        );
    }
    assert!(
        s.ctl.log().contains("snapshot sent"),
        "the returning agent was brought back by a snapshot"
    );

    // An idle site (nothing of its own changes) is moved up to the head when it connects.
    let (_c_id, idle, _c_dir) = agents::api_site(admin, "Idle").await;
    let head = mikrobill_core::sync_log::head(&store).await.unwrap();
    eventually(Duration::from_secs(15), "idle site caught up", || async {
        let seq: i64 = sqlx::query_scalar("SELECT sync_seq FROM sites WHERE name = 'Idle'")
            .fetch_one(&store.pool)
            .await
            .unwrap();
        (seq as u64 >= head).then_some(())
    })
    .await;
    assert!(idle.cache().cursor().unwrap().seq >= head);

    store.close().await;
    for a in [online, back, idle] {
        a.shutdown().await;
    }
    s.finish().await;
}
