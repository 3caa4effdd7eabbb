//! Enrollment and identity: tokens work once and only in time, certificates from another
//! CA and connections without a certificate are refused, revocation cuts an agent off.

use mikrobill_agent::uplink::LinkState;
use mikrobill_tests::{Backend, Controller, TestDb, agents, bin, init_tracing};
use std::process::Command;
use std::time::Duration;

mikrobill_tests::on_both_backends!(
    enrollment_and_token_rules,
    foreign_ca_and_anonymous_sessions_are_refused,
    revoked_site_is_cut_off
);

fn agent_cli(dir: &std::path::Path, args: &[&str]) -> std::process::Output {
    Command::new(bin("mikrobill-agent"))
        .arg("--data-dir")
        .arg(dir)
        .args(args)
        .output()
        .expect("run agent CLI")
}

async fn enrollment_and_token_rules(backend: Backend) {
    init_tracing();
    let db = TestDb::new(backend).await;
    let dir = tempfile::tempdir().unwrap();
    let ctl = Controller::start(dir.path(), &db).await;

    // The real binary enrolls with a fresh token.
    let token = ctl.add_site("Desa Sukamaju");
    let agent_dir = tempfile::tempdir().unwrap();
    let out = agent_cli(agent_dir.path(), &["enroll", "--token", &token]);
    assert!(
        out.status.success(),
        "enroll failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("Desa Sukamaju"));
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(agent_dir.path().join("agent.key"))
            .unwrap()
            .permissions(),
    );
    assert_eq!(mode & 0o777, 0o600, "agent key must be private");

    // The same token a second time, into another directory: refused.
    let other = tempfile::tempdir().unwrap();
    let out = agent_cli(other.path(), &["enroll", "--token", &token]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("already used"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!other.path().join("agent.crt").exists());

    // An expired token: refused.
    let out = ctl.cli(&["site", "add", "Expiring", "--token-ttl", "1s"]);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let out = agent_cli(other.path(), &["enroll", "--token", out.trim()]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("expired"));

    // A damaged token: a clear local error, no network needed.
    let out = agent_cli(other.path(), &["enroll", "--token", "hello"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a MikroBill enrollment token"));

    // The enrolled agent connects and the controller lists the site online.
    let agent = agents::start(agent_dir.path(), None).await;
    agents::wait_connected(&agent).await;
    let list = ctl.cli(&["site", "list"]);
    let line = list
        .lines()
        .find(|l| l.starts_with("Desa Sukamaju"))
        .expect("site listed");
    assert!(line.contains("online"), "{list}");
    assert!(
        list.lines()
            .any(|l| l.starts_with("Expiring") && l.contains("offline") && l.contains("never")),
        "{list}"
    );
    agent.shutdown().await;
    db.cleanup().await;
}

async fn foreign_ca_and_anonymous_sessions_are_refused(backend: Backend) {
    init_tracing();
    let db = TestDb::new(backend).await;
    let dir = tempfile::tempdir().unwrap();
    let ctl = Controller::start(dir.path(), &db).await;
    ctl.add_site("home");

    // A second, unrelated controller issues an agent certificate from its own CA.
    let foreign_db = TestDb::new(Backend::Sqlite).await;
    let foreign_dir = tempfile::tempdir().unwrap();
    let foreign = Controller::start(foreign_dir.path(), &foreign_db).await;
    let agent_dir = tempfile::tempdir().unwrap();
    agents::enroll(&foreign.add_site("home"), agent_dir.path()).await;
    // The agent trusts our controller, but its certificate comes from the foreign CA.
    std::fs::copy(dir.path().join("ca.crt"), agent_dir.path().join("ca.crt")).unwrap();
    let agent = agents::start(agent_dir.path(), Some(ctl.edge_addr)).await;
    let state = agents::wait_link(&agent, Duration::from_secs(20), "refused", |s| {
        matches!(s, LinkState::Refused { .. })
    })
    .await;
    let LinkState::Refused { reason } = state else {
        unreachable!()
    };
    assert!(
        reason.contains("TLS") || reason.contains("certificate"),
        "{reason}"
    );
    assert!(
        ctl.cli(&["site", "list"])
            .lines()
            .all(|l| !l.contains("online"))
    );
    agent.shutdown().await;

    // A client with no certificate may enroll, but never open a session.
    let mut roots = rustls::RootCertStore::empty();
    let ca_pem = std::fs::read_to_string(dir.path().join("ca.crt")).unwrap();
    use rustls::pki_types::pem::PemObject;
    roots
        .add(rustls::pki_types::CertificateDer::from_pem_slice(ca_pem.as_bytes()).unwrap())
        .unwrap();
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let mut tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    tls.alpn_protocols = vec![mikrobill_protocol::ALPN_SESSION.to_vec()];
    let config = quinn::ClientConfig::new(std::sync::Arc::new(
        quinn::crypto::rustls::QuicClientConfig::try_from(tls).unwrap(),
    ));
    let endpoint = quinn::Endpoint::client("127.0.0.1:0".parse().unwrap()).unwrap();
    let conn = endpoint
        .connect_with(
            config,
            ctl.edge_addr,
            mikrobill_protocol::CONTROLLER_SERVER_NAME,
        )
        .unwrap()
        .await
        .unwrap();
    let err = tokio::time::timeout(Duration::from_secs(10), conn.closed())
        .await
        .expect("anonymous session closed");
    assert!(
        err.to_string().contains("client certificate required"),
        "{err}"
    );
    db.cleanup().await;
}

async fn revoked_site_is_cut_off(backend: Backend) {
    init_tracing();
    let db = TestDb::new(backend).await;
    let dir = tempfile::tempdir().unwrap();
    let ctl = Controller::start(dir.path(), &db).await;
    let agent_dir = tempfile::tempdir().unwrap();
    agents::enroll(&ctl.add_site("kampung"), agent_dir.path()).await;
    let agent = agents::start(agent_dir.path(), None).await;
    agents::wait_connected(&agent).await;

    // Revocation from the CLI (another process) closes the open session...
    ctl.cli(&["site", "revoke", "kampung"]);
    let state = agents::wait_link(&agent, Duration::from_secs(10), "refused", |s| {
        matches!(s, LinkState::Refused { .. })
    })
    .await;
    assert!(format!("{state:?}").contains("revoked"), "{state:?}");
    // ...and every reconnect attempt is refused too.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        matches!(*agent.link().borrow(), LinkState::Refused { .. }),
        "{:?}",
        *agent.link().borrow()
    );
    let log = ctl.log();
    assert!(
        log.matches("agent refused").count() >= 1,
        "reconnects were not refused:\n{log}"
    );
    let list = ctl.cli(&["site", "list"]);
    assert!(
        list.lines()
            .any(|l| l.starts_with("kampung") && l.contains("revoked")),
        "{list}"
    );
    // No new token can be issued for a revoked site.
    assert!(
        !ctl.cli_output(&["site", "token", "kampung"])
            .status
            .success()
    );
    agent.shutdown().await;
    db.cleanup().await;
}
