//! Backups with the real binaries: `backup` while `serve` runs, `restore` into a fresh data
//! directory after the old one is gone, and an enrolled agent that reconnects to the
//! restored controller and keeps working; refusals of a wrong passphrase, a damaged archive
//! and a non-empty directory that leave nothing behind; scheduled backups with retention.

use mikrobill_protocol::accounting::AcctStatus;
use mikrobill_tests::http::Api;
use mikrobill_tests::{Backend, Controller, TestDb, agents, bin, eventually, on_both_backends};
use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

on_both_backends!(restore_brings_back_a_controller_its_agents_still_trust);

/// Runs the controller binary on `data_dir` (and `db`'s URL) with `args`.
fn controller_cli(data_dir: &Path, db: &TestDb, args: &[&str]) -> Output {
    let mut cmd = Command::new(bin("mikrobill-controller"));
    cmd.arg("--data-dir").arg(data_dir);
    if let Some(url) = &db.url {
        cmd.arg("--database-url").arg(url);
    }
    cmd.env_remove("MIKROBILL_CONFIG")
        .args(args)
        .output()
        .expect("run controller CLI")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

async fn voucher_codes(api: &Api) -> Vec<String> {
    let list = api.get("/api/v1/vouchers?limit=500").await.expect(200);
    list["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|v| v["code"].as_str().unwrap().to_string())
        .collect()
}

async fn restore_brings_back_a_controller_its_agents_still_trust(backend: Backend) {
    let db = TestDb::new(backend).await;
    let work = tempfile::tempdir().unwrap();
    let old_dir = work.path().join("old");
    std::fs::create_dir(&old_dir).unwrap();
    let mut controller = Controller::start(&old_dir, &db).await;
    let admin = Api::admin(controller.api_addr).await;
    let (site_id, agent, _agent_dir) = agents::api_site(&admin, "backup-site").await;
    controller.cli(&["plan", "add", "1h", "--price", "5000", "--time-limit", "1h"]);
    let before = controller.cli(&["voucher", "add", "--plan", "1h", "--code", "BEFORE-1"]);
    assert_eq!(before.trim(), "BEFORE-1");
    eventually(Duration::from_secs(10), "voucher synced", || async {
        agent.cache().voucher("BEFORE-1").unwrap().map(|_| ())
    })
    .await;

    // Online: the controller keeps serving while both archives are written.
    let pass_file = work.path().join("pass");
    std::fs::write(&pass_file, "a long enough passphrase\n").unwrap();
    let sealed = work.path().join("b.tar.gz.sealed");
    let plain = work.path().join("b.tar.gz");
    let sealed_s = sealed.to_str().unwrap();
    let plain_s = plain.to_str().unwrap();
    let pass_s = pass_file.to_str().unwrap();
    let out = controller.cli(&["backup", sealed_s, "--passphrase-file", pass_s]);
    assert!(out.contains("sealed"), "{out}");
    controller.cli(&["backup", plain_s]);
    let again = controller.cli_output(&["backup", plain_s]);
    assert!(!again.status.success());
    assert!(
        stderr(&again).contains("exists already"),
        "{}",
        stderr(&again)
    );
    let short = work.path().join("short");
    std::fs::write(&short, "short\n").unwrap();
    let refused = controller.cli_output(&[
        "backup",
        work.path().join("c.tar.gz").to_str().unwrap(),
        "--passphrase-file",
        short.to_str().unwrap(),
    ]);
    assert!(
        stderr(&refused).contains("at least 12"),
        "{}",
        stderr(&refused)
    );
    assert!(!work.path().join("c.tar.gz").exists());
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&sealed).unwrap().permissions());
    assert_eq!(mode & 0o077, 0, "archives hold the CA key: owner only");
    assert!(
        std::fs::read(&sealed)
            .unwrap()
            .starts_with(b"mikrobill-backup-sealed-v1\n"),
        "sealed archives say what they are"
    );

    // After the backup: a voucher the restored SQLite database will not have.
    controller.cli(&["voucher", "add", "--plan", "1h", "--code", "AFTER-1"]);
    eventually(Duration::from_secs(10), "second voucher synced", || async {
        agent.cache().voucher("AFTER-1").unwrap().map(|_| ())
    })
    .await;

    // The disk dies.
    controller.kill();
    std::fs::remove_dir_all(&old_dir).unwrap();
    let new_dir = work.path().join("new");

    // Refusals leave no directory behind.
    let wrong = work.path().join("wrong");
    std::fs::write(&wrong, "not the passphrase at all\n").unwrap();
    let out = controller_cli(
        &new_dir,
        &db,
        &[
            "restore",
            sealed_s,
            "--passphrase-file",
            wrong.to_str().unwrap(),
        ],
    );
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("wrong passphrase"),
        "{}",
        stderr(&out)
    );
    let out = controller_cli(&new_dir, &db, &["restore", sealed_s]);
    assert!(stderr(&out).contains("is sealed"), "{}", stderr(&out));
    let mut damaged = std::fs::read(&plain).unwrap();
    let mid = damaged.len() / 2;
    damaged[mid] ^= 0x40;
    let damaged_path = work.path().join("damaged.tar.gz");
    std::fs::write(&damaged_path, damaged).unwrap();
    let out = controller_cli(&new_dir, &db, &["restore", damaged_path.to_str().unwrap()]);
    assert!(!out.status.success(), "a damaged archive is refused");
    let mut cut = std::fs::read(&sealed).unwrap();
    cut.truncate(cut.len() - 100);
    let cut_path = work.path().join("cut.sealed");
    std::fs::write(&cut_path, cut).unwrap();
    let out = controller_cli(
        &new_dir,
        &db,
        &[
            "restore",
            cut_path.to_str().unwrap(),
            "--passphrase-file",
            pass_s,
        ],
    );
    assert!(stderr(&out).contains("cut short"), "{}", stderr(&out));
    assert!(!new_dir.exists(), "a refused restore creates nothing");
    let leftovers: Vec<_> = std::fs::read_dir(work.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".mikrobill-"))
        .collect();
    assert!(
        leftovers.is_empty(),
        "scratch directories left: {leftovers:?}"
    );
    let busy = work.path().join("busy");
    std::fs::create_dir(&busy).unwrap();
    std::fs::write(busy.join("keep.txt"), "x").unwrap();
    let out = controller_cli(&busy, &db, &["restore", plain_s]);
    assert!(stderr(&out).contains("not empty"), "{}", stderr(&out));

    let out = controller_cli(
        &new_dir,
        &db,
        &["restore", sealed_s, "--passphrase-file", pass_s],
    );
    assert!(out.status.success(), "restore: {}", stderr(&out));
    let mut restored = Controller::start_with(
        &new_dir,
        &db,
        controller.edge_addr,
        controller.advertise.clone(),
    )
    .await;

    // The agent reconnects with the certificate the old controller issued and keeps working.
    agents::wait_connected(&agent).await;
    let admin = Api::admin(restored.api_addr).await;
    let codes = voucher_codes(&admin).await;
    assert!(codes.contains(&"BEFORE-1".to_string()), "{codes:?}");
    match backend {
        // The snapshot predates AFTER-1: it is gone from the controller, and the agent's new
        // snapshot (a restore starts a new sync epoch) drops it from the site too.
        Backend::Sqlite => {
            assert!(!codes.contains(&"AFTER-1".to_string()), "{codes:?}");
            eventually(Duration::from_secs(10), "stale voucher dropped", || async {
                agent
                    .cache()
                    .voucher("AFTER-1")
                    .unwrap()
                    .is_none()
                    .then_some(())
            })
            .await;
        }
        // PostgreSQL is not in the archive: the database carried on.
        Backend::Postgres => assert!(codes.contains(&"AFTER-1".to_string()), "{codes:?}"),
    }
    restored.cli(&["voucher", "add", "--plan", "1h", "--code", "RESTORED-1"]);
    eventually(Duration::from_secs(10), "new voucher synced", || async {
        agent.cache().voucher("RESTORED-1").unwrap().map(|_| ())
    })
    .await;
    let now = mikrobill_core::db::now_ms();
    agents::deliver(
        &agent,
        vec![agents::reading(
            "nas-1",
            "s-restored",
            "BEFORE-1",
            AcctStatus::Stop,
            now,
            60,
            1000,
        )],
    )
    .await;
    let site = admin
        .get(&format!("/api/v1/sites/{site_id}"))
        .await
        .expect(200);
    assert_eq!(site["id"], site_id.as_str());
    let store = restored.db().await;
    let n: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM accounting_records WHERE username = 'BEFORE-1' AND site_id = $1",
    )
    .bind(&site_id)
    .fetch_one(&store.pool)
    .await
    .unwrap();
    assert_eq!(n, 1, "the record reached the restored ledger");
    store.close().await;

    restored.kill();
    agent.shutdown().await;
    db.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scheduled_backups_keep_the_newest() {
    let db = TestDb::new(Backend::Sqlite).await;
    let work = tempfile::tempdir().unwrap();
    let data = work.path().join("data");
    std::fs::create_dir(&data).unwrap();
    let backups = work.path().join("backups");
    std::fs::create_dir(&backups).unwrap();
    // Not ours: retention never touches it.
    std::fs::write(backups.join("notes.txt"), "operator's file").unwrap();
    let controller = Controller::start_env(
        &data,
        &db,
        &[
            ("MIKROBILL_BACKUP_DIR", backups.to_str().unwrap()),
            ("MIKROBILL_BACKUP_INTERVAL", "1s"),
            ("MIKROBILL_BACKUP_KEEP", "2"),
        ],
    )
    .await;
    let list = || -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(&backups)
            .unwrap()
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    };
    eventually(Duration::from_secs(30), "three backup runs", || async {
        (controller.log().matches("scheduled backup written").count() >= 3).then_some(())
    })
    .await;
    let names = list();
    let archives: Vec<&String> = names
        .iter()
        .filter(|n| n.starts_with("mikrobill-backup-") && n.ends_with(".tar.gz"))
        .collect();
    assert!(
        (2..=3).contains(&archives.len()),
        "retention keeps 2 (a third may be mid-run): {names:?}"
    );
    assert!(names.contains(&"notes.txt".to_string()), "{names:?}");
    let metrics = controller.metrics().await;
    assert!(
        metrics.contains("mikrobill_backup_last_success_timestamp_seconds"),
        "{metrics}"
    );
    // The newest one restores.
    let newest = backups.join(archives.last().unwrap());
    let out = controller_cli(
        &work.path().join("restored"),
        &db,
        &["restore", newest.to_str().unwrap()],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(work.path().join("restored/mikrobill.db").exists());
    assert!(work.path().join("restored/ca.key").exists());
    drop(controller);
    db.cleanup().await;
}
