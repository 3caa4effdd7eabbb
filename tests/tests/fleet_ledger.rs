//! One voucher, two sites, real RADIUS: each site decides from the fleet's use and open
//! sessions as the controller syncs them, plus its own records. A 300 s voucher used 290 s at
//! North is offered 10 s at South, and what South adds while the controller is away counts
//! on top, once; with one device allowed
//! a session open at North refuses a login at South until North's Stop; a MAC-locked voucher
//! is bound to its first device at every site.

use mikrobill_tests::radius::RadiusAgent;
use mikrobill_tests::scenario::{plan, voucher};
use mikrobill_tests::{Backend, Scenario};
use serde_json::json;

mikrobill_tests::on_both_backends!(budgets_and_devices_hold_across_sites);

const PHONE: &str = "AA:BB:CC:00:00:01";
const LAPTOP: &str = "AA:BB:CC:00:00:02";

async fn budgets_and_devices_hold_across_sites(backend: Backend) {
    let mut s = Scenario::start(backend).await;
    let admin = &s.admin;
    let north = RadiusAgent::start(admin, "North").await;
    let south = RadiusAgent::start(admin, "South").await;
    let five_minutes = plan(
        admin,
        &json!({"name": "Lima menit", "kind": "hotspot", "price": 2000,
                "time_limit_secs": 300, "validity_secs": 86400, "shared_users": 1}),
    )
    .await;
    let locked = plan(
        admin,
        &json!({"name": "Harian terkunci", "kind": "hotspot", "price": 5000,
                "validity_secs": 86400, "mac_lock": true}),
    )
    .await;
    let shown = admin
        .get(&format!("/api/v1/plans/{locked}"))
        .await
        .expect(200);
    assert_eq!(shown["mac_lock"], true, "{shown}");
    let code = voucher(admin, &five_minutes).await;
    let bound = voucher(admin, &locked).await;
    for site in [&north, &south] {
        site.wait_voucher(&code, "the voucher at every site", |_| true)
            .await;
        site.wait_voucher(&bound, "the locked voucher at every site", |_| true)
            .await;
    }

    // Shared users = 1: a session open at North holds the one seat at South too.
    let first = north.login(&code, PHONE);
    assert_eq!(first.code, "Access-Accept", "{first:?}");
    assert_eq!(first.get("Session-Timeout"), Some("300"), "{first:?}");
    north.account("Start", &code, "n1", 0, PHONE);
    let north_id = north.site_id.clone();
    south
        .wait_voucher(&code, "South learns of North's open session", |v| {
            v.sites
                .iter()
                .any(|s| s.site_id == north_id && !s.open_last_seen_ms.is_empty())
        })
        .await;
    let refused = south.login(&code, LAPTOP);
    assert_eq!(refused.code, "Access-Reject", "{refused:?}");
    assert!(
        refused
            .get("Reply-Message")
            .is_some_and(|m| m.contains("Already logged in")),
        "{refused:?}"
    );

    // North's session ends after 290 s: South offers the 10 s left, not 300.
    north.account("Interim-Update", &code, "n1", 200, PHONE);
    north.account("Stop", &code, "n1", 290, PHONE);
    south
        .wait_voucher(&code, "South learns of North's 290 s and its Stop", |v| {
            v.used_time_secs == 290 && v.sites.iter().all(|s| s.open_last_seen_ms.is_empty())
        })
        .await;
    let offered = south.login(&code, LAPTOP);
    assert_eq!(offered.code, "Access-Accept", "{offered:?}");
    assert_eq!(offered.get("Session-Timeout"), Some("10"), "{offered:?}");

    // With the controller gone, South's own 4 s add to North's 290 s as last synced (the
    // larger of the two alone would offer 10 s again).
    s.ctl.kill();
    south.account("Start", &code, "s1", 0, LAPTOP);
    south.account("Stop", &code, "s1", 4, LAPTOP);
    let offline = south.login(&code, LAPTOP);
    assert_eq!(offline.get("Session-Timeout"), Some("6"), "{offline:?}");
    // Back online, the controller folds them: they count once, at both sites.
    s.ctl.restart().await;
    let south_id = south.site_id.clone();
    for site in [&south, &north] {
        site.wait_voucher(&code, "the controller folds South's 4 s", |v| {
            v.used_time_secs == 294 && v.sites.iter().any(|s| s.site_id == south_id)
        })
        .await;
        let folded = site.login(&code, LAPTOP);
        assert_eq!(folded.get("Session-Timeout"), Some("6"), "{folded:?}");
    }

    // MAC lock: the phone uses the voucher first, at North...
    let phone = north.login(&bound, PHONE);
    assert_eq!(phone.code, "Access-Accept", "{phone:?}");
    let laptop_north = north.login(&bound, LAPTOP);
    assert_eq!(laptop_north.code, "Access-Reject", "{laptop_north:?}");
    north.account("Start", &bound, "n2", 0, PHONE);
    north.account("Stop", &bound, "n2", 30, PHONE);
    let v = admin
        .get(&format!("/api/v1/vouchers/{bound}"))
        .await
        .expect(200);
    south
        .wait_voucher(&bound, "South learns the bound device and its Stop", |v| {
            // The Start alone binds it too: until the Stop arrives, the phone's session
            // holds the one seat and South would refuse the laptop for that instead.
            v.bound_mac.as_deref() == Some(PHONE)
                && v.sites.iter().all(|s| s.open_last_seen_ms.is_empty())
        })
        .await;
    let v_after = admin
        .get(&format!("/api/v1/vouchers/{bound}"))
        .await
        .expect(200);
    assert_eq!(v_after["bound_mac"], PHONE, "{v} {v_after}");
    // ...so South refuses the laptop with a clear reason, and lets the phone in.
    let laptop = south.login(&bound, LAPTOP);
    assert_eq!(laptop.code, "Access-Reject", "{laptop:?}");
    assert_eq!(
        laptop.get("Reply-Message"),
        Some("This voucher is locked to another device"),
        "{laptop:?}"
    );
    let phone_south = south.login(&bound, PHONE);
    assert_eq!(phone_south.code, "Access-Accept", "{phone_south:?}");
    let stats = south.agent.radius().unwrap().stats.clone();
    let locked_out = mikrobill_agent::radius::stats::REJECT_CODES
        .iter()
        .position(|c| *c == "mac_locked")
        .unwrap();
    assert_eq!(
        mikrobill_agent::radius::RadiusStats::get(&stats.rejected_by[locked_out]),
        1
    );

    north.agent.shutdown().await;
    south.agent.shutdown().await;
    s.finish().await;
}
