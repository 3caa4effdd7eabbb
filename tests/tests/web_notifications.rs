//! The admin UI's notification pages change what the API sees: a template edited through
//! the form (and one with an unknown placeholder refused on the page), a channel created
//! from its JSON settings with the token never shown again, the notification settings, a
//! customer's preferences saved on the customer page, and the message log with a dead
//! message retried from its page.

use mikrobill_tests::http::{ADMIN_PASSWORD, Api};
use mikrobill_tests::web::WebClient;
use mikrobill_tests::{Backend, Controller, TestDb, eventually, init_tracing};
use serde_json::{Value, json};
use std::time::Duration;

mikrobill_tests::on_both_backends!(notification_forms_change_what_the_api_sees);

/// The one-shot message a redirect left, as the next page shows it.
async fn flash(web: &mut WebClient, location: &str) -> String {
    let page = web.get(location).await;
    let at = page.text.find("class=\"flash").expect("a flash message");
    let rest = &page.text[at..];
    let start = rest.find('>').unwrap() + 1;
    rest[start..rest.find("</p>").unwrap()].to_string()
}

/// The text of a page's `<textarea name="...">`, as a browser would submit it.
fn textarea(html: &str, name: &str) -> String {
    let at = html
        .find(&format!("name=\"{name}\""))
        .expect("the textarea");
    let rest = &html[at..];
    let start = rest.find('>').unwrap() + 1;
    let raw = &rest[start..rest.find("</textarea>").unwrap()];
    raw.replace("&#60;", "<")
        .replace("&#62;", ">")
        .replace("&#34;", "\"")
        .replace("&#39;", "'")
        .replace("&#38;", "&")
        .replace("&amp;", "&")
}

fn template<'a>(all: &'a Value, topic: &str, lang: &str) -> &'a Value {
    all.as_array()
        .unwrap()
        .iter()
        .find(|t| t["topic"] == topic && t["lang"] == lang)
        .expect("the template is listed")
}

async fn notification_forms_change_what_the_api_sees(backend: Backend) {
    init_tracing();
    let db = TestDb::new(backend).await;
    let dir = tempfile::tempdir().unwrap();
    let ctl = Controller::start(dir.path(), &db).await;
    let api = Api::admin(ctl.api_addr).await;
    let mut web = WebClient::login(ctl.api_addr, "admin", ADMIN_PASSWORD).await;
    let page = "/notifications/templates";

    // The Indonesian invoice text, edited through its form.
    let body = "Yth. {{customer_name}}, tagihan {{invoice_number}} sebesar {{amount}} jatuh tempo {{due_date}}.";
    let res = web
        .post_form(
            page,
            page,
            &[
                ("topic", "invoice.created"),
                ("lang", "id"),
                ("subject", "Tagihan {{invoice_number}}"),
                ("body", body),
            ],
        )
        .await;
    assert_eq!(res.header("location"), Some(page));
    assert_eq!(flash(&mut web, page).await, "Tersimpan.");
    let all = api.get("/api/v1/notification-templates").await.expect(200);
    let t = template(&all, "invoice.created", "id");
    assert_eq!(t["body"], body);
    assert_eq!(t["subject"], "Tagihan {{invoice_number}}");
    assert_eq!(t["custom"], true);
    assert_eq!(template(&all, "invoice.created", "en")["custom"], false);
    let shown = web.get(page).await.text;
    assert!(shown.contains(body));
    assert!(shown.contains("<code>{{days_left}}</code>"));

    // An unknown placeholder is refused, with the reason shown on the page.
    let res = web
        .post_form(
            page,
            page,
            &[
                ("topic", "invoice.created"),
                ("lang", "id"),
                ("subject", "Tagihan"),
                ("body", "Kata sandi Anda: {{password}}"),
            ],
        )
        .await;
    assert_eq!(res.header("location"), Some(page));
    let said = flash(&mut web, page).await;
    assert!(
        said.contains("unknown placeholder {{password}}") && said.contains("invoice.created"),
        "{said}"
    );
    let all = api.get("/api/v1/notification-templates").await.expect(200);
    assert_eq!(template(&all, "invoice.created", "id")["body"], body);

    // English gets a custom text, then goes back to the built-in one.
    let res = web
        .post_form(
            page,
            page,
            &[
                ("topic", "payment.received"),
                ("lang", "en"),
                ("subject", "Thanks"),
                ("body", "Got {{amount}}, thanks!"),
            ],
        )
        .await;
    assert_eq!(res.status, 303);
    let all = api.get("/api/v1/notification-templates").await.expect(200);
    assert_eq!(template(&all, "payment.received", "en")["custom"], true);
    let res = web
        .post_form(
            page,
            "/notifications/templates/reset",
            &[("topic", "payment.received"), ("lang", "en")],
        )
        .await;
    assert_eq!(res.status, 303);
    let all = api.get("/api/v1/notification-templates").await.expect(200);
    let reset = template(&all, "payment.received", "en");
    assert_eq!(reset["custom"], false);
    assert!(reset["body"].as_str().unwrap().contains("{{amount}}"));

    // A Telegram channel from its JSON settings; a bot nobody answers at, one attempt.
    let channels = "/notifications/channels";
    let config = r#"{"kind": "telegram", "api_base": "http://127.0.0.1:9", "bot_token": "987654:very-secret-token"}"#;
    let res = web
        .post_form(
            channels,
            channels,
            &[
                ("name", "Bot Telegram"),
                ("rate_per_minute", "600"),
                ("max_attempts", "1"),
                ("active", "1"),
                ("config", config),
            ],
        )
        .await;
    assert_eq!(res.status, 303, "{}", res.text);
    let edit = res.header("location").unwrap().to_string();
    let listed = api.get("/api/v1/notification-channels").await.expect(200);
    let ch = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "Bot Telegram")
        .expect("the channel is listed")
        .clone();
    let channel_id = ch["id"].as_str().unwrap().to_string();
    assert_eq!(edit, format!("{channels}/{channel_id}"));
    assert_eq!(ch["config"]["bot_token"], "<redacted>");
    assert_eq!(ch["rate_per_minute"], 600);
    assert_eq!(ch["max_attempts"], 1);
    assert_eq!(ch["active"], true);
    for path in [channels, edit.as_str()] {
        let shown = web.get(path).await.text;
        assert!(
            !shown.contains("very-secret-token"),
            "{path} shows the token"
        );
        assert!(shown.contains("&#60;redacted&#62;"), "{path}");
    }
    // Saving the edit form as shown keeps the secret; a broken document is refused.
    let form = web.get(&edit).await.text;
    let redacted = textarea(&form, "config");
    assert_eq!(
        serde_json::from_str::<Value>(&redacted).unwrap(),
        ch["config"]
    );
    let res = web
        .post_form(
            &edit,
            &edit,
            &[
                ("name", "Bot Telegram"),
                ("rate_per_minute", "300"),
                ("max_attempts", "1"),
                ("active", "1"),
                ("config", &redacted),
            ],
        )
        .await;
    assert_eq!(res.header("location"), Some(edit.as_str()));
    assert_eq!(flash(&mut web, &edit).await, "Tersimpan.");
    let listed = api.get("/api/v1/notification-channels").await.expect(200);
    assert_eq!(listed[0]["rate_per_minute"], 300);
    let res = web
        .post_form(
            channels,
            channels,
            &[("name", "Rusak"), ("config", r#"{"kind": "pigeon"}"#)],
        )
        .await;
    assert_eq!(res.header("location"), Some(channels));
    assert!(flash(&mut web, channels).await.contains("config"));
    assert_eq!(
        api.get("/api/v1/notification-channels")
            .await
            .expect(200)
            .as_array()
            .unwrap()
            .len(),
        1
    );

    // Notification settings.
    let res = web
        .post_form(
            channels,
            "/notifications/settings",
            &[
                ("reminder_days", "2, 5"),
                ("site_offline_delay_seconds", "600"),
                ("public_url", "https://billing.example.net/"),
                ("default_lang", "id"),
            ],
        )
        .await;
    assert_eq!(res.status, 303);
    let s = api.get("/api/v1/settings/notifications").await.expect(200);
    assert_eq!(s["reminder_days"], json!([5, 2]));
    assert_eq!(s["site_offline_delay_seconds"], 600);
    assert_eq!(s["public_url"], "https://billing.example.net");

    // A customer's Telegram chat and channel, saved on the customer page.
    let customer = api
        .post("/api/v1/customers", &json!({"name": "Siti Aminah"}))
        .await
        .expect(201);
    let customer_id = customer["id"].as_str().unwrap().to_string();
    let customer_page = format!("/customers/{customer_id}");
    let prefs_action = format!("{customer_page}/notifications");
    let prefs_api = format!("/api/v1/customers/{customer_id}/notification-preferences");
    let shown = web.get(&customer_page).await.text;
    assert!(shown.contains(&format!("action=\"{prefs_action}\"")));
    assert!(shown.contains(&format!(
        "href=\"/notifications?customer_id={customer_id}\""
    )));
    let res = web
        .post_form(
            &customer_page,
            &prefs_action,
            &[
                ("lang", ""),
                ("telegram_chat_id", "777001"),
                ("channels", &channel_id),
            ],
        )
        .await;
    assert_eq!(res.header("location"), Some(customer_page.as_str()));
    let p = api.get(&prefs_api).await.expect(200);
    assert_eq!(p["telegram_chat_id"], "777001");
    assert_eq!(p["channels"], json!([channel_id]));
    assert_eq!(p["opt_out"], false);

    // Her first invoice goes out in the edited text through the channel, which fails for
    // good after its one attempt; the log shows it, and its page retries it.
    let site = api
        .post("/api/v1/sites", &json!({"name": "Desa Sukamaju"}))
        .await
        .expect(201);
    let plan = api
        .post(
            "/api/v1/plans",
            &json!({"name": "Rumah 10M", "kind": "pppoe", "price": 150000}),
        )
        .await
        .expect(201);
    api.post(
        "/api/v1/subscriptions",
        &json!({"customer_id": customer_id, "plan_id": plan["id"], "site_id": site["site"]["id"], "username": "siti"}),
    )
    .await
    .expect(201);
    let dead = eventually(Duration::from_secs(60), "a dead invoice message", || {
        let api = &api;
        let customer_id = &customer_id;
        async move {
            let page = api
                .get(&format!("/api/v1/notifications?customer_id={customer_id}"))
                .await
                .expect(200);
            page["items"]
                .as_array()
                .unwrap()
                .iter()
                .find(|m| m["status"] == "dead")
                .cloned()
        }
    })
    .await;
    let id = dead["id"].as_str().unwrap().to_string();
    assert_eq!(dead["topic"], "invoice.created");
    assert!(
        dead["body"]
            .as_str()
            .unwrap()
            .starts_with("Yth. Siti Aminah, tagihan")
    );
    let log = web
        .get(&format!(
            "/notifications?customer_id={customer_id}&status=dead"
        ))
        .await;
    assert_eq!(log.status, 200);
    assert!(log.text.contains(&format!("href=\"/notifications/{id}\"")));
    assert!(log.text.contains("Bot Telegram") && log.text.contains("777001"));
    let other = web.get("/notifications?status=sent").await.text;
    assert!(!other.contains(&format!("href=\"/notifications/{id}\"")));
    let detail = format!("/notifications/{id}");
    let shown = web.get(&detail).await.text;
    assert!(shown.contains("Yth. Siti Aminah"), "{shown}");
    assert!(shown.contains(&format!(
        "<a href=\"/customers/{customer_id}\">Siti Aminah</a>"
    )));
    assert!(shown.contains(&format!("action=\"{detail}/retry\"")));
    let res = web
        .post_form(&detail, &format!("{detail}/retry"), &[])
        .await;
    assert_eq!(res.header("location"), Some(detail.as_str()));
    assert_eq!(
        flash(&mut web, &detail).await,
        "Pesan dijadwalkan untuk dikirim ulang."
    );
    let retried = api
        .get(&format!("/api/v1/notifications/{id}"))
        .await
        .expect(200);
    assert_eq!(retried["attempts_base"], 1);

    // Opting out on the customer page; no box ticked means every channel.
    let res = web
        .post_form(
            &customer_page,
            &prefs_action,
            &[
                ("lang", "en"),
                ("opt_out", "1"),
                ("telegram_chat_id", "777001"),
            ],
        )
        .await;
    assert_eq!(res.status, 303);
    let p = api.get(&prefs_api).await.expect(200);
    assert_eq!(p["opt_out"], true);
    assert_eq!(p["lang"], "en");
    assert_eq!(p["channels"], Value::Null);
    let shown = web.get(&customer_page).await.text;
    assert!(shown.contains("name=\"opt_out\" value=\"1\" checked"));
}
