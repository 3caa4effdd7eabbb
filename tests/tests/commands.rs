//! The per-site command queue through real processes: commands wait while a site is offline,
//! expired ones are reported and never sent, the rest are delivered in queue order once the
//! agent reconnects, and billing changes queue the commands running sessions need.

use mikrobill_tests::Scenario;
use mikrobill_tests::http::Api;
use mikrobill_tests::{Backend, Controller, TestDb, agents, eventually, init_tracing};
use serde_json::{Value, json};
use std::time::Duration;

mikrobill_tests::on_both_backends!(offline_site_gets_its_commands_in_order);

async fn command(admin: &Api, id: &Value) -> Value {
    admin
        .get(&format!("/api/v1/commands/{id}"))
        .await
        .expect(200)
}

async fn offline_site_gets_its_commands_in_order(backend: Backend) {
    let Scenario {
        dir: _dir,
        db: _db,
        ctl: _ctl,
        admin,
    } = Scenario::start(backend).await;
    let enr = admin
        .post("/api/v1/sites", &json!({"name": "Menara Utara"}))
        .await
        .expect(201);
    let site_id = enr["site"]["id"].as_str().unwrap().to_string();
    let agent_dir = tempfile::tempdir().unwrap();
    agents::enroll(enr["token"].as_str().unwrap(), agent_dir.path()).await;

    // Queued while the site has never been online.
    let url = format!("/api/v1/sites/{site_id}/commands");
    let short = admin
        .post(
            &url,
            &json!({"command": {"kind": "disconnect", "username": "budi"}, "ttl_secs": 1}),
        )
        .await
        .expect(201);
    assert_eq!(short["status"], "pending");
    let mut later = Vec::new();
    for user in ["ani", "citra", "dedi"] {
        let c = admin
            .post(
                &url,
                &json!({"command": {"kind": "disconnect", "username": user}}),
            )
            .await
            .expect(201);
        later.push(c["id"].clone());
    }
    let resync = admin
        .post(&url, &json!({"command": {"kind": "resync_router"}}))
        .await
        .expect(201);
    let bad = admin
        .post(&url, &json!({"command": {"kind": "reboot"}}))
        .await;
    assert_eq!(bad.status, 400, "{}", bad.text);
    let bad_ttl = admin
        .post(
            &url,
            &json!({"command": {"kind": "resync_router"}, "ttl_secs": 0}),
        )
        .await;
    assert_eq!(bad_ttl.json()["field"], "ttl_secs");
    tokio::time::sleep(Duration::from_millis(1500)).await;

    let agent = agents::start(agent_dir.path(), None).await;
    agents::wait_connected(&agent).await;
    let last = resync["id"].clone();
    let done = eventually(Duration::from_secs(20), "commands answered", || async {
        let c = command(&admin, &last).await;
        (c["status"] != "pending").then_some(c)
    })
    .await;
    // Without a router the agent cannot re-sync one, and says so.
    assert_eq!(done["status"], "unsupported", "{done}");
    let expired = command(&admin, &short["id"]).await;
    assert_eq!(expired["status"], "expired");
    assert_eq!(
        expired["attempts"], 0,
        "an expired command must never be sent"
    );
    let mut completed = Vec::new();
    for id in &later {
        let c = command(&admin, id).await;
        assert_ne!(c["status"], "pending", "{c}");
        assert_eq!(c["attempts"], 1);
        completed.push(c["completed_at"].as_i64().unwrap());
    }
    assert!(
        completed.windows(2).all(|w| w[0] <= w[1]),
        "answered out of order: {completed:?}"
    );
    let listed = admin
        .get(&format!(
            "/api/v1/commands?site_id={site_id}&status=expired"
        ))
        .await
        .expect(200);
    assert_eq!(listed["items"].as_array().unwrap().len(), 1);

    // Billing queues the command a running session needs, in the same transaction.
    let plan = admin
        .post(
            "/api/v1/plans",
            &json!({"name": "Rumah 5M", "kind": "pppoe", "price": 100000}),
        )
        .await
        .expect(201);
    let customer = admin
        .post("/api/v1/customers", &json!({"name": "Dewi"}))
        .await
        .expect(201);
    let sub = admin
        .post(
            "/api/v1/subscriptions",
            &json!({"customer_id": customer["id"], "plan_id": plan["id"], "site_id": site_id, "username": "dewi"}),
        )
        .await
        .expect(201);
    let sid = sub["id"].as_str().unwrap();
    admin
        .post(&format!("/api/v1/subscriptions/{sid}/isolate"), &json!({}))
        .await
        .expect(200);
    let kick = admin
        .post(&format!("/api/v1/subscriptions/{sid}/kick"), &json!({}))
        .await
        .expect(201);
    let queued = admin
        .get(&format!("/api/v1/commands?subscription_id={sid}"))
        .await
        .expect(200);
    let kinds: Vec<&str> = queued["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["disconnect", "set_isolation"]);
    assert_eq!(
        queued["items"][1]["command"]["SetIsolation"]["isolated"],
        true
    );
    eventually(Duration::from_secs(20), "kick answered", || async {
        let c = command(&admin, &kick["id"]).await;
        (c["status"] != "pending").then_some(())
    })
    .await;
    agent.shutdown().await;
}

/// Two controller replicas on one PostgreSQL database (sharing the CA files, as the
/// deployment guide says): a command queued through replica B reaches the agent connected to
/// replica A, because every replica's watcher polls the queue, and the jobs' lease keeps a
/// job to one replica at a time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_queued_on_one_replica_is_delivered_by_the_other() {
    init_tracing();
    let db = TestDb::new(Backend::Postgres).await;
    let dir = tempfile::tempdir().unwrap();
    let a = Controller::start(dir.path(), &db).await;
    let b = Controller::start(dir.path(), &db).await;
    let admin_a = Api::admin(a.api_addr).await;
    let admin_b = Api::admin(b.api_addr).await;
    // The site's token names replica A's edge: the agent connects there.
    let (site_id, agent, _agent_dir) = agents::api_site(&admin_a, "Replika").await;
    let queued = admin_b
        .post(
            &format!("/api/v1/sites/{site_id}/commands"),
            &json!({"command": {"kind": "disconnect", "username": "nobody"}}),
        )
        .await
        .expect(201);
    let done = eventually(
        Duration::from_secs(20),
        "delivered by replica A",
        || async {
            let c = command(&admin_b, &queued["id"]).await;
            (c["status"] != "pending").then_some(c)
        },
    )
    .await;
    assert_eq!(done["status"], "applied", "{done}");
    assert_eq!(done["attempts"], 1, "exactly one replica delivered it");

    // Both replicas run the invoice job at once for a subscription that started two cycles
    // ago: the lease and the per-cycle claim leave exactly one invoice per cycle.
    let plan = admin_a
        .post(
            "/api/v1/plans",
            &json!({"name": "P", "kind": "pppoe", "price": 100000}),
        )
        .await
        .expect(201);
    let customer = admin_a
        .post("/api/v1/customers", &json!({"name": "C"}))
        .await
        .expect(201);
    let mut start = mikrobill_core::billing::cycle::local_date(mikrobill_core::db::now_ms(), 420);
    for _ in 0..70 {
        start = start.previous_day().unwrap();
    }
    while start.day() > 28 {
        start = start.previous_day().unwrap();
    }
    let sub = admin_a
        .post(
            "/api/v1/subscriptions",
            &json!({"customer_id": customer["id"], "plan_id": plan["id"], "site_id": site_id, "username": "c",
                    "billing_day": start.day(),
                    "start_date": format!("{:04}-{:02}-{:02}", start.year(), u8::from(start.month()), start.day())}),
        )
        .await
        .expect(201);
    let empty = json!({});
    let (ra, rb) = tokio::join!(
        admin_a.post("/api/v1/jobs/invoice-run/run", &empty),
        admin_b.post("/api/v1/jobs/invoice-run/run", &empty)
    );
    let changed =
        ra.expect(200)["changed"].as_i64().unwrap() + rb.expect(200)["changed"].as_i64().unwrap();
    let invoices = admin_b
        .get(&format!(
            "/api/v1/invoices?subscription_id={}",
            sub["id"].as_str().unwrap()
        ))
        .await
        .expect(200);
    let items = invoices["items"].as_array().unwrap();
    assert_eq!(items.len() as i64, 1 + changed, "{invoices}");
    assert!(
        items.len() >= 3,
        "two more cycles started since: {invoices}"
    );
    let mut numbers: Vec<&str> = items
        .iter()
        .map(|i| i["number"].as_str().unwrap())
        .collect();
    numbers.dedup();
    assert_eq!(numbers.len(), items.len());
    agent.shutdown().await;
}
