//! A 72-hour outage, three sites under one controller, real RADIUS, a controllable clock.
//!
//! The agents run on one [`ManualClock`] (the sites keep the same time, as NTP-synced routers
//! do); the test moves it in steps while subscribers log in and account at the sites, so days
//! of subscriber time pass in seconds. The controller is a real process on the real clock,
//! which nothing can move: so the agents' clock starts 72 hours in the past and the outage
//! runs it up to the moment the test started. Every record the controller receives then lies
//! in the past, as after a real outage that just ended, and validity ends the agents reached
//! during it are behind the controller too. Nothing is used while the controller is
//! reachable: its "now" and the agents' are 72 hours apart until the outage is over.
//!
//! During the outage each site enforces what it knows: the validity window from its own
//! first use, the time budget from its own records (Session-Timeout shrinks, logins are
//! refused with the right reason once it is used), one device at a time. One voucher is used
//! at two sites beyond its budget, which no site alone could see. When the controller is
//! back, the ledger's totals are exact per site and in all (the router's retransmitted Stops,
//! cumulative interim updates and records the agent sends again count once), the voucher is
//! exhausted and closed at every site, the over-budget conflict is listed with both sites
//! and raised as a `voucher.conflict` event, and the voucher that outlived its validity is
//! expired at every site, also the one that never saw it used.

use mikrobill_agent::clock::ManualClock;
use mikrobill_protocol::accounting::{AccountingRecord, AcctStatus, RecordId};
use mikrobill_protocol::items::{Voucher, VoucherStatus};
use mikrobill_tests::radius::{RadclientReply, RadiusAgent};
use mikrobill_tests::scenario::{plan, voucher};
use mikrobill_tests::{Backend, Scenario, agents};
use serde_json::{Value, json};
use std::time::Duration;

mikrobill_tests::on_both_backends!(
    a_72_hour_outage_is_enforced_at_each_site_and_settled_after,
    the_earliest_first_use_counts_whichever_site_reconnects_first
);

const PHONE: &str = "AA:BB:CC:00:00:01";
const LAPTOP: &str = "AA:BB:CC:00:00:02";
const TABLET: &str = "AA:BB:CC:00:00:03";

const MINUTE: u64 = 60;
const HOUR: u64 = 3600;

/// Both plans: one hour online, one device at a time, within a week (`roaming`, whose
/// status then follows from its use alone) or a day (`daily`) of first use.
const TIME_LIMIT: u64 = HOUR;
const WEEK: u64 = 7 * 24 * HOUR;
const DAY: u64 = 24 * HOUR;

fn accepted(r: &RadclientReply, timeout_secs: u64) {
    assert_eq!(r.code, "Access-Accept", "{r:?}");
    assert_eq!(
        r.get("Session-Timeout"),
        Some(timeout_secs.to_string().as_str()),
        "{r:?}"
    );
}

fn refused(r: &RadclientReply, message: &str) {
    assert_eq!(r.code, "Access-Reject", "{r:?}");
    assert_eq!(r.get("Reply-Message"), Some(message), "{r:?}");
}

/// The line of `key` in a usage report.
fn line<'a>(rows: &'a Value, key: &str) -> &'a Value {
    rows.as_array()
        .unwrap()
        .iter()
        .find(|r| r["key"] == key)
        .unwrap_or_else(|| panic!("a line for {key}: {rows}"))
}

/// The share of `site` in a synced voucher's per-site split, as (seconds, bytes).
fn share(v: &Voucher, site: &str) -> Option<(u64, u64)> {
    v.sites
        .iter()
        .find(|s| s.site_id == site)
        .map(|s| (s.time_secs, s.bytes))
}

async fn a_72_hour_outage_is_enforced_at_each_site_and_settled_after(backend: Backend) {
    let mut s = Scenario::start(backend).await;
    let started_ms = mikrobill_agent::now_ms();
    let clock = ManualClock::at(started_ms - (72 * HOUR * 1000) as i64);
    let outage_began_ms = clock.now_ms();
    let advance = |secs: u64| clock.advance(Duration::from_secs(secs));
    let admin = &s.admin;
    let north = RadiusAgent::start_with_clock(admin, "North", clock.clock()).await;
    let south = RadiusAgent::start_with_clock(admin, "South", clock.clock()).await;
    let east = RadiusAgent::start_with_clock(admin, "East", clock.clock()).await;
    let weekly = plan(
        admin,
        &json!({"name": "Satu jam seminggu", "kind": "hotspot", "price": 3000,
                "time_limit_secs": TIME_LIMIT, "validity_secs": WEEK, "shared_users": 1}),
    )
    .await;
    let one_day = plan(
        admin,
        &json!({"name": "Satu jam sehari", "kind": "hotspot", "price": 2500,
                "time_limit_secs": TIME_LIMIT, "validity_secs": DAY, "shared_users": 1}),
    )
    .await;
    // `roaming` is used at North and South beyond its hour; `daily` at East past its day.
    let roaming = voucher(admin, &weekly).await;
    let daily = voucher(admin, &one_day).await;
    let sites = [&north, &south, &east];
    for site in sites {
        for code in [&roaming, &daily] {
            site.wait_voucher(code, "the voucher at every site", |_| true)
                .await;
        }
    }
    let events_before = admin
        .get("/api/v1/events?kind=voucher.conflict")
        .await
        .expect(200)["items"]
        .as_array()
        .unwrap()
        .len();

    s.ctl.kill();

    // Hour 1, North: the first use, an hour offered. The router's interim update and Stop are
    // cumulative; its Stop is sent twice (the first Accounting-Response was lost).
    advance(HOUR);
    accepted(&north.login(&roaming, PHONE), TIME_LIMIT);
    north.account("Start", &roaming, "n1", 0, PHONE);
    advance(20 * MINUTE);
    north.account("Interim-Update", &roaming, "n1", 20 * MINUTE, PHONE);
    advance(20 * MINUTE);
    north.account("Stop", &roaming, "n1", 40 * MINUTE, PHONE);
    north.account("Stop", &roaming, "n1", 40 * MINUTE, PHONE);
    // 40 minutes used, counted once: 20 left.
    accepted(&north.login(&roaming, PHONE), 20 * MINUTE);

    // Hour 2, East: the other voucher's first use, ten minutes.
    advance(20 * MINUTE);
    accepted(&east.login(&daily, TABLET), TIME_LIMIT);
    east.account("Start", &daily, "e1", 0, TABLET);
    advance(10 * MINUTE);
    east.account("Stop", &daily, "e1", 10 * MINUTE, TABLET);

    // Hour 3, South: it cannot know of North's 40 minutes, so it offers the whole hour, and
    // holds the voucher's one seat while the laptop is on.
    advance(50 * MINUTE);
    accepted(&south.login(&roaming, LAPTOP), TIME_LIMIT);
    south.account("Start", &roaming, "s1", 0, LAPTOP);
    refused(
        &south.login(&roaming, TABLET),
        "Already logged in on 1 device(s)",
    );
    advance(50 * MINUTE);
    south.account("Stop", &roaming, "s1", 50 * MINUTE, LAPTOP);
    accepted(&south.login(&roaming, TABLET), 10 * MINUTE);

    // Hour 5, North: the 20 minutes it knows are left, then nothing.
    advance(HOUR + 10 * MINUTE);
    accepted(&north.login(&roaming, PHONE), 20 * MINUTE);
    north.account("Start", &roaming, "n2", 0, PHONE);
    advance(20 * MINUTE);
    north.account("Stop", &roaming, "n2", 20 * MINUTE, PHONE);
    refused(&north.login(&roaming, PHONE), "Time limit used up");

    // Hour 23, East: 50 minutes of the time budget left, and 3 hours of the day.
    advance(17 * HOUR + 40 * MINUTE);
    accepted(&east.login(&daily, TABLET), 50 * MINUTE);
    // Hour 25:30: the day ends before the budget does, in 30 minutes.
    advance(2 * HOUR + 30 * MINUTE);
    accepted(&east.login(&daily, TABLET), 30 * MINUTE);
    east.account("Start", &daily, "e2", 0, TABLET);
    advance(30 * MINUTE);
    east.account("Stop", &daily, "e2", 30 * MINUTE, TABLET);
    // Hour 26, a day after East's first use: expired there, with time left.
    refused(&east.login(&daily, TABLET), "This voucher has expired");
    // North never saw `daily` used: its day starts with this login.
    accepted(&north.login(&daily, PHONE), TIME_LIMIT);

    // Hour 72: the outage ends when the test began. The oldest record North holds is 71
    // hours old by its clock.
    clock.advance(Duration::from_millis(
        (started_ms - clock.now_ms()).try_into().unwrap(),
    ));
    assert_eq!(clock.now_ms(), started_ms);
    let status = north.agent.status();
    assert_eq!(status.now_ms, started_ms);
    let oldest = status.outbox.oldest_event_ms.expect("North's records wait");
    assert_eq!(
        status.now_ms - oldest,
        71 * HOUR as i64 * 1000,
        "{status:?}"
    );
    assert!(status.outbox.pending >= 5, "{status:?}");

    s.ctl.restart().await;
    let (north_id, south_id, east_id) = (
        north.site_id.clone(),
        south.site_id.clone(),
        east.site_id.clone(),
    );
    // North's 60 minutes and South's 50, each once: 110 of a 60-minute voucher, closed at
    // every site (the default policy), and the day-old voucher (East's 40) expired at every
    // site; each site holds the controller's split by site.
    let (n, so, e) = (60 * MINUTE, 50 * MINUTE, 40 * MINUTE);
    for site in sites {
        site.wait_voucher(&roaming, "the roaming voucher closed everywhere", |v| {
            v.used_time_secs == 110 * MINUTE
                && v.status == VoucherStatus::Exhausted
                && share(v, &north_id) == Some((n, n))
                && share(v, &south_id) == Some((so, so))
                && v.sites.len() == 2
        })
        .await;
        site.wait_voucher(&daily, "the daily voucher expired everywhere", |v| {
            v.used_time_secs == e
                && v.status == VoucherStatus::Expired
                && share(v, &east_id) == Some((e, e))
                && v.sites.len() == 1
        })
        .await;
    }
    for (site, mac) in [(&north, PHONE), (&south, LAPTOP), (&east, TABLET)] {
        refused(&site.login(&roaming, mac), "Time limit used up");
        refused(&site.login(&daily, mac), "This voucher has expired");
    }

    let settled = |v: &Value| {
        assert_eq!(v["used_time_secs"], 110 * MINUTE, "{v}");
        // The fake router reports one octet in per second online.
        assert_eq!(v["used_bytes"], 110 * MINUTE, "{v}");
        assert_eq!(v["status"], "exhausted", "{v}");
    };
    let v = admin
        .get(&format!("/api/v1/vouchers/{roaming}"))
        .await
        .expect(200);
    settled(&v);
    assert_eq!(
        v["activated_at"].as_i64(),
        Some(outage_began_ms + (HOUR * 1000) as i64),
        "validity counts from the first use at any site: {v}"
    );
    let d = admin
        .get(&format!("/api/v1/vouchers/{daily}"))
        .await
        .expect(200);
    assert_eq!(d["used_time_secs"], 40 * MINUTE, "{d}");
    assert_eq!(d["status"], "expired", "{d}");
    // The usage report over the outage: each site's time, traffic and sessions once.
    let report = format!(
        "/api/v1/reports/usage?by=site&from={}&to={}",
        outage_began_ms - (DAY * 1000) as i64,
        started_ms + (DAY * 1000) as i64
    );
    let by_site = admin.get(&report).await.expect(200);
    for (site, secs, sessions) in [(&north_id, n, 2), (&south_id, so, 1), (&east_id, e, 2)] {
        let l = line(&by_site, site);
        assert_eq!(l["online_secs"], secs, "{by_site}");
        assert_eq!(l["bytes_in"], secs, "{by_site}");
        assert_eq!(l["sessions"], sessions, "{by_site}");
    }

    // The conflict: both sites, all three sessions, 50 minutes over; closed by policy.
    let listed = admin
        .get(&format!("/api/v1/voucher-conflicts?voucher_code={roaming}"))
        .await
        .expect(200);
    let found = listed["items"].as_array().unwrap();
    assert_eq!(found.len(), 1, "one conflict, over budget: {listed}");
    let c = &found[0];
    assert_eq!(c["kind"], "over_budget", "{c}");
    let mut both = vec![north_id.clone(), south_id.clone()];
    both.sort();
    assert_eq!(c["sites"], json!(both), "{c}");
    assert_eq!(c["over_secs"], 50 * MINUTE, "{c}");
    assert_eq!(c["resolution"], "closed", "{c}");
    let sessions: Vec<(&str, i64)> = c["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["session_id"].as_str().unwrap(),
                s["secs"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        sessions,
        [
            ("n1", (40 * MINUTE) as i64),
            ("s1", (50 * MINUTE) as i64),
            ("n2", (20 * MINUTE) as i64)
        ],
        "by start: {c}"
    );
    let none = admin
        .get(&format!("/api/v1/voucher-conflicts?voucher_code={daily}"))
        .await
        .expect(200);
    assert_eq!(none["items"], json!([]), "within its budget: {none}");
    let events = admin
        .get("/api/v1/events?kind=voucher.conflict")
        .await
        .expect(200);
    let items = events["items"].as_array().unwrap();
    assert_eq!(items.len(), events_before + 1, "{events}");
    assert!(
        items
            .iter()
            .any(|e| e["data"]["voucher_code"] == roaming.as_str()
                && e["data"]["kind"] == "over_budget"),
        "{events}"
    );

    // North lost an acknowledgement and sends its first Stop again, as stored: the
    // controller takes it once, nothing moves.
    let nas = format!("{}-router", &north_id[..8]);
    let resent = AccountingRecord {
        id: RecordId::derive(&nas, "n1", AcctStatus::Stop, 0),
        nas_identifier: nas.clone(),
        nas_ip: Some([127, 0, 0, 1].into()),
        session_id: "n1".into(),
        username: roaming.clone(),
        status: AcctStatus::Stop,
        event_time_ms: outage_began_ms + ((HOUR + 40 * MINUTE) * 1000) as i64,
        session_time_secs: 40 * MINUTE,
        input_octets: 40 * MINUTE,
        output_octets: 0,
        input_packets: 0,
        output_packets: 0,
        terminate_cause: None,
        framed_ip: None,
        calling_station_id: Some(PHONE.into()),
    };
    agents::deliver(&north.agent, vec![resent]).await;
    agents::ledger_current(&s.ctl).await;
    let v = admin
        .get(&format!("/api/v1/vouchers/{roaming}"))
        .await
        .expect(200);
    settled(&v);
    assert_eq!(admin.get(&report).await.expect(200), by_site);
    let again = admin
        .get(&format!("/api/v1/voucher-conflicts?voucher_code={roaming}"))
        .await
        .expect(200);
    assert_eq!(again["items"], listed["items"], "nothing recorded twice");
    let events = admin
        .get("/api/v1/events?kind=voucher.conflict")
        .await
        .expect(200);
    assert_eq!(
        events["items"].as_array().unwrap().len(),
        events_before + 1,
        "{events}"
    );

    for site in [north, south, east] {
        site.agent.shutdown().await;
    }
    s.finish().await;
}

/// Sites reconnect in any order: South, which used a two-hour voucher an hour ago, delivers
/// first, then North, which used it three hours ago. The voucher's validity counts from
/// North's use, so it has ended, though South's alone left it an hour.
async fn the_earliest_first_use_counts_whichever_site_reconnects_first(backend: Backend) {
    let s = Scenario::start(backend).await;
    let admin = &s.admin;
    let (_, north, _north_dir) = agents::api_site(admin, "North").await;
    let (_, south, _south_dir) = agents::api_site(admin, "South").await;
    let two_hours = plan(
        admin,
        &json!({"name": "Dua jam", "kind": "hotspot", "price": 2000,
                "validity_secs": 2 * HOUR, "shared_users": 1}),
    )
    .await;
    let code = voucher(admin, &two_hours).await;
    let now = mikrobill_agent::now_ms();
    let ago = |hours: u64| now - (hours * HOUR * 1000) as i64;
    let session = |nas: &str, id: &str, at: i64| {
        vec![
            agents::reading(nas, id, &code, AcctStatus::Start, at, 0, 0),
            agents::reading(nas, id, &code, AcctStatus::Stop, at + 60_000, 60, 10),
        ]
    };
    agents::deliver(&south, session("south-router", "s1", ago(1))).await;
    agents::ledger_current(&s.ctl).await;
    let v = admin
        .get(&format!("/api/v1/vouchers/{code}"))
        .await
        .expect(200);
    assert_eq!(v["activated_at"].as_i64(), Some(ago(1)), "{v}");
    assert_eq!(v["status"], "active", "an hour of its two left: {v}");
    agents::deliver(&north, session("north-router", "n1", ago(3))).await;
    agents::ledger_current(&s.ctl).await;
    let v = admin
        .get(&format!("/api/v1/vouchers/{code}"))
        .await
        .expect(200);
    assert_eq!(v["activated_at"].as_i64(), Some(ago(3)), "{v}");
    assert_eq!(v["status"], "expired", "two hours after North's use: {v}");
    assert_eq!(v["used_time_secs"], 120, "{v}");

    north.shutdown().await;
    south.shutdown().await;
    s.finish().await;
}
