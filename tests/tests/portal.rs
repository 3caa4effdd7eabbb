//! The customer portal end to end through a real controller: an operator sets a portal
//! password through the API; the subscriber logs in by customer number and by phone, sees
//! their subscription, invoice and payment (and nobody else's), pays through a fake Midtrans
//! Snap server and the signed webhook marks the invoice paid; failed logins are throttled;
//! forms without their anti-forgery token are refused; voucher balances follow accounting,
//! and guessing codes gets an address locked out; texts and money follow the language; a
//! visitor buys a voucher and a subscriber tops up through the gateway, each settled once by
//! the confirmed webhook.

use axum::Json;
use base64::Engine;
use mikrobill_protocol::accounting::{AccountingRecord, AcctStatus, RecordId};
use mikrobill_tests::Scenario;
use mikrobill_tests::gateways::{FakeGateways, midtrans_notification};
use mikrobill_tests::http::{Api, MIDTRANS_SERVER_KEY, Response};
use mikrobill_tests::messaging::{Gateway, serve_gateway};
use mikrobill_tests::scenario;
use mikrobill_tests::web::form_field;
use mikrobill_tests::{Backend, Controller, TestDb, init_tracing};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

mikrobill_tests::on_both_backends!(
    subscriber_sees_own_records_and_pays,
    logins_are_throttled_and_forms_need_their_token,
    voucher_lookup_follows_accounting,
    language_follows_the_browser_and_the_switch,
    a_one_time_code_arrives_by_whatsapp_and_logs_in_once,
    a_subscriber_links_telegram_from_the_portal,
    a_visitor_buys_a_voucher_and_a_subscriber_tops_up
);

/// A browser without JavaScript: keeps cookies, sends forms.
struct Browser {
    api: Api,
    cookies: BTreeMap<String, String>,
    lang: Option<&'static str>,
    extra: Vec<(&'static str, &'static str)>,
}

impl Browser {
    fn new(addr: SocketAddr) -> Browser {
        Browser {
            api: Api::new(addr),
            cookies: BTreeMap::new(),
            lang: None,
            extra: Vec::new(),
        }
    }

    fn keep_cookies(&mut self, res: &Response) {
        for c in res.header_all("set-cookie") {
            let pair = c.split(';').next().unwrap();
            let (name, value) = pair.split_once('=').unwrap();
            if c.contains("Max-Age=0") {
                self.cookies.remove(name);
            } else {
                self.cookies.insert(name.to_string(), value.to_string());
            }
        }
    }

    async fn send(&mut self, method: &str, path: &str, body: Option<Vec<u8>>) -> Response {
        let cookie = self
            .cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ");
        let mut headers: Vec<(&str, &str)> = vec![("Accept", "text/html")];
        if !cookie.is_empty() {
            headers.push(("Cookie", &cookie));
        }
        if let Some(l) = self.lang {
            headers.push(("Accept-Language", l));
        }
        headers.extend(self.extra.iter().copied());
        let res = self
            .api
            .send(
                method,
                path,
                &headers,
                body,
                "application/x-www-form-urlencoded",
            )
            .await;
        self.keep_cookies(&res);
        res
    }

    async fn get(&mut self, path: &str) -> Response {
        self.send("GET", path, None).await
    }

    async fn post(&mut self, path: &str, fields: &[(&str, &str)]) -> Response {
        let body = fields
            .iter()
            .map(|(k, v)| format!("{}={}", urlencode(k), urlencode(v)))
            .collect::<Vec<_>>()
            .join("&");
        self.send("POST", path, Some(body.into_bytes())).await
    }

    /// Logs in through the form; returns the final answer to the POST.
    async fn login(&mut self, identifier: &str, password: &str) -> Response {
        let form = self.get("/portal/login").await;
        assert_eq!(form.status, 200, "{}", form.text);
        let csrf = csrf(&form.text);
        self.post(
            "/portal/login",
            &[
                ("csrf", &csrf),
                ("identifier", identifier),
                ("password", password),
            ],
        )
        .await
    }
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The anti-forgery token of the first portal form on a page.
fn csrf(html: &str) -> String {
    form_field(html, "csrf").expect("a form with a csrf field")
}

/// Indonesian money: `Rp 166.500`.
fn rupiah_id(v: i64) -> String {
    mikrobill_http::web::format_money(v, "IDR", 0, mikrobill_http::web::Lang::Id)
}

async fn subscriber_sees_own_records_and_pays(backend: Backend) {
    init_tracing();
    let db = TestDb::new(backend).await;
    let dir = tempfile::tempdir().unwrap();
    let snap = FakeGateways::start().await;
    let env = snap.env("midtrans");
    let ctl = Controller::start_env(dir.path(), &db, &env).await;
    let snap_calls = || {
        snap.calls()
            .into_iter()
            .filter(|c| c.path == "/snap/v1/transactions")
            .collect::<Vec<_>>()
    };
    let admin = Api::admin(ctl.api_addr).await;
    let (site_id, plan_id) = (
        scenario::site(&admin, "Dusun Barat").await,
        scenario::pppoe_plan(&admin, "Rumah 10M", 150000).await,
    );
    let siti = scenario::subscriber(
        &admin,
        &site_id,
        &plan_id,
        "Siti Aminah",
        "081298765432",
        "siti@barat",
    )
    .await;
    let budi = scenario::subscriber(
        &admin,
        &site_id,
        &plan_id,
        "Budi Santoso",
        "081311112222",
        "budi@barat",
    )
    .await;

    // A cash payment of part of Siti's invoice.
    admin
        .post(
            "/api/v1/payments",
            &json!({"invoice_id": siti.invoice_id, "amount": 66500, "method": "cash"}),
        )
        .await
        .expect(201);
    let outstanding = siti.total - 66500;

    // The operator sets Siti's password and has one generated for Budi.
    let short = admin
        .put(
            &format!("/api/v1/customers/{}/portal-password", siti.customer_id),
            &json!({"password": "short"}),
        )
        .await;
    assert_eq!(short.status, 422, "{}", short.text);
    assert_eq!(short.json()["field"], "password");
    let set = admin
        .put(
            &format!("/api/v1/customers/{}/portal-password", siti.customer_id),
            &json!({"password": "siti-portal-pass"}),
        )
        .await
        .expect(200);
    assert_eq!(set["customer_number"], siti.number.as_str());
    assert!(set["generated_password"].is_null());
    let generated = admin
        .put(
            &format!("/api/v1/customers/{}/portal-password", budi.customer_id),
            &json!({}),
        )
        .await
        .expect(200);
    let budi_password = generated["generated_password"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(budi_password.len(), 20);
    assert_eq!(
        admin
            .put("/api/v1/customers/no-such/portal-password", &json!({}))
            .await
            .status,
        404
    );
    let audit = admin
        .get(&format!(
            "/api/v1/audit?entity=customer&entity_id={}",
            siti.customer_id
        ))
        .await
        .expect(200);
    let entries = audit["items"].as_array().unwrap();
    let entry = entries
        .iter()
        .find(|e| e["action"] == "customer.portal_password")
        .expect("password change audited");
    assert!(!entry.to_string().contains("siti-portal-pass"));

    // Pages need a login.
    let mut browser = Browser::new(ctl.api_addr);
    let anon = browser.get("/portal").await;
    assert_eq!(anon.status, 303);
    assert_eq!(anon.header("location"), Some("/portal/login"));
    assert_eq!(
        browser
            .get(&format!("/portal/invoices/{}", siti.invoice_id))
            .await
            .status,
        303
    );

    // Login by customer number (typed in lower case).
    let wrong = browser
        .login(&siti.number.to_lowercase(), "not-her-password")
        .await;
    assert_eq!(wrong.status, 401);
    assert!(!browser.cookies.contains_key("mb_portal_session"));
    let res = browser
        .login(&siti.number.to_lowercase(), "siti-portal-pass")
        .await;
    assert_eq!(res.status, 303, "{}", res.text);
    assert_eq!(res.header("location"), Some("/portal"));
    let cookie = res
        .header_all("set-cookie")
        .into_iter()
        .find(|c| c.starts_with("mb_portal_session="))
        .expect("session cookie")
        .to_string();
    for attr in ["HttpOnly", "SameSite=Lax", "Path=/portal", "Max-Age="] {
        assert!(cookie.contains(attr), "{cookie}");
    }
    assert!(!cookie.contains("Secure"), "plain HTTP: {cookie}");
    let secret = cookie
        .split(';')
        .next()
        .unwrap()
        .split_once('=')
        .unwrap()
        .1
        .to_string();
    // Only the secret's hash is stored.
    let cdb = ctl.db().await;
    let stored: Vec<String> = sqlx::query_scalar("SELECT token_hash FROM portal_sessions")
        .fetch_all(&cdb.pool)
        .await
        .unwrap();
    assert_eq!(stored.len(), 1);
    assert_ne!(stored[0], secret);
    // A portal session is no admin token.
    assert_eq!(
        admin
            .with_token(&secret)
            .get("/api/v1/customers")
            .await
            .status,
        401
    );

    // Accounting: one session in this cycle (an hour, 1.5 GB down, 200 MB up, reported by
    // an interim update and the stop) and one from an earlier cycle, which does not count.
    let now = mikrobill_core::db::now_ms();
    let month_ago = now - 40 * 86_400_000;
    mikrobill_core::accounting::ingest(
        &cdb,
        &site_id,
        &[
            acct(
                "siti@barat",
                "old",
                AcctStatus::Stop,
                month_ago,
                99_000,
                9_000_000_000,
                1,
            ),
            acct(
                "siti@barat",
                "now",
                AcctStatus::InterimUpdate,
                now - 500,
                1800,
                700_000_000,
                90_000_000,
            ),
            acct(
                "siti@barat",
                "now",
                AcctStatus::Stop,
                now,
                3600,
                1_500_000_000,
                200_000_000,
            ),
            acct("budi@barat", "now", AcctStatus::Stop, now, 60, 1_000, 1_000),
        ],
    )
    .await
    .unwrap();

    // The overview: her subscription, usage, invoice and payment, nothing of Budi's.
    let home = browser.get("/portal").await;
    assert_eq!(home.status, 200, "{}", home.text);
    assert_eq!(home.header("cache-control"), Some("no-store"));
    assert!(home.header("content-security-policy").is_some());
    for needle in [
        "Siti Aminah",
        siti.number.as_str(),
        "siti@barat",
        "Rumah 10M",
        siti.invoice_number.as_str(),
        &rupiah_id(siti.total),
        &rupiah_id(66500),
        "Tunai",
        "Belum dibayar",
        "<dt>Sesi</dt><dd>1</dd>",
        "1 jam 0 menit",
        "1,5 GB",
        "200,0 MB",
    ] {
        assert!(
            home.text.contains(needle),
            "{needle} missing:\n{}",
            home.text
        );
    }
    assert!(!home.text.contains("budi@barat"));
    assert!(!home.text.contains(budi.invoice_number.as_str()));

    // Her invoice; Budi's (a real id) and a made-up one do not exist for her.
    let page = browser
        .get(&format!("/portal/invoices/{}", siti.invoice_id))
        .await;
    assert_eq!(page.status, 200, "{}", page.text);
    for needle in [
        siti.invoice_number.as_str(),
        "Rumah 10M",
        "Pajak 11 %",
        &rupiah_id(outstanding),
        "MikroBill ISP",
        "Bayar sekarang",
    ] {
        assert!(
            page.text.contains(needle),
            "{needle} missing:\n{}",
            page.text
        );
    }
    let other = browser
        .get(&format!("/portal/invoices/{}", budi.invoice_id))
        .await;
    assert_eq!(other.status, 404);
    assert!(!other.text.contains(budi.invoice_number.as_str()));
    assert_eq!(
        browser
            .get(&format!("/portal/invoices/{}/download", budi.invoice_id))
            .await
            .status,
        404
    );
    assert_eq!(
        browser
            .get("/portal/invoices/00000000-0000-0000-0000-000000000000")
            .await
            .status,
        404
    );
    let csrf = csrf(&page.text);
    let foreign_pay = browser
        .post(
            &format!("/portal/invoices/{}/pay", budi.invoice_id),
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(foreign_pay.status, 404);

    // The download is the same invoice as an attachment.
    let file = browser
        .get(&format!("/portal/invoices/{}/download", siti.invoice_id))
        .await;
    assert_eq!(file.status, 200);
    assert_eq!(
        file.header("content-disposition"),
        Some(format!("attachment; filename=\"{}.html\"", siti.invoice_number).as_str())
    );
    // It prints without the server: the styles travel inside the file.
    assert!(file.text.contains("@media print"));

    // Pay needs the form's token.
    let pay_path = format!("/portal/invoices/{}/pay", siti.invoice_id);
    assert_eq!(browser.post(&pay_path, &[]).await.status, 400);
    assert_eq!(
        browser.post(&pay_path, &[("csrf", "forged")]).await.status,
        403
    );
    assert!(snap_calls().is_empty());

    // Pay: the portal creates a Snap transaction for what is still owed and redirects there.
    let paid = browser.post(&pay_path, &[("csrf", &csrf)]).await;
    assert_eq!(paid.status, 303, "{}", paid.text);
    let location = paid.header("location").unwrap().to_string();
    assert_eq!(
        location,
        "https://app.sandbox.midtrans.com/snap/v4/redirection/snap-token-1"
    );
    let call = snap_calls()[0].clone();
    let (auth, body) = (call.auth, call.body);
    let expected_auth = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{MIDTRANS_SERVER_KEY}:"))
    );
    assert_eq!(auth, expected_auth);
    assert_eq!(body["transaction_details"]["gross_amount"], outstanding);
    let order_id = body["transaction_details"]["order_id"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        order_id.starts_with(&format!("{}~", siti.invoice_number)),
        "{order_id}"
    );
    // Pressing Pay again reuses the link.
    let again = browser.post(&pay_path, &[("csrf", &csrf)]).await;
    assert_eq!(again.header("location"), Some(location.as_str()));
    assert_eq!(snap_calls().len(), 1);

    // Midtrans notifies the webhook, its status API confirms: the invoice is paid, and the
    // portal says so.
    snap.midtrans_set(
        &order_id,
        "txn-portal-1",
        "settlement",
        &format!("{outstanding}.00"),
    );
    let hook = Api::new(ctl.api_addr)
        .post(
            "/api/v1/payments/webhooks/midtrans",
            &midtrans_notification(
                &order_id,
                "txn-portal-1",
                "200",
                "settlement",
                &format!("{outstanding}.00"),
            ),
        )
        .await
        .expect(200);
    assert_eq!(hook["result"], "recorded");
    let inv = admin
        .get(&format!("/api/v1/invoices/{}", siti.invoice_id))
        .await
        .expect(200);
    assert_eq!(inv["status"], "paid");
    let page = browser
        .get(&format!("/portal/invoices/{}", siti.invoice_id))
        .await;
    assert!(page.text.contains("Lunas"), "{}", page.text);
    assert!(!page.text.contains("Bayar sekarang"));
    let home = browser.get("/portal").await;
    assert!(home.text.contains("Pembayaran online"), "{}", home.text);
    let nothing = browser.post(&pay_path, &[("csrf", &csrf)]).await;
    assert_eq!(nothing.status, 409);
    assert_eq!(snap_calls().len(), 1);

    // Logout ends the session; the old cookie is worthless.
    let out = browser.post("/portal/logout", &[("csrf", &csrf)]).await;
    assert_eq!(out.status, 303);
    assert!(!browser.cookies.contains_key("mb_portal_session"));
    let mut replay = Browser::new(ctl.api_addr);
    replay.cookies.insert("mb_portal_session".into(), secret);
    assert_eq!(replay.get("/portal").await.status, 303);

    // Budi logs in by phone, written another way, over a TLS proxy: the cookie is Secure.
    let mut budi_browser = Browser::new(ctl.api_addr);
    budi_browser.extra.push(("X-Forwarded-Proto", "https"));
    let res = budi_browser
        .login("+62 813-1111-2222", &budi_password)
        .await;
    assert_eq!(res.status, 303, "{}", res.text);
    assert!(
        res.header_all("set-cookie")
            .iter()
            .any(|c| c.starts_with("mb_portal_session=") && c.contains("Secure"))
    );
    let home = budi_browser.get("/portal").await;
    assert!(home.text.contains("Budi Santoso"));
    assert!(home.text.contains(budi.invoice_number.as_str()));
    assert!(!home.text.contains(siti.invoice_number.as_str()));

    // A new password ends the sessions opened with the old one.
    admin
        .put(
            &format!("/api/v1/customers/{}/portal-password", budi.customer_id),
            &json!({}),
        )
        .await
        .expect(200);
    assert_eq!(budi_browser.get("/portal").await.status, 303);
    db.cleanup().await;
}

async fn logins_are_throttled_and_forms_need_their_token(backend: Backend) {
    let Scenario {
        dir: _dir,
        db,
        ctl,
        admin,
    } = Scenario::start(backend).await;
    let (site_id, plan_id) = (
        scenario::site(&admin, "Dusun Barat").await,
        scenario::pppoe_plan(&admin, "Rumah 10M", 150000).await,
    );
    let siti = scenario::subscriber(
        &admin,
        &site_id,
        &plan_id,
        "Siti Aminah",
        "081298765432",
        "siti@barat",
    )
    .await;
    admin
        .put(
            &format!("/api/v1/customers/{}/portal-password", siti.customer_id),
            &json!({"password": "siti-portal-pass"}),
        )
        .await
        .expect(200);

    // Without the form's token (or with another browser's) the login is refused unchecked.
    let mut browser = Browser::new(ctl.api_addr);
    let no_token = browser
        .post(
            "/portal/login",
            &[
                ("csrf", ""),
                ("identifier", &siti.number),
                ("password", "siti-portal-pass"),
            ],
        )
        .await;
    assert_eq!(no_token.status, 403, "{}", no_token.text);
    let mut other = Browser::new(ctl.api_addr);
    let other_form = other.get("/portal/login").await;
    let foreign = browser
        .post(
            "/portal/login",
            &[
                ("csrf", &csrf(&other_form.text)),
                ("identifier", &siti.number),
                ("password", "siti-portal-pass"),
            ],
        )
        .await;
    assert_eq!(foreign.status, 403);

    // Five wrong passwords lock this address out of the account, whichever identifier names it.
    for i in 0..5 {
        let id = if i % 2 == 0 {
            siti.number.clone()
        } else {
            "0812-9876-5432".to_string()
        };
        let res = browser.login(&id, "wrong-password-123").await;
        assert_eq!(res.status, 401, "attempt {i}: {}", res.text);
        assert!(res.text.contains("Nomor atau kata sandi salah."));
    }
    let locked = browser.login(&siti.number, "siti-portal-pass").await;
    assert_eq!(locked.status, 429, "{}", locked.text);
    assert!(locked.text.contains("Terlalu banyak percobaan"));
    assert!(!browser.cookies.contains_key("mb_portal_session"));
    // Admin logins count under their own keys: the admin is not locked.
    Api::admin(ctl.api_addr).await;
    // Unknown customers fail the same way and are throttled too.
    let res = browser.login("C999999", "whatever-password").await;
    assert_eq!(res.status, 401);
    db.cleanup().await;
}

fn acct(
    user: &str,
    session: &str,
    status: AcctStatus,
    at_ms: i64,
    secs: u64,
    down: u64,
    up: u64,
) -> AccountingRecord {
    let session_id = format!("{session}-{user}");
    AccountingRecord {
        id: RecordId::derive("router-1", &session_id, status, secs),
        nas_identifier: "router-1".into(),
        nas_ip: None,
        session_id,
        username: user.to_string(),
        status,
        event_time_ms: at_ms,
        session_time_secs: secs,
        input_octets: up,
        output_octets: down,
        input_packets: 0,
        output_packets: 0,
        terminate_cause: None,
        framed_ip: None,
        calling_station_id: None,
    }
}

async fn voucher_lookup_follows_accounting(backend: Backend) {
    let Scenario {
        dir: _dir,
        db,
        ctl,
        admin,
    } = Scenario::start(backend).await;
    let site = admin
        .post("/api/v1/sites", &json!({"name": "Warung Kopi"}))
        .await
        .expect(201);
    let site_id = site["site"]["id"].as_str().unwrap().to_string();
    let plan = admin
        .post(
            "/api/v1/plans",
            &json!({"name": "Voucher 2 jam", "kind": "hotspot", "price": 5000,
                    "time_limit_secs": 7200, "data_limit_bytes": 2_000_000_000u64, "validity_secs": 86400}),
        )
        .await
        .expect(201);
    let batch = admin
        .post(
            "/api/v1/voucher-batches",
            &json!({"plan_id": plan["id"], "count": 1, "scope": "site", "site_id": site_id}),
        )
        .await
        .expect(201);
    let list = admin
        .get(&format!(
            "/api/v1/voucher-batches/{}/vouchers",
            batch["id"].as_str().unwrap()
        ))
        .await
        .expect(200);
    let code = list["items"][0]["code"].as_str().unwrap().to_string();

    let mut browser = Browser::new(ctl.api_addr);
    browser.lang = Some("en");
    let form = browser.get("/portal/voucher").await;
    assert_eq!(form.status, 200);
    let csrf = csrf(&form.text);
    let fresh = browser
        .post("/portal/voucher", &[("csrf", &csrf), ("code", &code)])
        .await;
    assert_eq!(fresh.status, 200, "{}", fresh.text);
    for needle in [
        "Voucher 2 jam",
        "Unused",
        "2 h 0 min",
        "2.0 GB",
        "Validity starts when",
    ] {
        assert!(
            fresh.text.contains(needle),
            "{needle} missing:\n{}",
            fresh.text
        );
    }

    // Accounting arrives through the controller's ingest: 25 minutes, 300 MB down, 50 MB up.
    let cdb = ctl.db().await;
    let now = mikrobill_core::db::now_ms();
    mikrobill_core::accounting::ingest(
        &cdb,
        &site_id,
        &[
            acct(&code, "s", AcctStatus::Start, now - 1_500_000, 0, 0, 0),
            acct(
                &code,
                "s",
                AcctStatus::InterimUpdate,
                now - 900_000,
                600,
                100_000_000,
                20_000_000,
            ),
            acct(
                &code,
                "s",
                AcctStatus::InterimUpdate,
                now,
                1500,
                300_000_000,
                50_000_000,
            ),
        ],
    )
    .await
    .unwrap();
    let used = browser
        .post("/portal/voucher", &[("csrf", &csrf), ("code", &code)])
        .await;
    assert_eq!(used.status, 200, "{}", used.text);
    // 7200 - 1500 s = 95 min; 2 GB - 350 MB = 1.65 GB.
    for needle in [
        "Active",
        "1 h 35 min",
        "1.6 GB",
        "Valid until",
        "First used",
    ] {
        assert!(
            used.text.contains(needle),
            "{needle} missing:\n{}",
            used.text
        );
    }

    // Guessing codes: ten misses lock the address out, even for a real code.
    for i in 0..10 {
        let miss = browser
            .post(
                "/portal/voucher",
                &[("csrf", &csrf), ("code", &format!("GUESS{i:04}"))],
            )
            .await;
        assert_eq!(miss.status, 404, "guess {i}");
        assert!(miss.text.contains("No such voucher."));
    }
    let locked = browser
        .post("/portal/voucher", &[("csrf", &csrf), ("code", &code)])
        .await;
    assert_eq!(locked.status, 429);
    assert!(locked.text.contains("Too many attempts."));
    // Without the form token nothing is looked up.
    let mut stranger = Browser::new(ctl.api_addr);
    assert_eq!(
        stranger
            .post("/portal/voucher", &[("csrf", "x"), ("code", &code)])
            .await
            .status,
        403
    );
    db.cleanup().await;
}

async fn language_follows_the_browser_and_the_switch(backend: Backend) {
    let Scenario {
        dir: _dir,
        db,
        ctl,
        admin,
    } = Scenario::start(backend).await;
    let (site_id, plan_id) = (
        scenario::site(&admin, "Dusun Barat").await,
        scenario::pppoe_plan(&admin, "Rumah 10M", 150000).await,
    );
    let siti = scenario::subscriber(
        &admin,
        &site_id,
        &plan_id,
        "Siti Aminah",
        "081298765432",
        "siti@barat",
    )
    .await;
    admin
        .put(
            &format!("/api/v1/customers/{}/portal-password", siti.customer_id),
            &json!({"password": "siti-portal-pass"}),
        )
        .await
        .expect(200);
    let en_money =
        mikrobill_http::web::format_money(siti.total, "IDR", 0, mikrobill_http::web::Lang::En);
    assert_ne!(en_money, rupiah_id(siti.total));

    // No Accept-Language: Indonesian.
    let mut plain = Browser::new(ctl.api_addr);
    let login = plain.get("/portal/login").await;
    assert!(login.text.contains("<html lang=\"id\">"));
    assert!(login.text.contains("Kata sandi"));

    let mut english = Browser::new(ctl.api_addr);
    english.lang = Some("en-US,en;q=0.9,id;q=0.5");
    let login = english.get("/portal/login").await;
    assert!(login.text.contains("<html lang=\"en\">"));
    assert!(login.text.contains("Password"));
    assert_eq!(
        english.login(&siti.number, "siti-portal-pass").await.status,
        303
    );
    let home = english.get("/portal").await;
    assert!(home.text.contains(&en_money), "{}", home.text);
    assert!(home.text.contains("Unpaid"));
    assert!(!home.text.contains(&rupiah_id(siti.total)));

    let mut indonesian = Browser::new(ctl.api_addr);
    indonesian.lang = Some("id-ID,id;q=0.9,en;q=0.8");
    assert_eq!(
        indonesian
            .login(&siti.number, "siti-portal-pass")
            .await
            .status,
        303
    );
    let home = indonesian.get("/portal").await;
    assert!(home.text.contains(&rupiah_id(siti.total)));
    assert!(home.text.contains("Belum dibayar"));

    // The switch overrides the header and comes back to the page, only ever within the portal.
    let switched = indonesian.get("/portal/lang/en?back=/portal").await;
    assert_eq!(switched.status, 303);
    assert_eq!(switched.header("location"), Some("/portal"));
    assert_eq!(
        indonesian.cookies.get("mb_portal_lang").map(String::as_str),
        Some("en")
    );
    let home = indonesian.get("/portal").await;
    assert!(home.text.contains(&en_money));
    let evil = indonesian.get("/portal/lang/id?back=//evil.example/").await;
    assert_eq!(evil.header("location"), Some("/portal"));
    assert_eq!(indonesian.get("/portal/lang/fr").await.status, 404);
    // From a page with a query, the switch link carries the whole of it, encoded, and the
    // switch lands on that page again.
    let page = indonesian.get("/portal/voucher?from=sms&x=1").await;
    let link = "/portal/lang/id?back=%2Fportal%2Fvoucher%3Ffrom%3Dsms%26x%3D1";
    assert!(
        page.text.contains(&link.replace('&', "&amp;")) || page.text.contains(link),
        "{}",
        page.text
    );
    let back = indonesian.get(link).await;
    assert_eq!(
        back.header("location"),
        Some("/portal/voucher?from=sms&x=1")
    );

    // Unknown portal pages are pages, not API problems.
    let missing = plain.get("/portal/no-such-page").await;
    assert_eq!(missing.status, 404);
    assert!(missing.text.contains("Halaman tidak ditemukan."));
    let css = plain.get("/portal/assets/portal.css").await;
    assert_eq!(css.status, 200);
    assert!(css.text.contains("@media print"));
    db.cleanup().await;
}

/// The six-digit code in a message text.
fn code_in(text: &str) -> String {
    text.as_bytes()
        .windows(6)
        .find(|w| w.iter().all(u8::is_ascii_digit))
        .map(|w| String::from_utf8(w.to_vec()).unwrap())
        .expect("a six-digit code")
}

async fn a_one_time_code_arrives_by_whatsapp_and_logs_in_once(backend: Backend) {
    let Scenario {
        dir: _dir,
        db: _db,
        ctl,
        admin,
    } = Scenario::start(backend).await;
    let wa_gateway = Gateway::default();
    let wa = serve_gateway(wa_gateway.clone()).await;
    admin
        .post(
            "/api/v1/notification-channels",
            &json!({"name": "WhatsApp", "rate_per_minute": 6000,
                    "config": {"kind": "whatsapp_cloud", "api_base": wa, "phone_number_id": "1", "access_token": "t"}}),
        )
        .await
        .expect(201);
    let (site_id, plan_id) = (
        scenario::site(&admin, "Dusun Barat").await,
        scenario::pppoe_plan(&admin, "Rumah 10M", 150000).await,
    );
    let siti = scenario::subscriber(
        &admin,
        &site_id,
        &plan_id,
        "Siti Aminah",
        "081298765432",
        "siti@barat",
    )
    .await;
    let codes = || {
        wa_gateway
            .hits("/")
            .iter()
            .filter_map(|h| serde_json::from_str::<Value>(&h.body).ok())
            .filter_map(|m| m["text"]["body"].as_str().map(str::to_string))
            .filter(|t| t.contains("Kode masuk"))
            .collect::<Vec<_>>()
    };

    // She has no password: she asks for a code with her phone number.
    let mut b = Browser::new(ctl.api_addr);
    let form = b.get("/portal/login").await;
    let asked = b
        .post(
            "/portal/login/code",
            &[
                ("csrf", &csrf(&form.text)),
                ("identifier", "0812-9876-5432"),
            ],
        )
        .await;
    assert_eq!(asked.status, 200, "{}", asked.text);
    assert!(asked.text.contains("kode sudah dikirim"), "{}", asked.text);
    // Asking again at once sends nothing new; an unknown number gets the same answer.
    let again = b
        .post(
            "/portal/login/code",
            &[("csrf", &csrf(&asked.text)), ("identifier", &siti.number)],
        )
        .await;
    assert_eq!(again.status, 200);
    let unknown = b
        .post(
            "/portal/login/code",
            &[
                ("csrf", &csrf(&again.text)),
                ("identifier", "0899-0000-1111"),
            ],
        )
        .await;
    assert_eq!(unknown.status, 200);
    assert_eq!(
        unknown.text,
        again.text.replace(&siti.number, "0899-0000-1111")
    );
    let text = mikrobill_tests::eventually(
        std::time::Duration::from_secs(20),
        "the code on WhatsApp",
        || async { codes().into_iter().next() },
    )
    .await;
    let code = code_in(&text);
    assert!(text.contains("berlaku 10 menit"), "{text}");

    // A wrong code is refused; the right one logs her in, once.
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let refused = b
        .post(
            "/portal/login/code/verify",
            &[
                ("csrf", &csrf(&asked.text)),
                ("identifier", &siti.number),
                ("code", wrong),
            ],
        )
        .await;
    assert_eq!(refused.status, 401);
    assert!(refused.text.contains("Kode salah"));
    let ok = b
        .post(
            "/portal/login/code/verify",
            &[
                ("csrf", &csrf(&refused.text)),
                ("identifier", &siti.number),
                ("code", &code),
            ],
        )
        .await;
    assert_eq!(ok.status, 303, "{}", ok.text);
    let home = b.get("/portal").await;
    assert_eq!(home.status, 200);
    assert!(home.text.contains("Siti Aminah"));
    assert!(home.text.contains(&siti.invoice_number));

    let mut other = Browser::new(ctl.api_addr);
    let form = other.get("/portal/login").await;
    let reused = other
        .post(
            "/portal/login/code/verify",
            &[
                ("csrf", &csrf(&form.text)),
                ("identifier", &siti.number),
                ("code", &code),
            ],
        )
        .await;
    assert_eq!(reused.status, 401, "a code works once");
    assert_eq!(codes().len(), 1, "one code sent: {:?}", codes());
    let sent = admin
        .get(&format!(
            "/api/v1/notifications?topic=portal.code&customer_id={}",
            siti.customer_id
        ))
        .await
        .expect(200);
    assert_eq!(sent["items"].as_array().unwrap().len(), 1);
    assert!(
        !sent["items"][0]["body"].as_str().unwrap().contains(&code),
        "staff never see a login code"
    );
}

/// A fake Telegram Bot API: `getUpdates` serves the queued updates from the asked offset on,
/// `sendMessage` is recorded.
#[derive(Clone, Default)]
struct FakeBot {
    updates: Arc<Mutex<Vec<Value>>>,
    sent: Arc<Mutex<Vec<Value>>>,
}

async fn start_fake_bot() -> (FakeBot, String) {
    let bot = FakeBot::default();
    let state = bot.clone();
    let app = axum::Router::new().fallback(move |uri: axum::http::Uri, body: axum::body::Bytes| {
        let bot = state.clone();
        async move {
            let req: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            if uri.path().ends_with("/getUpdates") {
                let from = req["offset"].as_i64().unwrap_or(0);
                let result: Vec<Value> = bot
                    .updates
                    .lock()
                    .unwrap()
                    .iter()
                    .filter(|u| u["update_id"].as_i64().unwrap() >= from)
                    .cloned()
                    .collect();
                Json(json!({"ok": true, "result": result}))
            } else {
                bot.sent.lock().unwrap().push(req);
                Json(json!({"ok": true, "result": {"message_id": 1}}))
            }
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (bot, format!("http://{addr}"))
}

async fn a_subscriber_links_telegram_from_the_portal(backend: Backend) {
    let Scenario {
        dir: _dir,
        db: _db,
        ctl,
        admin,
    } = Scenario::start(backend).await;
    let (bot, api_base) = start_fake_bot().await;
    admin
        .post(
            "/api/v1/notification-channels",
            &json!({"name": "Telegram", "rate_per_minute": 6000,
                    "config": {"kind": "telegram", "api_base": api_base, "bot_token": "9:tok", "bot_username": "IspBot"}}),
        )
        .await
        .expect(201);
    let (site_id, plan_id) = (
        scenario::site(&admin, "Dusun Barat").await,
        scenario::pppoe_plan(&admin, "Rumah 10M", 150000).await,
    );
    let siti = scenario::subscriber(
        &admin,
        &site_id,
        &plan_id,
        "Siti Aminah",
        "081298765432",
        "siti@barat",
    )
    .await;
    admin
        .put(
            &format!("/api/v1/customers/{}/portal-password", siti.customer_id),
            &json!({"password": "kata-sandi-siti"}),
        )
        .await
        .expect(200);
    let mut b = Browser::new(ctl.api_addr);
    assert_eq!(b.login(&siti.number, "kata-sandi-siti").await.status, 303);
    let home = b.get("/portal").await;
    assert!(home.text.contains("Hubungkan Telegram"), "{}", home.text);
    let go = b
        .post("/portal/telegram", &[("csrf", &csrf(&home.text))])
        .await;
    assert_eq!(go.status, 303, "{}", go.text);
    let link = go.header("location").unwrap().to_string();
    let token = link
        .strip_prefix("https://t.me/IspBot?start=")
        .unwrap_or_else(|| panic!("deep link {link}"))
        .to_string();

    // She presses Start in Telegram: the bot gets "/start <token>" from her chat.
    bot.updates.lock().unwrap().push(json!({
        "update_id": 500, "message": {"text": format!("/start {token}"), "chat": {"id": 555001}}
    }));
    let prefs_path = format!(
        "/api/v1/customers/{}/notification-preferences",
        siti.customer_id
    );
    mikrobill_tests::eventually(
        std::time::Duration::from_secs(20),
        "the chat is linked",
        || async {
            (admin.get(&prefs_path).await.json()["telegram_chat_id"] == "555001").then_some(())
        },
    )
    .await;
    assert!(
        bot.sent
            .lock()
            .unwrap()
            .iter()
            .any(|m| m["chat_id"] == "555001"),
        "the bot confirms"
    );
    assert!(b.get("/portal").await.text.contains("sudah terhubung"));

    // The token works once: someone else replaying it links nothing.
    bot.updates.lock().unwrap().push(json!({
        "update_id": 501, "message": {"text": format!("/start {token}"), "chat": {"id": 666}}
    }));
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    assert_eq!(
        admin.get(&prefs_path).await.json()["telegram_chat_id"],
        "555001"
    );
    let shown = admin.get("/api/v1/notification-channels").await.text;
    assert!(!shown.contains("9:tok"), "{shown}");
}

/// The first `/portal/orders/...` link in a redirect.
fn order_location(res: &Response) -> String {
    assert_eq!(res.status, 303, "{}", res.text);
    let to = res.header("location").unwrap().to_string();
    assert!(to.starts_with("/portal/orders/"), "{to}");
    to
}

async fn a_visitor_buys_a_voucher_and_a_subscriber_tops_up(backend: Backend) {
    init_tracing();
    let db = TestDb::new(backend).await;
    let dir = tempfile::tempdir().unwrap();
    let snap = FakeGateways::start().await;
    let env = snap.env("midtrans");
    let ctl = Controller::start_env(dir.path(), &db, &env).await;
    let admin = Api::admin(ctl.api_addr).await;
    let wa_gateway = Gateway::default();
    let wa = serve_gateway(wa_gateway.clone()).await;
    admin
        .post(
            "/api/v1/notification-channels",
            &json!({"name": "WhatsApp", "rate_per_minute": 6000,
                    "config": {"kind": "whatsapp_cloud", "api_base": wa, "phone_number_id": "1", "access_token": "t"}}),
        )
        .await
        .expect(201);
    let site_id = scenario::site(&admin, "Dusun Timur").await;
    let daily = scenario::plan(
        &admin,
        &json!({"name": "Harian", "kind": "hotspot", "price": 5000, "validity_secs": 86400}),
    )
    .await;
    // Free and PPPoE plans are not for sale in the portal.
    scenario::plan(
        &admin,
        &json!({"name": "Gratis", "kind": "hotspot", "price": 0}),
    )
    .await;
    let home = scenario::pppoe_plan(&admin, "Rumah 10M", 150000).await;

    // A visitor on the hotspot of one site: the page lists what can be bought.
    let mut visitor = Browser::new(ctl.api_addr);
    let page = visitor.get(&format!("/portal/buy?site={site_id}")).await;
    assert_eq!(page.status, 200);
    assert!(page.text.contains("Harian"), "{}", page.text);
    assert!(page.text.contains(&rupiah_id(5000)), "{}", page.text);
    assert!(!page.text.contains("Gratis") && !page.text.contains("Rumah 10M"));
    let token = csrf(&page.text);
    assert_eq!(
        visitor
            .post("/portal/buy", &[("csrf", "forged"), ("plan_id", &daily)])
            .await
            .status,
        403
    );
    let refused = visitor
        .post("/portal/buy", &[("csrf", &token), ("plan_id", &home)])
        .await;
    assert_eq!(refused.status, 422, "{}", refused.text);
    let bad_phone = visitor
        .post(
            "/portal/buy",
            &[("csrf", &token), ("plan_id", &daily), ("phone", "call me")],
        )
        .await;
    assert_eq!(bad_phone.status, 422);
    let opened = visitor
        .post(
            "/portal/buy",
            &[
                ("csrf", &token),
                ("plan_id", &daily),
                ("site", &site_id),
                ("phone", "0812-7777-1111"),
            ],
        )
        .await;
    let order_page = order_location(&opened);
    let snap_call = snap
        .calls()
        .into_iter()
        .find(|c| c.path == "/snap/v1/transactions")
        .expect("a Snap transaction");
    let order_id = snap_call.body["transaction_details"]["order_id"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(order_id.starts_with("VCR-"), "{order_id}");
    assert_eq!(snap_call.body["transaction_details"]["gross_amount"], 5000);
    // The order id alone (as webhooks and logs carry it) does not open the page.
    assert_eq!(
        visitor
            .get(&format!("/portal/orders/{order_id}"))
            .await
            .status,
        404
    );
    assert_eq!(
        visitor
            .get(&format!("/portal/orders/{order_id}?k=guess"))
            .await
            .status,
        404
    );
    let pending = visitor.get(&order_page).await;
    assert_eq!(pending.status, 200);
    assert!(
        pending.text.contains("http-equiv=\"refresh\""),
        "refreshes while pending"
    );
    assert!(pending.text.contains("snap-token"), "{}", pending.text);
    assert_eq!(pending.header("cache-control"), Some("no-store"));

    // A pending notification issues nothing; the settlement issues the voucher once.
    snap.midtrans_set(&order_id, "txn-v-1", "pending", "5000.00");
    let hook = |status: &'static str, code: &'static str| {
        let order_id = order_id.clone();
        let addr = ctl.api_addr;
        async move {
            Api::new(addr)
                .post(
                    "/api/v1/payments/webhooks/midtrans",
                    &midtrans_notification(&order_id, "txn-v-1", code, status, "5000.00"),
                )
                .await
        }
    };
    assert_eq!(
        hook("pending", "201").await.expect(200)["result"],
        "ignored"
    );
    assert!(!visitor.get(&order_page).await.text.contains("voucher-code"));
    snap.midtrans_set(&order_id, "txn-v-1", "settlement", "5000.00");
    assert_eq!(
        hook("settlement", "200").await.expect(200)["result"],
        "recorded"
    );
    assert_eq!(
        hook("settlement", "200").await.expect(200)["result"],
        "duplicate"
    );
    let paid = visitor.get(&order_page).await;
    assert!(!paid.text.contains("http-equiv=\"refresh\""));
    let code = paid
        .text
        .split("id=\"voucher-code\">")
        .nth(1)
        .and_then(|r| r.split('<').next())
        .expect("the code on the page")
        .to_string();
    // The code also goes to the WhatsApp number given, once.
    let sent = mikrobill_tests::eventually(
        std::time::Duration::from_secs(20),
        "the code by WhatsApp",
        || async {
            let texts: Vec<(String, String)> = wa_gateway
                .hits("/")
                .iter()
                .filter_map(|h| serde_json::from_str::<Value>(&h.body).ok())
                .filter_map(|m| {
                    Some((
                        m["to"].as_str()?.to_string(),
                        m["text"]["body"].as_str()?.to_string(),
                    ))
                })
                .filter(|(_, t)| t.contains(&code))
                .collect();
            (!texts.is_empty()).then_some(texts)
        },
    )
    .await;
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0].0, "6281277771111");
    let voucher = admin
        .get(&format!("/api/v1/vouchers/{code}"))
        .await
        .expect(200);
    assert_eq!(voucher["status"], "sold");
    assert_eq!(voucher["price"], 5000);
    assert_eq!(voucher["site_id"], site_id.as_str());
    let sales = admin
        .get("/api/v1/reports/revenue?by=method")
        .await
        .expect(200);
    let gateway_line = sales["lines"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["key"] == "gateway")
        .cloned()
        .expect("gateway revenue");
    assert_eq!(
        (
            gateway_line["count"].as_i64(),
            gateway_line["amount"].as_i64()
        ),
        (Some(1), Some(5000))
    );
    let all: Value = admin.get("/api/v1/vouchers?limit=100").await.expect(200);
    assert_eq!(
        all["items"].as_array().unwrap().len(),
        1,
        "exactly one voucher issued"
    );

    // A subscriber tops up: the money pays the open invoice, the rest is credit.
    let siti = scenario::subscriber(
        &admin,
        &site_id,
        &home,
        "Siti Aminah",
        "081298765432",
        "siti@timur",
    )
    .await;
    admin
        .put(
            &format!("/api/v1/customers/{}/portal-password", siti.customer_id),
            &json!({"password": "siti-portal-pass"}),
        )
        .await
        .expect(200);
    let mut browser = Browser::new(ctl.api_addr);
    assert_eq!(
        browser.get("/portal/topup").await.status,
        303,
        "needs a login"
    );
    assert_eq!(
        browser.login(&siti.number, "siti-portal-pass").await.status,
        303
    );
    let form = browser.get("/portal/topup").await;
    assert_eq!(form.status, 200);
    let token = csrf(&form.text);
    let small = browser
        .post("/portal/topup", &[("csrf", &token), ("amount", "500")])
        .await;
    assert_eq!(small.status, 422, "below the minimum");
    let amount = siti.total + 50_000;
    let opened = browser
        .post(
            "/portal/topup",
            &[
                ("csrf", &token),
                ("amount", &rupiah_id(amount).replace("Rp", "")),
            ],
        )
        .await;
    let topup_page = order_location(&opened);
    let topup_id = snap
        .calls()
        .into_iter()
        .filter(|c| c.path == "/snap/v1/transactions")
        .filter_map(|c| {
            c.body["transaction_details"]["order_id"]
                .as_str()
                .map(str::to_string)
        })
        .find(|o| o.starts_with("TOPUP-"))
        .expect("a top-up transaction");
    let gross = format!("{amount}.00");
    snap.midtrans_set(&topup_id, "txn-t-1", "settlement", &gross);
    let hook = Api::new(ctl.api_addr)
        .post(
            "/api/v1/payments/webhooks/midtrans",
            &midtrans_notification(&topup_id, "txn-t-1", "200", "settlement", &gross),
        )
        .await
        .expect(200);
    assert_eq!(hook["result"], "recorded");
    let payment_id = hook["payment_id"].as_str().unwrap().to_string();
    let inv = admin
        .get(&format!("/api/v1/invoices/{}", siti.invoice_id))
        .await
        .expect(200);
    assert_eq!(inv["status"], "paid");
    let customer = admin
        .get(&format!("/api/v1/customers/{}", siti.customer_id))
        .await
        .expect(200);
    assert_eq!(customer["balance"], 50_000, "{customer}");
    let payment = admin
        .get(&format!("/api/v1/payments/{payment_id}"))
        .await
        .expect(200);
    assert_eq!(payment["method"], "gateway");
    assert_eq!(payment["amount"], amount);
    let done = browser.get(&topup_page).await;
    assert!(
        !done.text.contains("http-equiv=\"refresh\""),
        "{}",
        done.text
    );
    // The visitor's order page does not open another order's page.
    let foreign = topup_page.replace(&topup_id, &order_id);
    assert_eq!(visitor.get(&foreign).await.status, 404);
    drop(ctl);
    db.cleanup().await;
}
