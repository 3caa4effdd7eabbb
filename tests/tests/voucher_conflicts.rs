//! Offline double use, two sites under one controller, real RADIUS: with the controller gone,
//! each site enforces what it knows, so the same voucher is used at both; when the controller
//! is back and the records arrive, the ledger's totals are exact, one conflict per kind is
//! listed with both sites, a `voucher.conflict` event exists, and the operator's policy is
//! applied: by default the voucher is closed at every site; with `accept` it stays as its
//! use decides. Replayed records record nothing twice.

use mikrobill_tests::messaging::{Gateway, serve_gateway};
use mikrobill_tests::radius::RadiusAgent;
use mikrobill_tests::scenario::{plan, voucher};
use mikrobill_tests::web::WebClient;
use mikrobill_tests::{Backend, Scenario};
use serde_json::{Value, json};
use std::time::Duration;

mikrobill_tests::on_both_backends!(double_use_offline_is_reported_and_closed);

const PHONE: &str = "AA:BB:CC:00:00:01";
const LAPTOP: &str = "AA:BB:CC:00:00:02";

/// Both sites use `code` at overlapping times, `secs` each, while the controller is away.
fn use_at_both(north: &RadiusAgent, south: &RadiusAgent, code: &str, secs: u64) {
    for (site, mac) in [(north, PHONE), (south, LAPTOP)] {
        let r = site.login(code, mac);
        assert_eq!(
            r.code, "Access-Accept",
            "offline, each site lets it in: {r:?}"
        );
    }
    // Session ids are per NAS: each voucher's sessions get their own.
    let (n, s) = (format!("n-{code}"), format!("s-{code}"));
    north.account("Start", code, &n, 0, PHONE);
    south.account("Start", code, &s, 0, LAPTOP);
    north.account("Stop", code, &n, secs, PHONE);
    south.account("Stop", code, &s, secs, LAPTOP);
}

async fn conflicts_of(admin: &mikrobill_tests::http::Api, code: &str) -> Vec<Value> {
    let listed = admin
        .get(&format!("/api/v1/voucher-conflicts?voucher_code={code}"))
        .await
        .expect(200);
    listed["items"].as_array().unwrap().clone()
}

async fn double_use_offline_is_reported_and_closed(backend: Backend) {
    let mut s = Scenario::start(backend).await;
    // Integrators subscribe to conflicts; operators get them on Telegram.
    let gw = Gateway::default();
    let base = serve_gateway(gw.clone()).await;
    s.admin
        .post(
            "/api/v1/webhooks",
            &json!({"url": format!("{base}/hook"), "events": ["voucher.conflict"]}),
        )
        .await
        .expect(201);
    s.admin
        .put(
            "/api/v1/settings/notifications",
            &json!({"default_lang": "en"}),
        )
        .await
        .expect(200);
    s.admin
        .post(
            "/api/v1/notification-channels",
            &json!({"name": "Telegram", "rate_per_minute": 6000, "config": {"kind": "telegram",
                    "api_base": format!("{base}/tg"), "bot_token": "7:noc", "operator_chat_id": "-100555"}}),
        )
        .await
        .expect(201);
    let north = RadiusAgent::start(&s.admin, "North").await;
    let south = RadiusAgent::start(&s.admin, "South").await;
    let five_minutes = plan(
        &s.admin,
        &json!({"name": "Lima menit", "kind": "hotspot", "price": 2000,
                "time_limit_secs": 300, "validity_secs": 86400, "shared_users": 1}),
    )
    .await;
    let daily = plan(
        &s.admin,
        &json!({"name": "Harian", "kind": "hotspot", "price": 5000,
                "validity_secs": 86400, "shared_users": 1}),
    )
    .await;
    let over = voucher(&s.admin, &five_minutes).await;
    let shared = voucher(&s.admin, &daily).await;
    let accepted = voucher(&s.admin, &daily).await;
    for site in [&north, &south] {
        for code in [&over, &shared, &accepted] {
            site.wait_voucher(code, "the voucher at every site", |_| true)
                .await;
        }
    }

    // Outage 1, default policy (close): 200 s at each site of a 300 s voucher, and a
    // one-device voucher in use at both at once.
    s.ctl.kill();
    use_at_both(&north, &south, &over, 200);
    use_at_both(&north, &south, &shared, 30);
    s.ctl.restart().await;
    let (north_id, south_id) = (north.site_id.clone(), south.site_id.clone());
    for site in [&north, &south] {
        site.wait_voucher(&over, "the 300 s voucher closed at every site", |v| {
            v.used_time_secs == 400
                && v.status == mikrobill_protocol::items::VoucherStatus::Exhausted
        })
        .await;
        site.wait_voucher(
            &shared,
            "the one-device voucher closed at every site",
            |v| {
                v.used_time_secs == 60
                    && v.status == mikrobill_protocol::items::VoucherStatus::Exhausted
            },
        )
        .await;
    }
    let v = s
        .admin
        .get(&format!("/api/v1/vouchers/{over}"))
        .await
        .expect(200);
    assert_eq!(v["used_time_secs"], 400, "each site's 200 s once: {v}");
    assert_eq!(v["used_bytes"], 400, "{v}");
    assert_eq!(v["status"], "exhausted", "{v}");
    let found = conflicts_of(&s.admin, &over).await;
    let budget = found
        .iter()
        .find(|c| c["kind"] == "over_budget")
        .unwrap_or_else(|| panic!("an over-budget conflict: {found:?}"));
    let mut both = vec![north_id.clone(), south_id.clone()];
    both.sort();
    assert_eq!(budget["sites"], json!(both), "{budget}");
    assert_eq!(budget["over_secs"], 100, "{budget}");
    assert_eq!(budget["resolution"], "closed", "{budget}");
    assert_eq!(budget["sessions"].as_array().unwrap().len(), 2, "{budget}");
    let devices = conflicts_of(&s.admin, &shared).await;
    assert_eq!(devices.len(), 1, "{devices:?}");
    assert_eq!(devices[0]["kind"], "too_many_devices", "{devices:?}");
    assert_eq!(devices[0]["over_devices"], 1, "{devices:?}");
    assert_eq!(devices[0]["sites"], json!(both), "{devices:?}");
    let v = s
        .admin
        .get(&format!("/api/v1/vouchers/{shared}"))
        .await
        .expect(200);
    assert_eq!(
        v["status"], "exhausted",
        "closed though within its time: {v}"
    );
    for site in [&north, &south] {
        for code in [&over, &shared] {
            let r = site.login(code, PHONE);
            assert_eq!(r.code, "Access-Reject", "{code}: {r:?}");
        }
    }
    let events = s
        .admin
        .get("/api/v1/events?kind=voucher.conflict")
        .await
        .expect(200);
    let items = events["items"].as_array().unwrap();
    assert!(
        items
            .iter()
            .any(|e| e["data"]["voucher_code"] == over.as_str()
                && e["data"]["kind"] == "over_budget"),
        "{events}"
    );
    mikrobill_tests::eventually(
        Duration::from_secs(60),
        "the conflict reaches the webhook and the operators' chat",
        || async {
            let hooked = gw
                .delivered("/hook", &over)
                .iter()
                .any(|h| h.body.contains("voucher.conflict") && h.body.contains("over_budget"));
            let told = gw
                .delivered("/tg/", "-100555")
                .iter()
                .any(|h| h.body.contains(&over) && h.body.contains("100 s over the limit"));
            (hooked && told).then_some(())
        },
    )
    .await;
    // The admin page lists it with the sites by name.
    let mut web = WebClient::login(
        s.ctl.api_addr,
        "admin",
        mikrobill_tests::http::ADMIN_PASSWORD,
    )
    .await;
    let page = web
        .get(&format!("/voucher-conflicts?code={over}&kind=over_budget"))
        .await;
    assert_eq!(page.status, 200);
    let html = &page.text;
    assert!(
        html.contains(over.as_str())
            && html.contains("Melebihi kuota")
            // Sorted by site id, so either order.
            && (html.contains("North, South") || html.contains("South, North"))
            && html.contains("Sisa kuota ditutup"),
        "{html}"
    );
    let conflicts_before = s.admin.get("/api/v1/voucher-conflicts").await.expect(200);
    let events_before = items.len();

    // Outage 2, policy accept: the overuse is reported, the voucher stays as its use decides.
    let mut billing = s.admin.get("/api/v1/settings/billing").await.expect(200);
    assert_eq!(billing["voucher_conflict_policy"], "close", "{billing}");
    billing["voucher_conflict_policy"] = json!("accept");
    s.admin
        .put("/api/v1/settings/billing", &billing)
        .await
        .expect(200);
    s.ctl.kill();
    use_at_both(&north, &south, &accepted, 30);
    s.ctl.restart().await;
    for site in [&north, &south] {
        site.wait_voucher(&accepted, "both sites' use folded", |v| {
            v.used_time_secs == 60
        })
        .await;
    }
    let found = conflicts_of(&s.admin, &accepted).await;
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0]["kind"], "too_many_devices", "{found:?}");
    assert_eq!(found[0]["resolution"], "accepted", "{found:?}");
    let v = s
        .admin
        .get(&format!("/api/v1/vouchers/{accepted}"))
        .await
        .expect(200);
    assert_eq!(v["status"], "active", "{v}");
    let r = north.login(&accepted, PHONE);
    assert_eq!(r.code, "Access-Accept", "{r:?}");
    // The first outage's conflicts were not recorded again by the agents' re-sent records.
    let all = s.admin.get("/api/v1/voucher-conflicts").await.expect(200);
    assert_eq!(
        all["items"].as_array().unwrap().len(),
        conflicts_before["items"].as_array().unwrap().len() + 1,
        "{all}"
    );
    let events = s
        .admin
        .get("/api/v1/events?kind=voucher.conflict")
        .await
        .expect(200);
    assert_eq!(
        events["items"].as_array().unwrap().len(),
        events_before + 1,
        "{events}"
    );
    let sites = s
        .admin
        .get(&format!(
            "/api/v1/voucher-conflicts?site_id={north_id}&kind=over_budget"
        ))
        .await
        .expect(200);
    assert_eq!(sites["items"].as_array().unwrap().len(), 1, "{sites}");
    s.admin
        .get("/api/v1/voucher-conflicts?kind=nonsense")
        .await
        .expect(422);

    north.agent.shutdown().await;
    south.agent.shutdown().await;
    s.finish().await;
}
