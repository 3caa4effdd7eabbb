//! Hardening of the running controller: private data files, API response headers, and
//! money totals that stay bounded (an overflow answers 422 with the field, never a 500).

use mikrobill_tests::http::Api;
use mikrobill_tests::{Backend, Controller, TestDb, init_tracing, on_both_backends};
use serde_json::json;
use std::os::unix::fs::PermissionsExt;

on_both_backends!(money_totals_are_bounded);

/// The largest amount the ledger holds (10^15 minor units).
const MAX: i64 = 1_000_000_000_000_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_files_are_private_and_api_answers_are_not_cached() {
    init_tracing();
    let db = TestDb::new(Backend::Sqlite).await;
    let parent = tempfile::tempdir().unwrap();
    // A data directory the controller creates itself, under the test's usual umask (022).
    let dir = parent.path().join("fresh").join("data");
    let out = std::process::Command::new(mikrobill_tests::bin("mikrobill-controller"))
        .arg("--data-dir")
        .arg(&dir)
        .arg("migrate")
        .env_remove("MIKROBILL_CONFIG")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&dir), 0o700, "data directory");
    assert_eq!(mode(&dir.join("mikrobill.db")), 0o600, "database file");
    for journal in ["mikrobill.db-wal", "mikrobill.db-shm"] {
        let p = dir.join(journal);
        if p.exists() {
            assert_eq!(mode(&p) & 0o077, 0, "{journal}");
        }
    }

    let ctl = Controller::start(&dir, &db).await;
    assert_eq!(
        mode(&dir.join("mikrobill.db")),
        0o600,
        "database file after serve"
    );
    let anon = Api::new(ctl.api_addr);
    let login = anon
        .post(
            "/api/v1/auth/login",
            &json!({"username": "admin", "password": mikrobill_tests::http::ADMIN_PASSWORD}),
        )
        .await;
    assert_eq!(login.status, 200, "{}", login.text);
    assert_eq!(login.header("cache-control"), Some("no-store"));
    assert_eq!(login.header("x-content-type-options"), Some("nosniff"));
    let problem = anon.get("/api/v1/customers").await;
    assert_eq!(problem.status, 401);
    assert_eq!(problem.header("x-content-type-options"), Some("nosniff"));
}

async fn money_totals_are_bounded(backend: Backend) {
    init_tracing();
    let db = TestDb::new(backend).await;
    let dir = tempfile::tempdir().unwrap();
    let ctl = Controller::start(dir.path(), &db).await;
    let admin = Api::admin(ctl.api_addr).await;
    let reseller = admin
        .post(
            "/api/v1/admins",
            &json!({"username": "toko-besar", "password": "toko-besar-password", "role": "reseller"}),
        )
        .await
        .expect(201);
    let credit = format!(
        "/api/v1/resellers/{}/credit",
        reseller["id"].as_str().unwrap()
    );
    // Filled to the bound in legal steps, then one more rupiah: refused by field.
    admin
        .post(&credit, &json!({"amount": MAX - 1}))
        .await
        .expect(200);
    let full = admin.post(&credit, &json!({"amount": 1})).await.expect(200);
    assert_eq!(full["balance"], MAX);
    for amount in [1, MAX] {
        let over = admin.post(&credit, &json!({"amount": amount})).await;
        assert_eq!(over.status, 422, "{}", over.text);
        assert_eq!(over.json()["field"], "amount");
    }
    let after = admin
        .get(&format!(
            "/api/v1/admins/{}",
            reseller["id"].as_str().unwrap()
        ))
        .await
        .expect(200);
    assert_eq!(after["balance"], MAX);
    let too_big = admin.post(&credit, &json!({"amount": i64::MAX})).await;
    assert_eq!(too_big.status, 422, "{}", too_big.text);
}
