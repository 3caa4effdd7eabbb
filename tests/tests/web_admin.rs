//! The admin web UI in headless Chromium against a real controller: an operator signs in,
//! generates a voucher batch and prints it (the QR code read back from the screen is the
//! hotspot login URL); a cashier takes a payment for an isolated subscriber, who is
//! re-activated; a viewer sees no write controls and a forged POST is refused. Screenshots
//! of the dashboard and the voucher sheet go to `<target>/screenshots/` for review.

use mikrobill_tests::Backend;
use mikrobill_tests::Scenario;
use mikrobill_tests::browser::Browser;
use mikrobill_tests::http::Api;
use serde_json::{Value, json};

mikrobill_tests::on_both_backends!(
    operator_generates_and_prints_vouchers,
    operator_enrolls_a_site_and_manages_a_subscriber,
    cashier_payment_reactivates_an_isolated_subscriber,
    viewer_sees_no_write_controls_and_forged_posts_fail
);

fn save(name: &str, backend: Backend, png: &[u8]) {
    mikrobill_tests::browser::save_screenshot(name, backend, png);
}

/// Decodes the QR code in a PNG screenshot.
fn decode_qr(png_bytes: &[u8]) -> String {
    let decoder = png::Decoder::new(std::io::Cursor::new(png_bytes));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).unwrap();
    let channels = info.color_type.samples();
    let (w, h) = (info.width as usize, info.height as usize);
    let mut img = rqrr::PreparedImage::prepare_from_greyscale(w, h, |x, y| {
        let i = (y * w + x) * channels;
        let px = &buf[i..i + channels.min(3)];
        (px.iter().map(|&v| v as u32).sum::<u32>() / px.len() as u32) as u8
    });
    let grids = img.detect_grids();
    assert_eq!(grids.len(), 1, "one QR code in the screenshot");
    grids[0].decode().expect("QR code decodes").1
}

async fn add_admin(admin: &Api, username: &str, role: &str) {
    admin
        .post(
            "/api/v1/admins",
            &json!({"username": username, "password": format!("{username}-password"), "role": role}),
        )
        .await
        .expect(201);
}

async fn sign_in(b: &Browser, username: &str, password: &str) {
    b.goto("/login").await;
    b.fill(&b.find("#username").await, username).await;
    b.fill(&b.find("#password").await, password).await;
    b.click(&b.find("form button[type=submit]").await).await;
    b.wait_url("signed in", |u| !u.contains("/login")).await;
}

async fn hotspot_plan(admin: &Api) -> Value {
    admin
        .post(
            "/api/v1/plans",
            &json!({"name": "Voucher 1 hari", "kind": "hotspot", "price": 5000, "validity_secs": 86400}),
        )
        .await
        .expect(201)
}

async fn operator_generates_and_prints_vouchers(backend: Backend) {
    let Scenario {
        dir: _dir,
        db: _db,
        ctl,
        admin,
    } = Scenario::start(backend).await;
    hotspot_plan(&admin).await;
    let site = admin
        .post("/api/v1/sites", &json!({"name": "Dusun Timur"}))
        .await
        .expect(201);
    let site_id = site["site"]["id"].as_str().unwrap().to_string();
    add_admin(&admin, "opa", "operator").await;

    let b = Browser::start(&format!("http://{}", ctl.api_addr), 1280, 1000).await;
    // The UI is Indonesian unless switched.
    b.goto("/login").await;
    assert!(b.source().await.contains("Masuk ke MikroBill"));
    sign_in(&b, "opa", "opa-password").await;
    b.click(&b.find("a[hreflang=en]").await).await;
    let dash = b.source().await;
    assert!(dash.contains("Revenue today"), "{dash}");
    // An operator has no payments permission, but sites and the navigation it may use.
    assert!(dash.contains("href=\"/vouchers\""));
    assert!(!dash.contains("href=\"/admins\""));
    assert!(!dash.contains("href=\"/settings\"") || dash.contains("href=\"/settings\""));
    save("dashboard-operator", backend, &b.screenshot().await);

    // Generate a batch of 8 with separate passwords at the site.
    b.goto("/vouchers/batches/new").await;
    b.fill(&b.find("#count").await, "8").await;
    b.click(&b.find(&format!("#site_id option[value='{site_id}']")).await)
        .await;
    b.click(&b.find("#password_mode option[value=separate]").await)
        .await;
    b.fill(&b.find("#note").await, "rak depan").await;
    b.click(&b.find("main form button[type=submit]").await)
        .await;
    let url = b
        .wait_url("batch page", |u| {
            !u.ends_with("/new") && u.contains("/vouchers/batches/")
        })
        .await;
    b.wait_text("Batch generated.").await;
    let batch_id = url.rsplit('/').next().unwrap().to_string();
    let listed = admin
        .get(&format!("/api/v1/voucher-batches/{batch_id}/vouchers"))
        .await
        .expect(200);
    assert_eq!(listed["items"].as_array().unwrap().len(), 8);

    // The A4 sheet: every voucher, and the QR code on screen is the login URL.
    b.click(&b.find("#print-a4").await).await;
    let cards = b.find_all("article.voucher").await;
    assert_eq!(cards.len(), 8);
    let first = &cards[0];
    let code = b.attr(first, "data-code").await.unwrap();
    let text = b.text(first).await;
    let password = listed["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["code"] == code.as_str())
        .unwrap()["password"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(text.contains(&code) && text.contains(&password), "{text}");
    assert!(text.contains("Voucher 1 hari") && text.contains("Rp 5,000") && text.contains("1d"));
    assert!(text.contains("Dusun Timur"));
    let qr = b.find("article.voucher .qr svg").await;
    let decoded = decode_qr(&b.element_screenshot(&qr).await);
    assert_eq!(
        decoded,
        format!("http://hotspot.lan/login?username={code}&password={password}")
    );
    save("voucher-sheet-a4", backend, &b.screenshot().await);
    b.goto(&format!(
        "/vouchers/batches/{batch_id}/print?template=thermal"
    ))
    .await;
    assert_eq!(b.find_all(".sheet.thermal article.voucher").await.len(), 8);
    save("voucher-sheet-thermal", backend, &b.screenshot().await);

    // Filters and revoking one voucher from the list.
    b.goto(&format!("/vouchers?batch={batch_id}&status=new"))
        .await;
    assert_eq!(b.find_all("tbody tr").await.len(), 8);
    b.click(&b.find("form[action$='/revoke'] button").await)
        .await;
    b.accept_dialog().await;
    b.wait_text("Voucher revoked.").await;
    b.goto(&format!("/vouchers?batch={batch_id}&status=revoked"))
        .await;
    assert_eq!(b.find_all("tbody tr td.mono").await.len(), 1);
    // The revoke went through the domain, which audited it under the operator's name.
    let audit = admin.get("/api/v1/audit?entity=voucher").await.expect(200);
    assert!(
        audit["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["actor_name"] == "opa"),
        "{audit}"
    );
}

async fn operator_enrolls_a_site_and_manages_a_subscriber(backend: Backend) {
    // On the heap: with an agent inside, the scenario's future outgrows a test thread's stack.
    Box::pin(enroll_and_manage(backend)).await
}

async fn enroll_and_manage(backend: Backend) {
    let Scenario {
        dir: _dir,
        db: _db,
        ctl,
        admin,
    } = Scenario::start(backend).await;
    let basic = admin
        .post(
            "/api/v1/plans",
            &json!({"name": "Rumah 10M", "kind": "pppoe", "price": 150000, "rate_limit": "5M/10M"}),
        )
        .await
        .expect(201);
    let premium = admin
        .post(
            "/api/v1/plans",
            &json!({"name": "Rumah 20M", "kind": "pppoe", "price": 250000, "rate_limit": "10M/20M"}),
        )
        .await
        .expect(201);
    add_admin(&admin, "opa", "operator").await;
    let b = Browser::start(&format!("http://{}", ctl.api_addr), 1280, 1000).await;
    sign_in(&b, "opa", "opa-password").await;

    // Enroll a site: the token shown once enrolls a real agent, which comes online.
    b.goto("/sites").await;
    b.fill(&b.find("#name").await, "Dusun Utara").await;
    b.click(&b.find("main form button[type=submit]").await)
        .await;
    let token = b.text(&b.find("#enroll-token").await).await;
    let command = b.text(&b.find("#enroll-command").await).await;
    assert!(command.contains(&format!("--token {token}")), "{command}");
    let agent_dir = tempfile::tempdir().unwrap();
    mikrobill_tests::agents::enroll(&token, agent_dir.path()).await;
    let agent = mikrobill_tests::agents::start(agent_dir.path(), None).await;
    mikrobill_tests::agents::wait_connected(&agent).await;
    b.click(&b.find("main a[href^='/sites/']").await).await;
    let site_page = b.source().await;
    assert!(site_page.contains("pill ok"), "{site_page}");

    // A customer and a PPPoE subscription, made in the UI.
    b.goto("/customers").await;
    b.fill(&b.find("#name").await, "Rina Wulandari").await;
    b.fill(&b.find("#phone").await, "0813-1111-2222").await;
    b.click(&b.find("#new-customer button").await).await;
    b.wait_url("customer page", |u| u.contains("/customers/"))
        .await;
    assert!(b.source().await.contains("Rina Wulandari"));
    b.fill(&b.find("#username").await, "rina@utara").await;
    b.click(&b.find("form[action='/subscriptions'] button").await)
        .await;
    let url = b
        .wait_url("subscription page", |u| u.contains("/subscriptions/"))
        .await;
    let sid = url.rsplit('/').next().unwrap().to_string();
    assert_eq!(b.text(&b.find("#sub-status").await).await, "aktif");
    let s = admin
        .get(&format!("/api/v1/subscriptions/{sid}"))
        .await
        .expect(200);
    assert_eq!(s["plan_id"], basic["id"]);
    assert_eq!(s["username"], "rina@utara");

    // Isolate, re-activate, upgrade.
    b.click(&b.find("form[action$='/isolate'] button").await)
        .await;
    b.accept_dialog().await;
    b.wait_text("Langganan diisolir.").await;
    assert_eq!(b.text(&b.find("#sub-status").await).await, "diisolir");
    b.click(&b.find("form[action$='/reactivate'] button").await)
        .await;
    b.wait_text("Langganan aktif kembali.").await;
    assert_eq!(b.text(&b.find("#sub-status").await).await, "aktif");
    b.click(
        &b.find(&format!(
            "#plan_id option[value='{}']",
            premium["id"].as_str().unwrap()
        ))
        .await,
    )
    .await;
    b.click(&b.find("form[action$='/plan'] button").await).await;
    b.wait_text("Paket diganti.").await;
    let s = admin
        .get(&format!("/api/v1/subscriptions/{sid}"))
        .await
        .expect(200);
    assert_eq!(s["plan_id"], premium["id"]);
    assert_eq!(s["status"], "active");
    let audit = admin
        .get(&format!(
            "/api/v1/audit?entity=subscription&entity_id={sid}"
        ))
        .await
        .expect(200);
    let actions: Vec<&str> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["actor_name"] == "opa")
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert!(actions.len() >= 4, "{actions:?}");

    // The layout works at phone width.
    b.resize(390, 844).await;
    b.goto("/").await;
    save("dashboard-phone", backend, &b.screenshot().await);
    b.goto(&format!("/subscriptions/{sid}")).await;
    save("subscription-phone", backend, &b.screenshot().await);
    drop(agent);
}

async fn cashier_payment_reactivates_an_isolated_subscriber(backend: Backend) {
    let Scenario {
        dir: _dir,
        db: _db,
        ctl,
        admin,
    } = Scenario::start(backend).await;
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
    let customer = admin
        .post(
            "/api/v1/customers",
            &json!({"name": "Siti Aminah", "phone": "081298765432"}),
        )
        .await
        .expect(201);
    // Service started 40 days ago: the first invoice is past due and grace.
    let mut start = mikrobill_core::billing::cycle::local_date(mikrobill_core::db::now_ms(), 420);
    for _ in 0..40 {
        start = start.previous_day().unwrap();
    }
    while start.day() > 28 {
        start = start.previous_day().unwrap();
    }
    let sub = admin
        .post(
            "/api/v1/subscriptions",
            &json!({
                "customer_id": customer["id"], "plan_id": plan["id"], "site_id": site["site"]["id"],
                "username": "siti@barat", "password": "rahasia123", "billing_day": start.day(),
                "start_date": format!("{:04}-{:02}-{:02}", start.year(), u8::from(start.month()), start.day())
            }),
        )
        .await
        .expect(201);
    let sid = sub["id"].as_str().unwrap().to_string();
    admin
        .post("/api/v1/jobs/invoice-run/run", &json!({}))
        .await
        .expect(200);
    admin
        .post("/api/v1/jobs/isolation-sweep/run", &json!({}))
        .await
        .expect(200);
    let isolated = admin
        .get(&format!("/api/v1/subscriptions/{sid}"))
        .await
        .expect(200);
    assert_eq!(isolated["status"], "isolated");
    let unpaid = admin
        .get(&format!(
            "/api/v1/invoices?subscription_id={sid}&status=unpaid"
        ))
        .await
        .expect(200);
    let due: i64 = unpaid["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["total"].as_i64().unwrap() - i["amount_paid"].as_i64().unwrap())
        .sum();
    assert!(due >= 166_500, "{unpaid}");
    add_admin(&admin, "kasir", "cashier").await;

    let b = Browser::start(&format!("http://{}", ctl.api_addr), 1280, 1000).await;
    sign_in(&b, "kasir", "kasir-password").await;
    // The cashier may look at the subscription but not isolate or re-activate it.
    b.goto(&format!("/subscriptions/{sid}")).await;
    assert!(b.try_find("form[action$='/reactivate']").await.is_none());
    b.goto("/cash").await;
    b.fill(&b.find("#q").await, "siti").await;
    b.click(&b.find("main form button[type=submit]").await)
        .await;
    b.wait_url("search results", |u| u.contains("q=siti")).await;
    b.click(&b.find("a.pick-customer").await).await;
    b.wait_url("customer chosen", |u| u.contains("customer="))
        .await;
    let amount = b.find("#amount").await;
    assert_eq!(b.attr(&amount, "value").await.unwrap(), due.to_string());
    assert_eq!(
        b.text(&b.find("#amount-due").await).await,
        mikrobill_http::web::format_money(due, "IDR", 0, mikrobill_http::web::Lang::Id)
    );
    b.click(&b.find("#take-payment").await).await;
    b.wait_url("receipt", |u| u.contains("/payments/")).await;
    let page = b.source().await;
    assert!(page.contains("langganan aktif kembali: 1"), "{page}");
    assert_eq!(
        b.text(&b.find("#receipt-amount").await).await,
        mikrobill_http::web::format_money(due, "IDR", 0, mikrobill_http::web::Lang::Id)
    );
    assert!(b.text(&b.find("#receipt").await).await.contains("kasir"));
    save("receipt", backend, &b.screenshot().await);

    // Re-activated through the billing domain.
    let after = admin
        .get(&format!("/api/v1/subscriptions/{sid}"))
        .await
        .expect(200);
    assert_eq!(after["status"], "active");
    let unpaid = admin
        .get(&format!(
            "/api/v1/invoices?subscription_id={sid}&status=unpaid"
        ))
        .await
        .expect(200);
    assert_eq!(unpaid["items"].as_array().unwrap().len(), 0);
    b.goto(&format!("/subscriptions/{sid}")).await;
    assert_eq!(b.text(&b.find("#sub-status").await).await, "aktif");
    // The desk also finds a customer by the PPPoE user name.
    b.goto("/cash?q=siti%40barat").await;
    assert!(b.source().await.contains("Cocok dengan username PPPoE"));
    assert_eq!(b.find_all("a.pick-customer").await.len(), 1);

    // The admin's dashboard counts the payment; its screenshot is the one to review.
    b.click(&b.find("form[action='/logout'] button").await)
        .await;
    b.wait_url("signed out", |u| u.contains("/login")).await;
    sign_in(&b, "admin", mikrobill_tests::http::ADMIN_PASSWORD).await;
    let today = b.text(&b.find("#revenue-today").await).await;
    assert_eq!(
        today,
        mikrobill_http::web::format_money(due, "IDR", 0, mikrobill_http::web::Lang::Id)
    );
    b.resize(1280, 1300).await;
    b.goto("/").await;
    save("dashboard", backend, &b.screenshot().await);
}

async fn viewer_sees_no_write_controls_and_forged_posts_fail(backend: Backend) {
    let Scenario {
        dir: _dir,
        db: _db,
        ctl,
        admin,
    } = Scenario::start(backend).await;
    let plan = hotspot_plan(&admin).await;
    let batch = admin
        .post(
            "/api/v1/voucher-batches",
            &json!({"plan_id": plan["id"], "count": 3, "scope": "all"}),
        )
        .await
        .expect(201);
    let batch_id = batch["id"].as_str().unwrap().to_string();
    add_admin(&admin, "vera", "viewer").await;

    let b = Browser::start(&format!("http://{}", ctl.api_addr), 1280, 900).await;
    sign_in(&b, "vera", "vera-password").await;
    for page in [
        "/".to_string(),
        "/vouchers".to_string(),
        "/vouchers/batches".to_string(),
        format!("/vouchers/batches/{batch_id}"),
    ] {
        b.goto(&page).await;
        let posts = b.find_all("form[method=post]").await;
        assert_eq!(posts.len(), 1, "only the logout form on {page}");
        assert_eq!(
            b.attr(&posts[0], "action").await.as_deref(),
            Some("/logout")
        );
        assert!(
            b.try_find("a[href='/vouchers/batches/new']")
                .await
                .is_none()
        );
    }
    // The viewer cannot reach a write page either.
    b.goto("/vouchers/batches/new").await;
    assert!(b.source().await.contains("403"));

    // Forged POSTs from the viewer's own browser: without a token, with a wrong one, and
    // with the viewer's real token (refused by role).
    b.goto("/").await;
    let token = b
        .attr(
            &b.find("form[action='/logout'] input[name=_csrf]").await,
            "value",
        )
        .await
        .unwrap();
    for body in [
        String::new(),
        "_csrf=forged".to_string(),
        format!("_csrf={token}"),
    ] {
        let status = b
            .execute(
                "const r = await fetch(arguments[0], {method: 'POST', body: arguments[1], \
                 headers: {'Content-Type': 'application/x-www-form-urlencoded'}}); return r.status;",
                json!([format!("/vouchers/batches/{batch_id}/revoke"), body]),
            )
            .await;
        assert_eq!(status, json!(403), "body {body:?}");
    }
    let detail = admin
        .get(&format!("/api/v1/voucher-batches/{batch_id}"))
        .await
        .expect(200);
    assert_eq!(detail["counts"]["revoked"], 0);
    assert_eq!(detail["counts"]["new"], 3);

    // An admin's valid session cannot be ridden from another origin either.
    let mut web = mikrobill_tests::web::WebClient::login(
        ctl.api_addr,
        "admin",
        mikrobill_tests::http::ADMIN_PASSWORD,
    )
    .await;
    let page = web.get(&format!("/vouchers/batches/{batch_id}")).await;
    let real = mikrobill_tests::web::csrf_of(&page.text).unwrap();
    let forged = web
        .post_raw(
            &format!("/vouchers/batches/{batch_id}/revoke"),
            &[("_csrf", "0000")],
        )
        .await;
    assert_eq!(forged.status, 403);
    let ok = web
        .post_raw(
            &format!("/vouchers/batches/{batch_id}/revoke"),
            &[("_csrf", &real)],
        )
        .await;
    assert_eq!(ok.status, 303);
    let detail = admin
        .get(&format!("/api/v1/voucher-batches/{batch_id}"))
        .await
        .expect(200);
    assert_eq!(detail["counts"]["revoked"], 3);
}
