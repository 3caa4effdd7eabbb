//! Payment gateways end to end through a real controller and fake Midtrans, Xendit and Tripay
//! servers: a notification is only a hint, and only what the gateway's own API confirms
//! becomes a payment. Each attack an edited or replayed notification could make is tried and
//! must create no payment and no credit; genuine payments are recorded once.

use mikrobill_tests::gateways::{self, FakeGateways, midtrans_notification};
use mikrobill_tests::http::{Api, Response};
use mikrobill_tests::web::WebClient;
use mikrobill_tests::{Backend, Controller, TestDb, init_tracing, on_both_backends};
use serde_json::{Value, json};

on_both_backends!(
    midtrans_notifications_are_confirmed,
    xendit_pays_an_invoice,
    tripay_pays_an_invoice
);

const HOOK: &str = "/api/v1/payments/webhooks/midtrans";

/// A started controller whose gateways all point at one fake, with a customer who owes a
/// first invoice and may log in to the portal.
struct World {
    _db: TestDb,
    _dir: tempfile::TempDir,
    ctl: Controller,
    admin: Api,
    fake: FakeGateways,
    customer_id: String,
    customer_number: String,
    invoice_id: String,
    invoice_number: String,
    total: i64,
}

const PORTAL_PASSWORD: &str = "portal-pass-1234";

async fn world(backend: Backend, links: &str) -> World {
    init_tracing();
    let db = TestDb::new(backend).await;
    let dir = tempfile::tempdir().unwrap();
    let fake = FakeGateways::start().await;
    let env = fake.env(links);
    let ctl = Controller::start_env(dir.path(), &db, &env).await;
    let admin = Api::admin(ctl.api_addr).await;
    let site = admin
        .post("/api/v1/sites", &json!({"name": "Dusun Barat"}))
        .await
        .expect(201);
    let plan = admin
        .post(
            "/api/v1/plans",
            &json!({"name": "Rumah 10M", "kind": "pppoe", "price": 150000, "rate_limit": "5M/10M"}),
        )
        .await
        .expect(201);
    let c = admin
        .post(
            "/api/v1/customers",
            &json!({"name": "Siti Aminah", "phone": "0812-1111-2222", "email": "siti@example.net"}),
        )
        .await
        .expect(201);
    let customer_id = c["id"].as_str().unwrap().to_string();
    admin
        .post(
            "/api/v1/subscriptions",
            &json!({"customer_id": customer_id, "plan_id": plan["id"], "site_id": site["site"]["id"], "username": "siti@dusun"}),
        )
        .await
        .expect(201);
    admin
        .put(
            &format!("/api/v1/customers/{customer_id}/portal-password"),
            &json!({"password": PORTAL_PASSWORD}),
        )
        .await
        .expect(200);
    let invoices = admin
        .get(&format!("/api/v1/invoices?customer_id={customer_id}"))
        .await
        .expect(200);
    let inv = &invoices["items"][0];
    World {
        _db: db,
        _dir: dir,
        admin,
        fake,
        customer_number: c["number"].as_str().unwrap().to_string(),
        customer_id,
        invoice_id: inv["id"].as_str().unwrap().to_string(),
        invoice_number: inv["number"].as_str().unwrap().to_string(),
        total: inv["total"].as_i64().unwrap(),
        ctl,
    }
}

impl World {
    /// The customer's payments, their credit balance and the invoice's status.
    async fn money(&self) -> (Vec<Value>, i64, String) {
        let payments = self
            .admin
            .get(&format!(
                "/api/v1/payments?customer_id={}",
                self.customer_id
            ))
            .await
            .expect(200)["items"]
            .as_array()
            .unwrap()
            .clone();
        let customer = self
            .admin
            .get(&format!("/api/v1/customers/{}", self.customer_id))
            .await
            .expect(200);
        let invoice = self
            .admin
            .get(&format!("/api/v1/invoices/{}", self.invoice_id))
            .await
            .expect(200);
        (
            payments,
            customer["balance"].as_i64().unwrap(),
            invoice["status"].as_str().unwrap().to_string(),
        )
    }

    /// Nothing was paid: no payment, no credit, the invoice still open.
    async fn assert_untouched(&self, after: &str) {
        let (payments, balance, status) = self.money().await;
        assert!(payments.is_empty(), "{after}: payments {payments:?}");
        assert_eq!(balance, 0, "{after}: credit");
        assert_eq!(status, "unpaid", "{after}");
    }

    /// Logs in to the portal and presses Pay; returns where the portal redirects.
    async fn pay_in_portal(&self) -> String {
        let mut web = WebClient::new(self.ctl.api_addr);
        let form = web.get("/portal/login").await;
        let csrf = portal_csrf(&form.text);
        let login = web
            .post_raw(
                "/portal/login",
                &[
                    ("csrf", &csrf),
                    ("identifier", &self.customer_number),
                    ("password", PORTAL_PASSWORD),
                ],
            )
            .await;
        assert_eq!(login.status, 303, "{}", login.text);
        let page = web
            .get(&format!("/portal/invoices/{}", self.invoice_id))
            .await;
        let csrf = portal_csrf(&page.text);
        let paid = web
            .post_raw(
                &format!("/portal/invoices/{}/pay", self.invoice_id),
                &[("csrf", &csrf)],
            )
            .await;
        assert_eq!(paid.status, 303, "{}", paid.text);
        paid.header("location").unwrap().to_string()
    }

    async fn post_hook(&self, gateway: &str, body: &str, headers: &[(&str, &str)]) -> Response {
        Api::new(self.ctl.api_addr)
            .request_with_headers(
                "POST",
                &format!("/api/v1/payments/webhooks/{gateway}"),
                Some(body.as_bytes().to_vec()),
                "application/json",
                headers,
            )
            .await
    }
}

fn portal_csrf(html: &str) -> String {
    let marker = "name=\"csrf\" value=\"";
    let start = html.find(marker).expect("a form with a csrf field") + marker.len();
    html[start..].split('"').next().unwrap().to_string()
}

async fn midtrans_notifications_are_confirmed(backend: Backend) {
    let w = world(backend, "midtrans").await;
    let anon = Api::new(w.ctl.api_addr);
    let order = format!("{}~a1", w.invoice_number);
    let gross = format!("{}.00", w.total);

    // Attack 1: a genuinely signed *pending* notification (status_code 201) with its unsigned
    // transaction_status edited to settlement. Midtrans' status API says pending.
    w.fake.midtrans_set(&order, "txn-real", "pending", &gross);
    for edited in ["settlement", "capture"] {
        let n = midtrans_notification(&order, "txn-real", "201", edited, &gross);
        let res = anon.post(HOOK, &n).await.expect(200);
        assert_eq!(res["result"], "ignored", "{res}");
    }
    w.assert_untouched("edited pending notification").await;

    // Attack 2: a signed *expire* notification edited the same way; Midtrans' status API
    // says expire (407); a notification signed with the sample code 202 is stale.
    w.fake.midtrans_set(&order, "txn-real", "expire", &gross);
    for (code, result) in [("407", "ignored"), ("202", "stale")] {
        let n = midtrans_notification(&order, "txn-real", code, "settlement", &gross);
        let res = anon.post(HOOK, &n).await.expect(200);
        assert_eq!(res["result"], result, "{code}: {res}");
    }
    w.assert_untouched("edited expire notification").await;

    // Attack 3: the same signed notifications resent with fresh transaction ids.
    for i in 0..5 {
        for code in ["201", "407", "202"] {
            let n =
                midtrans_notification(&order, &format!("forged-{i}"), code, "settlement", &gross);
            let res = anon.post(HOOK, &n).await.expect(200);
            assert_ne!(res["result"], "recorded", "{res}");
        }
    }
    w.assert_untouched("replayed with new transaction ids")
        .await;

    // A signed notification for an order Midtrans has never heard of: unconfirmed.
    let unknown = format!("{}~zz", w.invoice_number);
    let res = anon
        .post(
            HOOK,
            &midtrans_notification(&unknown, "t", "200", "settlement", &gross),
        )
        .await;
    assert_eq!(res.status, 422, "{}", res.text);
    assert_eq!(res.json()["code"], "unconfirmed");
    assert_eq!(res.header("content-type"), Some("application/problem+json"));
    // A forged signature is refused before the gateway is even asked.
    let calls = w.fake.calls().len();
    let mut forged = midtrans_notification(&order, "t", "200", "settlement", &gross);
    forged["gross_amount"] = json!("1.00");
    assert_eq!(anon.post(HOOK, &forged).await.status, 401);
    assert_eq!(w.fake.calls().len(), calls);
    w.assert_untouched("unknown order and forged signature")
        .await;

    // The order is paid at Midtrans now, but its status API is down: 503, so Midtrans
    // retries, and nothing is recorded on the notification's word.
    let paid_order = format!("{}~a2", w.invoice_number);
    w.fake
        .midtrans_set(&paid_order, "txn-paid", "settlement", &gross);
    w.fake.set_down(true);
    let genuine = midtrans_notification(&paid_order, "txn-paid", "200", "settlement", &gross);
    let res = anon.post(HOOK, &genuine).await;
    assert_eq!(res.status, 503, "{}", res.text);
    w.assert_untouched("status API down").await;
    w.fake.set_down(false);

    // A notification claiming another amount than Midtrans records: unconfirmed.
    let cheaper = midtrans_notification(&paid_order, "txn-paid", "200", "settlement", "1000.00");
    assert_eq!(anon.post(HOOK, &cheaper).await.status, 422);
    w.assert_untouched("amount disagreeing with the gateway")
        .await;

    // The genuine settlement: recorded once, keyed on the confirmed transaction id, whatever
    // transaction id the notifications carry.
    let first = anon.post(HOOK, &genuine).await.expect(200);
    assert_eq!(first["result"], "recorded", "{first}");
    assert_eq!(first["success"], true);
    for other in ["txn-paid", "another-id", "yet-another"] {
        let again = anon
            .post(
                HOOK,
                &midtrans_notification(&paid_order, other, "200", "settlement", &gross),
            )
            .await
            .expect(200);
        assert_eq!(again["result"], "duplicate", "{again}");
        assert_eq!(again["payment_id"], first["payment_id"]);
    }
    let (payments, balance, status) = w.money().await;
    assert_eq!(payments.len(), 1, "{payments:?}");
    assert_eq!(payments[0]["external_id"], "txn-paid");
    assert_eq!(payments[0]["amount"], w.total);
    assert_eq!(balance, 0);
    assert_eq!(status, "paid");
    // Every status lookup used the server key.
    let key = format!(
        "Basic {}",
        base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            format!("{}:", gateways::MIDTRANS_KEY)
        )
    );
    assert!(
        w.fake
            .calls()
            .iter()
            .filter(|c| c.path.ends_with("/status"))
            .all(|c| c.auth == key)
    );
}

async fn xendit_pays_an_invoice(backend: Backend) {
    let w = world(backend, "xendit").await;
    let location = w.pay_in_portal().await;
    let invoices = w.fake.xendit_invoices();
    assert_eq!(invoices.len(), 1);
    let (id, invoice) = invoices.into_iter().next().unwrap();
    assert_eq!(
        location,
        format!("https://checkout-staging.xendit.co/web/{id}")
    );
    let order = invoice["external_id"].as_str().unwrap().to_string();
    assert!(
        order.starts_with(&format!("{}~", w.invoice_number)),
        "{order}"
    );
    assert_eq!(invoice["amount"], w.total);
    let create = w
        .fake
        .calls()
        .into_iter()
        .find(|c| c.path == "/v2/invoices")
        .unwrap();
    assert_eq!(create.body["payer_email"], "siti@example.net");
    assert_eq!(create.body["currency"], "IDR");

    let token = ("x-callback-token", gateways::XENDIT_TOKEN);
    // The callback says PAID, but Xendit still has the invoice pending: nothing is paid.
    let mut claimed = invoice.clone();
    claimed["status"] = json!("PAID");
    claimed["paid_amount"] = json!(w.total);
    let res = w.post_hook("xendit", &claimed.to_string(), &[token]).await;
    assert_eq!(res.status, 200, "{}", res.text);
    assert_eq!(res.json()["result"], "ignored");
    // Without the token, or with another: refused.
    assert_eq!(
        w.post_hook("xendit", &claimed.to_string(), &[])
            .await
            .status,
        401
    );
    assert_eq!(
        w.post_hook(
            "xendit",
            &claimed.to_string(),
            &[("x-callback-token", "guess")]
        )
        .await
        .status,
        401
    );
    // An invoice id Xendit does not know, or the real id with another order: unconfirmed.
    let mut unknown = claimed.clone();
    unknown["id"] = json!("inv-nope");
    assert_eq!(
        w.post_hook("xendit", &unknown.to_string(), &[token])
            .await
            .status,
        422
    );
    w.assert_untouched("unconfirmed Xendit callbacks").await;

    // Paid at Xendit: recorded once.
    let paid = w.fake.xendit_set(&id, "PAID");
    let mut other_order = paid.clone();
    other_order["external_id"] = json!(format!("{}~other", w.invoice_number));
    assert_eq!(
        w.post_hook("xendit", &other_order.to_string(), &[token])
            .await
            .status,
        422
    );
    let res = w.post_hook("xendit", &paid.to_string(), &[token]).await;
    assert_eq!(res.status, 200, "{}", res.text);
    assert_eq!(res.json()["result"], "recorded");
    // Settlement a day later is the same money.
    let settled = w.fake.xendit_set(&id, "SETTLED");
    let again = w.post_hook("xendit", &settled.to_string(), &[token]).await;
    assert_eq!(again.json()["result"], "duplicate", "{}", again.text);
    let (payments, balance, status) = w.money().await;
    assert_eq!(payments.len(), 1);
    assert_eq!(payments[0]["gateway"], "xendit");
    assert_eq!(payments[0]["external_id"], id.as_str());
    assert_eq!(balance, 0);
    assert_eq!(status, "paid");
}

async fn tripay_pays_an_invoice(backend: Backend) {
    let w = world(backend, "tripay").await;
    let location = w.pay_in_portal().await;
    let transactions = w.fake.tripay_transactions();
    assert_eq!(transactions.len(), 1);
    let (reference, data) = transactions.into_iter().next().unwrap();
    assert_eq!(
        location,
        format!("https://tripay.co.id/checkout/{reference}")
    );
    assert_eq!(data["amount"], w.total);
    assert_eq!(data["payment_method"], "QRIS");

    let signed = |data: &Value| gateways::tripay_callback(data);
    let event = ("X-Callback-Event", "payment_status");
    // A correctly signed PAID callback while Tripay still says UNPAID: stale, nothing paid.
    let mut claimed = data.clone();
    claimed["status"] = json!("PAID");
    let (body, sig) = signed(&claimed);
    let res = w
        .post_hook("tripay", &body, &[("X-Callback-Signature", &sig), event])
        .await;
    assert_eq!(res.status, 200, "{}", res.text);
    assert_eq!(res.json()["result"], "stale");
    // An edited body fails the signature.
    let edited = body.replace(
        &format!("\"total_amount\":{}", w.total),
        "\"total_amount\":1",
    );
    assert_ne!(edited, body);
    assert_eq!(
        w.post_hook("tripay", &edited, &[("X-Callback-Signature", &sig), event])
            .await
            .status,
        401
    );
    w.assert_untouched("unconfirmed Tripay callbacks").await;

    // Paid at Tripay: recorded once, answered the way Tripay expects.
    let paid = w.fake.tripay_set(&reference, "PAID");
    let (body, sig) = signed(&paid);
    let res = w
        .post_hook("tripay", &body, &[("X-Callback-Signature", &sig), event])
        .await;
    assert_eq!(res.status, 200, "{}", res.text);
    assert_eq!(res.json()["success"], true);
    assert_eq!(res.json()["result"], "recorded");
    let again = w
        .post_hook("tripay", &body, &[("X-Callback-Signature", &sig), event])
        .await;
    assert_eq!(again.json()["result"], "duplicate");
    let (payments, balance, status) = w.money().await;
    assert_eq!(payments.len(), 1);
    assert_eq!(payments[0]["gateway"], "tripay");
    assert_eq!(payments[0]["external_id"], reference.as_str());
    assert_eq!(payments[0]["amount"], w.total);
    assert_eq!(balance, 0);
    assert_eq!(status, "paid");
}
