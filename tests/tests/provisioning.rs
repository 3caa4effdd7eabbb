//! Provisioning end to end (issue 5): a real controller, an in-process agent serving RADIUS
//! and managing a fake RouterOS over its binary API, and a pyrad NAS on the router's CoA port.
//! Isolating a PPPoE subscriber through billing kicks its session on the router and later
//! logins get the isolation profile; paying restores the plan; a plan change re-speeds the
//! running session by CoA; a command for a router that is down completes once it is back,
//! while RADIUS keeps answering.

use mikrobill_agent::radius::{Clients, NasClient, RadiusConfig};
use mikrobill_agent::router::{Mode, RouterConfig, Secret};
use mikrobill_agent::{Agent, AgentOptions};
use mikrobill_fake_routeros::{FakeRouter, FakeRouterConfig};
use mikrobill_tests::Scenario;
use mikrobill_tests::http::Api;
use mikrobill_tests::radius::{SECRET, pyrad_login, radclient};
use mikrobill_tests::{Backend, agents, eventually};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

mikrobill_tests::on_both_backends!(isolation_payment_and_plan_change_reach_the_router);

/// A pyrad NAS: what it received, one JSON object per request.
struct Nas {
    child: Child,
    port: u16,
    seen: Arc<Mutex<Vec<Value>>>,
}

impl Nas {
    fn start() -> Nas {
        let port = mikrobill_tests::free_udp_addr().port();
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/python/nas.py");
        let mut child = Command::new("python3")
            .args([script, "127.0.0.1", &port.to_string(), SECRET])
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 with pyrad (scripts/ensure-test-tools installs it)");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        assert_eq!(lines.next().unwrap().unwrap(), "listening");
        let seen = Arc::new(Mutex::new(Vec::new()));
        let sink = seen.clone();
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                sink.lock()
                    .unwrap()
                    .push(serde_json::from_str(&line).unwrap());
            }
        });
        Nas { child, port, seen }
    }

    fn received(&self, code: u64, user: &str) -> Vec<Value> {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .filter(|v| v["code"] == code && v["attributes"]["User-Name"][0] == user)
            .cloned()
            .collect()
    }
}

impl Drop for Nas {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn command_done(admin: &Api, id: &Value) -> Value {
    eventually(Duration::from_secs(30), "command answered", || async {
        let c = admin.get(&format!("/api/v1/commands/{id}")).await.json();
        (c["status"] != "pending").then_some(c)
    })
    .await
}

async fn last_command(admin: &Api, sid: &str) -> Value {
    admin
        .get(&format!("/api/v1/commands?subscription_id={sid}&limit=1"))
        .await
        .expect(200)["items"][0]
        .clone()
}

fn accounting_start(agent: &Agent, user: &str, session: &str) {
    let attrs = format!(
        "Acct-Status-Type = Start, User-Name = {user}, Acct-Session-Id = {session}, NAS-Identifier = router, NAS-IP-Address = 127.0.0.1, Framed-IP-Address = 10.9.0.7\n"
    );
    let reply = radclient(agent.radius().unwrap().acct_addr, "acct", SECRET, &attrs)
        .expect("accounting answered");
    assert_eq!(reply.code, "Accounting-Response");
}

/// What the router sends once a session it was told to end is gone.
fn accounting_stop(agent: &Agent, user: &str, session: &str) {
    let attrs = format!(
        "Acct-Status-Type = Stop, User-Name = {user}, Acct-Session-Id = {session}, NAS-Identifier = router, NAS-IP-Address = 127.0.0.1, Acct-Session-Time = 30, Acct-Terminate-Cause = Admin-Reset\n"
    );
    let reply = radclient(agent.radius().unwrap().acct_addr, "acct", SECRET, &attrs)
        .expect("accounting answered");
    assert_eq!(reply.code, "Accounting-Response");
}

fn attr(reply: &Value, name: &str) -> Option<String> {
    reply["attributes"][name][0].as_str().map(str::to_string)
}

async fn isolation_payment_and_plan_change_reach_the_router(backend: Backend) {
    let Scenario {
        dir: _dir,
        db: _db,
        ctl: _ctl,
        admin,
    } = Scenario::start(backend).await;
    let router = FakeRouter::start(FakeRouterConfig {
        username: "api".into(),
        password: "router-pw".into(),
    })
    .await
    .unwrap();
    let nas = Nas::start();

    let enr = admin
        .post("/api/v1/sites", &json!({"name": "Kampung Baru"}))
        .await
        .expect(201);
    let site_id = enr["site"]["id"].as_str().unwrap().to_string();
    let agent_dir = tempfile::tempdir().unwrap();
    agents::enroll(enr["token"].as_str().unwrap(), agent_dir.path()).await;
    let mut rc = RouterConfig::new(&router.addr().to_string(), "api", Secret::new("router-pw"));
    rc.mode = Mode::Radius;
    rc.bootstrap_on_start = true;
    rc.connect_timeout = Duration::from_secs(2);
    rc.call_timeout = Duration::from_secs(2);
    rc.reconnect_max = Duration::from_millis(300);
    rc.breaker_cooldown = Duration::from_millis(500);
    rc.refresh_interval = Duration::from_secs(1);
    rc.radius.agent_address = Some("127.0.0.1".parse().unwrap());
    rc.radius.secret = Some(Secret::new(SECRET));
    rc.radius.coa_port = nas.port;
    let clients = Clients::new(vec![NasClient {
        name: "router".into(),
        address: "127.0.0.1".into(),
        secret: SECRET.into(),
        require_message_authenticator: true,
        coa_port: nas.port,
    }])
    .unwrap();
    let agent = Agent::start(AgentOptions {
        data_dir: agent_dir.path().to_path_buf(),
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

    // The agent set the router up for RADIUS and reports the router's state to the controller.
    eventually(Duration::from_secs(20), "router bootstrapped", || async {
        let radius = router.rows("/radius");
        radius
            .iter()
            .any(|r| r.get("address").map(String::as_str) == Some("127.0.0.1"))
            .then_some(())
    })
    .await;
    assert_eq!(router.rows("/radius/incoming")[0]["accept"], "yes");
    let site = eventually(Duration::from_secs(20), "router state reported", || async {
        let s = admin.get(&format!("/api/v1/sites/{site_id}")).await.json();
        (s["router"]["reachable"] == true).then_some(s)
    })
    .await;
    assert_eq!(site["router"]["version"], "7.16.1");

    // A PPPoE subscriber whose first two invoices are long overdue.
    let plan = admin
        .post(
            "/api/v1/plans",
            &json!({"name": "Rumah 10M", "kind": "pppoe", "price": 150000, "rate_limit": "5M/10M"}),
        )
        .await
        .expect(201);
    let premium = admin
        .post("/api/v1/plans", &json!({"name": "Rumah 20M", "kind": "pppoe", "price": 250000, "rate_limit": "10M/20M"}))
        .await
        .expect(201);
    let customer = admin
        .post("/api/v1/customers", &json!({"name": "Rina"}))
        .await
        .expect(201);
    let mut start = mikrobill_core::billing::cycle::local_date(mikrobill_core::db::now_ms(), 420);
    for _ in 0..45 {
        start = start.previous_day().unwrap();
    }
    while start.day() > 28 {
        start = start.previous_day().unwrap();
    }
    let sub = admin
        .post(
            "/api/v1/subscriptions",
            &json!({
                "customer_id": customer["id"], "plan_id": plan["id"], "site_id": site_id, "username": "rina",
                "password": "rina-secret", "billing_day": start.day(),
                "start_date": format!("{:04}-{:02}-{:02}", start.year(), u8::from(start.month()), start.day())
            }),
        )
        .await
        .expect(201);
    let sid = sub["id"].as_str().unwrap().to_string();
    eventually(Duration::from_secs(10), "account synced", || async {
        agent.cache().user("rina").ok().flatten()
    })
    .await;
    let auth = agent.radius().unwrap().auth_addr;
    let ok = pyrad_login(auth, "rina", "rina-secret", "chap");
    assert_eq!(ok["code"], 2, "{ok}");
    assert_eq!(attr(&ok, "Mikrotik-Rate-Limit").as_deref(), Some("5M/10M"));

    // Online on the router, known to the agent from accounting.
    router.add_row(
        "/ppp/active",
        &[
            ("name", "rina"),
            ("service", "pppoe"),
            ("address", "10.9.0.7"),
        ],
    );
    router.add_row(
        "/ppp/active",
        &[("name", "someone-else"), ("service", "pppoe")],
    );
    accounting_start(&agent, "rina", "81000001");

    // Billing isolates her: the session is kicked on the router and by Disconnect-Request.
    admin
        .post("/api/v1/jobs/invoice-run/run", &json!({}))
        .await
        .expect(200);
    assert_eq!(
        admin
            .post("/api/v1/jobs/isolation-sweep/run", &json!({}))
            .await
            .expect(200)["changed"],
        1
    );
    let isolate = last_command(&admin, &sid).await;
    assert_eq!(isolate["kind"], "set_isolation");
    let done = command_done(&admin, &isolate["id"]).await;
    assert_eq!(done["status"], "applied", "{done}");
    let active: Vec<String> = router
        .rows("/ppp/active")
        .iter()
        .map(|r| r["name"].clone())
        .collect();
    assert_eq!(active, ["someone-else"], "only her session is kicked");
    let disconnects = nas.received(40, "rina");
    assert_eq!(disconnects.len(), 1, "{disconnects:?}");
    assert_eq!(
        disconnects[0]["attributes"]["Acct-Session-Id"][0],
        "81000001"
    );
    accounting_stop(&agent, "rina", "81000001");
    // Her next login lands in the isolation profile.
    let isolated = pyrad_login(auth, "rina", "rina-secret", "chap");
    assert_eq!(isolated["code"], 2, "{isolated}");
    assert_eq!(
        attr(&isolated, "Mikrotik-Address-List").as_deref(),
        Some("isolir")
    );
    assert_eq!(attr(&isolated, "Mikrotik-Group").as_deref(), Some("isolir"));

    // She pays everything at the desk: service comes back, the router hears about it.
    let due: i64 = admin
        .get(&format!(
            "/api/v1/invoices?subscription_id={sid}&status=unpaid"
        ))
        .await
        .expect(200)["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["total"].as_i64().unwrap())
        .sum();
    let receipt = admin
        .post(
            "/api/v1/payments",
            &json!({"customer_id": customer["id"], "amount": due, "method": "cash"}),
        )
        .await
        .expect(201);
    assert_eq!(receipt["reactivated"][0], sid.as_str());
    let restore = last_command(&admin, &sid).await;
    assert_eq!(restore["command"]["SetIsolation"]["isolated"], false);
    assert_eq!(
        command_done(&admin, &restore["id"]).await["status"],
        "applied"
    );
    let back = pyrad_login(auth, "rina", "rina-secret", "chap");
    assert_eq!(
        attr(&back, "Mikrotik-Rate-Limit").as_deref(),
        Some("5M/10M")
    );
    assert_eq!(attr(&back, "Mikrotik-Address-List"), None);

    // Online again; an upgrade re-speeds the running session through CoA.
    accounting_start(&agent, "rina", "81000002");
    admin
        .post(
            &format!("/api/v1/subscriptions/{sid}/change-plan"),
            &json!({"plan_id": premium["id"]}),
        )
        .await
        .expect(200);
    let respeed = last_command(&admin, &sid).await;
    assert_eq!(respeed["kind"], "apply_plan");
    assert_eq!(
        command_done(&admin, &respeed["id"]).await["status"],
        "applied"
    );
    let coas = nas.received(43, "rina");
    assert_eq!(coas.len(), 1, "{coas:?}");
    assert_eq!(coas[0]["attributes"]["Mikrotik-Rate-Limit"][0], "10M/20M");
    assert_eq!(coas[0]["attributes"]["Acct-Session-Id"][0], "81000002");

    accounting_stop(&agent, "rina", "81000002");

    // The router goes down: RADIUS keeps answering, and a kick queued meanwhile completes
    // once the router is back.
    router.add_row("/ppp/active", &[("name", "rina"), ("service", "pppoe")]);
    router.faults().set_refuse(true);
    let kick = admin
        .post(&format!("/api/v1/subscriptions/{sid}/kick"), &json!({}))
        .await
        .expect(201);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let during = pyrad_login(auth, "rina", "rina-secret", "pap");
    assert_eq!(
        during["code"], 2,
        "RADIUS must not wait on the router: {during}"
    );
    assert_eq!(
        admin
            .get(&format!("/api/v1/commands/{}", kick["id"]))
            .await
            .json()["status"],
        "pending"
    );
    router.faults().set_refuse(false);
    let kicked = command_done(&admin, &kick["id"]).await;
    assert_eq!(kicked["status"], "applied", "{kicked}");
    assert!(
        router
            .rows("/ppp/active")
            .iter()
            .all(|r| r["name"] != "rina")
    );
    agent.shutdown().await;
}
