//! Site changes are audited by the domain operation itself, so the CLI, the API and the web
//! UI leave the same trail: `site add`, `site token` and `site revoke` at the command line are
//! audited as `cli` (they left no row before), the API's once each (not twice), and no
//! enrollment token's text reaches the log.

use mikrobill_tests::Backend;
use mikrobill_tests::Scenario;
use serde_json::{Value, json};

mikrobill_tests::on_both_backends!(every_way_of_changing_a_site_is_audited_once);

async fn every_way_of_changing_a_site_is_audited_once(backend: Backend) {
    let Scenario {
        dir: _dir,
        db,
        ctl,
        admin,
    } = Scenario::start(backend).await;

    let first_token = ctl.add_site("Menara Utara");
    let second_token = ctl
        .cli(&["site", "token", "Menara Utara"])
        .trim()
        .to_string();
    ctl.cli(&["site", "revoke", "Menara Utara"]);
    let created = admin
        .post("/api/v1/sites", &json!({"name": "Menara Selatan"}))
        .await
        .expect(201);
    let api_token = created["token"].as_str().unwrap().to_string();
    let api_site = created["site"]["id"].as_str().unwrap().to_string();

    let audit = admin
        .get("/api/v1/audit?entity=site&limit=100")
        .await
        .expect(200);
    let rows: Vec<(String, String, String)> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .map(|e: &Value| {
            (
                e["actor_name"].as_str().unwrap().to_string(),
                e["action"].as_str().unwrap().to_string(),
                e["entity_id"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    let actions: Vec<(&str, &str)> = rows
        .iter()
        .map(|(who, what, _)| (who.as_str(), what.as_str()))
        .collect();
    assert_eq!(
        actions,
        [
            ("cli", "site.create"),
            ("cli", "site.token"),
            ("cli", "site.token"),
            ("cli", "site.revoke"),
            ("admin", "site.create"),
            ("admin", "site.token"),
        ],
        "{audit:#}"
    );
    assert!(rows[4..].iter().all(|(_, _, id)| *id == api_site));
    let revoke = &audit["items"][2];
    assert!(revoke["before"]["revoked_at"].is_null(), "{revoke}");
    assert!(revoke["after"]["revoked_at"].is_i64(), "{revoke}");
    let text = audit.to_string();
    for token in [&first_token, &second_token, &api_token] {
        assert!(!token.is_empty());
        assert!(
            !text.contains(token.as_str()),
            "a token reached the audit log"
        );
    }
    drop(ctl);
    db.cleanup().await;
}
