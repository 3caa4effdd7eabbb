//! The real `mikrobill-agent run` binary, configured the way a RouterOS container is: only
//! environment variables. It enrolls itself with the token, serves the router over RADIUS and
//! shows up online at the controller. The same scenario runs the static aarch64 build under
//! qemu, as it runs on an arm64 router.

use mikrobill_tests::radius::{SECRET, radclient};
use mikrobill_tests::{Backend, Controller, TestDb, bin, eventually, free_udp_addr, init_tracing};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

struct Killed(std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs the zero-touch scenario with `program` (and its leading arguments) as the agent.
async fn zero_touch(program: &[PathBuf], site: &str) {
    init_tracing();
    let db = TestDb::new(Backend::Sqlite).await;
    let dir = tempfile::tempdir().unwrap();
    let ctl = Controller::start(dir.path(), &db).await;
    let token = ctl.add_site(site);
    ctl.cli(&["plan", "add", "Harian", "--rate-limit", "1M/2M"]);
    ctl.cli(&["voucher", "add", "--plan", "Harian", "--code", "ZT1"]);

    let agent_dir = tempfile::tempdir().unwrap();
    let (auth, acct) = (free_udp_addr(), free_udp_addr());
    let log = std::fs::File::create(agent_dir.path().join("agent.log")).unwrap();
    let _agent = Killed(
        Command::new(&program[0])
            .args(&program[1..])
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
            .unwrap_or_else(|e| panic!("cannot start {program:?}: {e}")),
    );
    let log_text =
        || std::fs::read_to_string(agent_dir.path().join("agent.log")).unwrap_or_default();
    let online = || async {
        ctl.cli(&["site", "list"])
            .lines()
            .any(|l| l.starts_with(site) && l.contains("online"))
            .then_some(())
    };
    if tokio::time::timeout(Duration::from_secs(60), async {
        while online().await.is_none() {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
    .is_err()
    {
        panic!("agent never came online; its log:\n{}", log_text());
    }
    let reply = eventually(
        Duration::from_secs(30),
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zero_touch_agent_from_environment_serves_radius() {
    zero_touch(&[bin("mikrobill-agent")], "kontainer").await;
}

/// ELF e_machine of AArch64.
const EM_AARCH64: u16 = 183;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn static_aarch64_agent_enrolls_and_answers_radius_under_qemu() {
    let binary = PathBuf::from(std::env::var("MIKROBILL_AARCH64_AGENT").expect(
        "MIKROBILL_AARCH64_AGENT must name the static aarch64 agent: scripts/test builds it with packaging/build-static.sh",
    ));
    let elf = std::fs::read(&binary).unwrap_or_else(|e| panic!("{}: {e}", binary.display()));
    assert_eq!(&elf[..4], b"\x7fELF");
    assert_eq!(
        u16::from_le_bytes([elf[18], elf[19]]),
        EM_AARCH64,
        "not an aarch64 binary"
    );
    assert!(
        !elf.windows(16).any(|w| w == b"/lib/ld-linux-aa"),
        "must be static: no dynamic loader"
    );
    let qemu = PathBuf::from("qemu-aarch64-static");
    zero_touch(&[qemu, binary], "arm64-router").await;
}
