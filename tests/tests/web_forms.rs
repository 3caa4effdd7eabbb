//! The admin UI's forms change the same records the API does (checked back through the API):
//! settings, plans, site groups, jobs, admin users, API tokens, reseller credit and batch
//! sales, single voucher sales and invoice voids. Refused changes come back as a message on
//! the form's page, not an error page.

use mikrobill_tests::http::{ADMIN_PASSWORD, Api};
use mikrobill_tests::web::WebClient;
use mikrobill_tests::{Backend, Controller, TestDb, init_tracing};
use serde_json::json;

mikrobill_tests::on_both_backends!(forms_change_what_the_api_sees);

/// The one-shot message a redirect left, as the next page shows it.
async fn flash(web: &mut WebClient, location: &str) -> String {
    let page = web.get(location).await;
    let at = page.text.find("class=\"flash").expect("a flash message");
    let rest = &page.text[at..];
    let start = rest.find('>').unwrap() + 1;
    rest[start..rest.find("</p>").unwrap()].to_string()
}

async fn forms_change_what_the_api_sees(backend: Backend) {
    init_tracing();
    let db = TestDb::new(backend).await;
    let dir = tempfile::tempdir().unwrap();
    let ctl = Controller::start(dir.path(), &db).await;
    let api = Api::admin(ctl.api_addr).await;
    let mut web = WebClient::login(ctl.api_addr, "admin", ADMIN_PASSWORD).await;

    // Settings: language, company and the login URL printed on vouchers.
    let res = web
        .post_form(
            "/settings",
            "/settings",
            &[
                ("company_name", "Net Desa"),
                ("company_phone", "0274-123456"),
                ("currency", "IDR"),
                ("currency_exponent", "0"),
                ("tax_rate_bp", "1100"),
                ("utc_offset_minutes", "420"),
                ("default_due_days", "7"),
                ("default_grace_days", "3"),
                ("language", "en"),
                (
                    "hotspot_login_url",
                    "http://login.netdesa.id/login?u={code}",
                ),
            ],
        )
        .await;
    assert_eq!(res.status, 303);
    // Said in the language of the page that saved it; from now on the UI speaks English.
    assert_eq!(flash(&mut web, "/settings").await, "Tersimpan.");
    assert!(web.get("/").await.text.contains("<html lang=\"en\">"));
    let s = api.get("/api/v1/settings/billing").await.expect(200);
    assert_eq!(s["company_name"], "Net Desa");
    assert_eq!(s["language"], "en");
    assert_eq!(
        s["hotspot_login_url"],
        "http://login.netdesa.id/login?u={code}"
    );
    // A refused value comes back on the form's page.
    let res = web
        .post_form(
            "/settings",
            "/settings",
            &[
                ("company_name", "Net Desa"),
                ("hotspot_login_url", "ftp://x"),
            ],
        )
        .await;
    assert_eq!(res.header("location"), Some("/settings"));
    assert!(
        flash(&mut web, "/settings")
            .await
            .contains("hotspot_login_url")
    );

    // Plans: create and archive.
    let res = web
        .post_form(
            "/plans",
            "/plans",
            &[
                ("name", "Voucher 2 jam"),
                ("kind", "hotspot"),
                ("price", "3.000"),
                ("time_limit", "2h"),
            ],
        )
        .await;
    assert_eq!(res.status, 303);
    let plans = api.get("/api/v1/plans?kind=hotspot").await.expect(200);
    let plan = plans["items"][0].clone();
    assert_eq!(plan["price"], 3000);
    assert_eq!(plan["time_limit_secs"], 7200);
    let plan_id = plan["id"].as_str().unwrap().to_string();
    // Editing keeps what the form shows and changes what was typed.
    let res = web
        .post_form(
            &format!("/plans/{plan_id}"),
            &format!("/plans/{plan_id}"),
            &[
                ("name", "Voucher 2 jam"),
                ("kind", "hotspot"),
                ("price", "3000"),
                ("time_limit", "2h"),
                ("validity", "1d 12h"),
                ("data_limit_mb", "500"),
                ("fup_rate_limit", "256k/512k"),
                ("shared_users", "2"),
            ],
        )
        .await;
    assert_eq!(res.status, 303);
    let edited = api
        .get(&format!("/api/v1/plans/{plan_id}"))
        .await
        .expect(200);
    assert_eq!(edited["validity_secs"], 36 * 3600);
    assert_eq!(edited["data_limit_bytes"], 500_000_000);
    assert_eq!(edited["fup_rate_limit"], "256k/512k");
    assert_eq!(edited["shared_users"], 2);
    let page = web.get(&format!("/plans/{plan_id}")).await.text;
    assert!(
        page.contains("value=\"1d 12h\"")
            && page.contains("value=\"2h\"")
            && page.contains("value=\"256k/512k\""),
        "{page}"
    );

    // The print sheet uses the saved login URL.
    let batch = api
        .post(
            "/api/v1/voucher-batches",
            &json!({"plan_id": plan_id, "count": 2, "scope": "all"}),
        )
        .await
        .expect(201);
    let batch_id = batch["id"].as_str().unwrap().to_string();
    let sheet = web
        .get(&format!("/vouchers/batches/{batch_id}/print"))
        .await;
    assert!(
        sheet
            .text
            .contains("data-url=\"http://login.netdesa.id/login?u="),
        "{}",
        sheet.text
    );
    assert!(sheet.text.contains("Net Desa"));
    assert!(sheet.text.contains("Valid for: 1d 12h"));
    assert!(sheet.text.contains("Time limit: 2h"));

    // Sell one voucher at the desk, then the rest of the batch to a reseller.
    let code = api
        .get(&format!("/api/v1/voucher-batches/{batch_id}/vouchers"))
        .await
        .expect(200)["items"][0]["code"]
        .as_str()
        .unwrap()
        .to_string();
    let res = web
        .post_form(
            "/vouchers",
            &format!("/vouchers/{code}/sell"),
            &[("back", "/vouchers")],
        )
        .await;
    assert_eq!(res.header("location"), Some("/vouchers"));
    assert_eq!(
        api.get(&format!("/api/v1/vouchers/{code}"))
            .await
            .expect(200)["status"],
        "sold"
    );
    let res = web
        .post_form(
            "/admins",
            "/admins",
            &[
                ("username", "toko-sari"),
                ("password", "toko-sari-password"),
                ("role", "reseller"),
            ],
        )
        .await;
    assert_eq!(res.status, 303);
    let reseller_id = res
        .header("location")
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_string();
    let res = web
        .post_form(
            "/resellers",
            &format!("/resellers/{reseller_id}/credit"),
            &[("amount", "10000"), ("note", "setor tunai")],
        )
        .await;
    assert_eq!(res.status, 303);
    let res = web
        .post_form(
            &format!("/vouchers/batches/{batch_id}"),
            &format!("/vouchers/batches/{batch_id}/sell"),
            &[("reseller_id", &reseller_id)],
        )
        .await;
    assert_eq!(res.status, 303);
    let reseller = api
        .get(&format!("/api/v1/admins/{reseller_id}"))
        .await
        .expect(200);
    assert_eq!(reseller["balance"], 10000 - 3000);

    // Site groups: create, add a member, remove it.
    let site = api
        .post("/api/v1/sites", &json!({"name": "Dusun Kidul"}))
        .await
        .expect(201);
    let site_id = site["site"]["id"].as_str().unwrap().to_string();
    web.post_form(
        "/sites/groups",
        "/sites/groups",
        &[("name", "Kecamatan Utara")],
    )
    .await;
    let groups = api.get("/api/v1/site-groups").await.expect(200);
    let group_id = groups["items"][0]["id"].as_str().unwrap().to_string();
    web.post_form(
        "/sites/groups",
        &format!("/sites/groups/{group_id}/add"),
        &[("site_id", &site_id)],
    )
    .await;
    let g = api
        .get(&format!("/api/v1/site-groups/{group_id}"))
        .await
        .expect(200);
    assert_eq!(g["sites"][0]["id"], site_id.as_str());
    let res = web
        .post_form(
            "/vouchers/batches/new",
            "/vouchers/batches",
            &[
                ("plan_id", &plan_id),
                ("count", "3"),
                ("scope", "group"),
                ("group_id", &group_id),
            ],
        )
        .await;
    assert_eq!(res.status, 303);
    let group_batch = res
        .header("location")
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_string();
    let b = api
        .get(&format!("/api/v1/voucher-batches/{group_batch}"))
        .await
        .expect(200);
    assert_eq!(b["scope"], "group");
    assert_eq!(b["group_id"], group_id.as_str());
    web.post_form(
        "/sites/groups",
        &format!("/sites/groups/{group_id}/remove"),
        &[("site_id", &site_id)],
    )
    .await;
    let g = api
        .get(&format!("/api/v1/site-groups/{group_id}"))
        .await
        .expect(200);
    assert_eq!(g["sites"].as_array().unwrap().len(), 0);

    // A webhook for two event kinds; its secret is shown once.
    let page = web
        .post_form(
            "/webhooks",
            "/webhooks",
            &[
                ("url", "https://crm.netdesa.id/hooks/mikrobill"),
                ("events", "payment.received"),
                ("events", "subscription.isolated"),
            ],
        )
        .await;
    assert_eq!(page.status, 200);
    assert!(page.text.contains("id=\"webhook-secret\""));
    let hooks = api.get("/api/v1/webhooks").await.expect(200);
    assert_eq!(
        hooks[0]["events"],
        json!(["payment.received", "subscription.isolated"])
    );
    let hook_id = hooks[0]["id"].as_str().unwrap().to_string();
    web.post_form("/webhooks", &format!("/webhooks/{hook_id}/deactivate"), &[])
        .await;
    assert_eq!(
        api.get("/api/v1/webhooks").await.expect(200)[0]["active"],
        false
    );
    // Without the token the form is refused like every other.
    let forged = web
        .post_raw(
            "/webhooks",
            &[("url", "https://evil.example/"), ("events", "*")],
        )
        .await;
    assert_eq!(forged.status, 403);

    // Jobs run on demand under the same lease.
    let res = web.post_form("/jobs", "/jobs/invoice-run/run", &[]).await;
    assert_eq!(res.status, 303);
    assert!(
        flash(&mut web, "/jobs")
            .await
            .starts_with("invoice-run done")
    );

    // An API token made in the UI works against the API, once revoked it does not.
    let page = web
        .post_form("/tokens", "/tokens", &[("name", "laporan")])
        .await;
    assert_eq!(page.status, 200);
    let at = page.text.find("id=\"token-secret\">").unwrap() + "id=\"token-secret\">".len();
    let secret = &page.text[at..at + page.text[at..].find('<').unwrap()];
    assert!(secret.starts_with("mbk_"));
    assert_eq!(
        api.with_token(secret).get("/api/v1/auth/me").await.status,
        200
    );
    let tokens = api.get("/api/v1/tokens").await.expect(200);
    let token_id = tokens[0]["id"].as_str().unwrap().to_string();
    web.post_form("/tokens", &format!("/tokens/{token_id}/revoke"), &[])
        .await;
    assert_eq!(
        api.with_token(secret).get("/api/v1/auth/me").await.status,
        401
    );
    assert!(!web.get("/tokens").await.text.contains(secret));

    // Voiding an invoice.
    let pppoe = api
        .post(
            "/api/v1/plans",
            &json!({"name": "Rumah 5M", "kind": "pppoe", "price": 100000}),
        )
        .await
        .expect(201);
    let customer = api
        .post("/api/v1/customers", &json!({"name": "Joko"}))
        .await
        .expect(201);
    let sub = api
        .post(
            "/api/v1/subscriptions",
            &json!({"customer_id": customer["id"], "plan_id": pppoe["id"], "site_id": site_id, "username": "joko@kidul"}),
        )
        .await
        .expect(201);
    let invoice = api
        .get(&format!(
            "/api/v1/invoices?subscription_id={}",
            sub["id"].as_str().unwrap()
        ))
        .await
        .expect(200)["items"][0]
        .clone();
    let invoice_id = invoice["id"].as_str().unwrap();
    let sub_id = sub["id"].as_str().unwrap();

    // Commands for the site's agent: re-apply the router setup, kick a subscriber.
    web.post_form(
        &format!("/sites/{site_id}"),
        &format!("/sites/{site_id}/commands"),
        &[("command", "resync_router")],
    )
    .await;
    web.post_form(
        &format!("/subscriptions/{sub_id}"),
        &format!("/subscriptions/{sub_id}/kick"),
        &[],
    )
    .await;
    let queued = api
        .get(&format!("/api/v1/commands?site_id={site_id}"))
        .await
        .expect(200);
    let kinds: Vec<(&str, &str)> = queued["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|k| k["created_by"] == "admin")
        .map(|k| {
            (
                k["kind"].as_str().unwrap(),
                k["subscription_id"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert!(kinds.contains(&("resync_router", "")), "{queued}");
    assert!(kinds.contains(&("disconnect", sub_id)), "{queued}");
    assert!(
        web.get(&format!("/sites/{site_id}"))
            .await
            .text
            .contains("resync_router")
    );
    let printed = web.get(&format!("/invoices/{invoice_id}")).await;
    assert!(printed.text.contains(invoice["number"].as_str().unwrap()));
    assert!(printed.text.contains("Rp 111,000"), "{}", printed.text);
    web.post_form(
        &format!("/invoices/{invoice_id}"),
        &format!("/invoices/{invoice_id}/void"),
        &[("reason", "salah paket")],
    )
    .await;
    assert_eq!(
        api.get(&format!("/api/v1/invoices/{invoice_id}"))
            .await
            .expect(200)["status"],
        "void"
    );

    // Disabling a user from the UI ends their session.
    let mut reseller_web = WebClient::login(ctl.api_addr, "toko-sari", "toko-sari-password").await;
    assert_eq!(reseller_web.get("/").await.status, 200);
    web.post_form(
        &format!("/admins/{reseller_id}"),
        &format!("/admins/{reseller_id}"),
        &[("role", "reseller"), ("disabled", "1")],
    )
    .await;
    assert_eq!(reseller_web.get("/").await.status, 303);
    let audit = api.get("/api/v1/audit").await.expect(200);
    assert!(
        audit["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["action"] == "admin.update" && e["remote_addr"].is_string()),
        "{audit}"
    );
}
