//! `mikrobill-controller demo` gives a newcomer a working setup: the radclient line it prints
//! logs a voucher in through a real, freshly enrolled agent.

use mikrobill_tests::{bin, free_tcp_port, free_udp_addr};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[test]
fn demo_prints_a_radclient_line_that_logs_a_voucher_in() {
    let dir = tempfile::tempdir().unwrap();
    let radius_port = free_udp_addr().port();
    let mut demo = Command::new(bin("mikrobill-controller"))
        .args(["demo", "--data-dir", dir.path().to_str().unwrap()])
        .args(["--api-listen", &format!("127.0.0.1:{}", free_tcp_port())])
        .args(["--edge-listen", &free_udp_addr().to_string()])
        .args(["--radius-port", &radius_port.to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(demo.stdout.take().unwrap()).lines();
    let started = Instant::now();
    let mut printed = Vec::new();
    let radclient_line = loop {
        let line = lines.next().expect("demo output").unwrap();
        printed.push(line.clone());
        if line.trim_start().starts_with("echo ") && line.contains("radclient") {
            break line;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no radclient line in:\n{}",
            printed.join("\n")
        );
    };
    // The global --data-dir is where the demo keeps its database (it was once ignored).
    assert!(
        dir.path().join("mikrobill.db").exists(),
        "no database in the --data-dir given"
    );
    let pattern = format!("mikrobill-agent run --radius-auth-listen 127.0.0.1:{radius_port}");
    let running = Command::new("pgrep")
        .args(["-f", &pattern])
        .output()
        .unwrap();
    assert!(
        !running.stdout.is_empty(),
        "the demo agent should be running (the check below must be able to fail)"
    );
    let out = Command::new("sh")
        .arg("-c")
        .arg(radclient_line.trim())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("Received Access-Accept"),
        "{radclient_line}\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("Mikrotik-Rate-Limit = \"2M/5M\""),
        "{stdout}"
    );

    // SIGTERM stops the controller and the demo agent with it.
    Command::new("kill")
        .args(["-TERM", &demo.id().to_string()])
        .status()
        .unwrap();
    let status = demo.wait().unwrap();
    assert!(status.success(), "demo exited with {status}");
    let agents = Command::new("pgrep")
        .args(["-f", &pattern])
        .output()
        .unwrap();
    assert!(
        agents.stdout.is_empty(),
        "demo agent still running: {}",
        String::from_utf8_lossy(&agents.stdout)
    );
}
