//! The domain event outbox and outgoing webhooks through a real controller: business changes
//! become events in their own transaction; a webhook receives the kinds it asked for, signed
//! (checked with Python's hmac, an independent implementation); a receiver that fails five
//! times then succeeds gets the event exactly once as a success; one that always fails is
//! dead-lettered; an admin can replay.

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use mikrobill_tests::Scenario;
use mikrobill_tests::http::Api;
use mikrobill_tests::{Backend, agents, eventually};
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use std::time::Duration;

mikrobill_tests::on_both_backends!(events_reach_webhooks_once_signed_and_retried);

/// One request the fake receiver got.
#[derive(Clone, Debug)]
struct Hit {
    event: String,
    delivery: String,
    signature: String,
    body: Vec<u8>,
    answered: u16,
}

#[derive(Clone, Default)]
struct Receiver {
    hits: Arc<Mutex<Vec<Hit>>>,
    /// How many more requests to fail with 500.
    fail_next: Arc<Mutex<u32>>,
    always_fail: bool,
}

async fn hook(State(r): State<Receiver>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let mut fail = r.fail_next.lock().unwrap();
    let status = if r.always_fail || *fail > 0 {
        *fail = fail.saturating_sub(1);
        StatusCode::INTERNAL_SERVER_ERROR
    } else {
        StatusCode::OK
    };
    let h = |n: &str| {
        headers
            .get(n)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    r.hits.lock().unwrap().push(Hit {
        event: h("x-mikrobill-event"),
        delivery: h("x-mikrobill-delivery"),
        signature: h("x-mikrobill-signature"),
        body: body.to_vec(),
        answered: status.as_u16(),
    });
    status
}

async fn serve(r: Receiver) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = Router::new().route("/hook", post(hook)).with_state(r);
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}/hook")
}

/// Verifies a signature with Python's hmac module, not our code.
fn python_verifies(secret: &str, signature: &str, body: &[u8]) -> bool {
    let (t, v1) = signature.split_once(",v1=").unwrap();
    let ts = t.strip_prefix("t=").unwrap();
    let script = "import hmac,hashlib,sys; body=sys.stdin.buffer.read(); \
        mac=hmac.new(sys.argv[1].encode(), sys.argv[2].encode()+b'.'+body, hashlib.sha256).hexdigest(); \
        sys.exit(0 if hmac.compare_digest(mac, sys.argv[3]) else 1)";
    let mut child = std::process::Command::new("python3")
        .args(["-c", script, secret, ts, v1])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(body).unwrap();
    child.wait().unwrap().success()
}

async fn events_reach_webhooks_once_signed_and_retried(backend: Backend) {
    let Scenario {
        dir: _dir,
        db: _db,
        ctl,
        admin,
    } = Scenario::start(backend).await;

    let good = Receiver::default();
    let good_url = serve(good.clone()).await;
    let dead = Receiver {
        always_fail: true,
        ..Receiver::default()
    };
    let dead_url = serve(dead.clone()).await;
    let bad = admin
        .post(
            "/api/v1/webhooks",
            &json!({"url": "ftp://x", "events": ["*"]}),
        )
        .await;
    assert_eq!(bad.json()["field"], "url");
    let bad = admin
        .post(
            "/api/v1/webhooks",
            &json!({"url": good_url, "events": ["invoice.paid"]}),
        )
        .await;
    assert_eq!(bad.json()["field"], "events");
    let hook = admin
        .post("/api/v1/webhooks", &json!({"url": good_url, "events": ["invoice.created", "payment.received", "subscription.isolated"]}))
        .await
        .expect(201);
    let secret = hook["secret"].as_str().unwrap().to_string();
    let hook_id = hook["webhook"]["id"].as_str().unwrap().to_string();
    let dead_hook = admin
        .post(
            "/api/v1/webhooks",
            &json!({"url": dead_url, "events": ["site.online"]}),
        )
        .await
        .expect(201);
    assert!(
        !admin.get("/api/v1/webhooks").await.text.contains(&secret),
        "secrets are shown once"
    );

    // A subscription issues its first invoice: one event, one signed delivery.
    let (site_id, agent, _agent_dir) = agents::api_site(&admin, "Hook Site").await;
    let plan = admin
        .post(
            "/api/v1/plans",
            &json!({"name": "P10", "kind": "pppoe", "price": 100000}),
        )
        .await
        .expect(201);
    let customer = admin
        .post("/api/v1/customers", &json!({"name": "Hadi"}))
        .await
        .expect(201);
    let sub = admin
        .post(
            "/api/v1/subscriptions",
            &json!({"customer_id": customer["id"], "plan_id": plan["id"], "site_id": site_id, "username": "hadi"}),
        )
        .await
        .expect(201);
    let first = eventually(
        Duration::from_secs(20),
        "invoice event delivered",
        || async {
            good.hits
                .lock()
                .unwrap()
                .iter()
                .find(|h| h.event == "invoice.created")
                .cloned()
        },
    )
    .await;
    assert_eq!(first.answered, 200);
    assert!(
        python_verifies(&secret, &first.signature, &first.body),
        "signature must verify: {}",
        first.signature
    );
    assert!(!python_verifies(
        "whsec_wrong",
        &first.signature,
        &first.body
    ));
    let payload: Value = serde_json::from_slice(&first.body).unwrap();
    assert_eq!(payload["type"], "invoice.created");
    assert_eq!(payload["data"]["subscription_id"], sub["id"]);

    // The receiver fails five times, then succeeds: the payment arrives once as a success.
    *good.fail_next.lock().unwrap() = 5;
    let invoice = admin
        .get(&format!(
            "/api/v1/invoices?subscription_id={}",
            sub["id"].as_str().unwrap()
        ))
        .await
        .expect(200)["items"][0]
        .clone();
    admin
        .post(
            "/api/v1/payments",
            &json!({"invoice_id": invoice["id"], "amount": invoice["total"], "method": "cash"}),
        )
        .await
        .expect(201);
    let ok = eventually(
        Duration::from_secs(30),
        "payment delivered after retries",
        || async {
            good.hits
                .lock()
                .unwrap()
                .iter()
                .find(|h| h.event == "payment.received" && h.answered == 200)
                .cloned()
        },
    )
    .await;
    let tries: Vec<Hit> = good
        .hits
        .lock()
        .unwrap()
        .iter()
        .filter(|h| h.delivery == ok.delivery)
        .cloned()
        .collect();
    assert_eq!(tries.len(), 6, "five failures then one success");
    assert_eq!(tries.iter().filter(|h| h.answered == 200).count(), 1);
    // The receiver answers before the worker records the answer: wait for the record.
    let d = eventually(
        Duration::from_secs(10),
        "the delivery recorded as delivered",
        || async {
            let deliveries = admin
                .get(&format!("/api/v1/webhooks/{hook_id}/deliveries"))
                .await
                .expect(200);
            deliveries
                .as_array()
                .unwrap()
                .iter()
                .find(|d| d["id"].as_i64() == ok.delivery.parse().ok())
                .filter(|d| d["status"] != "pending")
                .cloned()
        },
    )
    .await;
    assert_eq!(d["status"], "delivered");
    assert_eq!(d["attempts"], 6);
    // Not subscribed: site.online went to the other webhook only.
    assert!(
        good.hits
            .lock()
            .unwrap()
            .iter()
            .all(|h| h.event != "site.online")
    );

    // A receiver that always fails is dead-lettered after the last attempt.
    let dead_id = dead_hook["webhook"]["id"].as_str().unwrap().to_string();
    let dead_rows = eventually(Duration::from_secs(60), "dead-lettered", || async {
        let rows = admin
            .get(&format!("/api/v1/webhooks/{dead_id}/deliveries"))
            .await
            .json();
        rows.as_array()
            .unwrap()
            .iter()
            .any(|d| d["status"] == "dead")
            .then_some(rows)
    })
    .await;
    let one = dead_rows
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["status"] == "dead")
        .unwrap();
    assert_eq!(one["attempts"], 8);
    assert_eq!(one["last_status"], 500);

    // The event log is visible and filterable; an admin can replay a webhook.
    let events = admin
        .get("/api/v1/events?kind=payment.received")
        .await
        .expect(200);
    assert_eq!(events["items"].as_array().unwrap().len(), 1);
    assert_eq!(events["items"][0]["customer_id"], customer["id"]);
    let consumers = admin.get("/api/v1/events/consumers").await.expect(200);
    let names: Vec<&str> = consumers
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["notifications", "webhooks"]);
    let before = good
        .hits
        .lock()
        .unwrap()
        .iter()
        .filter(|h| h.answered == 200)
        .count();
    let replay = admin
        .post(
            &format!("/api/v1/webhooks/{hook_id}/replay"),
            &json!({"after_event": 0}),
        )
        .await
        .expect(200);
    assert!(replay["queued"].as_u64().unwrap() >= 2);
    eventually(Duration::from_secs(20), "replayed", || async {
        let now = good
            .hits
            .lock()
            .unwrap()
            .iter()
            .filter(|h| h.answered == 200)
            .count();
        (now >= before + 2).then_some(())
    })
    .await;
    // A status change reaches the integrator without the subscriber's PPPoE password.
    admin
        .post(
            &format!(
                "/api/v1/subscriptions/{}/isolate",
                sub["id"].as_str().unwrap()
            ),
            &json!({}),
        )
        .await
        .expect(200);
    let isolated = eventually(
        Duration::from_secs(20),
        "isolation event delivered",
        || async {
            good.hits
                .lock()
                .unwrap()
                .iter()
                .find(|h| h.event == "subscription.isolated" && h.answered == 200)
                .cloned()
        },
    )
    .await;
    let payload: Value = serde_json::from_slice(&isolated.body).unwrap();
    assert_eq!(payload["data"]["username"], "hadi");
    assert!(payload["data"].get("password").is_none(), "{payload}");
    let metrics = ctl.metrics().await;
    assert!(
        metrics.contains("mikrobill_webhook_attempts_total{outcome=\"dead\"}"),
        "{metrics}"
    );
    assert!(metrics.contains("mikrobill_webhook_attempts_total{outcome=\"retry\"}"));
    // The dead receiver tripped its breaker; the good one kept receiving meanwhile.
    assert!(
        metrics.contains("mikrobill_webhook_breaker_trips_total"),
        "{metrics}"
    );
    let viewer_pw = "viewer-password-1";
    admin
        .post(
            "/api/v1/admins",
            &json!({"username": "viewer1", "password": viewer_pw, "role": "viewer"}),
        )
        .await
        .expect(201);
    let viewer = Api::login(ctl.api_addr, "viewer1", viewer_pw).await;
    assert_eq!(viewer.get("/api/v1/events").await.status, 403);
    assert_eq!(viewer.get("/api/v1/webhooks").await.status, 403);
    agent.shutdown().await;
}
