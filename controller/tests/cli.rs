//! The controller binary's command line: configuration sources and clear errors.

use std::process::Command;

fn controller() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_mikrobill-controller"));
    cmd.env_remove("MIKROBILL_CONFIG")
        .env_remove("MIKROBILL_DATA_DIR")
        .env_remove("MIKROBILL_DATABASE_URL");
    cmd
}

/// Runs the controller on a data directory with extra arguments.
fn run_in(dir: &std::path::Path, args: &[&str]) -> std::process::Output {
    controller()
        .arg("--data-dir")
        .arg(dir)
        .args(args)
        .output()
        .unwrap()
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn config_file_with_an_unknown_key_is_rejected_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("controller.toml");
    std::fs::write(
        &path,
        "data_dir = \"/tmp/x\"\napi_listne = \"127.0.0.1:1\"\n",
    )
    .unwrap();
    let out = controller()
        .arg("--config")
        .arg(&path)
        .arg("migrate")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains("controller.toml") && err.contains("api_listne"),
        "{err}"
    );
}

#[test]
fn config_file_and_environment_choose_the_data_directory() {
    let dir = tempfile::tempdir().unwrap();
    let from_file = dir.path().join("from-file");
    let path = dir.path().join("controller.toml");
    std::fs::write(
        &path,
        format!("data_dir = {:?}\n", from_file.display().to_string()),
    )
    .unwrap();
    let out = controller()
        .arg("--config")
        .arg(&path)
        .arg("migrate")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(from_file.join("mikrobill.db").exists());

    // The environment overrides the file.
    let from_env = dir.path().join("from-env");
    let out = controller()
        .env("MIKROBILL_DATA_DIR", &from_env)
        .arg("--config")
        .arg(&path)
        .arg("migrate")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(from_env.join("mikrobill.db").exists());
}

#[test]
fn unsupported_database_urls_are_named_without_their_password() {
    let dir = tempfile::tempdir().unwrap();
    let out = run_in(
        dir.path(),
        &["--database-url", "mysql://root:hunter2@db/x", "migrate"],
    );
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("unsupported database URL"), "{err}");
    assert!(!err.contains("hunter2"), "password leaked: {err}");
}

#[test]
fn tokens_need_a_known_edge_address() {
    let dir = tempfile::tempdir().unwrap();
    let out = run_in(dir.path(), &["site", "add", "first"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("--edge-addr"), "{}", stderr(&out));

    let out = run_in(
        dir.path(),
        &["site", "add", "second", "--edge-addr", "203.0.113.7:4433"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let token = String::from_utf8(out.stdout).unwrap();
    let token = mikrobill_protocol::enroll::EnrollmentToken::decode(token.trim()).unwrap();
    assert_eq!(token.controller_addr, "203.0.113.7:4433");
    let ca_pem = std::fs::read_to_string(dir.path().join("ca.crt")).unwrap();
    let ca = mikrobill_core::pki::pem_to_der(&ca_pem).unwrap();
    assert_eq!(
        token.ca_fingerprint,
        mikrobill_protocol::enroll::fingerprint(&ca)
    );

    // Names are unique and validated.
    let dup = run_in(dir.path(), &["site", "add", "second", "--edge-addr", "h:1"]);
    assert!(stderr(&dup).contains("already exists"), "{}", stderr(&dup));
    let bad = run_in(dir.path(), &["site", "add", "a;b", "--edge-addr", "h:1"]);
    assert!(
        stderr(&bad).contains("invalid site name"),
        "{}",
        stderr(&bad)
    );
}
