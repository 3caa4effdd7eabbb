//! A field team's day of installs: many sites with their tokens in one call (API, JSON or
//! CSV out; CLI, CSV in and out), all or nothing, and the tokens enroll real agents.

use mikrobill_tests::http::Api;
use mikrobill_tests::{Backend, Scenario, agents};
use serde_json::json;

mikrobill_tests::on_both_backends!(many_sites_with_their_tokens_in_one_call);

async fn many_sites_with_their_tokens_in_one_call(backend: Backend) {
    let s = Scenario::start(backend).await;
    let admin = &s.admin;
    let made = admin
        .post(
            "/api/v1/sites/bulk",
            &json!({"names": ["Dusun A", "Dusun B", "Pasar C"], "token_ttl_hours": 72}),
        )
        .await
        .expect(201);
    let items = made["items"].as_array().unwrap();
    assert_eq!(items.len(), 3);
    assert_eq!(items[1]["site"]["name"], "Dusun B");
    let in_three_days = mikrobill_core::db::now_ms() + 72 * 3_600_000;
    assert!((items[0]["expires_at"].as_i64().unwrap() - in_three_days).abs() < 60_000);

    // A token from the batch enrolls a real agent for its own site.
    let dir = tempfile::tempdir().unwrap();
    agents::enroll(items[1]["token"].as_str().unwrap(), dir.path()).await;
    assert_eq!(
        agents::site_id(dir.path()),
        items[1]["site"]["id"].as_str().unwrap()
    );
    let agent = agents::start(dir.path(), None).await;
    agents::wait_connected(&agent).await;

    // CSV out, never cached.
    let csv = admin
        .request_with_headers(
            "POST",
            "/api/v1/sites/bulk?format=csv",
            Some(serde_json::to_vec(&json!({"names": ["Menara 1", "Menara 2"]})).unwrap()),
            "application/json",
            &[],
        )
        .await;
    assert_eq!(csv.status, 201, "{}", csv.text);
    assert_eq!(csv.header("cache-control"), Some("no-store"));
    let lines: Vec<&str> = csv.text.lines().collect();
    assert_eq!(lines[0], "name,site_id,token,expires_at,command");
    assert_eq!(lines.len(), 3);
    assert!(lines[2].starts_with("Menara 2,"), "{}", csv.text);

    // All or nothing: one taken name, and the new one next to it is not created either.
    let taken = admin
        .post("/api/v1/sites/bulk", &json!({"names": ["Baru", "Dusun A"]}))
        .await;
    assert_eq!(taken.status, 409, "{}", taken.text);
    assert!(taken.text.contains("entry 2"), "{}", taken.text);
    let twice = admin
        .post("/api/v1/sites/bulk", &json!({"names": ["X", "x"]}))
        .await;
    assert_eq!(twice.status, 422, "{}", twice.text);
    let empty = admin
        .post("/api/v1/sites/bulk", &json!({"names": []}))
        .await;
    assert_eq!(empty.status, 422);
    let sites = admin.get("/api/v1/sites?limit=100").await.expect(200);
    let names: Vec<&str> = sites["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert!(!names.contains(&"Baru"), "{names:?}");
    assert!(!names.contains(&"X"), "{names:?}");

    // Only a role that may create sites may do it in bulk.
    let pw = s
        .ctl
        .cli(&["admin", "create", "kasir", "--role", "cashier"]);
    let pw = pw
        .lines()
        .find_map(|l| l.strip_prefix("password: "))
        .unwrap();
    let cashier = Api::login(s.ctl.api_addr, "kasir", pw).await;
    assert_eq!(
        cashier
            .post("/api/v1/sites/bulk", &json!({"names": ["Nope"]}))
            .await
            .status,
        403
    );

    // The CLI takes the field team's CSV and prints the tokens as CSV.
    let file = s.dir.path().join("sites.csv");
    std::fs::write(&file, "name\nRT 01\n\"RT 02\"\n\n").unwrap();
    let out = s.ctl.cli(&["site", "add-many", file.to_str().unwrap()]);
    let rows: Vec<&str> = out.lines().collect();
    assert_eq!(rows.len(), 3, "{out}");
    assert!(rows[1].starts_with("RT 01,"), "{out}");
    let token = rows[2].split(',').nth(2).unwrap();
    assert!(!token.is_empty());
    std::fs::write(&file, "name\nRT 03\nRT 01\n").unwrap();
    let refused = s
        .ctl
        .cli_output(&["site", "add-many", file.to_str().unwrap()]);
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("already exists"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );

    // The audit log says tokens were issued, never what they are.
    let audit = admin.get("/api/v1/audit?limit=100").await.expect(200);
    let text = audit.to_string();
    assert!(text.contains("site.token"));
    for item in items {
        assert!(!text.contains(item["token"].as_str().unwrap()));
    }
    agent.shutdown().await;
    s.finish().await;
}
