//! Fair-usage throttling through real RADIUS exchanges (issue 16): a plan with a 1 MB data
//! limit and a fair-usage rate. A voucher logs in at the full rate; interim updates take it
//! over the limit and the agent sends the router one CoA-Request with the fair-usage
//! Mikrotik-Rate-Limit for the session (not one per interim); the controller shows the voucher
//! throttled, still active; the next login is accepted at the fair-usage rate. Use arriving
//! through sync from another site slows a session the same way. A plan without fair usage
//! still disconnects and refuses.

use mikrobill_agent::radius::RadiusStats;
use mikrobill_radius::dict::{self, mikrotik};
use mikrobill_radius::{Code, Packet, auth};
use mikrobill_tests::radius::{RadiusAgent, SECRET, radclient};
use mikrobill_tests::scenario::{plan, voucher};
use mikrobill_tests::{Backend, Scenario, eventually};
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::time::Duration;

mikrobill_tests::on_both_backends!(a_used_up_plan_slows_down_instead_of_cutting_off);

const PHONE: &str = "AA:BB:CC:00:00:01";
const FULL: &str = "2M/4M";
const SLOW: &str = "256k/512k";

/// An accounting record of `code`'s `session` with `bytes` in both directions so far, as the
/// site's router sends it (with its NAS-IP-Address, which a CoA names).
fn acct(site: &RadiusAgent, kind: &str, code: &str, session: &str, bytes: u64) {
    let nas = format!("{}-router", &site.site_id[..8]);
    let (input, output) = (bytes / 2, bytes - bytes / 2);
    let reply = radclient(
        site.acct_addr(),
        "acct",
        SECRET,
        &format!(
            "Acct-Status-Type = {kind}, User-Name = {code}, Acct-Session-Id = {session}, \
             NAS-Identifier = {nas}, NAS-IP-Address = 127.0.0.1, Acct-Session-Time = 60, \
             Acct-Input-Octets = {input}, Acct-Output-Octets = {output}, \
             Calling-Station-Id = \"{PHONE}\"\n"
        ),
    )
    .expect("an answer to accounting");
    assert_eq!(reply.code, "Accounting-Response", "{reply:?}");
}

/// The next CoA or Disconnect request the site's router receives, checked against the NAS
/// secret, and where it came from.
async fn next_request(site: &RadiusAgent) -> (Packet, SocketAddr) {
    let mut buf = vec![0u8; 4096];
    let (n, from) = tokio::time::timeout(Duration::from_secs(20), site.coa.recv_from(&mut buf))
        .await
        .expect("a request at the router's CoA port")
        .unwrap();
    let raw = &buf[..n];
    assert!(
        auth::verify_request_authenticator(raw, SECRET.as_bytes()),
        "signed with the NAS secret"
    );
    (Packet::decode(raw).unwrap(), from)
}

/// Answers `req` as RouterOS does when it applied it.
async fn acknowledge(site: &RadiusAgent, req: &Packet, from: SocketAddr) {
    let code = match req.code {
        Code::CoaRequest => Code::CoaAck,
        _ => Code::DisconnectAck,
    };
    let mut ack = Packet::new(code, req.identifier, [0; 16]);
    ack.attributes.clear();
    let ack = auth::encode_response(&ack, &req.authenticator, SECRET.as_bytes()).unwrap();
    site.coa.send_to(&ack, from).await.unwrap();
}

/// Asserts that the router receives nothing for a while.
async fn no_request(site: &RadiusAgent, what: &str) {
    let mut buf = vec![0u8; 4096];
    let got = tokio::time::timeout(Duration::from_millis(2500), site.coa.recv_from(&mut buf)).await;
    assert!(
        got.is_err(),
        "{what}: {:?}",
        got.map(|r| r.map(|(n, _)| Packet::decode(&buf[..n])))
    );
}

/// Asserts a CoA-Request that slows `session` of `code` to the fair-usage rate.
fn assert_slowdown(req: &Packet, code: &str, session: &str) {
    assert_eq!(req.code, Code::CoaRequest, "{req:?}");
    assert_eq!(req.get_string(dict::USER_NAME).as_deref(), Some(code));
    assert_eq!(
        req.get_string(dict::ACCT_SESSION_ID).as_deref(),
        Some(session)
    );
    assert_eq!(req.get(dict::NAS_IP_ADDRESS), Some(&[127, 0, 0, 1][..]));
    assert_eq!(
        req.get_vendor(dict::VENDOR_MIKROTIK, mikrotik::RATE_LIMIT),
        Some(SLOW.as_bytes())
    );
}

async fn voucher_shown(
    admin: &mikrobill_tests::http::Api,
    code: &str,
    what: &str,
    pred: impl Fn(&Value) -> bool,
) -> Value {
    eventually(Duration::from_secs(30), what, || async {
        let v = admin
            .get(&format!("/api/v1/vouchers/{code}"))
            .await
            .expect(200);
        pred(&v).then_some(v)
    })
    .await
}

async fn a_used_up_plan_slows_down_instead_of_cutting_off(backend: Backend) {
    let s = Scenario::start(backend).await;
    let admin = &s.admin;
    let north = RadiusAgent::start(admin, "North").await;
    let south = RadiusAgent::start(admin, "South").await;

    // A fair-usage rate needs a data limit to apply after, and is a RouterOS rate.
    for bad in [
        json!({"name": "Tanpa kuota", "kind": "hotspot", "price": 1000, "fup_rate_limit": SLOW}),
        json!({"name": "Salah", "kind": "hotspot", "price": 1000,
               "data_limit_bytes": 1_000_000, "fup_rate_limit": "slow"}),
    ] {
        let refused = admin.post("/api/v1/plans", &bad).await.expect(422);
        assert_eq!(refused["field"], "fup_rate_limit", "{refused}");
    }
    let fair = plan(
        admin,
        &json!({"name": "Hemat 1 MB", "kind": "hotspot", "price": 3000, "rate_limit": FULL,
                "data_limit_bytes": 1_000_000, "validity_secs": 86400, "fup_rate_limit": SLOW,
                "shared_users": 2}),
    )
    .await;
    let shown = admin
        .get(&format!("/api/v1/plans/{fair}"))
        .await
        .expect(200);
    assert_eq!(shown["fup_rate_limit"], SLOW, "{shown}");
    let strict = plan(
        admin,
        &json!({"name": "Ketat 1 MB", "kind": "hotspot", "price": 3000, "rate_limit": FULL,
                "data_limit_bytes": 1_000_000, "validity_secs": 86400}),
    )
    .await;
    let code = voucher(admin, &fair).await;
    let shared = voucher(admin, &fair).await;
    let cut = voucher(admin, &strict).await;
    for site in [&north, &south] {
        for c in [&code, &shared, &cut] {
            site.wait_voucher(c, "the vouchers at every site", |_| true)
                .await;
        }
        let cache = site.agent.cache().clone();
        let fair_id = fair.clone();
        eventually(
            Duration::from_secs(20),
            "the plan's fair-usage rate at the site",
            || async {
                cache
                    .plan(&fair_id)
                    .ok()
                    .flatten()
                    .filter(|p| p.fup_rate_limit.as_deref() == Some(SLOW))
            },
        )
        .await;
    }

    // Below the limit: the full rate, and no byte limit the router would cut the session at.
    let first = north.login(&code, PHONE);
    assert_eq!(first.code, "Access-Accept", "{first:?}");
    assert_eq!(first.get("Mikrotik-Rate-Limit"), Some(FULL), "{first:?}");
    assert_eq!(first.get("Mikrotik-Total-Limit"), None, "{first:?}");
    acct(&north, "Start", &code, "n1", 0);
    acct(&north, "Interim-Update", &code, "n1", 400_000);
    no_request(&north, "nothing to change below the limit").await;

    // An interim update over the limit: one CoA with the fair-usage rate for that session.
    acct(&north, "Interim-Update", &code, "n1", 1_100_000);
    let (req, from) = next_request(&north).await;
    assert_slowdown(&req, &code, "n1");
    acknowledge(&north, &req, from).await;
    let stats = north.agent.radius().unwrap().stats.clone();
    eventually(Duration::from_secs(10), "the throttle counted", || async {
        (RadiusStats::get(&stats.fup_throttles) == 1).then_some(())
    })
    .await;
    // More interim updates (and the syncs they cause) do not send it again.
    acct(&north, "Interim-Update", &code, "n1", 1_300_000);
    no_request(&north, "the session was slowed once").await;
    assert_eq!(RadiusStats::get(&stats.disconnects), 0);

    // The controller shows it throttled, still active: data does not use it up.
    let v = voucher_shown(admin, &code, "the use reaches the controller", |v| {
        v["used_bytes"].as_i64() >= Some(1_300_000)
    })
    .await;
    assert_eq!(v["status"], "active", "{v}");
    assert_eq!(v["throttled"], true, "{v}");
    let listed = admin
        .get(&format!("/api/v1/vouchers?q={code}"))
        .await
        .expect(200);
    assert_eq!(listed["items"][0]["throttled"], true, "{listed}");
    // The portal's voucher check says so too.
    let cdb = s.ctl.db().await;
    let balance = mikrobill_core::portal::usage::voucher_balance(&cdb, &code)
        .await
        .unwrap()
        .unwrap();
    assert!(balance.throttled, "{balance:?}");
    assert_eq!(balance.data_left_bytes, Some(0));

    // The next login is accepted at the fair-usage rate, with nothing that ends it for data.
    acct(&north, "Stop", &code, "n1", 1_300_000);
    let again = north.login(&code, PHONE);
    assert_eq!(again.code, "Access-Accept", "{again:?}");
    assert_eq!(again.get("Mikrotik-Rate-Limit"), Some(SLOW), "{again:?}");
    assert_eq!(again.get("Mikrotik-Total-Limit"), None, "{again:?}");
    assert!(
        again.get("Session-Timeout").is_some(),
        "validity still applies: {again:?}"
    );

    // Use arriving through sync: a session open at North under the limit, then South's use
    // takes the voucher over it; North learns it from the controller and slows its session.
    assert_eq!(north.login(&shared, PHONE).code, "Access-Accept");
    acct(&north, "Start", &shared, "n2", 0);
    acct(&north, "Interim-Update", &shared, "n2", 200_000);
    let north_id = north.site_id.clone();
    south
        .wait_voucher(&shared, "South learns of North's use", |v| {
            v.sites
                .iter()
                .any(|s| s.site_id == north_id && s.bytes >= 200_000)
        })
        .await;
    assert_eq!(south.login(&shared, PHONE).code, "Access-Accept");
    acct(&south, "Start", &shared, "s1", 0);
    acct(&south, "Interim-Update", &shared, "s1", 900_000);
    // South's own interim update takes it over (North's share synced plus its own).
    let (req, from) = next_request(&south).await;
    assert_slowdown(&req, &shared, "s1");
    acknowledge(&south, &req, from).await;
    // North hears of it only through sync, and slows its own session.
    let (req, from) = next_request(&north).await;
    assert_slowdown(&req, &shared, "n2");
    acknowledge(&north, &req, from).await;

    // Without fair usage nothing changed: over the limit disconnects, and the next login is
    // refused.
    let capped = north.login(&cut, PHONE);
    assert_eq!(capped.code, "Access-Accept", "{capped:?}");
    assert_eq!(capped.get("Mikrotik-Rate-Limit"), Some(FULL), "{capped:?}");
    assert!(capped.get("Mikrotik-Total-Limit").is_some(), "{capped:?}");
    acct(&north, "Start", &cut, "n3", 0);
    acct(&north, "Interim-Update", &cut, "n3", 1_100_000);
    let (req, from) = next_request(&north).await;
    assert_eq!(req.code, Code::DisconnectRequest, "{req:?}");
    assert_eq!(req.get_string(dict::ACCT_SESSION_ID).as_deref(), Some("n3"));
    acknowledge(&north, &req, from).await;
    acct(&north, "Stop", &cut, "n3", 1_100_000);
    let refused = north.login(&cut, PHONE);
    assert_eq!(refused.code, "Access-Reject", "{refused:?}");
    assert!(
        refused.get("Reply-Message").unwrap().contains("quota"),
        "{refused:?}"
    );
    let v = voucher_shown(admin, &cut, "the strict voucher used up", |v| {
        v["status"] == "exhausted"
    })
    .await;
    assert_eq!(v["throttled"], false, "{v}");
    assert_eq!(RadiusStats::get(&stats.fup_throttles), 2);

    for site in [north, south] {
        site.agent.shutdown().await;
    }
    s.finish().await;
}
