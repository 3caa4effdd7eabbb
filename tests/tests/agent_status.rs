//! What a running agent tells about itself: `/metrics` counts real RADIUS traffic from
//! `radclient` by outcome and reject reason, `/health` answers while the controller is gone,
//! and the `mikrobill-agent status` binary reads the running agent on its status port and,
//! once it stopped, the data directory.

use mikrobill_agent::status::prometheus::METRIC_NAMES;
use mikrobill_tests::http::Api;
use mikrobill_tests::radius::{RadiusSite, SECRET, radclient};
use mikrobill_tests::{Backend, bin, eventually};
use std::process::Command;
use std::time::Duration;

/// The value of the sample `name{labels}` (exactly as printed), if present.
fn sample(metrics: &str, series: &str) -> Option<f64> {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

/// The value of the first series `name` whose labels include every one of `labels`.
fn labelled(metrics: &str, name: &str, labels: &[&str]) -> Option<f64> {
    metrics.lines().find_map(|l| {
        let rest = l.strip_prefix(name)?.strip_prefix('{')?;
        let (set, value) = rest.split_once("} ")?;
        labels
            .iter()
            .all(|want| set.split(',').any(|have| have == *want))
            .then(|| value.parse().ok())?
    })
}

fn agent_status(data_dir: &std::path::Path, listen: &str, json: bool) -> String {
    let mut cmd = Command::new(bin("mikrobill-agent"));
    cmd.arg("--data-dir")
        .arg(data_dir)
        .args(["status", "--status-listen", listen]);
    if json {
        cmd.arg("--json");
    }
    let out = cmd.output().expect("run mikrobill-agent status");
    assert!(
        out.status.success(),
        "status failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_technician_sees_what_the_agent_does() {
    let mut site = RadiusSite::start(Backend::Sqlite, "menara").await;
    site.ctl.cli(&[
        "plan",
        "add",
        "Jam",
        "--time-limit",
        "1h",
        "--price",
        "2000",
    ]);
    site.ctl
        .cli(&["voucher", "add", "--plan", "Jam", "--code", "JAM1"]);
    site.wait_voucher("JAM1").await;
    let status_addr = site.agent().status_addr().expect("status listener");
    let api = Api::new(status_addr);
    let auth = site.auth_addr();
    let login = |user: &str, pass: &str| {
        radclient(
            auth,
            "auth",
            SECRET,
            &format!("User-Name = {user}, User-Password = {pass}, Message-Authenticator = 0x00\n"),
        )
        .expect("a reply")
        .code
    };
    assert_eq!(login("JAM1", "JAM1"), "Access-Accept");
    assert_eq!(login("JAM1", "wrong"), "Access-Reject");
    assert_eq!(login("NOSUCH", "NOSUCH"), "Access-Reject");
    let acct = radclient(
        site.acct_addr(),
        "acct",
        SECRET,
        "User-Name = JAM1, Acct-Status-Type = Start, Acct-Session-Id = s1, NAS-Identifier = menara\n",
    )
    .expect("accounting answered");
    assert_eq!(acct.code, "Accounting-Response");

    let health = api.get("/health").await;
    assert_eq!(health.status, 200, "{}", health.text);
    assert_eq!(health.json()["link"], "up");

    let metrics = api.get("/metrics").await;
    assert_eq!(metrics.status, 200);
    let m = &metrics.text;
    let auth_samples = [
        (
            r#"mikrobill_agent_radius_requests_total{kind="auth",outcome="accept"}"#,
            1.0,
        ),
        (
            r#"mikrobill_agent_radius_requests_total{kind="auth",outcome="reject"}"#,
            2.0,
        ),
        (
            r#"mikrobill_agent_radius_rejects_total{reason="bad_credentials"}"#,
            1.0,
        ),
        (
            r#"mikrobill_agent_radius_rejects_total{reason="unknown_account"}"#,
            1.0,
        ),
        (
            r#"mikrobill_agent_radius_requests_total{kind="acct",outcome="stored"}"#,
            1.0,
        ),
        (
            r#"mikrobill_agent_radius_request_duration_seconds_count{kind="auth"}"#,
            3.0,
        ),
        (
            r#"mikrobill_agent_radius_request_duration_seconds_bucket{kind="auth",le="+Inf"}"#,
            3.0,
        ),
        (r#"mikrobill_agent_cache_items{kind="voucher"}"#, 1.0),
        ("mikrobill_agent_link_up", 1.0),
        ("mikrobill_agent_radius_up", 1.0),
    ];
    for (series, want) in auth_samples {
        assert_eq!(sample(m, series), Some(want), "{series} in\n{m}");
    }
    let expiry = sample(m, "mikrobill_agent_certificate_expiry_timestamp_seconds").unwrap();
    let now = mikrobill_agent::now_ms() as f64 / 1000.0;
    assert!(
        expiry > now + 300.0 * 86400.0,
        "a fresh certificate has about a year: {expiry}"
    );
    // Every series is one the agent declares (dashboards and alert rules check against it).
    for line in m.lines().filter(|l| !l.starts_with('#')) {
        let name = line.split(['{', ' ']).next().unwrap();
        let base = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| name.strip_suffix(s))
            .filter(|b| METRIC_NAMES.contains(b))
            .unwrap_or(name);
        assert!(METRIC_NAMES.contains(&base), "{name} is not declared");
    }
    assert_eq!(api.get("/nothing").await.status, 404);
    assert_eq!(
        api.post("/status", &serde_json::json!({})).await.status,
        405
    );

    // The technician's command, against the running agent.
    let dir = site.agent_dir.path().to_path_buf();
    let text = agent_status(&dir, &status_addr.to_string(), false);
    for want in [
        "site:        menara",
        "link up",
        "1 plans, 1 vouchers",
        "rejected NOSUCH at test-router: unknown_account",
        "rejected JAM1 at test-router: bad_credentials",
        "certificate: expires in 36",
    ] {
        assert!(text.contains(want), "{want:?} missing from:\n{text}");
    }
    let health = Command::new(bin("mikrobill-agent"))
        .args(["health", "--status-listen", &status_addr.to_string()])
        .output()
        .unwrap();
    assert!(health.status.success(), "{health:?}");
    assert!(String::from_utf8_lossy(&health.stdout).contains("\"ok\""));
    let json: serde_json::Value =
        serde_json::from_str(&agent_status(&dir, &status_addr.to_string(), true)).unwrap();
    assert_eq!(json["radius"]["accepted"], 1);
    assert_eq!(json["cache"]["vouchers"], 1);

    // The controller shows the same counters for the site, from the agent's heartbeat: an
    // operator whose Prometheus cannot reach the site still sees its logins and rejects.
    let fleet = [
        (
            "mikrobill_site_radius_requests_total",
            &[r#"site="menara""#, r#"kind="auth""#, r#"outcome="accept""#][..],
            1.0,
        ),
        (
            "mikrobill_site_radius_requests_total",
            &[r#"site="menara""#, r#"kind="auth""#, r#"outcome="reject""#],
            2.0,
        ),
        (
            "mikrobill_site_radius_requests_total",
            &[r#"site="menara""#, r#"kind="acct""#, r#"outcome="stored""#],
            1.0,
        ),
        (
            "mikrobill_site_radius_rejects_total",
            &[r#"site="menara""#, r#"reason="bad_credentials""#],
            1.0,
        ),
        (
            "mikrobill_site_radius_rejects_total",
            &[r#"site="menara""#, r#"reason="unknown_account""#],
            1.0,
        ),
    ];
    let m = eventually(
        Duration::from_secs(40),
        "the site's RADIUS counters at the controller",
        || async {
            let m = site.ctl.metrics().await;
            fleet
                .iter()
                .all(|(name, labels, want)| labelled(&m, name, labels) == Some(*want))
                .then_some(m)
        },
    )
    .await;
    assert_eq!(
        labelled(
            &m,
            "mikrobill_site_radius_rejects_total",
            &[r#"reason="expired""#]
        ),
        None,
        "reasons with no reject are not reported"
    );
    // The site as the API lists it carries them too.
    let sites = mikrobill_core::sites::list(&site.ctl.db().await)
        .await
        .unwrap();
    let menara = sites.iter().find(|s| s.name == "menara").unwrap();
    let radius = menara
        .radius
        .as_ref()
        .expect("counters stored with the site");
    assert_eq!(radius["accepted"], 1, "{radius}");
    assert_eq!(radius["accounted"], 1, "{radius}");

    // The controller turns the site away: the site is still healthy (it serves from its
    // cache), and says the link is refused and why.
    site.ctl.cli(&["site", "revoke", "menara"]);
    let down = eventually(Duration::from_secs(30), "link reported refused", || async {
        let s = api.get("/status").await.json();
        (s["link"]["state"] == "refused").then_some(s)
    })
    .await;
    assert!(down["link"]["down_since_ms"].as_i64().is_some(), "{down}");
    assert!(
        down["link"]["reason"]
            .as_str()
            .is_some_and(|r| !r.is_empty()),
        "{down}"
    );
    assert_eq!(api.get("/health").await.status, 200);
    let m = api.get("/metrics").await.text;
    assert_eq!(sample(&m, "mikrobill_agent_link_up"), Some(0.0));

    // Stopped: `status` reads the data directory instead.
    let agent = site.agent.take().unwrap();
    agent.shutdown().await;
    let text = eventually(Duration::from_secs(20), "store released", || async {
        let out = Command::new(bin("mikrobill-agent"))
            .arg("--data-dir")
            .arg(&dir)
            .args(["status", "--status-listen", &status_addr.to_string()])
            .output()
            .unwrap();
        out.status
            .success()
            .then(|| String::from_utf8(out.stdout).unwrap())
    })
    .await;
    let health = Command::new(bin("mikrobill-agent"))
        .args(["health", "--status-listen", &status_addr.to_string()])
        .output()
        .unwrap();
    assert!(!health.status.success(), "a stopped agent is not healthy");
    for want in [
        "not answering on",
        "link not running",
        "1 plans, 1 vouchers",
        "records waiting",
    ] {
        assert!(text.contains(want), "{want:?} missing from:\n{text}");
    }
    site.finish().await;
}
