//! CA rotation end to end: `ca rotate` publishes a new CA (agents get it over the link and
//! trust both), `ca activate` makes it issue (agents renew onto it, the edge presents it),
//! `ca retire` drops the old one once every live site is on the new CA. An online agent keeps
//! delivering accounting and receiving sync throughout, across a controller restart; an
//! agent offline across the whole rotation is told it must enroll again; a revoked site
//! never gets a certificate of the new CA.

use mikrobill_agent::uplink::LinkState;
use mikrobill_protocol::accounting::AcctStatus;
use mikrobill_tests::http::Api;
use mikrobill_tests::{Backend, Controller, TestDb, agents, eventually};
use sqlx::Row;
use std::path::Path;
use std::time::Duration;

mikrobill_tests::on_both_backends!(agents_keep_working_across_a_ca_rotation);

fn ca_pems(dir: &Path) -> usize {
    std::fs::read_to_string(dir.join("ca.crt"))
        .unwrap()
        .matches("BEGIN CERTIFICATE")
        .count()
}

/// Fingerprints (hex) of the CAs that issued a site's live certificates.
async fn live_issuers(db: &mikrobill_core::db::Db, site_id: &str) -> Vec<Option<String>> {
    sqlx::query(
        "SELECT ca_fingerprint FROM agent_certificates \
         WHERE site_id = $1 AND revoked_at IS NULL ORDER BY issued_at",
    )
    .bind(site_id)
    .fetch_all(&db.pool)
    .await
    .unwrap()
    .iter()
    .map(|r| r.try_get::<Option<String>, _>("ca_fingerprint").unwrap())
    .collect()
}

fn field(status: &str, name: &str) -> String {
    status
        .lines()
        .find_map(|l| l.strip_prefix(name))
        .unwrap_or_else(|| panic!("no {name:?} in {status}"))
        .trim()
        .to_string()
}

/// Delivers one Stop record from `agent` and checks the controller stored it.
async fn accounting_arrives(
    agent: &mikrobill_agent::Agent,
    db: &mikrobill_core::db::Db,
    site_id: &str,
    session: &str,
) {
    let now = mikrobill_core::db::now_ms();
    agents::deliver(
        agent,
        vec![agents::reading(
            "nas",
            session,
            "u1",
            AcctStatus::Stop,
            now,
            60,
            100,
        )],
    )
    .await;
    let n: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM accounting_records WHERE site_id = $1 AND session_id = $2",
    )
    .bind(site_id)
    .bind(session)
    .fetch_one(&db.pool)
    .await
    .unwrap();
    assert_eq!(n, 1, "record {session} stored");
}

/// A plan created at the controller reaches the agent's cache.
async fn sync_arrives(ctl: &Controller, agent: &mikrobill_agent::Agent, plan: &str) {
    ctl.cli(&["plan", "add", plan, "--price", "5000"]);
    let cache = agent.cache().clone();
    eventually(Duration::from_secs(20), "plan synced", || async {
        cache
            .plans()
            .unwrap()
            .iter()
            .any(|p| p.name == plan)
            .then_some(())
    })
    .await;
}

async fn agents_keep_working_across_a_ca_rotation(backend: Backend) {
    let db = TestDb::new(backend).await;
    let dir = tempfile::tempdir().unwrap();
    let mut ctl = Controller::start(dir.path(), &db).await;
    let admin = Api::admin(ctl.api_addr).await;
    let store = ctl.db().await;

    // Alpha stays online throughout; Beta is revoked mid-rotation; Gamma is offline across it.
    let (alpha, agent, alpha_dir) = agents::api_site(&admin, "Alpha").await;
    let (beta, beta_agent, _beta_dir) = agents::api_site(&admin, "Beta").await;
    let (gamma, gamma_agent, gamma_dir) = agents::api_site(&admin, "Gamma").await;
    gamma_agent.shutdown().await;
    let first_ca = field(&ctl.cli(&["ca", "status"]), "issuing CA:");
    assert_eq!(ca_pems(alpha_dir.path()), 1);
    let old_cert = std::fs::read(alpha_dir.path().join("agent.crt")).unwrap();

    // Publish: the agent is sent both CAs and stores them; nothing else changes.
    let published = ctl.cli(&["ca", "rotate"]);
    assert_eq!(field(&published, "rotation:"), "published");
    let new_ca = field(&published, "new CA:");
    assert_ne!(new_ca, first_ca);
    eventually(Duration::from_secs(20), "bundle of two stored", || async {
        (ca_pems(alpha_dir.path()) == 2).then_some(())
    })
    .await;
    // A second rotation cannot start while this one is open.
    let again = ctl.cli_output(&["ca", "rotate"]);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already under way"));
    // Retiring before activating is refused: agents have nothing to renew onto yet.
    let early = ctl.cli_output(&["ca", "retire"]);
    assert!(!early.status.success());
    assert!(String::from_utf8_lossy(&early.stderr).contains("not active yet"));
    assert_eq!(
        std::fs::read(alpha_dir.path().join("agent.crt")).unwrap(),
        old_cert,
        "no renewal while the old CA still issues"
    );
    accounting_arrives(&agent, &store, &alpha, "published").await;

    // A restart in the published phase: the controller loads both CAs from its data
    // directory and the database, and the agent reconnects.
    ctl.restart().await;
    agents::wait_connected(&agent).await;
    sync_arrives(&ctl, &agent, "Setelah restart").await;

    // Beta is revoked: its agent is locked out and never renews onto the new CA.
    ctl.cli(&["site", "revoke", "Beta"]);
    agents::wait_link(&beta_agent, Duration::from_secs(20), "refused", |s| {
        matches!(s, LinkState::Refused { .. })
    })
    .await;

    // Activate: the agent renews onto the new CA over the link and reconnects with it.
    let activated = ctl.cli(&["ca", "activate"]);
    assert_eq!(field(&activated, "rotation:"), "active");
    eventually(Duration::from_secs(30), "alpha on the new CA", || async {
        let issuers = live_issuers(&store, &alpha).await;
        (issuers == vec![Some(new_ca.clone())]).then_some(())
    })
    .await;
    assert_ne!(
        std::fs::read(alpha_dir.path().join("agent.crt")).unwrap(),
        old_cert
    );
    agents::wait_connected(&agent).await;
    accounting_arrives(&agent, &store, &alpha, "active").await;
    sync_arrives(&ctl, &agent, "Setelah aktivasi").await;
    // New enrollment tokens pin the new CA.
    let (_delta, delta_agent, delta_dir) = agents::api_site(&admin, "Delta").await;
    assert_eq!(ca_pems(delta_dir.path()), 2);
    delta_agent.shutdown().await;

    // Gamma is still on the old CA (offline): retiring is refused until forced.
    let status = ctl.cli(&["ca", "status"]);
    assert_eq!(field(&status, "sites still on the previous CA:"), "1");
    let refused = ctl.cli_output(&["ca", "retire"]);
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("1 site(s) still run on the previous CA"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    // The admin API tells the same, and refuses the same.
    let api_status = admin.get("/api/v1/ca").await.expect(200);
    assert_eq!(api_status["issuing_fingerprint"], new_ca.as_str());
    assert_eq!(api_status["rotation"]["phase"], "active");
    assert_eq!(api_status["sites_on_previous_ca"], 1);
    let conflict = admin
        .post("/api/v1/ca/retire", &serde_json::json!({}))
        .await
        .expect(409);
    assert!(
        conflict["detail"]
            .as_str()
            .unwrap()
            .contains("still run on the previous CA"),
        "{conflict}"
    );

    // Another restart, in the active phase.
    ctl.restart().await;
    agents::wait_connected(&agent).await;
    accounting_arrives(&agent, &store, &alpha, "after-second-restart").await;

    let retired = ctl.cli(&["ca", "retire", "--force"]);
    assert_eq!(field(&retired, "rotation:"), "retired");
    assert_eq!(
        field(&retired, "forced with:"),
        "1 site(s) left to enroll again"
    );
    eventually(Duration::from_secs(20), "bundle of one stored", || async {
        (ca_pems(alpha_dir.path()) == 1).then_some(())
    })
    .await;
    accounting_arrives(&agent, &store, &alpha, "retired").await;
    sync_arrives(&ctl, &agent, "Setelah pensiun").await;
    // A restart after retirement: the agent still works (it runs on the new CA only).
    ctl.restart().await;
    agents::wait_connected(&agent).await;
    accounting_arrives(&agent, &store, &alpha, "after-retirement-restart").await;

    // Gamma comes back: the controller's CA is not one it trusts, and it says what to do.
    let gamma_agent = agents::restart(gamma_dir.path()).await;
    let state = agents::wait_link(&gamma_agent, Duration::from_secs(20), "refused", |s| {
        matches!(s, LinkState::Refused { .. })
    })
    .await;
    let LinkState::Refused { reason } = state else {
        unreachable!()
    };
    assert!(reason.contains("must be enrolled again"), "{reason}");
    assert!(
        live_issuers(&store, &gamma).await.is_empty(),
        "the old CA's certificates are revoked"
    );
    gamma_agent.shutdown().await;

    // Beta never got a certificate of the new CA.
    let beta_new: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM agent_certificates WHERE site_id = $1 AND ca_fingerprint = $2",
    )
    .bind(&beta)
    .bind(&new_ca)
    .fetch_one(&store.pool)
    .await
    .unwrap();
    assert_eq!(beta_new, 0);
    beta_agent.shutdown().await;

    // Every step is audited.
    let actions: Vec<String> =
        sqlx::query_scalar("SELECT action FROM audit_log WHERE action LIKE 'ca.%' ORDER BY id")
            .fetch_all(&store.pool)
            .await
            .unwrap();
    assert_eq!(actions, ["ca.published", "ca.activated", "ca.retired"]);

    agent.shutdown().await;
    store.close().await;
    drop(ctl);
    db.cleanup().await;
}
