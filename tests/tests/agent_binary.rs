//! The real `mikrobill-agent run` binary, configured the way a RouterOS container is: only
//! environment variables. It enrolls itself with the token, serves the router over RADIUS and
//! shows up online at the controller.

use mikrobill_tests::radius::{SECRET, radclient};
use mikrobill_tests::{Backend, Controller, TestDb, bin, eventually, free_udp_addr, init_tracing};
use std::process::{Command, Stdio};
use std::time::Duration;

struct Killed(std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zero_touch_agent_from_environment_serves_radius() {
    init_tracing();
    let db = TestDb::new(Backend::Sqlite).await;
    let dir = tempfile::tempdir().unwrap();
    let ctl = Controller::start(dir.path(), &db).await;
    let token = ctl.add_site("kontainer");
    ctl.cli(&["plan", "add", "Harian", "--rate-limit", "1M/2M"]);
    ctl.cli(&["voucher", "add", "--plan", "Harian", "--code", "ZT1"]);

    let agent_dir = tempfile::tempdir().unwrap();
    let (auth, acct) = (free_udp_addr(), free_udp_addr());
    let log = std::fs::File::create(agent_dir.path().join("agent.log")).unwrap();
    let _agent = Killed(
        Command::new(bin("mikrobill-agent"))
            .args([
                "run",
                "--radius-auth-listen",
                &auth.to_string(),
                "--radius-acct-listen",
                &acct.to_string(),
            ])
            .env("MIKROBILL_AGENT_DATA_DIR", agent_dir.path().join("state"))
            .env("MIKROBILL_ENROLL_TOKEN", &token)
            .env("MIKROBILL_RADIUS_CLIENT_ADDRESS", "127.0.0.1")
            .env("MIKROBILL_RADIUS_SECRET", SECRET)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap(),
    );
    let log_text =
        || std::fs::read_to_string(agent_dir.path().join("agent.log")).unwrap_or_default();
    eventually(Duration::from_secs(20), "agent online", || async {
        ctl.cli(&["site", "list"])
            .lines()
            .any(|l| l.starts_with("kontainer") && l.contains("online"))
            .then_some(())
    })
    .await;
    let reply = eventually(
        Duration::from_secs(20),
        "voucher login accepted",
        || async {
            radclient(
                auth,
                "auth",
                SECRET,
                "User-Name = ZT1, User-Password = ZT1, Message-Authenticator = 0x00\n",
            )
            .filter(|r| r.code == "Access-Accept")
        },
    )
    .await;
    assert_eq!(reply.get("Mikrotik-Rate-Limit"), Some("1M/2M"));
    let log = log_text();
    assert!(log.contains("enrolled"), "{log}");
    assert!(
        !log.contains(SECRET),
        "the RADIUS secret must not be logged"
    );
    assert!(!log.contains(&token[5..20]), "the token must not be logged");
    db.cleanup().await;
}
