//! Reports end to end: accounting from two real agents folds into the usage ledger exactly
//! once (replays and reordered records add nothing), revenue from payments and cash voucher
//! sales adds up by source, method and site, receivables age by due date, and every report
//! and list comes out as CSV that a spreadsheet cannot be tricked by.

use mikrobill_protocol::accounting::AcctStatus;
use mikrobill_tests::http::Api;
use mikrobill_tests::scenario::plan;
use mikrobill_tests::web::WebClient;
use mikrobill_tests::{Backend, Scenario, agents};
use serde_json::{Value, json};

mikrobill_tests::on_both_backends!(reports_add_up_from_the_ledgers);

fn by_key<'a>(rows: &'a Value, key: &str) -> &'a Value {
    rows.as_array()
        .unwrap()
        .iter()
        .find(|r| r["key"] == key)
        .unwrap_or_else(|| panic!("no row {key} in {rows}"))
}

async fn csv(api: &Api, path: &str) -> String {
    let res = api.get(path).await;
    assert_eq!(res.status, 200, "{path}: {}", res.text);
    assert!(
        res.header("content-type")
            .is_some_and(|c| c.starts_with("text/csv")),
        "{path} is not CSV: {:?}",
        res.headers
    );
    assert!(
        res.header("content-disposition")
            .is_some_and(|c| c.contains("attachment")),
        "{path} is not a download"
    );
    res.text
}

async fn reports_add_up_from_the_ledgers(backend: Backend) {
    let s = Scenario::start(backend).await;
    let admin = &s.admin;
    let (north, north_agent, _north_dir) = agents::api_site(admin, "North").await;
    let (south, south_agent, _south_dir) = agents::api_site(admin, "South").await;
    let plan_id = s.pppoe_plan("Home 10M", 150_000).await;
    // A name a spreadsheet would run as a formula if the export did not guard it.
    let alice = s
        .subscriber(
            &north,
            &plan_id,
            "=HYPERLINK(\"x\"), Alice",
            "0811-2000-0001",
            "alice",
        )
        .await;
    let bob = s
        .subscriber(&south, &plan_id, "Bob", "0811-2000-0002", "bob")
        .await;

    // Receivables before anyone pays: both first invoices are not yet due.
    let aging = admin.get("/api/v1/reports/receivables").await.expect(200);
    assert_eq!(aging["buckets"][0]["name"], "current");
    assert_eq!(aging["buckets"][0]["invoices"], 2);
    assert_eq!(
        aging["buckets"][0]["amount"].as_i64().unwrap(),
        alice.total + bob.total
    );
    assert_eq!(aging["customers"].as_array().unwrap().len(), 2);

    // Money: Alice pays cash, Bob by transfer, and one voucher is sold over the counter.
    admin
        .post(
            "/api/v1/payments",
            &json!({"invoice_id": alice.invoice_id, "amount": alice.total, "method": "cash"}),
        )
        .await
        .expect(201);
    admin
        .post(
            "/api/v1/payments",
            &json!({"invoice_id": bob.invoice_id, "amount": bob.total, "method": "transfer"}),
        )
        .await
        .expect(201);
    let hotspot = plan(
        admin,
        &json!({"name": "Voucher 1 hari", "kind": "hotspot", "price": 5000}),
    )
    .await;
    let batch = admin
        .post(
            "/api/v1/voucher-batches",
            &json!({"plan_id": hotspot, "count": 3, "scope": "all"}),
        )
        .await
        .expect(201);
    let codes = admin
        .get(&format!(
            "/api/v1/voucher-batches/{}/vouchers",
            batch["id"].as_str().unwrap()
        ))
        .await
        .expect(200);
    let code = codes["items"][0]["code"].as_str().unwrap().to_string();
    admin
        .post(&format!("/api/v1/vouchers/{code}/sell"), &json!({}))
        .await
        .expect(200);

    let by_source = admin
        .get("/api/v1/reports/revenue?by=source")
        .await
        .expect(200);
    let lines = &by_source["lines"];
    assert_eq!(
        by_key(lines, "payment")["amount"].as_i64().unwrap(),
        alice.total + bob.total
    );
    assert_eq!(by_key(lines, "payment")["count"], 2);
    assert_eq!(by_key(lines, "voucher_sale")["amount"], 5000);
    let by_method = admin
        .get("/api/v1/reports/revenue?by=method")
        .await
        .expect(200);
    assert_eq!(
        by_key(&by_method["lines"], "cash")["amount"]
            .as_i64()
            .unwrap(),
        alice.total + 5000
    );
    assert_eq!(
        by_key(&by_method["lines"], "transfer")["amount"]
            .as_i64()
            .unwrap(),
        bob.total
    );
    let by_site = admin
        .get("/api/v1/reports/revenue?by=site&period=month")
        .await
        .expect(200);
    let north_line = by_key(&by_site["lines"], &north);
    assert_eq!(north_line["label"], "North");
    assert_eq!(north_line["amount"].as_i64().unwrap(), alice.total);
    // Revenue adds up to the dashboard's figure for the month.
    let total: i64 = by_site["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["amount"].as_i64().unwrap())
        .sum();
    let summary = admin.get("/api/v1/reports/summary").await.expect(200);
    assert_eq!(Some(total), summary["revenue_month"].as_i64(), "{summary}");

    let sales = admin
        .get("/api/v1/reports/voucher-sales?by=plan")
        .await
        .expect(200);
    let sold = by_key(&sales["lines"], &hotspot);
    assert_eq!(
        (sold["count"].as_i64(), sold["amount"].as_i64()),
        (Some(1), Some(5000))
    );

    // Paid invoices leave the aging report.
    let aging = admin.get("/api/v1/reports/receivables").await.expect(200);
    assert_eq!(aging["buckets"][0]["invoices"], 0);

    let movements = admin
        .get("/api/v1/reports/subscribers?period=month")
        .await
        .expect(200);
    let this_month = movements.as_array().unwrap().last().unwrap().clone();
    assert_eq!(this_month["new"], 2, "{movements}");

    // Usage: Alice at North (Start, two Interims, Stop), Bob at South, and a voucher user.
    let t = mikrobill_core::db::now_ms() - 3_600_000;
    // Rankings over whole local months read usage_monthly, other ranges usage_daily: both
    // must tell the same. (The default offset is UTC+7.)
    let month = mikrobill_core::stats::local_month_start(t, 420);
    let day = mikrobill_core::stats::local_day_start(t, 420);
    let monthly = format!("&from={month}");
    let daily = format!("&from={day}");
    let alice_records = vec![
        agents::reading("router-1", "a-1", "alice", AcctStatus::Start, t, 0, 0),
        agents::reading(
            "router-1",
            "a-1",
            "alice",
            AcctStatus::InterimUpdate,
            t + 60_000,
            60,
            1_000,
        ),
        agents::reading(
            "router-1",
            "a-1",
            "alice",
            AcctStatus::InterimUpdate,
            t + 120_000,
            120,
            4_000,
        ),
        agents::reading(
            "router-1",
            "a-1",
            "alice",
            AcctStatus::Stop,
            t + 150_000,
            150,
            5_000,
        ),
    ];
    // Delivered out of order: the Stop first, the Interims after it.
    let mut shuffled = alice_records.clone();
    shuffled.reverse();
    agents::deliver(&north_agent, shuffled).await;
    agents::deliver(
        &south_agent,
        vec![
            agents::reading("router-1", "b-1", "bob", AcctStatus::Start, t, 0, 0),
            agents::reading(
                "router-1",
                "b-1",
                "bob",
                AcctStatus::Stop,
                t + 30_000,
                30,
                700,
            ),
            agents::reading(
                "router-1",
                "v-1",
                &code,
                AcctStatus::Stop,
                t + 40_000,
                40,
                300,
            ),
        ],
    )
    .await;
    agents::ledger_current(&s.ctl).await;
    let expect_alice = |rows: &Value| {
        let a = by_key(rows, "alice");
        assert_eq!(a["online_secs"], 150, "{a}");
        assert_eq!(a["bytes_in"], 5_000);
        assert_eq!(a["bytes_out"], 10_000);
        assert_eq!(a["sessions"], 1);
    };
    let accounts = admin
        .get(&format!("/api/v1/reports/usage?by=account{monthly}"))
        .await
        .expect(200);
    expect_alice(&accounts);
    assert_eq!(by_key(&accounts, &code)["online_secs"], 40);

    // A replay of everything, and a retransmitted Interim with a new id, change nothing.
    let mut again = alice_records.clone();
    again.push(agents::reading(
        "router-1",
        "a-1",
        "alice",
        AcctStatus::InterimUpdate,
        t + 90_000,
        90,
        2_000,
    ));
    agents::deliver(&north_agent, again).await;
    agents::ledger_current(&s.ctl).await;
    let accounts = admin
        .get(&format!("/api/v1/reports/usage?by=account{monthly}"))
        .await
        .expect(200);
    expect_alice(&accounts);

    let sites = admin
        .get(&format!("/api/v1/reports/usage?by=site{monthly}"))
        .await
        .expect(200);
    let daily_sites = admin
        .get(&format!("/api/v1/reports/usage?by=site{daily}"))
        .await
        .expect(200);
    assert_eq!(sites, daily_sites, "months and days add up alike");
    assert_eq!(by_key(&sites, &north)["bytes_in"], 5_000);
    assert_eq!(by_key(&sites, &south)["bytes_in"], 1_000);
    assert_eq!(by_key(&sites, &south)["sessions"], 2);
    assert_eq!(by_key(&sites, &south)["label"], "South");
    let customers = admin
        .get(&format!("/api/v1/reports/usage?by=customer{daily}"))
        .await
        .expect(200);
    assert_eq!(by_key(&customers, &alice.customer_id)["online_secs"], 150);
    assert_eq!(by_key(&customers, &bob.customer_id)["online_secs"], 30);
    // Alice per day: the whole session on one day of the default 30-day range.
    let series = admin
        .get("/api/v1/reports/usage?by=account&key=alice")
        .await
        .expect(200);
    let days = series.as_array().unwrap();
    assert_eq!(days.len(), 30);
    let used: Vec<_> = days.iter().filter(|d| d["online_secs"] != 0).collect();
    assert_eq!(used.len(), 1, "{series}");
    assert_eq!(used[0]["bytes_out"], 10_000);

    // CSV: the reports and the streamed lists.
    let revenue = csv(admin, "/api/v1/reports/revenue?by=method&format=csv").await;
    let mut rows = revenue.lines();
    assert_eq!(rows.next(), Some("period,key,label,count,amount_minor"));
    assert!(
        revenue.contains(&format!(",cash,cash,2,{}", alice.total + 5000)),
        "{revenue}"
    );
    let customers = csv(admin, "/api/v1/exports/customers").await;
    assert!(
        customers.contains("\"'=HYPERLINK(\"\"x\"\"), Alice\""),
        "the formula is not guarded: {customers}"
    );
    assert_eq!(customers.lines().count(), 3, "{customers}");
    let accounting = csv(admin, "/api/v1/exports/accounting").await;
    // Every stored record once (the replay stored nothing new), plus the header.
    assert_eq!(accounting.lines().count(), 1 + 4 + 1 + 3, "{accounting}");
    let vouchers = csv(admin, "/api/v1/exports/vouchers").await;
    assert_eq!(vouchers.lines().count(), 1 + 3);
    assert!(!vouchers.lines().next().unwrap().contains("password"));
    let usage = csv(
        admin,
        &format!("/api/v1/reports/usage?by=site&format=csv{monthly}"),
    )
    .await;
    assert!(usage.contains(",North,150,5000,10000,1"), "{usage}");

    // Bad requests say what is wrong.
    let res = admin.get("/api/v1/exports/passwords").await;
    assert_eq!(res.status, 404);
    assert!(res.text.contains("customers"), "{}", res.text);
    let res = admin.get("/api/v1/reports/revenue?from=2000&to=1000").await;
    assert_eq!(res.status, 422, "{}", res.text);
    let res = admin.get("/api/v1/reports/revenue?by=colour").await;
    assert_eq!(res.status, 400, "{}", res.text);
    let res = admin.get("/api/v1/reports/usage?top=0").await;
    assert_eq!(res.status, 422, "{}", res.text);

    // The admin pages show the same figures, with a chart and a CSV of what is shown.
    let mut web = WebClient::login(
        s.ctl.api_addr,
        "admin",
        mikrobill_tests::http::ADMIN_PASSWORD,
    )
    .await;
    let page = web
        .get("/reports?view=revenue&by=method&period=month")
        .await;
    assert_eq!(page.status, 200, "{}", page.text);
    assert!(page.text.contains("<svg class=\"chart\""), "no chart");
    assert!(page.text.contains(r#"<option value="method" selected>"#));
    // The grouped navigation marks Reports as the current page.
    assert!(
        page.text
            .contains(r#"<a href="/reports" aria-current="page">"#)
    );
    let from = mikrobill_core::locale::dates::local(t, 420, false);
    let page = web
        .get(&format!("/reports?view=usage&by=site&from={from}"))
        .await;
    assert!(page.text.contains("North") && page.text.contains("South"));
    let page = web.get("/reports?view=receivables").await;
    assert_eq!(page.status, 200);
    let download = web
        .get("/reports/csv?view=revenue&by=method&period=month")
        .await;
    assert_eq!(download.status, 200);
    assert!(
        download
            .text
            .starts_with("period,key,label,count,amount_minor\r\n")
    );
    assert!(
        download
            .text
            .contains(&format!(",cash,cash,2,{}", alice.total + 5000))
    );
    let list = web.get("/exports/customers.csv").await;
    assert_eq!(list.status, 200);
    assert_eq!(list.text.lines().count(), 3);
    let res = web.get("/reports?view=revenue&from=2026-02-30").await;
    assert_eq!(res.status, 400, "{}", res.text);
    let res = web.get("/reports?view=revenue&by=colour").await;
    assert_eq!(res.status, 400, "{}", res.text);
    // A reseller sees neither reports nor exports.
    admin
        .post(
            "/api/v1/admins",
            &json!({"username": "toko", "password": "reseller-password-1", "role": "reseller"}),
        )
        .await
        .expect(201);
    let mut reseller = WebClient::login(s.ctl.api_addr, "toko", "reseller-password-1").await;
    assert_eq!(reseller.get("/reports").await.status, 403);
    assert_eq!(reseller.get("/reports/csv?view=revenue").await.status, 403);
    assert_eq!(reseller.get("/exports/customers.csv").await.status, 403);
    let reseller_api = Api::login(s.ctl.api_addr, "toko", "reseller-password-1").await;
    assert_eq!(
        reseller_api.get("/api/v1/exports/accounting").await.status,
        403
    );

    drop((north_agent, south_agent));
    s.finish().await;
}
