//! Moving in from a router's own accounts (issue 20), through a real controller, a real
//! agent and the fake RouterOS speaking the API protocol: Mikhmon's hotspot users and the
//! router's PPP secrets are read by the agent, shown as a dry run (a bad limit reported with
//! its entry and field, nothing written), imported once (vouchers keep the time and bytes
//! already used, subscriptions are billed from next month), retired in favour of RADIUS
//! (the logins then authenticate through the agent with the remaining budget) or adopted
//! by an agent in API mode; nobody online is disconnected, and re-running creates nothing.

use mikrobill_agent::radius::{Clients, NasClient, RadiusConfig};
use mikrobill_agent::router::{Mode, RouterConfig, Secret};
use mikrobill_agent::{Agent, AgentOptions};
use mikrobill_fake_routeros::{FakeRouter, FakeRouterConfig};
use mikrobill_tests::http::{ADMIN_PASSWORD, Api};
use mikrobill_tests::radius::{SECRET, radclient};
use mikrobill_tests::web::WebClient;
use mikrobill_tests::{Backend, Scenario, agents, eventually};
use serde_json::{Value, json};
use std::time::Duration;

mikrobill_tests::on_both_backends!(
    mikhmon_vouchers_and_ppp_secrets_move_to_radius,
    an_api_mode_agent_adopts_the_router_entries,
);

/// Mikhmon's on-login script: price 5000, validity 1d.
const MIKHMON_ON_LOGIN: &str =
    ":put (\",rem,5000,1d,5000,,Disable,\"); {:local date [ /system clock get date ];}";

/// A router as Mikhmon leaves it: a voucher profile, used, unused and online vouchers, one
/// with a limit that is not a duration and a disabled one; PPP secrets, one online and one
/// for L2TP.
fn seed(router: &FakeRouter) {
    router.add_row(
        "/ip/hotspot/user/profile",
        &[
            ("name", "3jam"),
            ("rate-limit", "1M/2M"),
            ("shared-users", "1"),
            ("on-login", MIKHMON_ON_LOGIN),
        ],
    );
    let user = |name: &str, uptime: &str, extra: &[(&str, &str)]| {
        let mut attrs = vec![
            ("name", name),
            ("password", name),
            ("profile", "3jam"),
            ("limit-uptime", "3h"),
            ("uptime", uptime),
            ("bytes-in", "0"),
            ("bytes-out", "0"),
            ("comment", "vc-123-08.12.26-"),
        ];
        for (k, v) in extra {
            attrs.retain(|(key, _)| key != k);
            attrs.push((k, v));
        }
        router.add_row("/ip/hotspot/user", &attrs);
    };
    user(
        "ab12cd",
        "1h",
        &[("bytes-in", "1000000"), ("bytes-out", "2000000")],
    );
    user("ef34gh", "0s", &[]);
    user("ij56kl", "30m", &[]);
    user("badlim", "0s", &[("limit-uptime", "abc")]);
    user("off001", "0s", &[("disabled", "true")]);
    router.add_row(
        "/ip/hotspot/active",
        &[
            ("user", "ij56kl"),
            ("address", "10.5.50.9"),
            ("uptime", "5m"),
        ],
    );
    router.add_row("/ppp/profile", &[("name", "10M"), ("rate-limit", "5M/10M")]);
    let secret = |name: &str, service: &str, comment: &str| {
        router.add_row(
            "/ppp/secret",
            &[
                ("name", name),
                ("password", "rahasia"),
                ("service", service),
                ("profile", "10M"),
                ("comment", comment),
            ],
        );
    };
    secret("budi", "pppoe", "Pak Budi");
    secret("sari", "any", "Bu Sari");
    secret("vpn01", "l2tp", "");
    router.add_row("/ppp/active", &[("name", "sari"), ("address", "10.10.0.2")]);
}

/// An agent for `token` beside `router`, in `mode`, serving RADIUS on loopback.
async fn agent(token: &str, dir: &std::path::Path, router: &FakeRouter, mode: Mode) -> Agent {
    agents::enroll(token, dir).await;
    let mut rc = RouterConfig::new(&router.addr().to_string(), "api", Secret::new("router-pw"));
    rc.mode = mode;
    rc.bootstrap_on_start = false;
    rc.connect_timeout = Duration::from_secs(2);
    rc.call_timeout = Duration::from_secs(2);
    rc.reconnect_max = Duration::from_millis(300);
    rc.refresh_interval = Duration::from_secs(1);
    let clients = Clients::new(vec![NasClient {
        name: "test-router".into(),
        address: "127.0.0.1".into(),
        secret: SECRET.into(),
        require_message_authenticator: true,
        coa_port: 3799,
    }])
    .unwrap();
    let agent = Agent::start(AgentOptions {
        data_dir: dir.to_path_buf(),
        controller_addr: None,
        reconnect_max: Duration::from_millis(500),
        radius: Some(RadiusConfig {
            auth_listen: "127.0.0.1:0".parse().unwrap(),
            acct_listen: "127.0.0.1:0".parse().unwrap(),
            clients,
            interim: mikrobill_agent::radius::DEFAULT_INTERIM,
            isolation_rate_limit: None,
        }),
        router: Some(rc),
        status_listen: None,
        clock: mikrobill_agent::clock::Clock::system(),
    })
    .await
    .unwrap();
    agents::wait_connected(&agent).await;
    agent
}

async fn fake_router() -> FakeRouter {
    FakeRouter::start(FakeRouterConfig {
        username: "api".into(),
        password: "router-pw".into(),
    })
    .await
    .unwrap()
}

/// Starts a read of the site's router and waits for the dry run.
async fn read(admin: &Api, site_id: &str) -> (i64, Value) {
    let started = admin
        .post(
            &format!("/api/v1/sites/{site_id}/router-import"),
            &json!({}),
        )
        .await
        .expect(202);
    let id = started["read"]["id"].as_i64().unwrap();
    let shown = eventually(Duration::from_secs(30), "the router read", || async {
        let shown = admin
            .get(&format!("/api/v1/sites/{site_id}/router-import/{id}"))
            .await
            .expect(200);
        (!shown["report"].is_null()).then_some(shown)
    })
    .await;
    assert_eq!(shown["read"]["status"], "applied", "{shown}");
    (id, shown)
}

/// Entries of the report by (kind, name).
fn entry<'a>(report: &'a Value, kind: &str, name: &str) -> &'a Value {
    report["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == kind && e["source"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind} {name} in {report}"))
}

fn count(report: &Value, outcome: &str) -> usize {
    report["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["outcome"]["outcome"] == outcome)
        .count()
}

/// Waits for the take-over command to finish and returns it.
async fn take_over_done(admin: &Api, applied: &Value) -> Value {
    let id = applied["take_over"]["id"]
        .as_i64()
        .unwrap_or_else(|| panic!("no take-over queued: {applied}"));
    eventually(Duration::from_secs(30), "the take-over", || async {
        let c = admin
            .get(&format!("/api/v1/commands/{id}"))
            .await
            .expect(200);
        (c["status"] != "pending").then_some(c)
    })
    .await
}

fn names(router: &FakeRouter, menu: &str) -> Vec<String> {
    let mut v: Vec<String> = router
        .rows(menu)
        .into_iter()
        .map(|r| r["name"].clone())
        .collect();
    v.sort();
    v
}

/// No session on the router was ever ended.
fn nobody_kicked(router: &FakeRouter) {
    for words in router.commands() {
        let path = words.first().map(String::as_str).unwrap_or_default();
        assert!(
            !path.starts_with("/ip/hotspot/active/remove")
                && !path.starts_with("/ppp/active/remove"),
            "a session was removed: {words:?}"
        );
    }
    assert_eq!(router.rows("/ip/hotspot/active").len(), 1);
    assert_eq!(router.rows("/ppp/active").len(), 1);
}

fn login(agent: &Agent, user: &str, password: &str) -> mikrobill_tests::radius::RadclientReply {
    radclient(
        agent.radius().unwrap().auth_addr,
        "auth",
        SECRET,
        &format!("User-Name = {user}, User-Password = {password}, Message-Authenticator = 0x00\n"),
    )
    .expect("a RADIUS reply")
}

async fn mikhmon_vouchers_and_ppp_secrets_move_to_radius(backend: Backend) {
    let s = Scenario::start(backend).await;
    let admin = &s.admin;
    let router = fake_router().await;
    seed(&router);
    let enr = admin
        .post("/api/v1/sites", &json!({"name": "Warung Mikhmon"}))
        .await
        .expect(201);
    let site_id = enr["site"]["id"].as_str().unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    let agent = agent(
        enr["token"].as_str().unwrap(),
        dir.path(),
        &router,
        Mode::Radius,
    )
    .await;

    // Only a caller who may create everything an import creates may run one.
    admin
        .post(
            "/api/v1/admins",
            &json!({"username": "ri-viewer", "password": "router-import-pw", "role": "viewer"}),
        )
        .await
        .expect(201);
    let viewer = Api::login(s.ctl.api_addr, "ri-viewer", "router-import-pw").await;
    viewer
        .post(
            &format!("/api/v1/sites/{site_id}/router-import"),
            &json!({}),
        )
        .await
        .expect(403);

    // The dry run: what would be created, and the bad entries with their field.
    let (id, shown) = read(admin, &site_id).await;
    let report = &shown["report"];
    assert_eq!(report["dry_run"], true);
    assert_eq!(
        entry(report, "active_voucher", "ab12cd")["outcome"]["outcome"],
        "created"
    );
    assert_eq!(
        entry(report, "voucher", "ef34gh")["outcome"]["outcome"],
        "created"
    );
    assert_eq!(
        entry(report, "active_voucher", "ij56kl")["outcome"]["outcome"],
        "created"
    );
    let bad = entry(report, "voucher", "badlim");
    assert_eq!(bad["outcome"]["outcome"], "skipped", "{bad}");
    assert_eq!(bad["outcome"]["field"], "limit-uptime");
    assert!(
        bad["outcome"]["reason"]
            .as_str()
            .unwrap()
            .contains("\"abc\""),
        "{bad}"
    );
    assert_eq!(
        entry(report, "voucher", "off001")["outcome"]["field"],
        "disabled"
    );
    assert_eq!(
        entry(report, "subscription", "budi")["outcome"]["outcome"],
        "created"
    );
    assert_eq!(
        entry(report, "subscription", "vpn01")["outcome"]["field"],
        "service"
    );
    assert_eq!(
        entry(report, "plan", "3jam")["outcome"]["outcome"],
        "created"
    );
    assert_eq!(
        entry(report, "plan", "10M")["outcome"]["outcome"],
        "created"
    );
    // A dry run writes nothing.
    let vouchers = admin.get("/api/v1/vouchers").await.expect(200);
    assert_eq!(vouchers["items"].as_array().unwrap().len(), 0, "{vouchers}");
    assert_eq!(names(&router, "/ip/hotspot/user").len(), 5);

    // A mode that is neither is refused by name.
    let wrong = admin
        .post(
            &format!("/api/v1/sites/{site_id}/router-import/{id}/apply?mode=keep"),
            &json!({}),
        )
        .await;
    assert_eq!(wrong.status, 422, "{:?}", wrong.body);

    let applied = admin
        .post(
            &format!("/api/v1/sites/{site_id}/router-import/{id}/apply?mode=retire"),
            &json!({}),
        )
        .await
        .expect(200);
    let report = &applied["report"];
    assert_eq!(report["dry_run"], false);
    // Three vouchers, two plans, two customers with a subscription each.
    assert_eq!(count(report, "created"), 3 + 2 + 2 + 2, "{report}");

    // The used voucher keeps what the router counted: 1 h of 3 h, 3 MB.
    let used = admin.get("/api/v1/vouchers/ab12cd").await.expect(200);
    assert_eq!(used["status"], "active", "{used}");
    assert_eq!(used["used_time_secs"], 3600);
    assert_eq!(used["used_bytes"], 3_000_000);
    let fresh = admin.get("/api/v1/vouchers/ef34gh").await.expect(200);
    assert_eq!(fresh["status"], "new", "{fresh}");
    let plans = admin.get("/api/v1/plans").await.expect(200);
    let plan = plans["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "3jam")
        .unwrap_or_else(|| panic!("{plans}"));
    assert_eq!(plan["time_limit_secs"], 10_800);
    assert_eq!(plan["price"], 5000, "Mikhmon's price");
    assert_eq!(plan["validity_secs"], 86_400, "Mikhmon's validity");
    assert_eq!(plan["rate_limit"], "1M/2M");

    // Subscriptions start billing next month: no invoice now.
    let subs = admin.get("/api/v1/subscriptions").await.expect(200);
    let budi = subs["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["username"] == "budi")
        .unwrap_or_else(|| panic!("{subs}"))
        .clone();
    assert_eq!(budi["status"], "active", "{budi}");
    let invoices = admin.get("/api/v1/invoices").await.expect(200);
    assert_eq!(invoices["items"].as_array().unwrap().len(), 0, "{invoices}");

    // Retired: the logins not online lose their router entry; online ones keep it.
    let done = take_over_done(admin, &applied).await;
    assert_eq!(done["status"], "applied", "{done}");
    let note = done["result"].as_str().unwrap();
    assert!(note.contains("3 router entries retired"), "{note}");
    assert!(note.contains("ij56kl") && note.contains("sari"), "{note}");
    assert_eq!(
        names(&router, "/ip/hotspot/user"),
        ["badlim", "ij56kl", "off001"]
    );
    assert_eq!(names(&router, "/ppp/secret"), ["sari", "vpn01"]);
    nobody_kicked(&router);

    // RADIUS answers the retired logins: the voucher with the 2 h it has left, the PPPoE
    // account at its profile's speed.
    let reply = login(&agent, "ab12cd", "ab12cd");
    assert_eq!(reply.code, "Access-Accept", "{reply:?}");
    let left: u64 = reply
        .get("Session-Timeout")
        .expect("a session timeout")
        .parse()
        .unwrap();
    assert!((7000..=7200).contains(&left), "{left} s left");
    let reply = login(&agent, "budi", "rahasia");
    assert_eq!(reply.code, "Access-Accept", "{reply:?}");
    assert_eq!(reply.get("Mikrotik-Rate-Limit"), Some("5M/10M"));

    // Re-running imports nothing again, and retires what is no longer online.
    router.remove_row(
        "/ip/hotspot/active",
        &router.rows("/ip/hotspot/active")[0][".id"],
    );
    let (id2, shown) = read(admin, &site_id).await;
    assert_eq!(count(&shown["report"], "created"), 0, "{}", shown["report"]);
    let again = admin
        .post(
            &format!("/api/v1/sites/{site_id}/router-import/{id2}/apply?mode=retire"),
            &json!({}),
        )
        .await
        .expect(200);
    assert_eq!(count(&again["report"], "created"), 0);
    assert_eq!(
        entry(&again["report"], "active_voucher", "ij56kl")["outcome"]["outcome"],
        "already_imported"
    );
    let done = take_over_done(admin, &again).await;
    assert_eq!(done["status"], "applied", "{done}");
    assert_eq!(names(&router, "/ip/hotspot/user"), ["badlim", "off001"]);
    let vouchers = admin.get("/api/v1/vouchers").await.expect(200);
    assert_eq!(vouchers["items"].as_array().unwrap().len(), 3);

    // The CLI does the same through the running controller: a dry run of what is left on
    // the router (sari online, the entries it skips) finds nothing new.
    let out = tokio::task::block_in_place(|| {
        s.ctl
            .cli(&["import", "router", "--site", "Warung Mikhmon", "--dry-run"])
    });
    assert!(out.contains("Dry run: nothing was written."), "{out}");
    assert!(
        out.contains("subscription    would create 0, 1 already imported, 1 skipped"),
        "{out}"
    );
    assert!(
        out.contains("(\"badlim\", field limit-uptime): \"abc\" is not a RouterOS duration"),
        "{out}"
    );
    let refused = s
        .ctl
        .cli_output(&["import", "router", "--site", "Warung Mikhmon"]);
    assert!(
        !refused.status.success(),
        "a mode is required without --dry-run"
    );

    agent.shutdown().await;
    router.stop().await;
    s.finish().await;
}

async fn an_api_mode_agent_adopts_the_router_entries(backend: Backend) {
    let s = Scenario::start(backend).await;
    let admin = &s.admin;
    let router = fake_router().await;
    seed(&router);
    let enr = admin
        .post("/api/v1/sites", &json!({"name": "Warung API"}))
        .await
        .expect(201);
    let site_id = enr["site"]["id"].as_str().unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    let agent = agent(
        enr["token"].as_str().unwrap(),
        dir.path(),
        &router,
        Mode::Api,
    )
    .await;

    // Through the admin UI: the site page's button reads the router, the import's page
    // shows the dry run with the bad entry's field, and its form applies it.
    let mut web = WebClient::login(s.ctl.api_addr, "admin", ADMIN_PASSWORD).await;
    let site_page = format!("/sites/{site_id}");
    let res = web
        .post_form(&site_page, &format!("{site_page}/router-import"), &[])
        .await;
    assert_eq!(res.status, 303, "{}", res.text);
    let page = res.header("location").unwrap().to_string();
    let id: i64 = page.rsplit('/').next().unwrap().parse().unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let html = loop {
        let res = web.get(&page).await;
        assert_eq!(res.status, 200);
        if res.text.contains("/apply") {
            break res.text;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no dry run: {}",
            res.text
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(
        html.contains("badlim") && html.contains("limit-uptime"),
        "{html}"
    );
    let res = web
        .post_form(&page, &format!("{page}/apply"), &[("mode", "adopt")])
        .await;
    assert_eq!(res.status, 303, "{}", res.text);
    assert_eq!(res.header("location"), Some(site_page.as_str()));
    let newest = admin
        .get(&format!("/api/v1/commands?site_id={site_id}"))
        .await
        .expect(200);
    let applied = json!({"take_over": newest["items"][0]});
    assert_eq!(applied["take_over"]["kind"], "take_over_router_accounts");
    let done = take_over_done(admin, &applied).await;
    assert_eq!(done["status"], "applied", "{done}");
    assert!(
        done["result"]
            .as_str()
            .unwrap()
            .contains("5 router entries adopted"),
        "{done}"
    );
    // The agent owns them now: its marker, and the plan's limit from reconciliation.
    let users: std::collections::BTreeMap<String, std::collections::BTreeMap<String, String>> =
        router
            .rows("/ip/hotspot/user")
            .into_iter()
            .map(|r| (r["name"].clone(), r))
            .collect();
    for name in ["ab12cd", "ef34gh", "ij56kl"] {
        assert_eq!(users[name]["comment"], "mikrobill:voucher", "{name}");
        assert_eq!(users[name]["limit-uptime"], "3h", "{name}");
    }
    assert_eq!(users["badlim"]["comment"], "vc-123-08.12.26-");
    let secrets: Vec<_> = router.rows("/ppp/secret");
    for s in &secrets {
        let owned = s["name"] == "budi" || s["name"] == "sari";
        assert_eq!(s["comment"] == "mikrobill:user", owned, "{s:?}");
    }
    nobody_kicked(&router);

    // Retiring is for RADIUS mode: an API-mode agent refuses it and changes nothing.
    let again = admin
        .post(
            &format!("/api/v1/sites/{site_id}/router-import/{id}/apply?mode=retire"),
            &json!({}),
        )
        .await
        .expect(200);
    let done = take_over_done(admin, &again).await;
    assert_eq!(done["status"], "failed", "{done}");
    assert!(
        done["result"].as_str().unwrap().contains("mode adopt"),
        "{done}"
    );
    assert_eq!(router.rows("/ip/hotspot/user").len(), 5);

    agent.shutdown().await;
    router.stop().await;
    s.finish().await;
}
