//! The webhook consumer never stalls: an event whose fan-out always fails (a database trigger
//! the test installs makes every delivery insert for it fail) is parked after its attempts
//! while the events after it reach the receiver; the admin UI's Events page lists it with its
//! error, and its Retry button (an operator's, not a viewer's) delivers it once the fault is
//! gone.

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::routing::post;
use mikrobill_tests::Scenario;
use mikrobill_tests::web::WebClient;
use mikrobill_tests::{Backend, eventually};
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use std::time::Duration;

mikrobill_tests::on_both_backends!(a_poison_event_is_parked_for_webhooks_and_retried_from_the_ui);

type Bodies = Arc<Mutex<Vec<Value>>>;

async fn receiver() -> (String, Bodies) {
    let bodies: Bodies = Arc::default();
    async fn hook(State(b): State<Bodies>, body: Bytes) {
        if let Ok(v) = serde_json::from_slice(&body) {
            b.lock().unwrap().push(v);
        }
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = Router::new()
        .route("/hook", post(hook))
        .with_state(bodies.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}/hook"), bodies)
}

/// Event ids the receiver got, in arrival order.
fn received(bodies: &Bodies) -> Vec<i64> {
    bodies
        .lock()
        .unwrap()
        .iter()
        .filter_map(|b| b["id"].as_i64())
        .collect()
}

/// Makes every webhook delivery of an event whose payload mentions `poison` fail.
async fn install_fault(db: &mikrobill_core::db::Db, backend: Backend) {
    let statements: &[&str] = match backend {
        Backend::Sqlite => &["CREATE TRIGGER poison BEFORE INSERT ON webhook_deliveries \
             WHEN (SELECT payload FROM events WHERE id = NEW.event_id) LIKE '%poison%' \
             BEGIN SELECT RAISE(ABORT, 'injected fault: poison event'); END"],
        Backend::Postgres => &[
            "CREATE FUNCTION poison() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN \
             IF (SELECT payload FROM events WHERE id = NEW.event_id) LIKE '%poison%' THEN \
             RAISE EXCEPTION 'injected fault: poison event'; END IF; RETURN NEW; END $$",
            "CREATE TRIGGER poison BEFORE INSERT ON webhook_deliveries FOR EACH ROW EXECUTE FUNCTION poison()",
        ],
    };
    for s in statements {
        sqlx::raw_sql(sqlx::AssertSqlSafe(*s))
            .execute(&db.pool)
            .await
            .unwrap();
    }
}

async fn insert_event(db: &mikrobill_core::db::Db, payload: Value) -> i64 {
    sqlx::query_scalar(
        "INSERT INTO events (kind, site_id, payload, created_at) VALUES ('site.offline', NULL, $1, $2) RETURNING id",
    )
    .bind(payload.to_string())
    .bind(mikrobill_core::db::now_ms())
    .fetch_one(&db.pool)
    .await
    .unwrap()
}

async fn a_poison_event_is_parked_for_webhooks_and_retried_from_the_ui(backend: Backend) {
    let Scenario {
        dir: _dir,
        db,
        ctl,
        admin,
    } = Scenario::start(backend).await;
    let (url, bodies) = receiver().await;
    admin
        .post("/api/v1/webhooks", &json!({"url": url, "events": ["*"]}))
        .await
        .expect(201);
    admin
        .post(
            "/api/v1/admins",
            &json!({"username": "lihat", "password": "lihat-password-1", "role": "viewer"}),
        )
        .await
        .expect(201);

    let store = ctl.db().await;
    install_fault(&store, backend).await;
    let poison = insert_event(&store, json!({"poison": true})).await;
    let first = insert_event(&store, json!({"n": 1})).await;
    let second = insert_event(&store, json!({"n": 2})).await;

    // The events after the poison arrive; the poison is parked with the fault's message.
    eventually(Duration::from_secs(60), "the later events", || async {
        let got = received(&bodies);
        (got.contains(&first) && got.contains(&second)).then_some(())
    })
    .await;
    let parked = eventually(Duration::from_secs(60), "the parked event", || async {
        let p = admin
            .get("/api/v1/events/parked?consumer=webhooks")
            .await
            .expect(200);
        (!p.as_array().unwrap().is_empty()).then_some(p)
    })
    .await;
    assert_eq!(parked[0]["event_id"], poison, "{parked}");
    assert_eq!(parked[0]["attempts"], 5);
    assert!(
        parked[0]["last_error"]
            .as_str()
            .unwrap()
            .contains("injected fault"),
        "{parked}"
    );
    assert!(!received(&bodies).contains(&poison));
    assert!(
        ctl.metrics()
            .await
            .contains("mikrobill_events_parked{consumer=\"webhooks\"} 1")
    );

    // The admin UI lists it with its error and a Retry button; a viewer may neither see the
    // page nor post the retry.
    let retry_path = format!("/events/parked/webhooks/{poison}/retry");
    let mut viewer = WebClient::login(ctl.api_addr, "lihat", "lihat-password-1").await;
    assert_eq!(viewer.get("/events").await.status, 403);
    assert_eq!(viewer.post_form("/", &retry_path, &[]).await.status, 403);
    let mut web =
        WebClient::login(ctl.api_addr, "admin", mikrobill_tests::http::ADMIN_PASSWORD).await;
    let page = web.get("/events").await;
    assert!(page.text.contains("injected fault"), "{}", page.text);
    assert!(page.text.contains(&retry_path), "{}", page.text);
    assert_eq!(
        web.post_form("/events", "/events/parked/webhooks/999999/retry", &[])
            .await
            .status,
        404
    );

    // The fault is fixed; the operator's retry delivers the event once and unparks it.
    sqlx::raw_sql("DROP TRIGGER poison ON webhook_deliveries")
        .execute(&store.pool)
        .await
        .ok();
    sqlx::raw_sql("DROP TRIGGER IF EXISTS poison")
        .execute(&store.pool)
        .await
        .ok();
    let res = web.post_form("/events", &retry_path, &[]).await;
    assert_eq!(res.status, 303, "{}", res.text);
    assert_eq!(res.header("location"), Some("/events"));
    eventually(Duration::from_secs(60), "the retried delivery", || async {
        received(&bodies).contains(&poison).then_some(())
    })
    .await;
    eventually(Duration::from_secs(30), "the event unparked", || async {
        let p = admin
            .get("/api/v1/events/parked?consumer=webhooks")
            .await
            .expect(200);
        p.as_array().unwrap().is_empty().then_some(())
    })
    .await;
    let audit = admin
        .get("/api/v1/audit?entity=event_consumer&limit=10")
        .await
        .expect(200);
    assert_eq!(audit["items"][0]["action"], "events.retry_parked");
    assert_eq!(audit["items"][0]["actor_name"], "admin");
    tokio::time::sleep(Duration::from_secs(1)).await;
    let got = received(&bodies);
    assert_eq!(
        got.iter().filter(|id| **id == poison).count(),
        1,
        "delivered once: {got:?}"
    );
    store.close().await;
    drop(ctl);
    db.cleanup().await;
}
