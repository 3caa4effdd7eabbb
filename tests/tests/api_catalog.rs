//! Customers, plans and sites through the admin API of a real controller: validation with
//! field names, keyset paging and search, plan changes reaching agents, site enrollment.

use mikrobill_tests::Scenario;
use mikrobill_tests::{Backend, agents};
use serde_json::json;
use std::time::Duration;

mikrobill_tests::on_both_backends!(customers_crud_search_and_paging, plans_and_sites);

async fn customers_crud_search_and_paging(backend: Backend) {
    let Scenario {
        dir: _dir,
        db: _db,
        ctl: _ctl,
        admin,
    } = Scenario::start(backend).await;

    let c = admin
        .post(
            "/api/v1/customers",
            &json!({"name": "Budi Santoso", "phone": "0812-3456-7890", "email": "Budi@Example.id", "address": "RT 02 / RW 05"}),
        )
        .await
        .expect(201);
    assert_eq!(c["number"], "C000001");
    assert_eq!(c["phone"], "+6281234567890");
    assert_eq!(c["email"], "budi@example.id");
    assert_eq!(c["balance"], 0);
    for (body, field) in [
        (json!({"name": ""}), "name"),
        (json!({"name": "X", "phone": "12ab"}), "phone"),
        (json!({"name": "X", "email": "not-mail"}), "email"),
    ] {
        let res = admin.post("/api/v1/customers", &body).await;
        assert_eq!(res.status, 422, "{}", res.text);
        assert_eq!(res.json()["field"], field);
    }
    for i in 0..7 {
        admin
            .post("/api/v1/customers", &json!({"name": format!("Warung {i}")}))
            .await
            .expect(201);
    }
    // Search is case-insensitive over name, number, phone and e-mail; `%` is literal.
    let found = admin.get("/api/v1/customers?q=warung").await.expect(200);
    assert_eq!(found["items"].as_array().unwrap().len(), 7);
    let found = admin.get("/api/v1/customers?q=3456").await.expect(200);
    assert_eq!(found["items"][0]["name"], "Budi Santoso");
    assert_eq!(
        admin.get("/api/v1/customers?q=%25").await.expect(200)["items"]
            .as_array()
            .unwrap()
            .len(),
        0
    );
    // Paging walks every customer once, in number order.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let url = match &cursor {
            Some(c) => format!("/api/v1/customers?limit=3&cursor={c}"),
            None => "/api/v1/customers?limit=3".to_string(),
        };
        let page = admin.get(&url).await.expect(200);
        for it in page["items"].as_array().unwrap() {
            seen.push(it["number"].as_str().unwrap().to_string());
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    assert_eq!(seen.len(), 8);
    // The list renders customers in the database; they must equal the typed single read.
    let first = admin.get("/api/v1/customers?limit=1").await.expect(200)["items"][0].clone();
    assert_eq!(
        first,
        admin
            .get(&format!("/api/v1/customers/{}", c["id"].as_str().unwrap()))
            .await
            .expect(200)
    );
    assert!(seen.windows(2).all(|w| w[0] < w[1]));

    let id = c["id"].as_str().unwrap();
    let patched = admin
        .patch(
            &format!("/api/v1/customers/{id}"),
            &json!({"email": "", "notes": "tower B"}),
        )
        .await
        .expect(200);
    assert!(patched["email"].is_null());
    assert_eq!(patched["notes"], "tower B");
    assert_eq!(patched["phone"], "+6281234567890");
    assert_eq!(admin.get("/api/v1/customers/nope").await.status, 404);
    let audit = admin
        .get(&format!("/api/v1/audit?entity=customer&entity_id={id}"))
        .await
        .expect(200);
    assert_eq!(audit["items"][0]["before"]["email"], "budi@example.id");
    assert!(audit["items"][0]["after"]["email"].is_null());
}

async fn plans_and_sites(backend: Backend) {
    let Scenario {
        dir: _dir,
        db: _db,
        ctl: _ctl,
        admin,
    } = Scenario::start(backend).await;

    // A site from the API enrolls a real agent with the returned token.
    let enr = admin
        .post("/api/v1/sites", &json!({"name": "Desa Maju"}))
        .await
        .expect(201);
    let token = enr["token"].as_str().unwrap();
    assert!(enr["command"].as_str().unwrap().contains(token));
    let site_id = enr["site"]["id"].as_str().unwrap().to_string();
    let agent_dir = tempfile::tempdir().unwrap();
    agents::enroll(token, agent_dir.path()).await;
    let agent = agents::start(agent_dir.path(), None).await;
    agents::wait_connected(&agent).await;
    mikrobill_tests::eventually(Duration::from_secs(20), "site online", || async {
        let s = admin.get(&format!("/api/v1/sites/{site_id}")).await.json();
        (s["online"] == true).then_some(())
    })
    .await;
    assert_eq!(
        admin
            .post("/api/v1/sites", &json!({"name": "Desa Maju"}))
            .await
            .status,
        409
    );
    assert_eq!(
        admin
            .post("/api/v1/sites", &json!({"name": "bad/name"}))
            .await
            .json()["field"],
        "name"
    );

    let plan = admin
        .post(
            "/api/v1/plans",
            &json!({"name": "Home 10M", "kind": "pppoe", "price": 150000, "rate_limit": "5M/10M", "isolation_profile": "isolir"}),
        )
        .await
        .expect(201);
    assert_eq!(plan["kind"], "pppoe");
    let bad = admin
        .post(
            "/api/v1/plans",
            &json!({"name": "X", "kind": "hotspot", "price": 1000, "rate_limit": "fast"}),
        )
        .await;
    assert_eq!(bad.status, 422);
    assert_eq!(bad.json()["field"], "rate_limit");
    let neg = admin
        .post(
            "/api/v1/plans",
            &json!({"name": "X", "kind": "hotspot", "price": -1}),
        )
        .await;
    assert_eq!(neg.json()["field"], "price");

    // A plan change reaches the connected agent's cache.
    let plan_id = plan["id"].as_str().unwrap();
    let mut update =
        json!({"name": "Home 20M", "kind": "pppoe", "price": 200000, "rate_limit": "10M/20M"});
    admin
        .put(&format!("/api/v1/plans/{plan_id}"), &update)
        .await
        .expect(200);
    mikrobill_tests::eventually(Duration::from_secs(10), "plan change synced", || async {
        agent
            .cache()
            .plan(plan_id)
            .ok()
            .flatten()
            .filter(|p| p.rate_limit.as_deref() == Some("10M/20M"))
    })
    .await;
    update["kind"] = json!("hotspot");
    assert_eq!(
        admin
            .put(&format!("/api/v1/plans/{plan_id}"), &update)
            .await
            .json()["field"],
        "kind"
    );
    admin
        .post(
            &format!("/api/v1/plans/{plan_id}/archive"),
            &json!({"archived": true}),
        )
        .await
        .expect(200);
    assert_eq!(
        admin.get("/api/v1/plans").await.expect(200)["items"]
            .as_array()
            .unwrap()
            .len(),
        0
    );
    assert_eq!(
        admin.get("/api/v1/plans?archived=true").await.expect(200)["items"]
            .as_array()
            .unwrap()
            .len(),
        1
    );

    // Revoking through the API cuts the agent off.
    admin
        .post(&format!("/api/v1/sites/{site_id}/revoke"), &json!({}))
        .await
        .expect(200);
    mikrobill_tests::eventually(Duration::from_secs(20), "site offline", || async {
        let s = admin.get(&format!("/api/v1/sites/{site_id}")).await.json();
        (s["online"] == false).then_some(())
    })
    .await;
    assert_eq!(
        admin
            .post(&format!("/api/v1/sites/{site_id}/token"), &json!({}))
            .await
            .status,
        409
    );
    agent.shutdown().await;
}
