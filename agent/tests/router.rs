//! The router module against the fake RouterOS (which speaks the real API protocol):
//! bootstrap, profiles, API mode, the `router` commands of the binary, and faults.

use mikrobill_agent::cache::Cache;
use mikrobill_agent::router::{
    self, Mode, Owned, Router, RouterConfig, RouterError, Secret, bootstrap, desired_profiles,
    reconcile_all, sync_profiles,
};
use mikrobill_fake_routeros::{FakeRouter, FakeRouterConfig};
use mikrobill_protocol::items::{AccountStatus, Item, ItemKey, Plan, User, Voucher, VoucherStatus};
use mikrobill_protocol::messages::{Change, ChangeOp, SyncMessage};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Long enough for a loaded machine, short enough that a hang fails the test.
const PATIENCE: Duration = Duration::from_secs(20);
const AGENT_IP: &str = "172.17.0.2";

async fn fake() -> FakeRouter {
    FakeRouter::start(FakeRouterConfig {
        username: "api".into(),
        password: "pw".into(),
    })
    .await
    .expect("fake router")
}

fn config(addr: SocketAddr) -> RouterConfig {
    let mut c = RouterConfig::new(&addr.to_string(), "api", Secret::new("pw"));
    c.connect_timeout = Duration::from_secs(2);
    c.call_timeout = Duration::from_secs(2);
    c.reconnect_max = Duration::from_millis(200);
    c.breaker_threshold = 3;
    c.breaker_cooldown = Duration::from_millis(500);
    c.refresh_interval = Duration::from_secs(3600);
    c.radius.agent_address = Some(AGENT_IP.parse().unwrap());
    c.radius.secret = Some(Secret::new("nas-secret"));
    c
}

async fn connected(fake: &FakeRouter, mode: Mode) -> (Router, RouterConfig) {
    let mut c = config(fake.addr());
    c.mode = mode;
    let router = Router::spawn(&c);
    assert!(router.wait_reachable(PATIENCE).await, "router reachable");
    (router, c)
}

fn row<'a>(rows: &'a [BTreeMap<String, String>], name: &str) -> &'a BTreeMap<String, String> {
    rows.iter()
        .find(|r| r.get("name").map(String::as_str) == Some(name))
        .unwrap_or_else(|| panic!("no row named {name} in {rows:#?}"))
}

async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    while !check().await {
        assert!(start.elapsed() < PATIENCE, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn temp_db() -> (tempfile::TempDir, sled::Db) {
    let dir = tempfile::tempdir().unwrap();
    let db = sled::Config::new()
        .path(dir.path())
        .cache_capacity(1 << 20)
        .open()
        .unwrap();
    (dir, db)
}

fn plan(id: &str, name: &str, rate: &str) -> Plan {
    Plan {
        id: id.into(),
        name: name.into(),
        rate_limit: Some(rate.into()),
        time_limit_secs: Some(3 * 3600),
        data_limit_bytes: Some(5_000_000_000),
        validity_secs: None,
        shared_users: 2,
        interim_interval_secs: None,
        router_group: None,
        address_list: None,
        mac_lock: false,
        fup_rate_limit: None,
    }
}

fn voucher(code: &str, plan: &str) -> Voucher {
    Voucher {
        code: code.into(),
        password: None,
        plan_id: plan.into(),
        status: VoucherStatus::Sold,
        activated_at_ms: None,
        used_time_secs: 0,
        used_bytes: 0,
        sites: Vec::new(),
        bound_mac: None,
    }
}

fn user(name: &str, status: AccountStatus) -> User {
    User {
        username: name.into(),
        password: format!("{name}-pw"),
        plan_id: "p1".into(),
        status,
        static_ip: None,
    }
}

async fn apply(cache: &Cache, seq: &mut u64, ops: Vec<ChangeOp>) {
    let changes = ops
        .into_iter()
        .map(|op| {
            *seq += 1;
            Change { seq: *seq, op }
        })
        .collect();
    cache
        .apply(SyncMessage::Changes(changes))
        .await
        .expect("apply");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bootstrap_configures_a_fresh_router_and_a_second_run_changes_nothing() {
    let fake = fake().await;
    fake.add_row("/ip/hotspot/profile", &[("name", "hsprof1")]);
    let (router, cfg) = connected(&fake, Mode::Radius).await;

    let changes = bootstrap(&router, &cfg.radius).await.expect("bootstrap");
    let shown: Vec<String> = changes.iter().map(ToString::to_string).collect();
    assert!(
        shown.iter().all(|c| !c.contains("nas-secret")),
        "secrets are never shown: {shown:#?}"
    );
    assert_eq!(changes.len(), 5, "{shown:#?}");

    let radius = fake.rows("/radius");
    assert_eq!(radius.len(), 1);
    assert_eq!(radius[0]["address"], AGENT_IP);
    assert_eq!(radius[0]["secret"], "nas-secret");
    assert_eq!(radius[0]["service"], "hotspot,ppp");
    assert_eq!(radius[0]["timeout"], "3s");
    assert_eq!(radius[0]["comment"], router::RADIUS_COMMENT);
    let incoming = &fake.rows("/radius/incoming")[0];
    // RouterOS listens on 1700 out of the box: bootstrap moves it to where the agent sends.
    assert_eq!((&*incoming["accept"], &*incoming["port"]), ("yes", "3799"));
    let aaa = &fake.rows("/ppp/aaa")[0];
    assert_eq!(aaa["use-radius"], "yes");
    assert_eq!(aaa["accounting"], "yes");
    assert_eq!(
        aaa["interim-update"], "0s",
        "PPP takes the interval RADIUS sends"
    );
    for profile in fake.rows("/ip/hotspot/profile") {
        assert_eq!(profile["use-radius"], "yes", "{profile:?}");
        assert_eq!(profile["radius-accounting"], "yes");
        assert_eq!(profile["radius-interim-update"], "received");
    }

    let writes = |f: &FakeRouter| {
        f.commands()
            .iter()
            .filter(|c| !c[0].ends_with("/print"))
            .count()
    };
    let before = writes(&fake);
    let again = bootstrap(&router, &cfg.radius).await.expect("second run");
    assert!(again.is_empty(), "{again:#?}");
    assert_eq!(writes(&fake), before, "nothing written the second time");
    router.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bootstrap_adopts_the_operators_entry_and_keeps_its_extra_services() {
    let fake = fake().await;
    fake.add_row(
        "/radius",
        &[
            ("address", AGENT_IP),
            ("service", "login"),
            ("secret", "old"),
            ("timeout", "3000ms"),
        ],
    );
    let (router, cfg) = connected(&fake, Mode::Radius).await;
    let changes = bootstrap(&router, &cfg.radius).await.unwrap();
    let radius = fake.rows("/radius");
    assert_eq!(radius.len(), 1, "no second entry for the same address");
    assert_eq!(radius[0]["service"], "hotspot,login,ppp");
    assert_eq!(radius[0]["secret"], "nas-secret");
    assert_eq!(radius[0]["timeout"], "3000ms", "3000ms already is 3s");
    let entry = changes.iter().find(|c| c.menu == "/radius").unwrap();
    assert!(entry.fields.iter().all(|(k, _)| k != "timeout"));
    assert!(bootstrap(&router, &cfg.radius).await.unwrap().is_empty());
    router.shutdown();
}

fn write_config(dir: &std::path::Path, addr: &str, password: &str) -> std::path::PathBuf {
    let path = dir.join("agent.toml");
    std::fs::write(
        &path,
        format!(
            "[radius]\n[[radius.clients]]\nname = \"r\"\naddress = \"127.0.0.1\"\nsecret = \"nas-secret\"\n\n\
             [router]\naddress = \"{addr}\"\nusername = \"api\"\npassword = \"{password}\"\n\
             radius_address = \"{AGENT_IP}\"\nconnect_timeout = \"2s\"\n"
        ),
    )
    .unwrap();
    path
}

async fn agent_cli(config: &std::path::Path, sub: &str) -> (bool, String, String) {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_mikrobill-agent"))
        .args(["router", sub, "--config"])
        .arg(config)
        .env_remove("MIKROBILL_ROUTER_ADDRESS")
        .env_remove("MIKROBILL_ROUTER_PASSWORD")
        .env("RUST_LOG", "error")
        .output()
        .await
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_router_commands_of_the_binary() {
    let fake = fake().await;
    let dir = tempfile::tempdir().unwrap();
    let good = write_config(dir.path(), &fake.addr().to_string(), "pw");

    let (ok, out, err) = agent_cli(&good, "bootstrap").await;
    assert!(ok, "{out}\n{err}");
    assert!(out.contains("/radius 172.17.0.2: added"), "{out}");
    assert!(out.contains("/ppp/aaa settings: updated"), "{out}");
    assert!(!out.contains("nas-secret") && !err.contains("nas-secret"));
    assert_eq!(
        fake.rows("/radius")[0]["secret"],
        "nas-secret",
        "from the RADIUS client entry"
    );

    let (ok, out, err) = agent_cli(&good, "bootstrap").await;
    assert!(ok, "{err}");
    assert_eq!(out.trim(), "router already configured");

    let (ok, out, err) = agent_cli(&good, "status").await;
    assert!(ok, "{err}");
    assert!(out.contains("reachable:      yes"), "{out}");
    assert!(
        out.contains("7.16.1") && out.contains("RB5009UG+S+"),
        "{out}"
    );

    // Containers configure the router from the environment alone.
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_mikrobill-agent"))
        .args(["router", "status"])
        .env_remove("MIKROBILL_AGENT_CONFIG")
        .env("MIKROBILL_ROUTER_ADDRESS", fake.addr().to_string())
        .env("MIKROBILL_ROUTER_USERNAME", "api")
        .env("MIKROBILL_ROUTER_PASSWORD", "pw")
        .env("RUST_LOG", "error")
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(stdout.contains("identity:       MikroTik"), "{stdout}");

    let refused = tempfile::tempdir().unwrap();
    let bad = write_config(refused.path(), &fake.addr().to_string(), "wrong");
    let (ok, _, err) = agent_cli(&bad, "bootstrap").await;
    assert!(!ok);
    assert!(
        err.contains("refused the login of API user \"api\""),
        "{err}"
    );
    assert!(!err.contains("wrong"), "the password is not shown: {err}");

    let free = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let gone = tempfile::tempdir().unwrap();
    let down = write_config(gone.path(), &free.to_string(), "pw");
    let (ok, _, err) = agent_cli(&down, "bootstrap").await;
    assert!(!ok);
    assert!(err.contains("cannot connect to the router at"), "{err}");
    let (ok, out, _) = agent_cli(&down, "status").await;
    assert!(!ok);
    assert!(out.contains("reachable:      no"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plans_become_profiles_and_operator_profiles_are_left_alone() {
    let fake = fake().await;
    fake.add_row(
        "/ip/hotspot/user/profile",
        &[("name", "vip"), ("rate-limit", "9M/9M")],
    );
    fake.add_row("/ppp/profile", &[("name", "vip"), ("rate-limit", "9M/9M")]);
    // The operator's own profile whose name a plan also wants.
    fake.add_row(
        "/ppp/profile",
        &[("name", "Bulanan"), ("rate-limit", "7M/7M")],
    );
    let (router, _) = connected(&fake, Mode::Api).await;
    let (_dir, db) = temp_db();
    let owned = Owned::open(&db).unwrap();

    let plans = vec![
        plan("p1", "Harian", "1M/2M"),
        plan("p2", "Bulanan", "5M/10M"),
    ];
    let specs = desired_profiles(&plans, Mode::Api, Some("64k/64k"));
    let changes = sync_profiles(&router, &specs, &owned).await.unwrap();
    assert!(!changes.is_empty());

    let hotspot = fake.rows("/ip/hotspot/user/profile");
    assert_eq!(row(&hotspot, "Harian")["rate-limit"], "1M/2M");
    assert_eq!(row(&hotspot, "Harian")["shared-users"], "2");
    assert_eq!(row(&hotspot, "isolir")["address-list"], "isolir");
    assert_eq!(row(&hotspot, "isolir")["rate-limit"], "64k/64k");
    assert!(
        !row(&hotspot, "Harian").contains_key("comment"),
        "hotspot user profiles have no comment on RouterOS"
    );
    let ppp = fake.rows("/ppp/profile");
    assert_eq!(row(&ppp, "Harian")["comment"], "mikrobill:plan:p1");
    assert_eq!(row(&ppp, "Harian")["only-one"], "no");
    assert_eq!(row(&ppp, "isolir")["comment"], router::ISOLATION_COMMENT);
    assert_eq!(
        row(&ppp, "Bulanan")["rate-limit"],
        "7M/7M",
        "not ours: untouched"
    );
    assert!(!row(&ppp, "Bulanan").contains_key("comment"));
    assert_eq!(row(&ppp, "vip")["rate-limit"], "9M/9M");

    assert!(
        sync_profiles(&router, &specs, &owned)
            .await
            .unwrap()
            .is_empty()
    );

    // A plan changes and another goes away: ours follow, the operator's stay.
    let plans = vec![plan("p1", "Harian", "2M/4M")];
    let specs = desired_profiles(&plans, Mode::Api, None);
    sync_profiles(&router, &specs, &owned).await.unwrap();
    let hotspot = fake.rows("/ip/hotspot/user/profile");
    assert_eq!(row(&hotspot, "Harian")["rate-limit"], "2M/4M");
    assert!(!row(&hotspot, "isolir").contains_key("rate-limit"), "unset");
    assert!(hotspot.iter().all(|r| r["name"] != "Bulanan"));
    assert_eq!(row(&hotspot, "vip")["rate-limit"], "9M/9M");
    let ppp = fake.rows("/ppp/profile");
    assert_eq!(row(&ppp, "Bulanan")["rate-limit"], "7M/7M");
    assert_eq!(row(&ppp, "Harian")["rate-limit"], "2M/4M");

    // RADIUS mode needs only the isolation profile and router groups.
    let specs = desired_profiles(&plans, Mode::Radius, None);
    sync_profiles(&router, &specs, &owned).await.unwrap();
    let names: Vec<String> = fake
        .rows("/ip/hotspot/user/profile")
        .iter()
        .map(|r| r["name"].clone())
        .collect();
    assert_eq!(names, ["default", "vip", "isolir"]);
    router.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_mode_manages_only_marked_users_and_secrets() {
    let fake = fake().await;
    fake.add_row("/ip/hotspot/user", &[("name", "guest"), ("password", "g")]);
    // An operator-made user whose name is also a voucher code: never touched.
    fake.add_row(
        "/ip/hotspot/user",
        &[("name", "CLASH"), ("password", "mine")],
    );
    let (router, cfg) = connected(&fake, Mode::Api).await;
    let (_dir, db) = temp_db();
    let owned = Owned::open(&db).unwrap();
    let cache = Cache::open(&db, "site").unwrap();
    let mut seq = 0;
    apply(
        &cache,
        &mut seq,
        vec![
            ChangeOp::Upsert(Item::Plan(plan("p1", "Harian", "1M/2M"))),
            ChangeOp::Upsert(Item::Voucher(voucher("V1", "p1"))),
            ChangeOp::Upsert(Item::Voucher(voucher("V2", "p1"))),
            ChangeOp::Upsert(Item::Voucher(voucher("CLASH", "p1"))),
            ChangeOp::Upsert(Item::User(user("budi", AccountStatus::Active))),
            ChangeOp::Upsert(Item::User(user("sari", AccountStatus::Active))),
        ],
    )
    .await;

    reconcile_all(&router, &cache, &owned, &cfg).await.unwrap();
    let users = fake.rows("/ip/hotspot/user");
    assert_eq!(row(&users, "V1")["password"], "V1");
    assert_eq!(row(&users, "V1")["profile"], "Harian");
    assert_eq!(row(&users, "V1")["limit-uptime"], "3h");
    assert_eq!(row(&users, "V1")["limit-bytes-total"], "5000000000");
    assert_eq!(row(&users, "V1")["comment"], router::HOTSPOT_USER_COMMENT);
    assert_eq!(row(&users, "CLASH")["password"], "mine");
    assert!(!row(&users, "CLASH").contains_key("comment"));
    let secrets = fake.rows("/ppp/secret");
    assert_eq!(row(&secrets, "budi")["password"], "budi-pw");
    assert_eq!(row(&secrets, "budi")["profile"], "Harian");
    assert_eq!(row(&secrets, "budi")["comment"], router::PPP_SECRET_COMMENT);
    assert!(
        reconcile_all(&router, &cache, &owned, &cfg)
            .await
            .unwrap()
            .is_empty()
    );

    let mut v1 = voucher("V1", "p1");
    v1.password = Some("new".into());
    let mut v2 = voucher("V2", "p1");
    v2.status = VoucherStatus::Revoked;
    apply(
        &cache,
        &mut seq,
        vec![
            ChangeOp::Upsert(Item::Voucher(v1)),
            ChangeOp::Upsert(Item::Voucher(v2)),
            ChangeOp::Upsert(Item::User(user("budi", AccountStatus::Isolated))),
            ChangeOp::Upsert(Item::User(user("sari", AccountStatus::Suspended))),
            ChangeOp::Delete(ItemKey::Voucher("CLASH".into())),
        ],
    )
    .await;
    let changes = reconcile_all(&router, &cache, &owned, &cfg).await.unwrap();
    assert!(
        !changes.iter().any(|c| c.to_string().contains("new")),
        "{changes:#?}"
    );
    let users = fake.rows("/ip/hotspot/user");
    assert_eq!(row(&users, "V1")["password"], "new");
    assert!(users.iter().all(|r| r["name"] != "V2"), "revoked: removed");
    assert_eq!(row(&users, "guest")["password"], "g");
    assert_eq!(row(&users, "CLASH")["password"], "mine");
    let secrets = fake.rows("/ppp/secret");
    assert_eq!(row(&secrets, "budi")["profile"], "isolir");
    assert_eq!(row(&secrets, "sari")["disabled"], "yes");

    apply(
        &cache,
        &mut seq,
        vec![ChangeOp::Delete(ItemKey::User("sari".into()))],
    )
    .await;
    reconcile_all(&router, &cache, &owned, &cfg).await.unwrap();
    assert!(fake.rows("/ppp/secret").iter().all(|r| r["name"] != "sari"));
    assert_eq!(fake.rows("/ip/hotspot/user").len(), 3, "guest, CLASH, V1");
    router.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_runner_bootstraps_and_follows_the_cache() {
    let fake = fake().await;
    let mut cfg = config(fake.addr());
    cfg.bootstrap_on_start = true;
    cfg.mode = Mode::Api;
    let router = Router::spawn(&cfg);
    let (_dir, db) = temp_db();
    let cache = Arc::new(Cache::open(&db, "site").unwrap());
    let owned = Owned::open(&db).unwrap();
    let (stop, stop_rx) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(router::run(
        router.clone(),
        cfg.clone(),
        cache.clone(),
        owned,
        router::DriftLog::open(&db).unwrap(),
        stop_rx,
    ));
    eventually("the isolation profile", || async {
        fake.rows("/ppp/profile")
            .iter()
            .any(|r| r["name"] == "isolir")
    })
    .await;
    assert!(
        fake.rows("/radius").is_empty(),
        "API mode: no RADIUS bootstrap"
    );

    let mut seq = 0;
    apply(
        &cache,
        &mut seq,
        vec![
            ChangeOp::Upsert(Item::Plan(plan("p1", "Harian", "1M/2M"))),
            ChangeOp::Upsert(Item::Voucher(voucher("V9", "p1"))),
        ],
    )
    .await;
    eventually("the voucher pushed after the sync", || async {
        fake.rows("/ip/hotspot/user")
            .iter()
            .any(|r| r["name"] == "V9")
    })
    .await;
    stop.send_replace(true);
    tokio::time::timeout(PATIENCE, task).await.unwrap().unwrap();

    // In RADIUS mode the runner bootstraps first.
    cfg.mode = Mode::Radius;
    let (stop, stop_rx) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(router::run(
        router.clone(),
        cfg,
        cache,
        Owned::open(&db).unwrap(),
        router::DriftLog::open(&db).unwrap(),
        stop_rx,
    ));
    eventually("the RADIUS entry", || async {
        fake.rows("/radius").len() == 1 && fake.rows("/ppp/aaa")[0]["use-radius"] == "yes"
    })
    .await;
    stop.send_replace(true);
    tokio::time::timeout(PATIENCE, task).await.unwrap().unwrap();
    router.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_is_read_from_the_router() {
    let fake = fake().await;
    fake.set_settings(
        "/system/resource",
        &[("uptime", "1d2h"), ("cpu-load", "42")],
    );
    fake.set_settings("/system/identity", &[("name", "hap-lobby")]);
    let (router, _) = connected(&fake, Mode::Radius).await;
    let state = router.state().borrow().clone();
    assert!(state.reachable);
    assert_eq!(state.version.as_deref(), Some("7.16.1"));
    assert_eq!(state.board.as_deref(), Some("RB5009UG+S+"));
    assert_eq!(state.architecture.as_deref(), Some("arm64"));
    assert_eq!(state.cpu_load, Some(42));
    assert_eq!(state.total_memory, Some(1_073_741_824));
    assert_eq!(state.free_memory, Some(838_860_800));
    assert_eq!(state.uptime, Some(Duration::from_secs(26 * 3600)));
    assert_eq!(state.identity.as_deref(), Some("hap-lobby"));
    assert_eq!((state.hotspot_active, state.ppp_active), (Some(0), Some(0)));
    assert!(state.checked_at_ms > 0);
    fake.add_row("/ip/hotspot/active", &[("user", "V1")]);
    fake.add_row("/ppp/active", &[("name", "a")]);
    fake.add_row("/ppp/active", &[("name", "b")]);
    let state = router.refresh().await.unwrap();
    assert_eq!((state.hotspot_active, state.ppp_active), (Some(1), Some(2)));
    router.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_router_down_at_start_is_retried_until_it_comes_up() {
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let router = Router::spawn(&config(addr));
    eventually("a failed attempt", || async {
        router.state().borrow().last_error.is_some()
    })
    .await;
    assert!(!router.state().borrow().reachable);
    let fake = FakeRouter::start_on(
        addr,
        FakeRouterConfig {
            username: "api".into(),
            password: "pw".into(),
        },
    )
    .await
    .unwrap();
    assert!(
        router.wait_reachable(PATIENCE).await,
        "reconnected by itself"
    );
    assert!(router.print("/ppp/secret", &[]).await.unwrap().is_empty());
    router.shutdown();
    drop(fake);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_dropped_mid_call_fails_that_call_and_the_next_reconnects() {
    let fake = fake().await;
    let (router, _) = connected(&fake, Mode::Radius).await;
    fake.faults().drop_after(1);
    let err = router.print("/ppp/secret", &[]).await.unwrap_err();
    assert!(
        matches!(err, RouterError::ConnectionLost { ref path } if path == "/ppp/secret/print"),
        "{err:?}"
    );
    assert!(!router.state().borrow().reachable);
    router
        .print("/ppp/secret", &[])
        .await
        .expect("reconnected for the next call");
    assert!(router.state().borrow().reachable);
    router.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn traps_are_errors_and_keep_the_connection() {
    let fake = fake().await;
    let (router, _) = connected(&fake, Mode::Radius).await;
    fake.faults()
        .trap_on("/ip/hotspot/user/add", "failure: out of memory");
    let err = router
        .add("/ip/hotspot/user", &[("name".into(), "x".into())], "name")
        .await
        .unwrap_err();
    assert_eq!(
        err,
        RouterError::Trap {
            path: "/ip/hotspot/user/add".into(),
            message: "failure: out of memory".into()
        }
    );
    assert!(!err.is_connection_failure());
    // Traps from the real model too, e.g. a duplicate name.
    fake.faults().clear();
    router
        .add("/ip/hotspot/user", &[("name".into(), "x".into())], "name")
        .await
        .unwrap();
    let err = router
        .add("/ip/hotspot/user", &[("name".into(), "x".into())], "name")
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("already have user with this name"),
        "{err}"
    );
    assert_eq!(fake.connections(), 1, "still the first connection");
    router.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_router_hits_the_call_timeout() {
    let fake = fake().await;
    let mut cfg = config(fake.addr());
    cfg.call_timeout = Duration::from_millis(300);
    cfg.connect_timeout = Duration::from_millis(300);
    let router = Router::spawn(&cfg);
    assert!(router.wait_reachable(PATIENCE).await);
    fake.faults().set_delay(Duration::from_secs(2));
    let err = router.print("/ppp/secret", &[]).await.unwrap_err();
    assert!(
        matches!(err, RouterError::Timeout { ref path, after } if path == "/ppp/secret/print" && after == Duration::from_millis(300)),
        "{err:?}"
    );
    fake.faults().clear();
    eventually("calls succeeding again", || async {
        router.print("/ppp/secret", &[]).await.is_ok()
    })
    .await;
    router.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_breaker_fails_fast_while_the_router_is_down_and_closes_when_it_is_back() {
    let fake = fake().await;
    let mut cfg = config(fake.addr());
    // Long enough that the calls below all land inside one cool-down.
    cfg.breaker_cooldown = Duration::from_secs(3);
    let router = Router::spawn(&cfg);
    assert!(router.wait_reachable(PATIENCE).await);
    fake.faults().set_refuse(true);
    let mut seen = Vec::new();
    let unavailable = loop {
        match router.print("/ppp/secret", &[]).await {
            Err(RouterError::Unavailable(why)) => break why,
            Err(e) => {
                assert!(e.is_connection_failure(), "{e:?}");
                seen.push(e);
            }
            Ok(_) => panic!("the router is down"),
        }
        assert!(seen.len() <= cfg.breaker_threshold as usize, "{seen:#?}");
    };
    assert!(
        unavailable.contains("consecutive failures"),
        "{unavailable}"
    );
    // While open, nothing reaches the router.
    for _ in 0..5 {
        assert!(matches!(
            router.print("/ppp/secret", &[]).await,
            Err(RouterError::Unavailable(_))
        ));
    }
    fake.faults().set_refuse(false);
    eventually("the breaker closing", || async {
        router.print("/ppp/secret", &[]).await.is_ok()
    })
    .await;
    router.print("/ppp/secret", &[]).await.expect("closed");
    assert!(router.state().borrow().reachable);
    router.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drift_found_on_the_router_is_reported_and_aaa_repaired_on_request() {
    use mikrobill_protocol::drift::DriftKind;
    let fake = fake().await;
    let (router, mut cfg) = connected(&fake, Mode::Radius).await;
    cfg.bootstrap_on_start = true;
    router::bootstrap(&router, &cfg.radius).await.unwrap();
    let (_dir, db) = temp_db();
    let owned = Owned::open(&db).unwrap();
    let drift = router::DriftLog::open(&db).unwrap();
    let cache = Cache::open(&db, "site").unwrap();
    let mut seq = 0;
    let mut gold = plan("p1", "Emas", "1M/2M");
    gold.router_group = Some("gold".into());
    apply(&cache, &mut seq, vec![ChangeOp::Upsert(Item::Plan(gold))]).await;
    let run = |repair: bool| {
        let aaa = if repair {
            router::Aaa::Repair
        } else {
            router::Aaa::Check
        };
        router::reconcile_reported(&router, &cache, &owned, &cfg, &drift, aaa)
    };

    // Setting the router up is not drift, and a clean run after clean sends nothing.
    run(false).await.unwrap();
    run(false).await.unwrap();
    assert_eq!(drift.latest(), None);

    let profiles = fake.rows("/ip/hotspot/user/profile");
    let id = row(&profiles, "gold")[".id"].clone();
    assert!(fake.update_row("/ip/hotspot/user/profile", &id, &[("rate-limit", "9M/9M")]));
    fake.set_settings("/ppp/aaa", &[("accounting", "no")]);
    run(false).await.unwrap();
    let report = drift.latest().expect("a drift report");
    let kinds: Vec<(DriftKind, &str, bool)> = report
        .entries
        .iter()
        .map(|e| (e.kind, e.name.as_str(), e.repaired))
        .collect();
    assert_eq!(
        kinds,
        [
            (DriftKind::ChangedByHand, "gold", true),
            (DriftKind::AaaChanged, "settings", false)
        ]
    );
    assert_eq!(
        row(&fake.rows("/ip/hotspot/user/profile"), "gold")["rate-limit"],
        "1M/2M"
    );
    assert_eq!(fake.rows("/ppp/aaa")[0]["accounting"], "no");

    // The operator's repair writes the AAA settings back, and then drift clears.
    run(true).await.unwrap();
    assert_eq!(fake.rows("/ppp/aaa")[0]["accounting"], "yes");
    let report = drift.latest().unwrap();
    assert_eq!(report.entries.len(), 1, "{report:?}");
    assert!(report.entries[0].repaired);
    run(false).await.unwrap();
    assert!(!drift.latest().unwrap().is_drifted());
    router.shutdown();
}
