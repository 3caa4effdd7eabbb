//! The agent binary's command line: clear errors before any network use.

use std::process::Command;

fn agent(dir: &std::path::Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_mikrobill-agent"));
    cmd.arg("--data-dir").arg(dir);
    cmd
}

#[test]
fn run_without_enrollment_says_how_to_enroll() {
    let dir = tempfile::tempdir().unwrap();
    let out = agent(dir.path()).arg("run").output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("not enrolled") && err.contains("mikrobill-agent enroll"),
        "{err}"
    );
}

#[test]
fn a_damaged_token_is_explained() {
    let dir = tempfile::tempdir().unwrap();
    let out = agent(dir.path())
        .args(["enroll", "--token", "mbe1.!!!"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("not valid base64url"), "{err}");
    assert!(
        !dir.path().join("agent.key").exists(),
        "nothing is written for a bad token"
    );
}

#[test]
fn status_of_an_unenrolled_agent_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let out = agent(dir.path()).arg("status").output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not enrolled"));
}
