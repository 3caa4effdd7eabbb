//! A voucher valid at every site is judged on its use at all of them: accounting from two real
//! agents under one controller adds up on the voucher, using up the plan's time ends it at
//! both sites through sync, replayed and reordered records change nothing, and the online
//! sessions list shows the open session and not the stopped one.

use mikrobill_protocol::accounting::AcctStatus;
use mikrobill_protocol::items::VoucherStatus;
use mikrobill_tests::scenario::plan;
use mikrobill_tests::{Backend, Scenario, agents, eventually};
use serde_json::json;
use std::time::Duration;

mikrobill_tests::on_both_backends!(a_voucher_is_used_up_across_sites);

async fn cached_status(agent: &mikrobill_agent::Agent, code: &str, want: VoucherStatus) {
    let cache = agent.cache().clone();
    eventually(
        Duration::from_secs(30),
        "the agent caches the voucher's new state",
        || async {
            cache
                .voucher(code)
                .ok()
                .flatten()
                .filter(|v| v.status == want)
                .map(|_| ())
        },
    )
    .await;
}

async fn a_voucher_is_used_up_across_sites(backend: Backend) {
    let s = Scenario::start(backend).await;
    let admin = &s.admin;
    let (north, north_agent, _north_dir) = agents::api_site(admin, "North").await;
    let (south, south_agent, _south_dir) = agents::api_site(admin, "South").await;
    let hotspot = plan(
        admin,
        &json!({"name": "Voucher 5 menit", "kind": "hotspot", "price": 2000,
                "time_limit_secs": 300, "validity_secs": 86400}),
    )
    .await;
    let code = mikrobill_tests::scenario::voucher(admin, &hotspot).await;
    cached_status(&north_agent, &code, VoucherStatus::New).await;
    cached_status(&south_agent, &code, VoucherStatus::New).await;

    // 290 s at North, in a session that has ended.
    let t0 = mikrobill_core::db::now_ms() - 600_000;
    let north_records = vec![
        agents::reading("north-1", "n1", &code, AcctStatus::Start, t0, 0, 0),
        agents::reading(
            "north-1",
            "n1",
            &code,
            AcctStatus::InterimUpdate,
            t0 + 200_000,
            200,
            1_000,
        ),
        agents::reading(
            "north-1",
            "n1",
            &code,
            AcctStatus::Stop,
            t0 + 290_000,
            290,
            1_500,
        ),
    ];
    agents::deliver(&north_agent, north_records.clone()).await;
    agents::ledger_current(&s.ctl).await;
    let v = admin
        .get(&format!("/api/v1/vouchers/{code}"))
        .await
        .expect(200);
    assert_eq!(v["used_time_secs"], 290, "{v}");
    assert_eq!(v["used_bytes"], 4_500, "{v}");
    assert_eq!(v["status"], "active", "{v}");
    cached_status(&south_agent, &code, VoucherStatus::Active).await;

    // 20 s more at South, still online: 310 s in all, more than the plan's 300.
    let t1 = mikrobill_core::db::now_ms() - 20_000;
    let south_records = vec![
        agents::reading("south-1", "s1", &code, AcctStatus::Start, t1, 0, 0),
        agents::reading(
            "south-1",
            "s1",
            &code,
            AcctStatus::InterimUpdate,
            t1 + 20_000,
            20,
            100,
        ),
    ];
    agents::deliver(&south_agent, south_records.clone()).await;
    agents::ledger_current(&s.ctl).await;
    let v = admin
        .get(&format!("/api/v1/vouchers/{code}"))
        .await
        .expect(200);
    assert_eq!(v["used_time_secs"], 310, "{v}");
    assert_eq!(v["used_bytes"], 4_800, "{v}");
    assert_eq!(v["status"], "exhausted", "{v}");
    // Both sites learn it through sync, so neither lets the code log in again.
    cached_status(&north_agent, &code, VoucherStatus::Exhausted).await;
    cached_status(&south_agent, &code, VoucherStatus::Exhausted).await;
    let cached = south_agent.cache().voucher(&code).unwrap().unwrap();
    assert_eq!(cached.used_time_secs, 310);
    let listed = admin
        .get(&format!("/api/v1/vouchers?q={code}"))
        .await
        .expect(200);
    assert_eq!(listed["items"][0]["used_time_secs"], 310, "{listed}");
    assert_eq!(listed["items"][0]["status"], "exhausted", "{listed}");

    // The portal's voucher check shows the same numbers.
    let cdb = s.ctl.db().await;
    let balance = mikrobill_core::portal::usage::voucher_balance(&cdb, &code)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(balance.status, mikrobill_core::vouchers::State::Exhausted);
    assert_eq!(balance.time_left_secs, Some(0));
    assert_eq!(balance.usage.online_secs, 310);
    assert_eq!(balance.usage.total_bytes(), 4_800);

    // Replayed and reordered records, at either site, change nothing.
    let mut again = north_records.clone();
    again.reverse();
    agents::deliver(&north_agent, again).await;
    let mut again = south_records.clone();
    again.reverse();
    agents::deliver(&south_agent, again).await;
    agents::ledger_current(&s.ctl).await;
    let after = admin
        .get(&format!("/api/v1/vouchers/{code}"))
        .await
        .expect(200);
    assert_eq!(after, v, "a replay changed the voucher");
    let audit = admin
        .get(&format!("/api/v1/audit?entity=voucher&entity_id={code}"))
        .await
        .expect(200);
    let exhausts = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "voucher.exhaust")
        .count();
    assert_eq!(exhausts, 1, "{audit}");
    // Online now: South's open session, not North's stopped one.
    let online = admin.get("/api/v1/sessions").await.expect(200);
    let items = online["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{online}");
    assert_eq!(items[0]["username"], code.as_str());
    assert_eq!(items[0]["site_id"], south.as_str());
    assert_eq!(items[0]["nas_identifier"], "south-1");
    assert_eq!(items[0]["framed_ip"], "10.5.0.2");
    assert_eq!(items[0]["calling_station_id"], "AA:BB:CC:DD:EE:01");
    assert_eq!(items[0]["uptime_secs"], 20);
    assert_eq!(items[0]["bytes_in"], 100);
    assert_eq!(items[0]["bytes_out"], 200);
    let north_only = admin
        .get(&format!("/api/v1/sessions?site_id={north}"))
        .await
        .expect(200);
    assert_eq!(
        north_only["items"].as_array().unwrap().len(),
        0,
        "{north_only}"
    );
}
