//! Secrets at rest through a real controller: a PPPoE password set on create and changed
//! later never reaches the audit log, the event log, a webhook delivery or the controller's
//! own log; rows stored by an older controller (written straight into the database here) are
//! scrubbed by migration 0013's data step on the next start.

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::routing::post;
use mikrobill_tests::Scenario;
use mikrobill_tests::http::Api;
use mikrobill_tests::{Backend, eventually};
use serde_json::json;
use std::sync::{Arc, Mutex};
use std::time::Duration;

mikrobill_tests::on_both_backends!(secrets_stay_out_of_audit_events_webhooks_and_logs);

const FIRST: &str = "Rahasia-PPPoE-771";
const SECOND: &str = "Ganti-Sandi-882";
const OLD_ROW: &str = "Lama-Bocor-993";

async fn receiver() -> (String, Arc<Mutex<Vec<String>>>) {
    let bodies = Arc::new(Mutex::new(Vec::new()));
    async fn hook(State(b): State<Arc<Mutex<Vec<String>>>>, body: Bytes) {
        b.lock()
            .unwrap()
            .push(String::from_utf8_lossy(&body).into_owned());
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = Router::new()
        .route("/hook", post(hook))
        .with_state(bodies.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}/hook"), bodies)
}

async fn secrets_stay_out_of_audit_events_webhooks_and_logs(backend: Backend) {
    let Scenario {
        dir: _dir,
        db,
        mut ctl,
        admin,
    } = Scenario::start(backend).await;
    let (url, bodies) = receiver().await;
    let hook = admin
        .post("/api/v1/webhooks", &json!({"url": url, "events": ["*"]}))
        .await
        .expect(201);
    let hook_secret = hook["secret"].as_str().unwrap().to_string();

    let site = admin
        .post("/api/v1/sites", &json!({"name": "Dusun Rahasia"}))
        .await
        .expect(201);
    let plan = admin
        .post(
            "/api/v1/plans",
            &json!({"name": "Rumah 10M", "kind": "pppoe", "price": 150000}),
        )
        .await
        .expect(201);
    let customer = admin
        .post("/api/v1/customers", &json!({"name": "Siti"}))
        .await
        .expect(201);
    let sub = admin
        .post(
            "/api/v1/subscriptions",
            &json!({"customer_id": customer["id"], "plan_id": plan["id"], "site_id": site["site"]["id"],
                "username": "siti@rahasia", "password": FIRST}),
        )
        .await
        .expect(201);
    let sid = sub["id"].as_str().unwrap();
    // The operator still reads the password where the API is meant to show it.
    assert_eq!(sub["password"], FIRST);
    admin
        .patch(
            &format!("/api/v1/subscriptions/{sid}"),
            &json!({"password": SECOND}),
        )
        .await
        .expect(200);
    admin
        .post(&format!("/api/v1/subscriptions/{sid}/isolate"), &json!({}))
        .await
        .expect(200);
    admin
        .post(
            &format!("/api/v1/subscriptions/{sid}/terminate"),
            &json!({}),
        )
        .await
        .expect(200);
    admin
        .post(
            "/api/v1/admins",
            &json!({"username": "kasir1", "password": "Kasir-Sandi-123", "role": "cashier"}),
        )
        .await
        .expect(201);

    let leaks = |text: &str| -> Vec<&str> {
        [FIRST, SECOND, "Kasir-Sandi-123", hook_secret.as_str()]
            .into_iter()
            .filter(|s| text.contains(s))
            .collect()
    };
    let audit = admin
        .get(&format!(
            "/api/v1/audit?entity=subscription&entity_id={sid}&limit=100"
        ))
        .await
        .expect(200);
    let entries = audit["items"].as_array().unwrap();
    assert!(
        entries.len() >= 4,
        "create, update, isolate, terminate: {audit}"
    );
    let created = entries
        .iter()
        .find(|e| e["action"] == "subscription.create")
        .expect("create audited");
    assert_eq!(
        created["after"]["password"], "[redacted]",
        "the key stays, so an auditor sees a password was set"
    );
    assert_eq!(created["after"]["username"], "siti@rahasia");
    let all_audit = admin.get("/api/v1/audit?limit=500").await.expect(200);
    assert_eq!(leaks(&all_audit.to_string()), Vec::<&str>::new());
    let events = admin.get("/api/v1/events?limit=500").await.expect(200);
    assert!(
        events["items"].as_array().unwrap().len() >= 3,
        "invoice, isolation and termination events: {events}"
    );
    assert_eq!(leaks(&events.to_string()), Vec::<&str>::new());
    let delivered = eventually(Duration::from_secs(15), "webhook deliveries", || async {
        let b = bodies.lock().unwrap().clone();
        b.iter()
            .any(|b| b.contains("subscription.terminated"))
            .then_some(b)
    })
    .await;
    assert_eq!(leaks(&delivered.join("\n")), Vec::<&str>::new());
    assert_eq!(leaks(&ctl.log()), Vec::<&str>::new());

    // Rows an older controller wrote, before redaction, are scrubbed on the next start.
    let store = ctl.db().await;
    sqlx::query(
        "INSERT INTO audit_log (at, actor_name, action, entity, entity_id, before_json, after_json) \
         VALUES (1, 'cli', 'subscription.update', 'subscription', 'old', $1, $2)",
    )
    .bind(json!({"username": "lama", "password": OLD_ROW}).to_string())
    .bind(json!({"config": {"bot_token": OLD_ROW, "chat": 1}}).to_string())
    .execute(&store.pool)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO events (kind, payload, created_at) VALUES ('subscription.isolated', $1, 1)",
    )
    .bind(json!({"id": "old", "password": OLD_ROW}).to_string())
    .execute(&store.pool)
    .await
    .unwrap();
    sqlx::query("DELETE FROM data_migrations")
        .execute(&store.pool)
        .await
        .unwrap();
    store.close().await;
    ctl.restart().await;
    let admin = Api::admin(ctl.api_addr).await;
    let old = admin
        .get("/api/v1/audit?entity_id=old&limit=10")
        .await
        .expect(200);
    let old = &old["items"][0];
    assert_eq!(old["before"]["username"], "lama");
    assert_eq!(old["before"]["password"], "[redacted]");
    assert_eq!(old["after"]["config"]["bot_token"], "[redacted]");
    assert_eq!(old["after"]["config"]["chat"], 1);
    let events = admin.get("/api/v1/events?limit=500").await.expect(200);
    assert!(!events.to_string().contains(OLD_ROW), "{events}");
    let store = ctl.db().await;
    let raw: Vec<String> = sqlx::query_scalar(
        "SELECT COALESCE(before_json, '') || COALESCE(after_json, '') FROM audit_log",
    )
    .fetch_all(&store.pool)
    .await
    .unwrap();
    assert!(raw.iter().all(|r| !r.contains(OLD_ROW)));
    let steps: Vec<String> = sqlx::query_scalar(
        "SELECT name FROM data_migrations WHERE name = '0013_scrub_audit_secrets'",
    )
    .fetch_all(&store.pool)
    .await
    .unwrap();
    assert_eq!(
        steps,
        ["0013_scrub_audit_secrets"],
        "the step ran once more"
    );
    store.close().await;
    drop(ctl);
    db.cleanup().await;
}
