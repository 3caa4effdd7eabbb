//! The customer portal in headless Chromium against a real controller: a subscriber logs in
//! with the password the operator set, sees the invoice on the overview, opens it, and
//! switches to Indonesian on a phone; screenshots of the overview (desktop and phone) and of the
//! invoice go to `<target>/screenshots/` for review.

use mikrobill_tests::Backend;
use mikrobill_tests::Scenario;
use mikrobill_tests::browser::{Browser, save_screenshot};
use serde_json::json;

mikrobill_tests::on_both_backends!(a_subscriber_logs_in_and_sees_the_invoice);

async fn a_subscriber_logs_in_and_sees_the_invoice(backend: Backend) {
    let Scenario {
        dir: _dir,
        db: _db,
        ctl,
        admin,
    } = Scenario::start(backend).await;
    let site = admin
        .post("/api/v1/sites", &json!({"name": "Desa Makmur"}))
        .await
        .expect(201);
    let plan = admin
        .post(
            "/api/v1/plans",
            &json!({"name": "Keluarga 20M", "kind": "pppoe", "price": 250000}),
        )
        .await
        .expect(201);
    let customer = admin
        .post(
            "/api/v1/customers",
            &json!({"name": "Ibu Sari Dewi", "phone": "081311112222"}),
        )
        .await
        .expect(201);
    let id = customer["id"].as_str().unwrap();
    admin
        .post(
            "/api/v1/subscriptions",
            &json!({"customer_id": id, "plan_id": plan["id"], "site_id": site["site"]["id"], "username": "sari"}),
        )
        .await
        .expect(201);
    admin
        .put(
            &format!("/api/v1/customers/{id}/portal-password"),
            &json!({"password": "sari-rahasia-1"}),
        )
        .await
        .expect(200);
    let invoice = admin
        .get(&format!("/api/v1/invoices?customer_id={id}"))
        .await
        .expect(200)["items"][0]
        .clone();
    let number = invoice["number"].as_str().unwrap();

    let b = Browser::start(&format!("http://{}", ctl.api_addr), 1280, 900).await;
    b.goto("/portal/login").await;
    // She types her phone number the way she writes it.
    b.fill(&b.find("#identifier").await, "0813-1111-2222").await;
    b.fill(&b.find("#password").await, "sari-rahasia-1").await;
    b.click(
        &b.find("form[action='/portal/login'] button[type=submit]")
            .await,
    )
    .await;
    b.wait_text("Ibu Sari Dewi").await;
    let home = b.source().await;
    assert!(home.contains(number), "the invoice is on the overview");
    assert!(home.contains("Keluarga 20M"));
    save_screenshot("portal-home", backend, &b.screenshot().await);

    b.click(
        &b.find(&format!(
            "a[href='/portal/invoices/{}']",
            invoice["id"].as_str().unwrap()
        ))
        .await,
    )
    .await;
    b.wait_text(number).await;
    let page = b.source().await;
    // The portal speaks the browser's language (headless Chromium asks for en-US).
    let lang = if page.contains("<html lang=\"en\"") {
        mikrobill_http::web::Lang::En
    } else {
        mikrobill_http::web::Lang::Id
    };
    let total =
        mikrobill_http::web::format_money(invoice["total"].as_i64().unwrap(), "IDR", 0, lang);
    assert!(
        page.contains(&total),
        "total {total} on the invoice: {page}"
    );
    save_screenshot("portal-invoice", backend, &b.screenshot().await);

    // On a phone, switched to Indonesian.
    b.resize(390, 844).await;
    b.goto("/portal/lang/id?back=/portal").await;
    b.wait_text("Halo").await;
    save_screenshot("portal-home-phone", backend, &b.screenshot().await);
}
