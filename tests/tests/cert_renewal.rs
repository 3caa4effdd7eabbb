//! Agent certificates renew themselves over the session: with a third of its validity left
//! the agent gets a new certificate for a new key, reconnects with it, the controller retires
//! the old serial (a copy of the old identity is refused from then on), and the agent keeps
//! delivering accounting, across a restart too.

use mikrobill_agent::uplink::LinkState;
use mikrobill_protocol::accounting::AcctStatus;
use mikrobill_tests::http::Api;
use mikrobill_tests::{Backend, Controller, TestDb, agents, eventually};
use sqlx::Row;
use std::time::Duration;

mikrobill_tests::on_both_backends!(certificates_renew_before_they_expire);

fn copy_identity(from: &std::path::Path, to: &std::path::Path) {
    for f in ["agent.key", "agent.crt", "ca.crt", "agent.toml"] {
        std::fs::copy(from.join(f), to.join(f)).unwrap();
    }
}

async fn certificates_renew_before_they_expire(backend: Backend) {
    let db = TestDb::new(backend).await;
    let dir = tempfile::tempdir().unwrap();
    // Ten minutes (after an hour of clock-skew allowance before issue) leaves less than a
    // third of the validity: the first session renews.
    let ctl =
        Controller::start_env(dir.path(), &db, &[("MIKROBILL_AGENT_CERT_VALIDITY", "10m")]).await;
    let admin = Api::admin(ctl.api_addr).await;
    let enr = admin
        .post("/api/v1/sites", &serde_json::json!({"name": "Menara"}))
        .await
        .expect(201);
    let site_id = enr["site"]["id"].as_str().unwrap().to_string();
    let agent_dir = tempfile::tempdir().unwrap();
    agents::enroll(enr["token"].as_str().unwrap(), agent_dir.path()).await;
    let old = tempfile::tempdir().unwrap();
    copy_identity(agent_dir.path(), old.path());
    let first = std::fs::read(agent_dir.path().join("agent.crt")).unwrap();

    let agent = agents::start(agent_dir.path(), None).await;
    eventually(Duration::from_secs(30), "certificate renewed", || async {
        let now = std::fs::read(agent_dir.path().join("agent.crt")).unwrap();
        (now != first).then_some(())
    })
    .await;
    let key_mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(agent_dir.path().join("agent.key"))
            .unwrap()
            .permissions(),
    );
    assert_eq!(key_mode & 0o077, 0, "the new key is private");
    assert!(!agent_dir.path().join("agent.crt.next").exists());

    // The agent reconnects with the new certificate and the controller retires the old one.
    let store = ctl.db().await;
    let rows = eventually(Duration::from_secs(30), "old serial retired", || async {
        let rows = sqlx::query(
            "SELECT serial, revoked_at FROM agent_certificates WHERE site_id = $1 ORDER BY issued_at",
        )
        .bind(&site_id)
        .fetch_all(&store.pool)
        .await
        .unwrap();
        let retired = rows
            .first()
            .is_some_and(|r| r.try_get::<Option<i64>, _>("revoked_at").unwrap().is_some());
        (rows.len() == 2 && retired).then_some(rows)
    })
    .await;
    assert!(
        rows[1]
            .try_get::<Option<i64>, _>("revoked_at")
            .unwrap()
            .is_none(),
        "the new certificate is live"
    );
    agents::wait_connected(&agent).await;
    let now = mikrobill_core::db::now_ms();
    agents::deliver(
        &agent,
        vec![agents::reading(
            "nas",
            "s1",
            "u1",
            AcctStatus::Stop,
            now,
            60,
            100,
        )],
    )
    .await;
    let status = agent.status();
    assert!(
        status.certificate_expires_ms.unwrap() > now + 9 * 60_000,
        "the status shows the renewed certificate"
    );

    // The old identity is refused now.
    let stale = agents::start(old.path(), None).await;
    agents::wait_link(&stale, Duration::from_secs(20), "refused", |s| {
        matches!(s, LinkState::Refused { .. })
    })
    .await;
    stale.shutdown().await;

    // After a restart the agent runs on the renewed certificate from disk (with this short
    // validity it renews again at once, as any certificate past two thirds would).
    agent.shutdown().await;
    let agent = agents::restart(agent_dir.path()).await;
    agents::wait_connected(&agent).await;
    agents::deliver(
        &agent,
        vec![agents::reading(
            "nas",
            "s2",
            "u1",
            AcctStatus::Stop,
            now,
            60,
            100,
        )],
    )
    .await;
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM accounting_records WHERE site_id = $1")
        .bind(&site_id)
        .fetch_one(&store.pool)
        .await
        .unwrap();
    assert_eq!(n, 2);
    agent.shutdown().await;
    store.close().await;
    drop(ctl);
    db.cleanup().await;
}
