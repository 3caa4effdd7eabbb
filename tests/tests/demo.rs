//! `mikrobill-controller demo` gives a newcomer a working setup: the radclient line it prints
//! logs a voucher in through a real, freshly enrolled agent, the admin login it prints works,
//! and a quarter of history makes every report show data at first start.

use mikrobill_tests::http::Api;
use mikrobill_tests::{bin, free_tcp_port, free_udp_addr};
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[test]
fn demo_prints_a_radclient_line_that_logs_a_voucher_in() {
    let dir = tempfile::tempdir().unwrap();
    let radius_port = free_udp_addr().port();
    // The two demo agents take radius_port to radius_port + 3: an edge port among them would
    // make one agent's RADIUS bind fail.
    let edge = loop {
        let a = free_udp_addr();
        if !(radius_port..=radius_port.saturating_add(3)).contains(&a.port()) {
            break a;
        }
    };
    let api_addr: std::net::SocketAddr = format!("127.0.0.1:{}", free_tcp_port()).parse().unwrap();
    let mut demo = Command::new(bin("mikrobill-controller"))
        .args(["demo", "--data-dir", dir.path().to_str().unwrap()])
        .args(["--api-listen", &api_addr.to_string()])
        .args(["--edge-listen", &edge.to_string()])
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
    if running.stdout.is_empty() {
        // Say why: the agents' own logs are in the demo's directory, about to be removed.
        let logs: Vec<String> = ["demo-agent-1.log", "demo-agent-2.log"]
            .iter()
            .map(|f| {
                format!(
                    "--- {f} ---\n{}",
                    std::fs::read_to_string(dir.path().join(f)).unwrap_or_default()
                )
            })
            .collect();
        panic!(
            "the demo agent should be running (the check below must be able to fail)\n{}",
            logs.join("\n")
        );
    }
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

    // The printed login opens the admin API, and the seeded quarter fills every report.
    let login = printed
        .iter()
        .find_map(|l| l.split("log in as admin / ").nth(1))
        .unwrap_or_else(|| panic!("no admin login in:\n{}", printed.join("\n")))
        .trim()
        .to_string();
    assert!(
        printed
            .iter()
            .any(|l| l.contains(&format!("http://{api_addr}/"))),
        "no admin UI address"
    );
    tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(the_seeded_quarter_shows(api_addr, &login));
    let second = format!(
        "mikrobill-agent run --radius-auth-listen 127.0.0.1:{}",
        radius_port + 2
    );
    assert!(
        !Command::new("pgrep")
            .args(["-f", &second])
            .output()
            .unwrap()
            .stdout
            .is_empty(),
        "the second site's agent should be running"
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

async fn the_seeded_quarter_shows(addr: std::net::SocketAddr, password: &str) {
    let admin = Api::login(addr, "admin", password).await;
    let sites = admin.get("/api/v1/sites").await.expect(200);
    let sites = sites["items"].as_array().unwrap();
    assert_eq!(sites.len(), 2, "{sites:?}");
    assert!(
        sites.iter().all(|s| s["online"] == true),
        "both demo agents are online: {sites:?}"
    );
    let customers = admin.get("/api/v1/customers?limit=100").await.expect(200);
    assert_eq!(customers["items"].as_array().unwrap().len(), 30);
    // Payments and voucher sales in each of the last months, not all on the day of the seed.
    let revenue = admin
        .get("/api/v1/reports/revenue?period=month&by=source")
        .await
        .expect(200);
    let months = |source: &str| {
        let mut m: Vec<i64> = revenue["lines"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|l| l["key"] == source && l["amount"].as_i64().unwrap() > 0)
            .map(|l| l["period_start"].as_i64().unwrap())
            .collect();
        m.dedup();
        m.len()
    };
    assert!(months("payment") >= 3, "{revenue}");
    assert!(months("voucher_sale") >= 3, "{revenue}");
    let summary = admin.get("/api/v1/reports/summary").await.expect(200);
    assert!(
        summary["isolated_subscriptions"].as_i64().unwrap() >= 1,
        "{summary}"
    );
    let aging = admin.get("/api/v1/reports/receivables").await.expect(200);
    let owed: i64 = aging["buckets"]
        .as_array()
        .unwrap()
        .iter()
        .skip(1)
        .map(|b| b["amount"].as_i64().unwrap())
        .sum();
    assert!(owed > 0, "someone is overdue: {aging}");
    let usage = admin.get("/api/v1/reports/usage?by=site").await.expect(200);
    let usage: &Vec<Value> = usage.as_array().unwrap();
    assert_eq!(usage.len(), 2, "{usage:?}");
    assert!(usage.iter().all(|u| u["bytes_out"].as_i64().unwrap() > 0));
    let movements = admin
        .get("/api/v1/reports/subscribers?period=month")
        .await
        .expect(200);
    let joined_months = movements
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["new"].as_i64().unwrap() > 0)
        .count();
    assert!(joined_months >= 3, "{movements}");
}
