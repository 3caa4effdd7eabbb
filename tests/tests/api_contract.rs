//! The OpenAPI document is the contract: schemathesis (PyPI, an independent implementation)
//! reads `/api/v1/openapi.json` from a real controller holding one of each record, generates
//! requests for every operation (bounded examples), and fails on any 5xx, any response whose
//! body does not match its schema, any undocumented status code and any undocumented content
//! type. The seeded records' ids are handed to schemathesis, so operations on one record reach
//! their handlers instead of only answering 404.

use mikrobill_tests::http::Api;
use mikrobill_tests::{Backend, Controller, TestDb, init_tracing};
use serde_json::{Value, json};
use std::path::PathBuf;
use std::process::Command;

mikrobill_tests::on_both_backends!(every_answer_matches_the_openapi_document);

/// The schemathesis executable: `MIKROBILL_SCHEMATHESIS`, else the virtualenv that
/// `scripts/ensure-test-tools` creates (`MIKROBILL_VENV`, by default under `~/.cache`).
/// Missing is a failure, never a skip.
fn schemathesis() -> PathBuf {
    let path = std::env::var_os("MIKROBILL_SCHEMATHESIS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            std::env::var_os("MIKROBILL_VENV")
                .map(PathBuf::from)
                .unwrap_or_else(|| {
                    PathBuf::from(std::env::var("HOME").expect("HOME"))
                        .join(".cache/mikrobill-venv")
                })
                .join("bin/schemathesis")
        });
    assert!(
        path.exists(),
        "schemathesis not found at {}: run scripts/ensure-test-tools (or set MIKROBILL_SCHEMATHESIS)",
        path.display()
    );
    path
}

fn id(v: &Value) -> String {
    v["id"].as_str().expect("an id").to_string()
}

/// One of each record whose id appears in a path, keyed by the path parameters schemathesis
/// is to use for the operations under a path prefix.
async fn seed(admin: &Api) -> Vec<(&'static str, Vec<(&'static str, String)>)> {
    let site = admin
        .post("/api/v1/sites", &json!({"name": "Kontrak"}))
        .await
        .expect(201);
    let site_id = site["site"]["id"].as_str().unwrap().to_string();
    let hotspot = admin
        .post(
            "/api/v1/plans",
            &json!({"name": "Harian", "kind": "hotspot", "price": 5000}),
        )
        .await
        .expect(201);
    let pppoe = admin
        .post(
            "/api/v1/plans",
            &json!({"name": "Rumah 10M", "kind": "pppoe", "price": 150000}),
        )
        .await
        .expect(201);
    let customer = admin
        .post(
            "/api/v1/customers",
            &json!({"name": "Siti", "phone": "081234567890"}),
        )
        .await
        .expect(201);
    let sub = admin
        .post(
            "/api/v1/subscriptions",
            &json!({"customer_id": id(&customer), "plan_id": id(&pppoe), "site_id": site_id,
                "username": "siti@kontrak", "password": "kontrak-pass-1"}),
        )
        .await
        .expect(201);
    let invoices = admin
        .get(&format!("/api/v1/invoices?subscription_id={}", id(&sub)))
        .await
        .expect(200);
    let invoice = id(&invoices["items"][0]);
    let payment = admin
        .post(
            "/api/v1/payments",
            &json!({"invoice_id": invoice, "amount": 1000, "method": "cash"}),
        )
        .await
        .expect(201);
    let payment_id = payment["payment"]["id"]
        .as_str()
        .or(payment["id"].as_str())
        .expect("payment id")
        .to_string();
    let reseller = admin
        .post(
            "/api/v1/admins",
            &json!({"username": "toko", "password": "toko-password-1", "role": "reseller"}),
        )
        .await
        .expect(201);
    let batch = admin
        .post(
            "/api/v1/voucher-batches",
            &json!({"plan_id": id(&hotspot), "count": 3, "scope": "all"}),
        )
        .await
        .expect(201);
    let vouchers = admin
        .get(&format!("/api/v1/voucher-batches/{}/vouchers", id(&batch)))
        .await
        .expect(200);
    let code = vouchers["items"][0]["code"].as_str().unwrap().to_string();
    let webhook = admin
        .post(
            "/api/v1/webhooks",
            &json!({"url": "http://127.0.0.1:9/hook", "events": ["*"]}),
        )
        .await
        .expect(201);
    let channel = admin
        .post(
            "/api/v1/notification-channels",
            &json!({"name": "NOC", "config": {"kind": "telegram", "api_base": "http://127.0.0.1:9",
                "bot_token": "1:abc", "operator_chat_id": "-100"}}),
        )
        .await
        .expect(201);
    let group = admin
        .post("/api/v1/site-groups", &json!({"name": "Utara"}))
        .await
        .expect(201);
    let command = admin
        .post(
            &format!("/api/v1/sites/{site_id}/commands"),
            &json!({"command": {"kind": "resync_router"}}),
        )
        .await
        .expect(201);
    let one = |name: &'static str, v: String| vec![(name, v)];
    vec![
        ("/admins/", one("id", id(&reseller))),
        ("/resellers/", one("id", id(&reseller))),
        ("/commands/", one("id", command["id"].to_string())),
        ("/customers/", one("id", id(&customer))),
        ("/invoices/", one("id", invoice)),
        ("/payments/", one("id", payment_id)),
        ("/plans/", one("id", id(&hotspot))),
        (
            "/site-groups/",
            vec![("id", id(&group)), ("site_id", site_id.clone())],
        ),
        ("/sites/", one("id", site_id)),
        ("/subscriptions/", one("id", id(&sub))),
        ("/voucher-batches/", one("id", id(&batch))),
        ("/vouchers/", one("code", code)),
        (
            "/webhooks/",
            one("id", webhook["webhook"]["id"].as_str().unwrap().into()),
        ),
        ("/notification-channels/", one("id", id(&channel))),
        ("/events/consumers/", one("name", "webhooks".into())),
        (
            "/notification-templates/",
            vec![("topic", "invoice.reminder".into()), ("lang", "en".into())],
        ),
    ]
}

async fn every_answer_matches_the_openapi_document(backend: Backend) {
    init_tracing();
    let st = schemathesis();
    let db = TestDb::new(backend).await;
    let dir = tempfile::tempdir().unwrap();
    let ctl = Controller::start(dir.path(), &db).await;
    let admin = Api::admin(ctl.api_addr).await;
    let seeded = seed(&admin).await;
    let token = admin
        .post("/api/v1/tokens", &json!({"name": "schemathesis"}))
        .await
        .expect(201)["secret"]
        .as_str()
        .expect("token")
        .to_string();

    let mut config = String::new();
    for (prefix, params) in &seeded {
        let regex = format!("^{prefix}");
        let params = params
            .iter()
            .map(|(k, v)| format!("{k} = {}", toml_string(v)))
            .collect::<Vec<_>>()
            .join(", ");
        config.push_str(&format!(
            "[[operations]]\ninclude-path-regex = {}\nparameters = {{ {params} }}\n\n",
            toml_string(&regex)
        ));
    }
    let config_path = dir.path().join("schemathesis.toml");
    std::fs::write(&config_path, &config).unwrap();
    let report = dir.path().join("schemathesis-report");
    // It keeps a cache in its working directory; that belongs with the test's files.
    let workdir = dir.path().to_path_buf();

    let out = tokio::task::spawn_blocking(move || {
        Command::new(st)
            .current_dir(&workdir)
            .arg("--config-file")
            .arg(&config_path)
            .args(["run", &format!("http://{}/api/v1/openapi.json", ctl.api_addr)])
            .args(["--header", &format!("Authorization: Bearer {token}")])
            .args([
                "--checks",
                "not_a_server_error,response_schema_conformance,status_code_conformance,content_type_conformance",
            ])
            .args(["--phases", "examples,coverage,fuzzing,stateful"])
            .args(["--max-examples", "20", "--seed", "20261205"])
            // Logging out would revoke the token every later request carries.
            .args(["--exclude-path", "/auth/logout"])
            .args(["--exclude-path-regex", "^/tokens/\\{id\\}$"])
            // One worker: with two threads, hypothesis's lambda-source cache races and
            // schemathesis reports a "Runtime Error" (AST recursion depth mismatch) that is
            // no answer of ours, failing the run at random.
            .args(["--generation-database", "none", "--workers", "1"])
            .args(["--no-color", "--request-timeout", "30"])
            .arg("--report-dir")
            .arg(&report)
            .output()
            .map(|o| (o, ctl))
    })
    .await
    .unwrap()
    .expect("run schemathesis");
    let (out, ctl) = out;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "schemathesis found contract violations ({:?}) with config:\n{config}\n{stdout}\n{stderr}",
        out.status
    );
    // The run did test every selected operation, and nearly all there are (a wrong URL or
    // token would test nothing and pass).
    let count = |label: &str| -> u32 {
        let at = stdout
            .find(label)
            .unwrap_or_else(|| panic!("no {label} in:\n{stdout}"));
        stdout[at + label.len()..]
            .trim_start()
            .split(|c: char| !c.is_ascii_digit())
            .next()
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no count after {label} in:\n{stdout}"))
    };
    let (selected, tested) = (count("Selected:"), count("Tested:"));
    assert!(selected >= 80 && tested == selected, "{stdout}");
    // The summary (test cases generated, warnings) goes to the test log.
    eprintln!(
        "{}",
        &stdout[stdout
            .find("WARNINGS")
            .or(stdout.find("SUMMARY"))
            .unwrap_or(0)..]
    );
    assert!(!stdout.contains("Authentication failed"), "{stdout}");
    drop(ctl);
    db.cleanup().await;
}

/// A TOML basic string.
fn toml_string(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}
