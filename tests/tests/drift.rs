//! Router drift (issue 16), through a real controller, a real agent and the fake RouterOS:
//! an owned hotspot user profile's rate changed by hand, an owned profile removed, an owned
//! PPP profile taken over by hand (same name, no marker), and the router's PPP AAA and
//! RADIUS client settings changed. The controller's API shows each finding with its kind
//! (no secret value anywhere), `site.drift` is emitted once, the agent repairs what it owns,
//! the operator's repair restores the AAA settings, and once the operator's item is gone the
//! status is clean again.

use mikrobill_agent::radius::{Clients, NasClient, RadiusConfig};
use mikrobill_agent::router::{Mode, RouterConfig, Secret};
use mikrobill_agent::{Agent, AgentOptions};
use mikrobill_fake_routeros::{FakeRouter, FakeRouterConfig};
use mikrobill_tests::radius::SECRET;
use mikrobill_tests::{Backend, Scenario, agents, eventually, scenario};
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::time::Duration;

mikrobill_tests::on_both_backends!(
    drift_found_on_the_router_is_reported_and_repaired,
    drift_found_while_offline_arrives_on_reconnect,
);

const HOTSPOT_PROFILES: &str = "/ip/hotspot/user/profile";
const PPP_PROFILES: &str = "/ppp/profile";

/// An agent in RADIUS mode that set up the router's RADIUS itself and reconciles every
/// second.
async fn agent(token: &str, dir: &std::path::Path, router: &FakeRouter) -> Agent {
    let agent = start_agent(token, dir, router, None).await;
    agents::wait_connected(&agent).await;
    agent
}

/// [`agent`] without waiting for the link, reaching the controller `via` a relay if given.
async fn start_agent(
    token: &str,
    dir: &std::path::Path,
    router: &FakeRouter,
    via: Option<std::net::SocketAddr>,
) -> Agent {
    agents::enroll(token, dir).await;
    let mut rc = RouterConfig::new(&router.addr().to_string(), "api", Secret::new("router-pw"));
    rc.mode = Mode::Radius;
    rc.bootstrap_on_start = true;
    rc.radius.agent_address = Some("127.0.0.1".parse().unwrap());
    rc.radius.secret = Some(Secret::new(SECRET));
    rc.connect_timeout = Duration::from_secs(2);
    rc.call_timeout = Duration::from_secs(2);
    rc.reconnect_max = Duration::from_millis(300);
    rc.refresh_interval = Duration::from_secs(1);
    rc.reconcile_interval = Duration::from_secs(1);
    let clients = Clients::new(vec![NasClient {
        name: "test-router".into(),
        address: "127.0.0.1".into(),
        secret: SECRET.into(),
        require_message_authenticator: true,
        coa_port: 3799,
    }])
    .unwrap();
    Agent::start(AgentOptions {
        data_dir: dir.to_path_buf(),
        controller_addr: via.map(|a| a.to_string()),
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
    .unwrap()
}

/// The row of `menu` named `name`.
fn row(
    router: &FakeRouter,
    menu: &str,
    name: &str,
) -> Option<std::collections::BTreeMap<String, String>> {
    router
        .rows(menu)
        .into_iter()
        .find(|r| r.get("name").map(String::as_str) == Some(name))
}

/// Every (kind, menu, name, repaired) found in the site's reports so far.
fn findings(drift: &Value) -> BTreeSet<(String, String, String, bool)> {
    drift["history"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| r["findings"].as_array().unwrap().iter())
        .map(|f| {
            (
                f["kind"].as_str().unwrap().to_owned(),
                f["menu"].as_str().unwrap().to_owned(),
                f["name"].as_str().unwrap().to_owned(),
                f["repaired"].as_bool().unwrap(),
            )
        })
        .collect()
}

fn has(
    found: &BTreeSet<(String, String, String, bool)>,
    kind: &str,
    menu: &str,
    name: &str,
) -> Option<bool> {
    found
        .iter()
        .find(|(k, m, n, _)| k == kind && m == menu && n == name)
        .map(|f| f.3)
}

async fn drift_found_on_the_router_is_reported_and_repaired(backend: Backend) {
    let s = Scenario::start(backend).await;
    let admin = &s.admin;
    let router = FakeRouter::start(FakeRouterConfig {
        username: "api".into(),
        password: "router-pw".into(),
    })
    .await
    .unwrap();
    for (name, group) in [
        ("Emas", "gold"),
        ("Perak", "silver"),
        ("Perunggu", "bronze"),
    ] {
        scenario::plan(
            admin,
            &json!({"name": name, "kind": "hotspot", "price": 5000, "rate_limit": "1M/2M", "router_group": group}),
        )
        .await;
    }
    let enr = admin
        .post("/api/v1/sites", &json!({"name": "Warung Drift"}))
        .await
        .expect(201);
    let site_id = enr["site"]["id"].as_str().unwrap().to_string();
    let drift_path = format!("/api/v1/sites/{site_id}/drift");
    // The operators' alert channel.
    let gateway = mikrobill_tests::messaging::Gateway::default();
    let base = mikrobill_tests::messaging::serve_gateway(gateway.clone()).await;
    admin
        .post(
            "/api/v1/notification-channels",
            &json!({"name": "SMS", "rate_per_minute": 6000, "config": {"kind": "http",
                "url": format!("{base}/sms/send"), "body_template": "to={{to}}&msg={{text}}",
                "encoding": "form", "address": "phone", "operator_to": "628111000111"}}),
        )
        .await
        .expect(201);
    let dir = tempfile::tempdir().unwrap();
    let _agent = agent(enr["token"].as_str().unwrap(), dir.path(), &router).await;

    // The agent sets the router up: RADIUS, AAA and a profile per plan in both menus.
    eventually(Duration::from_secs(30), "the agent's profiles", || async {
        (row(&router, HOTSPOT_PROFILES, "bronze").is_some()
            && row(&router, PPP_PROFILES, "bronze").is_some())
        .then_some(())
    })
    .await;
    let aaa = router.rows("/ppp/aaa");
    assert_eq!(aaa[0]["use-radius"], "yes", "{aaa:?}");
    let radius = router.rows("/radius");
    assert_eq!(radius.len(), 1, "{radius:?}");
    // Setting the router up is not drift: nothing reported yet.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let before = admin.get(&drift_path).await.expect(200);
    assert_eq!(before["status"], "unknown", "{before}");

    // By hand: a rate changed, a profile removed, a PPP profile taken over (same name, the
    // marker gone), AAA off and another RADIUS secret.
    let gold = row(&router, HOTSPOT_PROFILES, "gold").unwrap();
    assert!(router.update_row(HOTSPOT_PROFILES, &gold[".id"], &[("rate-limit", "9M/9M")]));
    let silver = row(&router, HOTSPOT_PROFILES, "silver").unwrap();
    assert!(router.remove_row(HOTSPOT_PROFILES, &silver[".id"]));
    let bronze = row(&router, PPP_PROFILES, "bronze").unwrap();
    assert!(router.update_row(
        PPP_PROFILES,
        &bronze[".id"],
        &[("comment", "punya teknisi")]
    ));
    router.set_settings("/ppp/aaa", &[("use-radius", "no")]);
    assert!(router.update_row("/radius", &radius[0][".id"], &[("secret", "ditebak-orang")]));

    let drift = eventually(
        Duration::from_secs(30),
        "every finding reported",
        || async {
            let drift = admin
                .get(&format!("{drift_path}?limit=200"))
                .await
                .expect(200);
            let found = findings(&drift);
            let all = has(&found, "changed_by_hand", HOTSPOT_PROFILES, "gold").is_some()
                && has(&found, "removed_by_hand", HOTSPOT_PROFILES, "silver").is_some()
                && has(&found, "shadowed_by_unmanaged", PPP_PROFILES, "bronze").is_some()
                && has(&found, "aaa_changed", "/ppp/aaa", "settings").is_some()
                && has(&found, "aaa_changed", "/radius", "127.0.0.1").is_some();
            all.then_some(drift)
        },
    )
    .await;
    let found = findings(&drift);
    assert_eq!(
        has(&found, "changed_by_hand", HOTSPOT_PROFILES, "gold"),
        Some(true)
    );
    assert_eq!(
        has(&found, "removed_by_hand", HOTSPOT_PROFILES, "silver"),
        Some(true)
    );
    assert_eq!(
        has(&found, "shadowed_by_unmanaged", PPP_PROFILES, "bronze"),
        Some(false)
    );
    assert_eq!(
        has(&found, "aaa_changed", "/ppp/aaa", "settings"),
        Some(false)
    );
    // Nothing else was claimed (setting the router up, the profiles left alone).
    assert_eq!(found.len(), 5, "{found:?}");
    assert_eq!(drift["status"], "drifted", "{drift}");
    // What differed, old (what the agent set) and new (what the router held); no secret.
    let text = drift.to_string();
    assert!(
        !text.contains(SECRET) && !text.contains("ditebak-orang"),
        "{text}"
    );
    let rate = drift["history"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| r["findings"].as_array().unwrap().iter())
        .find(|f| f["kind"] == "changed_by_hand")
        .unwrap();
    assert_eq!(
        rate["properties"],
        json!([{"name": "rate-limit", "old": "1M/2M", "new": "9M/9M"}])
    );
    let secret = drift["history"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| r["findings"].as_array().unwrap().iter())
        .find(|f| f["menu"] == "/radius")
        .unwrap();
    assert_eq!(
        secret["properties"],
        json!([{"name": "secret", "old": "[redacted]", "new": "[redacted]"}])
    );

    // The agent put back what it owns, and left the operator's item and the AAA alone.
    eventually(Duration::from_secs(15), "owned items repaired", || async {
        (row(&router, HOTSPOT_PROFILES, "gold").is_some_and(|r| r["rate-limit"] == "1M/2M")
            && row(&router, HOTSPOT_PROFILES, "silver").is_some())
        .then_some(())
    })
    .await;
    assert_eq!(
        row(&router, PPP_PROFILES, "bronze").unwrap()["comment"],
        "punya teknisi"
    );
    assert_eq!(router.rows("/ppp/aaa")[0]["use-radius"], "no");

    // One event for the site going from clean (never reported) to drifted.
    let events = admin
        .get("/api/v1/events?kind=site.drift")
        .await
        .expect(200);
    let events = events["items"].as_array().unwrap();
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["site_id"], site_id.as_str());
    assert!(!events[0].to_string().contains(SECRET));
    // The operators are told, once.
    let alert = eventually(Duration::from_secs(30), "the operators' alert", || async {
        let sent = admin
            .get("/api/v1/notifications?topic=site.drift")
            .await
            .expect(200);
        sent["items"]
            .as_array()
            .is_some_and(|m| !m.is_empty())
            .then_some(sent)
    })
    .await;
    let alert = &alert["items"].as_array().unwrap();
    assert_eq!(alert.len(), 1, "{alert:?}");
    assert!(
        alert[0].to_string().contains("Warung Drift"),
        "{:?}",
        alert[0]
    );

    // A viewer may look but not repair; an operator repairs: the AAA settings come back.
    admin
        .post(
            "/api/v1/admins",
            &json!({"username": "drift-viewer", "password": "drift-viewer-pw", "role": "viewer"}),
        )
        .await
        .expect(201);
    let viewer =
        mikrobill_tests::http::Api::login(s.ctl.api_addr, "drift-viewer", "drift-viewer-pw").await;
    viewer.get(&drift_path).await.expect(200);
    viewer
        .post(&format!("{drift_path}/repair"), &json!({}))
        .await
        .expect(403);
    let repair = admin
        .post(&format!("{drift_path}/repair"), &json!({}))
        .await
        .expect(201);
    assert_eq!(repair["kind"], "resync_router", "{repair}");
    let command = repair["id"].as_i64().unwrap();
    let done = eventually(Duration::from_secs(30), "the repair", || async {
        let c = admin
            .get(&format!("/api/v1/commands/{command}"))
            .await
            .expect(200);
        (c["status"] != "pending").then_some(c)
    })
    .await;
    assert_eq!(done["status"], "applied", "{done}");
    assert_eq!(router.rows("/ppp/aaa")[0]["use-radius"], "yes");
    assert_eq!(router.rows("/radius")[0]["secret"], SECRET);
    // The repair's own report says the AAA settings were put back (it travels on the
    // control stream, so it may arrive just after the command's answer).
    eventually(Duration::from_secs(15), "the repair's report", || async {
        let drift = admin
            .get(&format!("{drift_path}?limit=200"))
            .await
            .expect(200);
        let found = findings(&drift);
        let repaired = |menu: &str, name: &str| {
            found.contains(&(
                "aaa_changed".to_owned(),
                menu.to_owned(),
                name.to_owned(),
                true,
            ))
        };
        (repaired("/ppp/aaa", "settings") && repaired("/radius", "127.0.0.1")).then_some(())
    })
    .await;

    // The operator removes their item: the agent makes its own and the site is clean.
    let theirs = row(&router, PPP_PROFILES, "bronze").unwrap();
    assert!(router.remove_row(PPP_PROFILES, &theirs[".id"]));
    let clean = eventually(Duration::from_secs(30), "a clean report", || async {
        let drift = admin.get(&drift_path).await.expect(200);
        (drift["status"] == "clean").then_some(drift)
    })
    .await;
    assert_eq!(clean["findings"], json!([]), "{clean}");
    assert!(clean["drifted_since"].is_null(), "{clean}");
    assert!(
        row(&router, PPP_PROFILES, "bronze")
            .is_some_and(|r| r["comment"].starts_with("mikrobill:")),
    );
    // Still one event: going clean raises none.
    let events = admin
        .get("/api/v1/events?kind=site.drift")
        .await
        .expect(200);
    assert_eq!(events["items"].as_array().unwrap().len(), 1);

    // The admin UI shows it on the site list and the site's page.
    let mut web = mikrobill_tests::web::WebClient::login(
        s.ctl.api_addr,
        "admin",
        mikrobill_tests::http::ADMIN_PASSWORD,
    )
    .await;
    let list = web.get("/sites").await;
    assert_eq!(list.status, 200);
    assert!(list.text.contains("pill ok"), "{}", list.text);
    let page = web.get(&format!("/sites/{site_id}")).await;
    assert!(
        page.text
            .contains(&format!("/sites/{site_id}/drift/repair")),
        "{}",
        page.text
    );
    let mut viewer_web =
        mikrobill_tests::web::WebClient::login(s.ctl.api_addr, "drift-viewer", "drift-viewer-pw")
            .await;
    let page = viewer_web.get(&format!("/sites/{site_id}")).await;
    assert_eq!(page.status, 200);
    assert!(!page.text.contains("/drift/repair"), "{}", page.text);
    s.finish().await;
}

/// A report made while the controller cannot be reached is kept by the agent and arrives
/// when the link comes up.
async fn drift_found_while_offline_arrives_on_reconnect(backend: Backend) {
    let s = Scenario::start(backend).await;
    let admin = &s.admin;
    let router = FakeRouter::start(FakeRouterConfig {
        username: "api".into(),
        password: "router-pw".into(),
    })
    .await
    .unwrap();
    scenario::plan(
        admin,
        &json!({"name": "Emas", "kind": "hotspot", "price": 5000, "rate_limit": "1M/2M", "router_group": "gold"}),
    )
    .await;
    let enr = admin
        .post("/api/v1/sites", &json!({"name": "Warung Putus"}))
        .await
        .expect(201);
    let site_id = enr["site"]["id"].as_str().unwrap().to_string();
    let proxy = mikrobill_tests::UdpProxy::start(s.ctl.edge_addr).await;
    let dir = tempfile::tempdir().unwrap();
    let agent = start_agent(
        enr["token"].as_str().unwrap(),
        dir.path(),
        &router,
        Some(proxy.addr()),
    )
    .await;
    agents::wait_connected(&agent).await;
    eventually(Duration::from_secs(30), "the agent's profile", || async {
        row(&router, HOTSPOT_PROFILES, "gold").map(|_| ())
    })
    .await;
    // Cut off: the agent notices and keeps reconnecting in vain.
    proxy.set_mode(mikrobill_tests::ProxyMode::Cut);
    agents::wait_link(&agent, Duration::from_secs(60), "down", |l| {
        !matches!(l, mikrobill_agent::uplink::LinkState::Connected { .. })
    })
    .await;
    let gold = row(&router, HOTSPOT_PROFILES, "gold").unwrap();
    assert!(router.update_row(HOTSPOT_PROFILES, &gold[".id"], &[("rate-limit", "7M/7M")]));
    eventually(
        Duration::from_secs(15),
        "the repair while offline",
        || async {
            row(&router, HOTSPOT_PROFILES, "gold")
                .is_some_and(|r| r["rate-limit"] == "1M/2M")
                .then_some(())
        },
    )
    .await;
    let path = format!("/api/v1/sites/{site_id}/drift");
    assert_eq!(admin.get(&path).await.expect(200)["status"], "unknown");

    proxy.set_mode(mikrobill_tests::ProxyMode::Pass);
    let drift = eventually(
        Duration::from_secs(60),
        "the report after reconnecting",
        || async {
            let d = admin.get(&path).await.expect(200);
            (d["history"].as_array().is_some_and(|h| !h.is_empty())).then_some(d)
        },
    )
    .await;
    let first = &drift["history"].as_array().unwrap().last().unwrap()["findings"][0];
    assert_eq!(first["kind"], "changed_by_hand", "{drift}");
    assert_eq!(
        first["properties"],
        json!([{"name": "rate-limit", "old": "1M/2M", "new": "7M/7M"}])
    );
    agent.shutdown().await;
    s.finish().await;
}
