//! The billing cycle end to end through a real controller and a connected agent: a PPPoE
//! subscription is invoiced (first cycle, catch-up runs, gapless numbers, 11 % tax), isolated
//! when overdue (the agent's cache follows), re-activated by the cashier's payment, upgraded
//! with a proration invoice paid through a signed Midtrans notification, and terminated.

use mikrobill_core::billing::cycle;
use mikrobill_protocol::items::AccountStatus;
use mikrobill_tests::gateways::{FakeGateways, midtrans_notification};
use mikrobill_tests::http::Api;
use mikrobill_tests::scenario::{self, Scenario};
use mikrobill_tests::{Backend, agents, eventually};
use serde_json::{Value, json};
use std::time::Duration;

mikrobill_tests::on_both_backends!(
    pppoe_billing_cycle,
    subscription_changes_voids_and_reads,
    settings_validation_and_roles,
    credit_pays_what_is_overdue_before_isolation,
    moved_in_accounts_are_billed_from_their_bill_from_date
);

/// What the steps of the billing cycle share.
struct Cycle {
    s: Scenario,
    midtrans: FakeGateways,
    agent: mikrobill_agent::Agent,
    _agent_dir: tempfile::TempDir,
    premium: Value,
    /// Customer id.
    cid: String,
    /// Subscription id.
    sid: String,
    /// The first and second cycle invoices.
    first_id: String,
    second_id: String,
    year: String,
}

async fn pppoe_billing_cycle(backend: Backend) {
    let mut c = subscribe_and_invoice_the_first_cycle(backend).await;
    the_invoice_run_catches_up_once(&mut c).await;
    the_sweep_isolates_the_overdue_account(&c).await;
    the_cashier_settles_and_service_returns(&c).await;
    an_upgrade_is_prorated_and_paid_through_midtrans(&c).await;
    termination_removes_the_account(c).await;
}

/// A PPPoE subscription that started 45 days ago: refused on a hotspot plan, on a taken user
/// name or address; its account reaches the site's cache and its first cycle is invoiced with
/// tax.
async fn subscribe_and_invoice_the_first_cycle(backend: Backend) -> Cycle {
    let midtrans = FakeGateways::start().await;
    let s = Scenario::start_env(backend, &midtrans.env("midtrans")).await;
    let admin = &s.admin;
    let (site_id, agent, _agent_dir) = agents::api_site(admin, "Dusun Timur").await;

    let plan = json!(scenario::pppoe_plan(admin, "Rumah 10M", 150000).await);
    let premium = admin
        .post("/api/v1/plans", &json!({"name": "Rumah 20M", "kind": "pppoe", "price": 250000, "rate_limit": "10M/20M"}))
        .await
        .expect(201);
    let hotspot = admin
        .post(
            "/api/v1/plans",
            &json!({"name": "Voucher 1 hari", "kind": "hotspot", "price": 5000}),
        )
        .await
        .expect(201);
    let customer = admin
        .post(
            "/api/v1/customers",
            &json!({"name": "Siti Aminah", "phone": "081298765432"}),
        )
        .await
        .expect(201);
    let cid = customer["id"].as_str().unwrap();

    // Service started about 45 days ago on a billing day that every month has.
    let mut start = cycle::local_date(mikrobill_core::db::now_ms(), 420);
    for _ in 0..45 {
        start = start.previous_day().unwrap();
    }
    while start.day() > 28 {
        start = start.previous_day().unwrap();
    }
    let start_s = format!(
        "{:04}-{:02}-{:02}",
        start.year(),
        u8::from(start.month()),
        start.day()
    );
    let mut req = json!({
        "customer_id": cid, "plan_id": hotspot["id"], "site_id": site_id, "username": "siti@dusun",
        "password": "rahasia123", "static_ip": "10.10.0.7", "billing_day": start.day(), "start_date": start_s
    });
    let wrong_kind = admin.post("/api/v1/subscriptions", &req).await;
    assert_eq!(wrong_kind.status, 422);
    assert_eq!(wrong_kind.json()["field"], "plan_id");
    req["plan_id"] = plan.clone();
    let sub = admin.post("/api/v1/subscriptions", &req).await.expect(201);
    let sid = sub["id"].as_str().unwrap().to_string();
    assert_eq!(sub["status"], "active");
    let mut dup = req.clone();
    dup["static_ip"] = json!("10.10.0.8");
    assert_eq!(
        admin.post("/api/v1/subscriptions", &dup).await.json()["code"],
        "exists"
    );
    dup["username"] = json!("other");
    dup["static_ip"] = json!("10.10.0.7");
    assert_eq!(
        admin.post("/api/v1/subscriptions", &dup).await.json()["code"],
        "ip_taken"
    );

    // The account reaches the site's cache.
    let user = eventually(Duration::from_secs(10), "user synced", || async {
        agent.cache().user("siti@dusun").ok().flatten()
    })
    .await;
    assert_eq!(user.status, AccountStatus::Active);
    assert_eq!(user.static_ip.unwrap().to_string(), "10.10.0.7");

    // First cycle invoiced at creation (a full cycle: start is a billing day), 11 % on top.
    let list = admin
        .get(&format!("/api/v1/invoices?subscription_id={sid}"))
        .await
        .expect(200);
    let first = &list["items"][0];
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
    assert_eq!(first["subtotal"], 150000);
    assert_eq!(first["tax"], 16500);
    assert_eq!(first["total"], 166500);
    let year = first["number"].as_str().unwrap()[4..8].to_string();
    assert_eq!(first["number"], format!("INV-{year}-000001"));

    Cycle {
        cid: cid.to_string(),
        sid,
        midtrans,
        agent,
        _agent_dir,
        premium,
        first_id: String::new(),
        second_id: String::new(),
        year,
        s,
    }
}

/// The run issues the cycle that started since; a second run issues nothing.
async fn the_invoice_run_catches_up_once(c: &mut Cycle) {
    let (admin, sid, year) = (&c.s.admin, &c.sid, &c.year);
    // The run catches up with the cycle that started since; a second run issues nothing.
    let run = admin
        .post("/api/v1/jobs/invoice-run/run", &json!({}))
        .await
        .expect(200);
    assert_eq!(run["ran"], true);
    assert_eq!(run["changed"], 1);
    assert_eq!(
        admin
            .post("/api/v1/jobs/invoice-run/run", &json!({}))
            .await
            .expect(200)["changed"],
        0
    );
    let list = admin
        .get(&format!("/api/v1/invoices?subscription_id={sid}"))
        .await
        .expect(200);
    let items = list["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    assert_eq!(items[0]["number"], format!("INV-{year}-000002"));
    assert_eq!(items[0]["total"], 166500);
    c.second_id = items[0]["id"].as_str().unwrap().to_string();
    c.first_id = items[1]["id"].as_str().unwrap().to_string();
    let detail = admin
        .get(&format!("/api/v1/invoices/{}", c.second_id))
        .await
        .expect(200);
    assert!(
        detail["lines"][0]["description"]
            .as_str()
            .unwrap()
            .starts_with("Rumah 10M")
    );
}

/// Both invoices are past due + grace: the sweep isolates, and the router's cache follows.
async fn the_sweep_isolates_the_overdue_account(c: &Cycle) {
    let (admin, sid, agent) = (&c.s.admin, &c.sid, &c.agent);
    let sweep = admin
        .post("/api/v1/jobs/isolation-sweep/run", &json!({}))
        .await
        .expect(200);
    assert_eq!(sweep["changed"], 1);
    let s = admin
        .get(&format!("/api/v1/subscriptions/{sid}"))
        .await
        .expect(200);
    assert_eq!(s["status"], "isolated");
    assert_eq!(s["isolation_reason"], "overdue");
    eventually(Duration::from_secs(10), "isolation synced", || async {
        agent
            .cache()
            .user("siti@dusun")
            .ok()
            .flatten()
            .filter(|u| u.status == AccountStatus::Isolated)
    })
    .await;
    let overdue = admin.get("/api/v1/invoices?overdue=true").await.expect(200);
    assert_eq!(overdue["items"].as_array().unwrap().len(), 2);
}

/// A cashier's payment for one invoice leaves the account isolated; a payment that settles
/// the rest brings service back and keeps the change as credit.
async fn the_cashier_settles_and_service_returns(c: &Cycle) {
    let (admin, ctl, sid, cid, agent) = (&c.s.admin, &c.s.ctl, &c.sid, &c.cid, &c.agent);
    let (first_id, second_id) = (&c.first_id, &c.second_id);
    // A cashier takes cash for the oldest invoice: still isolated, the other is overdue.
    let pw = ctl.cli(&["admin", "create", "kasir", "--role", "cashier"]);
    let pw = pw
        .lines()
        .find_map(|l| l.strip_prefix("password: "))
        .unwrap();
    let cashier = Api::login(ctl.api_addr, "kasir", pw).await;
    let r1 = cashier
        .post("/api/v1/payments", &json!({"invoice_id": first_id, "amount": 166500, "method": "cash", "reference": "KW-001"}))
        .await
        .expect(201);
    assert_eq!(r1["allocations"][0]["amount"], 166500);
    assert_eq!(r1["reactivated"].as_array().unwrap().len(), 0);
    let again = cashier
        .post(
            "/api/v1/payments",
            &json!({"invoice_id": first_id, "amount": 1000, "method": "cash"}),
        )
        .await;
    assert_eq!(again.status, 409);
    // Paying the customer (not naming an invoice) with a little extra settles the rest and
    // keeps the change as credit; nothing overdue is left, so service comes back.
    let r2 = cashier
        .post(
            "/api/v1/payments",
            &json!({"customer_id": cid, "amount": 170000, "method": "transfer"}),
        )
        .await
        .expect(201);
    assert_eq!(r2["allocations"][0]["invoice_id"], second_id.as_str());
    assert_eq!(r2["credited"], 3500);
    assert_eq!(r2["reactivated"][0], sid.as_str());
    eventually(Duration::from_secs(10), "re-activation synced", || async {
        agent
            .cache()
            .user("siti@dusun")
            .ok()
            .flatten()
            .filter(|u| u.status == AccountStatus::Active)
    })
    .await;
    assert_eq!(
        admin
            .get(&format!("/api/v1/customers/{cid}"))
            .await
            .expect(200)["balance"],
        3500
    );
    assert_eq!(
        cashier
            .post(
                "/api/v1/plans",
                &json!({"name": "x", "kind": "hotspot", "price": 1})
            )
            .await
            .status,
        403
    );
}

/// Upgrade mid-cycle: the proration invoice takes the customer's credit first, then is paid
/// through a signed Midtrans notification that forgeries and replays do not fool.
async fn an_upgrade_is_prorated_and_paid_through_midtrans(c: &Cycle) {
    let (admin, ctl, sid, cid, agent) = (&c.s.admin, &c.s.ctl, &c.sid, &c.cid, &c.agent);
    let (midtrans, premium) = (&c.midtrans, &c.premium);
    let changed = admin
        .post(
            &format!("/api/v1/subscriptions/{sid}/change-plan"),
            &json!({"plan_id": premium["id"]}),
        )
        .await
        .expect(200);
    assert_eq!(changed["plan_id"], premium["id"]);
    eventually(Duration::from_secs(10), "plan change synced", || async {
        agent
            .cache()
            .user("siti@dusun")
            .ok()
            .flatten()
            .filter(|u| u.plan_id == premium["id"].as_str().unwrap())
    })
    .await;
    let list = admin
        .get(&format!(
            "/api/v1/invoices?subscription_id={sid}&status=unpaid"
        ))
        .await
        .expect(200);
    let pro = list["items"][0].clone();
    assert_eq!(pro["kind"], "proration");
    assert_eq!(pro["amount_paid"], 3500);
    let due = pro["total"].as_i64().unwrap() - 3500;
    assert!(due > 0);
    let number = pro["number"].as_str().unwrap();
    let order = format!("{number}~1");
    let gross = format!("{due}.00");
    let anon = Api::new(ctl.api_addr);
    let hook = "/api/v1/payments/webhooks/midtrans";
    let mut forged = midtrans_notification(&order, "txn-1", "200", "settlement", &gross);
    forged["gross_amount"] = json!("1.00");
    assert_eq!(anon.post(hook, &forged).await.status, 401);
    midtrans.midtrans_set(&order, "txn-1", "pending", &gross);
    let pending = anon
        .post(
            hook,
            &midtrans_notification(&order, "txn-1", "201", "pending", &gross),
        )
        .await
        .expect(200);
    assert_eq!(pending["result"], "ignored");
    midtrans.midtrans_set(&order, "txn-1", "settlement", &gross);
    let settled = midtrans_notification(&order, "txn-1", "200", "settlement", &gross);
    let paid = anon.post(hook, &settled).await.expect(200);
    assert_eq!(paid["result"], "recorded");
    let replay = anon.post(hook, &settled).await.expect(200);
    assert_eq!(replay["result"], "duplicate");
    assert_eq!(replay["payment_id"], paid["payment_id"]);
    // Midtrans confirms a payment whose order names no invoice of ours: said so by field.
    midtrans.midtrans_set("INV-1999-000001", "txn-2", "settlement", "1.00");
    let unknown = anon
        .post(
            hook,
            &midtrans_notification("INV-1999-000001", "txn-2", "200", "settlement", "1.00"),
        )
        .await;
    assert_eq!(unknown.status, 422);
    assert_eq!(unknown.json()["field"], "order_id");
    assert_eq!(
        anon.post("/api/v1/payments/webhooks/paypal", &json!({}))
            .await
            .status,
        404
    );
    assert_eq!(anon.post(hook, &json!({"order_id": 1})).await.status, 400);
    let pro = admin
        .get(&format!("/api/v1/invoices/{}", pro["id"].as_str().unwrap()))
        .await
        .expect(200);
    assert_eq!(pro["status"], "paid");
    let payments = admin
        .get(&format!("/api/v1/payments?customer_id={cid}"))
        .await
        .expect(200);
    let methods: Vec<&str> = payments["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["method"].as_str().unwrap())
        .collect();
    assert_eq!(methods.iter().filter(|m| **m == "gateway").count(), 1);
    assert_eq!(methods.iter().filter(|m| **m == "credit").count(), 1);
}

/// A paid invoice cannot be voided; terminating removes the account from the site.
async fn termination_removes_the_account(c: Cycle) {
    let (admin, ctl, sid, agent, first_id) = (&c.s.admin, &c.s.ctl, &c.sid, &c.agent, &c.first_id);
    assert_eq!(
        admin
            .post(
                &format!("/api/v1/invoices/{first_id}/void"),
                &json!({"reason": "test"})
            )
            .await
            .status,
        409
    );
    admin
        .post(
            &format!("/api/v1/subscriptions/{sid}/terminate"),
            &json!({}),
        )
        .await
        .expect(200);
    eventually(Duration::from_secs(10), "account removed", || async {
        agent
            .cache()
            .user("siti@dusun")
            .ok()
            .flatten()
            .is_none()
            .then_some(())
    })
    .await;
    assert_eq!(
        admin
            .post(&format!("/api/v1/subscriptions/{sid}/isolate"), &json!({}))
            .await
            .json()["code"],
        "invalid_state"
    );
    let metrics = ctl.metrics().await;
    assert!(
        metrics.contains("mikrobill_subscriptions{status=\"terminated\"} 1"),
        "{metrics}"
    );
    c.agent.shutdown().await;
    c.s.finish().await;
}

async fn settings_validation_and_roles(backend: Backend) {
    let Scenario {
        dir: _dir,
        db: _db,
        ctl: _ctl,
        admin,
    } = Scenario::start(backend).await;
    let mut st = admin.get("/api/v1/settings/billing").await.expect(200);
    assert_eq!(st["tax_rate_bp"], 1100);
    assert_eq!(st["currency"], "IDR");
    st["tax_inclusive"] = json!(true);
    st["company_name"] = json!("Net Desa");
    admin.put("/api/v1/settings/billing", &st).await.expect(200);
    st["tax_rate_bp"] = json!(20000);
    let bad = admin.put("/api/v1/settings/billing", &st).await;
    assert_eq!(bad.status, 422);
    assert_eq!(bad.json()["field"], "tax_rate_bp");
    let saved = admin.get("/api/v1/settings/billing").await.expect(200);
    assert_eq!(saved["tax_inclusive"], true);
    assert_eq!(saved["company_name"], "Net Desa");
    let jobs = admin.get("/api/v1/jobs").await.expect(200);
    assert!(
        jobs.as_array()
            .unwrap()
            .iter()
            .any(|j| j["name"] == "invoice-run")
    );
    assert_eq!(
        admin.post("/api/v1/jobs/nope/run", &json!({})).await.status,
        404
    );
}

async fn subscription_changes_voids_and_reads(backend: Backend) {
    let Scenario {
        dir: _dir,
        db: _db,
        ctl: _ctl,
        admin,
    } = Scenario::start(backend).await;
    let (site_a, agent_a, _dir_a) = agents::api_site(&admin, "Site A").await;
    let (site_b, agent_b, _dir_b) = agents::api_site(&admin, "Site B").await;
    let plan = admin
        .post(
            "/api/v1/plans",
            &json!({"name": "Rumah 10M", "kind": "pppoe", "price": 150000}),
        )
        .await
        .expect(201);
    assert_eq!(
        admin
            .get(&format!("/api/v1/plans/{}", plan["id"].as_str().unwrap()))
            .await
            .expect(200)["price"],
        150000
    );
    let c = admin
        .post("/api/v1/customers", &json!({"name": "Agus"}))
        .await
        .expect(201);
    let sub = admin
        .post(
            "/api/v1/subscriptions",
            &json!({"customer_id": c["id"], "plan_id": plan["id"], "site_id": site_a, "username": "agus"}),
        )
        .await
        .expect(201);
    let sid = sub["id"].as_str().unwrap();
    assert_eq!(sub["password"].as_str().unwrap().len(), 12);

    // Moving the account: it leaves site A's cache, reaches site B's, and the old router
    // gets a kick for running sessions.
    let moved = admin
        .patch(
            &format!("/api/v1/subscriptions/{sid}"),
            &json!({"site_id": site_b, "password": "baru-1234", "static_ip": "10.0.0.9"}),
        )
        .await
        .expect(200);
    assert_eq!(moved["site_id"], site_b.as_str());
    eventually(Duration::from_secs(10), "moved to site B", || async {
        agent_b
            .cache()
            .user("agus")
            .ok()
            .flatten()
            .filter(|u| u.password == "baru-1234")
    })
    .await;
    eventually(Duration::from_secs(10), "gone from site A", || async {
        agent_a
            .cache()
            .user("agus")
            .ok()
            .flatten()
            .is_none()
            .then_some(())
    })
    .await;
    let kicks = admin
        .get(&format!(
            "/api/v1/commands?site_id={site_a}&subscription_id={sid}"
        ))
        .await
        .expect(200);
    assert_eq!(kicks["items"][0]["kind"], "disconnect");
    let bad_ip = admin
        .patch(
            &format!("/api/v1/subscriptions/{sid}"),
            &json!({"static_ip": "10.0.0.999"}),
        )
        .await;
    assert_eq!(bad_ip.json()["field"], "static_ip");

    // Manual isolation is lifted only by an operator, not by a payment.
    admin
        .post(&format!("/api/v1/subscriptions/{sid}/isolate"), &json!({}))
        .await
        .expect(200);
    let inv = admin
        .get(&format!("/api/v1/invoices?subscription_id={sid}"))
        .await
        .expect(200)["items"][0]
        .clone();
    let inv_id = inv["id"].as_str().unwrap();
    let paid = admin
        .post(
            "/api/v1/payments",
            &json!({"invoice_id": inv_id, "amount": inv["total"], "method": "cash"}),
        )
        .await
        .expect(201);
    assert_eq!(paid["reactivated"].as_array().unwrap().len(), 0);
    let pay = admin
        .get(&format!(
            "/api/v1/payments/{}",
            paid["payment"]["id"].as_str().unwrap()
        ))
        .await
        .expect(200);
    assert_eq!(pay["amount"], inv["total"]);
    assert_eq!(
        admin
            .get(&format!("/api/v1/subscriptions/{sid}"))
            .await
            .expect(200)["status"],
        "isolated"
    );
    let back = admin
        .post(
            &format!("/api/v1/subscriptions/{sid}/reactivate"),
            &json!({}),
        )
        .await
        .expect(200);
    assert_eq!(back["status"], "active");
    assert_eq!(
        admin
            .post(
                &format!("/api/v1/subscriptions/{sid}/reactivate"),
                &json!({})
            )
            .await
            .status,
        409
    );

    // A downgrade mid-cycle credits the customer; an unpaid invoice can be voided once.
    let cheap = admin
        .post(
            "/api/v1/plans",
            &json!({"name": "Rumah 5M", "kind": "pppoe", "price": 90000}),
        )
        .await
        .expect(201);
    admin
        .post(
            &format!("/api/v1/subscriptions/{sid}/change-plan"),
            &json!({"plan_id": cheap["id"]}),
        )
        .await
        .expect(200);
    let balance = admin
        .get(&format!("/api/v1/customers/{}", c["id"].as_str().unwrap()))
        .await
        .expect(200)["balance"]
        .as_i64()
        .unwrap();
    assert!(balance > 0, "a downgrade must credit the unused days");
    let sub2 = admin
        .post(
            "/api/v1/subscriptions",
            &json!({"customer_id": c["id"], "plan_id": plan["id"], "site_id": site_b, "username": "agus2"}),
        )
        .await
        .expect(201);
    let open = admin
        .get(&format!(
            "/api/v1/invoices?subscription_id={}&status=unpaid",
            sub2["id"].as_str().unwrap()
        ))
        .await
        .expect(200);
    let open_id = open["items"][0]["id"].as_str().unwrap();
    // The credit paid part of the new invoice, so it cannot be voided any more.
    assert_eq!(
        open["items"][0]["amount_paid"],
        balance.min(open["items"][0]["total"].as_i64().unwrap())
    );
    assert_eq!(
        admin
            .post(
                &format!("/api/v1/invoices/{open_id}/void"),
                &json!({"reason": "x"})
            )
            .await
            .status,
        409
    );
    let sub3 = admin
        .post(
            "/api/v1/subscriptions",
            &json!({"customer_id": c["id"], "plan_id": plan["id"], "site_id": site_b, "username": "agus3"}),
        )
        .await
        .expect(201);
    let fresh = admin
        .get(&format!(
            "/api/v1/invoices?subscription_id={}",
            sub3["id"].as_str().unwrap()
        ))
        .await
        .expect(200);
    let fresh_id = fresh["items"][0]["id"].as_str().unwrap();
    assert_eq!(
        admin
            .post(
                &format!("/api/v1/invoices/{fresh_id}/void"),
                &json!({"reason": ""})
            )
            .await
            .json()["field"],
        "reason"
    );
    let void = admin
        .post(
            &format!("/api/v1/invoices/{fresh_id}/void"),
            &json!({"reason": "entered twice"}),
        )
        .await
        .expect(200);
    assert_eq!(void["status"], "void");
    assert_eq!(
        admin
            .post(
                &format!("/api/v1/invoices/{fresh_id}/void"),
                &json!({"reason": "again"})
            )
            .await
            .status,
        409
    );

    // Resellers are listed for the cash desk; credits are bounded.
    let r = admin
        .post(
            "/api/v1/admins",
            &json!({"username": "toko-andi", "password": "reseller-password", "role": "reseller"}),
        )
        .await
        .expect(201);
    let rid = r["id"].as_str().unwrap();
    let listed = admin.get("/api/v1/resellers").await.expect(200);
    assert_eq!(listed["items"][0]["username"], "toko-andi");
    let huge = admin
        .post(
            &format!("/api/v1/resellers/{rid}/credit"),
            &json!({"amount": i64::MAX}),
        )
        .await;
    assert_eq!(huge.status, 422);
    assert_eq!(
        admin
            .post(
                &format!("/api/v1/resellers/{rid}/credit"),
                &json!({"amount": 50000})
            )
            .await
            .expect(200)["balance"],
        50000
    );
    agent_a.shutdown().await;
    agent_b.shutdown().await;
}

/// A local date `days` back, on a billing day every month has.
fn days_ago(days: i64) -> String {
    let mut d = cycle::local_date(mikrobill_core::db::now_ms(), 420);
    for _ in 0..days {
        d = d.previous_day().unwrap();
    }
    while d.day() > 28 {
        d = d.previous_day().unwrap();
    }
    format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
}

/// Credit a customer holds pays their oldest open invoice: on an operator's request
/// (`apply-credit`), and by itself before the isolation sweep would isolate them for it.
async fn credit_pays_what_is_overdue_before_isolation(backend: Backend) {
    let s = Scenario::start(backend).await;
    let admin = &s.admin;
    let site = s.site("Dusun Utara").await;
    let plan = s.pppoe_plan("Rumah 10M", 150000).await;
    let start = days_ago(45);
    let mut subs = Vec::new();
    for (name, user) in [("Ani", "ani@utara"), ("Budi", "budi@utara")] {
        let c = admin
            .post("/api/v1/customers", &json!({"name": name}))
            .await
            .expect(201);
        let sub = admin
            .post(
                "/api/v1/subscriptions",
                &json!({"customer_id": c["id"], "plan_id": plan, "site_id": site,
                        "username": user, "start_date": start}),
            )
            .await
            .expect(201);
        subs.push((
            c["id"].as_str().unwrap().to_string(),
            sub["id"].as_str().unwrap().to_string(),
        ));
    }
    // The run issues each the cycle that started since; the first cycle is long overdue.
    admin
        .post("/api/v1/jobs/invoice-run/run", &json!({}))
        .await
        .expect(200);
    let invoices = |cid: String| async move {
        let list = admin
            .get(&format!("/api/v1/invoices?customer_id={cid}"))
            .await
            .expect(200);
        list["items"].as_array().unwrap().clone()
    };
    // A cashier takes twice the newer invoice's total against it: the extra is credit, while
    // the older invoice stays unpaid.
    let mut firsts = Vec::new();
    for (cid, _) in &subs {
        let items = invoices(cid.clone()).await;
        assert_eq!(items.len(), 2, "{items:?}");
        let (newer, older) = (&items[0], &items[1]);
        let total = newer["total"].as_i64().unwrap();
        let paid = admin
            .post(
                "/api/v1/payments",
                &json!({"invoice_id": newer["id"], "amount": 2 * total, "method": "cash"}),
            )
            .await
            .expect(201);
        assert_eq!(paid["credited"], total);
        firsts.push((
            older["id"].as_str().unwrap().to_string(),
            older["total"].as_i64().unwrap(),
        ));
    }

    // Ani's credit is applied on request: a viewer may not, an admin may.
    let (ani, _) = &subs[0];
    let viewer_pw = s.ctl.cli(&["admin", "create", "lihat", "--role", "viewer"]);
    let viewer_pw = viewer_pw
        .lines()
        .find_map(|l| l.strip_prefix("password: "))
        .unwrap();
    let viewer = Api::login(s.ctl.api_addr, "lihat", viewer_pw).await;
    assert_eq!(
        viewer
            .post(&format!("/api/v1/customers/{ani}/apply-credit"), &json!({}))
            .await
            .status,
        403
    );
    let applied = admin
        .post(&format!("/api/v1/customers/{ani}/apply-credit"), &json!({}))
        .await
        .expect(200);
    assert_eq!(applied["applied"][0]["invoice_id"], firsts[0].0.as_str());
    assert_eq!(applied["applied"][0]["amount"], firsts[0].1);
    assert_eq!(applied["balance"], 0);
    // Nothing left to apply: the second request changes nothing.
    let again = admin
        .post(&format!("/api/v1/customers/{ani}/apply-credit"), &json!({}))
        .await
        .expect(200);
    assert_eq!(again["applied"].as_array().unwrap().len(), 0);

    // Budi's credit is left for the sweep: it pays his overdue invoice instead of isolating him.
    let sweep = admin
        .post("/api/v1/jobs/isolation-sweep/run", &json!({}))
        .await
        .expect(200);
    assert_eq!(sweep["changed"], 0, "nobody is isolated: {sweep}");
    for (i, (cid, sid)) in subs.iter().enumerate() {
        let sub = admin
            .get(&format!("/api/v1/subscriptions/{sid}"))
            .await
            .expect(200);
        assert_eq!(sub["status"], "active");
        let older = admin
            .get(&format!("/api/v1/invoices/{}", firsts[i].0))
            .await
            .expect(200);
        assert_eq!(older["status"], "paid");
        let customer = admin
            .get(&format!("/api/v1/customers/{cid}"))
            .await
            .expect(200);
        assert_eq!(customer["balance"], 0);
    }
    let audit = admin
        .get("/api/v1/audit?entity=customer&limit=20")
        .await
        .expect(200);
    assert!(
        audit["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["action"] == "customer.apply_credit" && e["entity_id"] == ani.as_str()),
        "{audit}"
    );
    s.finish().await;
}

/// The local date `days` ahead (WIB, the default offset) as the API takes it, and its
/// local midnight.
fn days_ahead(days: i64) -> (String, i64) {
    let mut d = cycle::local_date(mikrobill_core::db::now_ms(), 420);
    for _ in 0..days {
        d = d.next_day().unwrap();
    }
    (
        format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day()),
        cycle::local_midnight_ms(d, 420),
    )
}

/// Subscribers moved in from another system keep their old start date but are billed from
/// `bill_from`: no invoice for the cycles they paid elsewhere, so no isolation either.
async fn moved_in_accounts_are_billed_from_their_bill_from_date(backend: Backend) {
    let s = Scenario::start(backend).await;
    let admin = &s.admin;
    let site = s.site("Pindahan").await;
    let plan = s.pppoe_plan("Rumah 10M", 150000).await;
    let start = days_ago(200);
    let (today, _) = days_ahead(0);
    let (later, later_midnight) = days_ahead(10);
    let mut subs = Vec::new();
    for (user, bill_from) in [
        ("later@pindah", Some(later.clone())),
        ("today@pindah", Some(today.clone())),
        ("backdated@pindah", None),
    ] {
        let c = admin
            .post("/api/v1/customers", &json!({"name": user}))
            .await
            .expect(201);
        let sub = admin
            .post(
                "/api/v1/subscriptions",
                &json!({"customer_id": c["id"], "plan_id": plan, "site_id": site,
                        "username": user, "start_date": start, "bill_from": bill_from}),
            )
            .await
            .expect(201);
        subs.push((c["id"].as_str().unwrap().to_string(), sub));
    }
    let before_start = admin
        .post(
            "/api/v1/subscriptions",
            &json!({"customer_id": subs[0].0, "plan_id": plan, "site_id": site,
                    "username": "early@pindah", "start_date": today, "bill_from": start}),
        )
        .await;
    assert_eq!(before_start.status, 422, "{}", before_start.text);
    assert!(
        before_start.text.contains("bill_from"),
        "{}",
        before_start.text
    );

    for job in ["invoice-run", "isolation-sweep"] {
        admin
            .post(&format!("/api/v1/jobs/{job}/run"), &json!({}))
            .await
            .expect(200);
    }
    let invoices = |cid: String| async move {
        admin
            .get(&format!("/api/v1/invoices?customer_id={cid}"))
            .await
            .expect(200)["items"]
            .as_array()
            .unwrap()
            .clone()
    };
    let status = |id: Value| async move {
        admin
            .get(&format!("/api/v1/subscriptions/{}", id.as_str().unwrap()))
            .await
            .expect(200)["status"]
            .clone()
    };
    // Billed from a future date: nothing yet, and service goes on.
    let (later_cid, later_sub) = &subs[0];
    assert!(invoices(later_cid.clone()).await.is_empty());
    assert_eq!(
        later_sub["next_cycle_at"], later_midnight,
        "the invoice run bills from {later}"
    );
    assert_eq!(status(later_sub["id"].clone()).await, "active");
    // Billed from today: one invoice, for today onwards.
    let (today_cid, today_sub) = &subs[1];
    let items = invoices(today_cid.clone()).await;
    assert_eq!(items.len(), 1, "{items:?}");
    assert!(
        items[0]["total"].as_i64().unwrap() <= 150000 * 111 / 100,
        "{items:?}"
    );
    assert_eq!(status(today_sub["id"].clone()).await, "active");
    // The old behaviour, for comparison: every cycle since the start is billed, and the
    // oldest is long overdue.
    let (old_cid, old_sub) = &subs[2];
    assert!(invoices(old_cid.clone()).await.len() >= 6);
    assert_eq!(status(old_sub["id"].clone()).await, "isolated");
    s.finish().await;
}
