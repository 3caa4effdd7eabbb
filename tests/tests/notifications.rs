//! Notifications through a real controller and loopback fakes of every gateway: a fake
//! WhatsApp Cloud API, Telegram Bot API and generic SMS gateway (axum, programmable to answer
//! 200, 5xx or hang) and a real SMTP server with STARTTLS (Python's aiosmtpd).
//!
//! - An invoice due in three days produces exactly one reminder per channel, even when the
//!   controller is killed while a gateway holds the request and is started again.
//! - A gateway that fails five times then succeeds delivers once; a dead gateway trips its
//!   breaker while the other channels keep delivering; an opted-out customer gets nothing;
//!   the customer's language and the operator's template apply, and customer data cannot
//!   inject placeholders.

use mikrobill_tests::Scenario;
use mikrobill_tests::http::Api;
use mikrobill_tests::messaging::{Behaviour, Gateway, Hit, serve_gateway};
use mikrobill_tests::scenario;
use mikrobill_tests::{
    Backend, Controller, TestDb, agents, eventually, free_tcp_port, init_tracing,
};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

mikrobill_tests::on_both_backends!(
    a_reminder_reaches_every_channel_once_across_a_crash,
    failures_retry_trip_the_breaker_and_respect_opt_out,
    operators_hear_of_a_site_offline_past_the_delay_only,
    a_poison_event_is_parked_and_the_rest_flow,
    every_event_kind_produces_its_message
);

/// The aiosmtpd sink, with a CA the controller is told to trust.
struct SmtpSink {
    child: Child,
    port: u16,
    out: PathBuf,
    ca_pem: String,
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl SmtpSink {
    fn start(dir: &Path) -> SmtpSink {
        use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair, SanType};
        let ca_key = KeyPair::generate().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca = ca_params.self_signed(&ca_key).unwrap();
        let issuer = Issuer::new(ca_params, ca_key);
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.subject_alt_names = vec![SanType::IpAddress([127, 0, 0, 1].into())];
        let cert = params.signed_by(&key, &issuer).unwrap();
        let (cert_path, key_path) = (dir.join("smtp.pem"), dir.join("smtp.key"));
        std::fs::write(&cert_path, cert.pem()).unwrap();
        std::fs::write(&key_path, key.serialize_pem()).unwrap();
        let out = dir.join("mail");
        std::fs::create_dir_all(&out).unwrap();
        let port = free_tcp_port();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("python/smtp_sink.py");
        let mut child = Command::new("python3")
            .arg(script)
            .arg(port.to_string())
            .arg(&out)
            .arg(&cert_path)
            .arg(&key_path)
            .args(["billing", "smtp-secret"])
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 with aiosmtpd (scripts/ensure-test-tools installs it)");
        let mut line = String::new();
        use std::io::BufRead;
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line.trim(), "ready", "the SMTP sink did not start");
        SmtpSink {
            child,
            port,
            out,
            ca_pem: ca.pem(),
        }
    }

    /// Every message received so far.
    fn mails(&self) -> Vec<String> {
        let mut names: Vec<_> = std::fs::read_dir(&self.out)
            .unwrap()
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "eml"))
            .collect();
        names.sort();
        names
            .iter()
            .map(|p| std::fs::read_to_string(p).unwrap())
            .collect()
    }
}

async fn channel(admin: &Api, name: &str, config: Value) -> String {
    admin
        .post(
            "/api/v1/notification-channels",
            &json!({"name": name, "config": config, "rate_per_minute": 6000}),
        )
        .await
        .expect(201)["id"]
        .as_str()
        .unwrap()
        .to_string()
}

/// A PPPoE customer with a subscription; returns (customer id, subscription id).
async fn subscriber(
    admin: &Api,
    site: &str,
    plan: &str,
    name: &str,
    phone: &str,
) -> (String, String) {
    let username = name.to_lowercase().replace(' ', "");
    let s = scenario::subscriber(admin, site, plan, name, phone, &username).await;
    (s.customer_id, s.subscription_id)
}

async fn site_and_plan(admin: &Api) -> (String, String) {
    let site = scenario::site(admin, "Desa Sukamaju").await;
    let plan = scenario::plan(
        admin,
        &json!({"name": "Home 10M", "kind": "pppoe", "price": 150000}),
    )
    .await;
    (site, plan)
}

async fn messages(admin: &Api, query: &str) -> Vec<Value> {
    admin
        .get(&format!("/api/v1/notifications?limit=500&{query}"))
        .await
        .expect(200)["items"]
        .as_array()
        .unwrap()
        .clone()
}

async fn a_reminder_reaches_every_channel_once_across_a_crash(backend: Backend) {
    let Scenario {
        dir,
        db: _db,
        mut ctl,
        admin,
    } = Scenario::start(backend).await;
    let gw = Gateway::default();
    let base = serve_gateway(gw.clone()).await;
    let smtp = SmtpSink::start(dir.path());

    let wa = channel(
        &admin,
        "WhatsApp",
        json!({"kind": "whatsapp_cloud", "api_base": format!("{base}/wa/v21.0"), "phone_number_id": "1055", "access_token": "EAAG-secret-token"}),
    )
    .await;
    let tg = channel(
        &admin,
        "Telegram",
        json!({"kind": "telegram", "api_base": format!("{base}/tg"), "bot_token": "123456:bot-secret"}),
    )
    .await;
    let sms = channel(
        &admin,
        "SMS",
        json!({"kind": "http", "url": format!("{base}/sms/send"), "headers": {"X-Api-Key": "sms-secret"},
               "body_template": "to={{to}}&msg={{text}}&ref={{id}}", "encoding": "form", "address": "phone"}),
    )
    .await;
    let mail = channel(
        &admin,
        "E-mail",
        json!({"kind": "smtp", "host": "127.0.0.1", "port": smtp.port, "security": "starttls",
               "username": "billing", "password": "smtp-secret", "from": "Billing <billing@isp.example>", "ca_pem": smtp.ca_pem}),
    )
    .await;
    let shown = admin.get("/api/v1/notification-channels").await.text;
    for secret in [
        "EAAG-secret-token",
        "bot-secret",
        "sms-secret",
        "smtp-secret",
    ] {
        assert!(
            !shown.contains(secret),
            "{secret} must not be shown: {shown}"
        );
    }
    admin
        .put(
            "/api/v1/settings/notifications",
            &json!({"reminder_days": [7, 3, 1], "public_url": "https://billing.isp.example"}),
        )
        .await
        .expect(200);

    let (site, plan) = site_and_plan(&admin).await;
    let (customer, sub) = subscriber(&admin, &site, &plan, "Siti Rahma", "081234567890").await;
    admin
        .put(
            &format!("/api/v1/customers/{customer}/notification-preferences"),
            &json!({"telegram_chat_id": "777001"}),
        )
        .await
        .expect(200);

    // The first invoice was issued last week and falls due in three days.
    let invoice = admin
        .get(&format!("/api/v1/invoices?subscription_id={sub}"))
        .await
        .expect(200)["items"][0]
        .clone();
    let (invoice_id, number) = (
        invoice["id"].as_str().unwrap().to_string(),
        invoice["number"].as_str().unwrap().to_string(),
    );
    let now = mikrobill_core::db::now_ms();
    let day = 86_400_000i64;
    sqlx::query("UPDATE invoices SET issued_at = $1, due_at = $2 WHERE id = $3")
        .bind(now - 5 * day)
        .bind(now + 3 * day)
        .bind(&invoice_id)
        .execute(&ctl.db().await.pool)
        .await
        .unwrap();

    // WhatsApp holds the reminder without answering; the controller dies meanwhile.
    let reminder_text = "jatuh tempo dalam 3 hari";
    gw.set(
        "/wa/",
        Behaviour {
            hang_next: 1,
            hang_match: reminder_text,
            ..Default::default()
        },
    );
    admin
        .post("/api/v1/jobs/notification-reminders/run", &json!({}))
        .await
        .expect(200);
    eventually(
        Duration::from_secs(20),
        "WhatsApp holds the reminder",
        || async {
            gw.hits("/wa/")
                .iter()
                .any(|h| h.answered == 0 && h.body.contains(reminder_text))
                .then_some(())
        },
    )
    .await;
    // The other channels finish their sends first, so the crash lands in WhatsApp's send
    // alone. (A crash between a gateway's acceptance and our record of it resends: delivery
    // is at least once on the wire, which the gateways' idempotency keys absorb.)
    eventually(
        Duration::from_secs(20),
        "the other channels sent",
        || async {
            let sent = messages(&admin, "topic=invoice.reminder&status=sent").await;
            (sent.len() == 3).then_some(())
        },
    )
    .await;
    ctl.kill();
    ctl.restart().await;
    let admin = Api::admin(ctl.api_addr).await;
    // Running the job again after the restart finds the reminders already queued.
    admin
        .post("/api/v1/jobs/notification-reminders/run", &json!({}))
        .await
        .expect(200);

    eventually(
        Duration::from_secs(40),
        "every channel sent the reminder",
        || async {
            let sent = messages(&admin, "topic=invoice.reminder&status=sent").await;
            (sent.len() == 4).then_some(())
        },
    )
    .await;
    let reminders = messages(&admin, "topic=invoice.reminder").await;
    assert_eq!(
        reminders.len(),
        4,
        "one reminder per channel: {reminders:#?}"
    );
    let mut channels: Vec<&str> = reminders
        .iter()
        .map(|m| m["channel_id"].as_str().unwrap())
        .collect();
    channels.sort();
    let mut want = vec![wa.as_str(), tg.as_str(), sms.as_str(), mail.as_str()];
    want.sort();
    assert_eq!(channels, want);

    // Exactly one accepted reminder at each gateway.
    let wa_sent = gw.delivered("/wa/", reminder_text);
    assert_eq!(wa_sent.len(), 1, "{:#?}", gw.hits("/wa/"));
    assert_eq!(wa_sent[0].path, "/wa/v21.0/1055/messages");
    assert_eq!(wa_sent[0].authorization, "Bearer EAAG-secret-token");
    let body: Value = serde_json::from_str(&wa_sent[0].body).unwrap();
    assert_eq!(body["messaging_product"], "whatsapp");
    assert_eq!(body["to"], "6281234567890");
    let text = body["text"]["body"].as_str().unwrap();
    assert!(
        text.contains("Siti Rahma") && text.contains(&number),
        "{text}"
    );
    let owed = invoice["total"].as_i64().unwrap() - invoice["amount_paid"].as_i64().unwrap();
    assert!(
        text.contains(&rupiah(owed, '.')),
        "amount in Indonesian format: {text}"
    );
    assert!(
        text.contains(&format!(
            "https://billing.isp.example/portal/invoices/{invoice_id}"
        )),
        "{text}"
    );
    // The resend after the crash carried the same id as the held request.
    let held: Vec<_> = gw
        .hits("/wa/")
        .into_iter()
        .filter(|h| h.body.contains(reminder_text))
        .collect();
    assert_eq!(held.len(), 2, "held once, sent once: {held:#?}");
    assert_eq!(held[0].idempotency_key, held[1].idempotency_key);

    let tg_sent = gw.delivered("/tg/", reminder_text);
    assert_eq!(tg_sent.len(), 1);
    assert_eq!(tg_sent[0].path, "/tg/bot123456:bot-secret/sendMessage");
    let body: Value = serde_json::from_str(&tg_sent[0].body).unwrap();
    assert_eq!(body["chat_id"], "777001");

    let sms_sent = gw.delivered("/sms/", "");
    let sms_reminders: Vec<_> = sms_sent
        .iter()
        .filter(|h| form_field(&h.body, "msg").is_some_and(|m| m.contains(reminder_text)))
        .collect();
    assert_eq!(sms_reminders.len(), 1, "{sms_sent:#?}");
    assert_eq!(
        form_field(&sms_reminders[0].body, "to").unwrap(),
        "6281234567890"
    );

    let mails: Vec<String> = smtp
        .mails()
        .into_iter()
        .filter(|m| m.contains("Pengingat"))
        .collect();
    assert_eq!(mails.len(), 1, "one reminder e-mail");
    assert!(mails[0].contains("X-Tls: yes"), "sent after STARTTLS");
    assert!(mails[0].contains("X-Envelope-To: sitirahma@example.net"));

    // Every attempt is on record: the WhatsApp reminder shows the send after the crash.
    let wa_reminder = reminders
        .iter()
        .find(|m| m["channel_id"] == wa.as_str())
        .unwrap();
    let detail = admin
        .get(&format!(
            "/api/v1/notifications/{}",
            wa_reminder["id"].as_str().unwrap()
        ))
        .await
        .expect(200);
    assert_eq!(detail["status"], "sent");
    assert_eq!(detail["attempts"], 2, "{detail:#}");
    let log = detail["attempt_log"].as_array().unwrap();
    assert_eq!(log.last().unwrap()["outcome"], "sent");

    // Secrets never reach the log.
    let controller_log = ctl.log();
    for secret in [
        "EAAG-secret-token",
        "bot-secret",
        "sms-secret",
        "smtp-secret",
    ] {
        assert!(
            !controller_log.contains(secret),
            "{secret} leaked into the log"
        );
    }
    let metrics = ctl.metrics().await;
    assert!(
        metrics.contains("mikrobill_notifications_total{channel=\"WhatsApp\",outcome=\"sent\"}"),
        "{metrics}"
    );
}

fn form_field(body: &str, name: &str) -> Option<String> {
    form_urlencoded::parse(body.as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// Rupiah as the messages print it: `Rp 166.500` (Indonesian) or `Rp 166,500` (English).
fn rupiah(amount: i64, group: char) -> String {
    let digits = amount.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(group);
        }
        out.push(c);
    }
    format!("Rp {out}")
}

async fn failures_retry_trip_the_breaker_and_respect_opt_out(backend: Backend) {
    let Scenario {
        dir: _dir,
        db: _db,
        ctl,
        admin,
    } = Scenario::start(backend).await;
    let gw = Gateway::default();
    let base = serve_gateway(gw.clone()).await;

    // A local WhatsApp gateway that fails five times first, a Telegram bot that is down.
    gw.set(
        "/flaky/",
        Behaviour {
            fail_next: 5,
            ..Default::default()
        },
    );
    gw.set(
        "/tg/",
        Behaviour {
            dead: true,
            ..Default::default()
        },
    );
    let flaky = channel(
        &admin,
        "WA gateway",
        json!({"kind": "http", "url": format!("{base}/flaky/send"), "body_template": "{\"phone\":\"{{to}}\",\"message\":\"{{text}}\"}",
               "encoding": "json", "address": "phone"}),
    )
    .await;
    let dead = admin
        .post(
            "/api/v1/notification-channels",
            &json!({"name": "Telegram", "rate_per_minute": 6000, "max_attempts": 6,
                    "config": {"kind": "telegram", "api_base": format!("{base}/tg"), "bot_token": "1:x"}}),
        )
        .await
        .expect(201)["id"]
        .as_str()
        .unwrap()
        .to_string();
    let healthy = channel(
        &admin,
        "WhatsApp",
        json!({"kind": "whatsapp_cloud", "api_base": format!("{base}/wa"), "phone_number_id": "9", "access_token": "t"}),
    )
    .await;

    // English for one customer, with the operator's own template; a name that looks like a
    // placeholder is printed as it is.
    admin
        .put(
            "/api/v1/notification-templates/invoice.created/en",
            &json!({"subject": "Bill {{invoice_number}}", "body": "Dear {{customer_name}}: {{amount}} by {{due_date}}."}),
        )
        .await
        .expect(200);
    let refused = admin
        .put(
            "/api/v1/notification-templates/invoice.created/en",
            &json!({"subject": "x", "body": "{{password}}"}),
        )
        .await;
    assert_eq!(refused.status, 422, "{}", refused.text);
    assert_eq!(refused.json()["field"], "body");

    // Bad channel settings are refused with the field named.
    let bad = |config: Value| {
        let admin = &admin;
        async move {
            admin
                .post(
                    "/api/v1/notification-channels",
                    &json!({"name": format!("bad {}", rand_suffix()), "config": config}),
                )
                .await
        }
    };
    let r = bad(json!({"kind": "http", "url": format!("{base}/x"), "body_template": "{{to}} {{txt}}", "encoding": "form"})).await;
    assert_eq!(
        (r.status, r.json()["field"].as_str()),
        (422, Some("config.body_template")),
        "{}",
        r.text
    );
    let r = bad(json!({"kind": "smtp", "host": "mail.example.net", "port": 25, "security": "none", "username": "u", "password": "p", "from": "a@b.example"})).await;
    assert_eq!(
        (r.status, r.json()["field"].as_str()),
        (422, Some("config.security")),
        "{}",
        r.text
    );
    let r = bad(json!({"kind": "telegram", "bot_token": "1:x", "operator_chat_id": "not a chat"}))
        .await;
    assert_eq!(
        (r.status, r.json()["field"].as_str()),
        (422, Some("config.operator_to")),
        "{}",
        r.text
    );
    // A stored token does not follow the channel to another host, nor to another kind.
    let moved = admin
        .put(
            &format!("/api/v1/notification-channels/{healthy}"),
            &json!({"name": "WhatsApp", "rate_per_minute": 6000,
                    "config": {"kind": "whatsapp_cloud", "api_base": "http://127.0.0.1:9/elsewhere", "phone_number_id": "9", "access_token": "<redacted>"}}),
        )
        .await;
    assert_eq!(moved.status, 422, "{}", moved.text);
    let rekind = admin
        .put(
            &format!("/api/v1/notification-channels/{healthy}"),
            &json!({"name": "WhatsApp", "config": {"kind": "telegram", "bot_token": "2:y"}}),
        )
        .await;
    assert_eq!(
        (rekind.status, rekind.json()["field"].as_str()),
        (422, Some("config.kind"))
    );
    let unknown_topic = admin.get("/api/v1/notifications?topic=invoice.paid").await;
    assert_eq!(unknown_topic.status, 422);

    let (site, plan) = site_and_plan(&admin).await;
    let mut customers = Vec::new();
    for (i, name) in ["Budi", "Wayan {{amount}}", "Dewi Opt Out"]
        .iter()
        .enumerate()
    {
        let customer = admin
            .post(
                "/api/v1/customers",
                &json!({"name": name, "phone": format!("08123450000{i}")}),
            )
            .await
            .expect(201);
        let id = customer["id"].as_str().unwrap().to_string();
        let prefs = match i {
            1 => json!({"lang": "en", "telegram_chat_id": "42"}),
            2 => json!({"opt_out": true, "telegram_chat_id": "43"}),
            _ => json!({"telegram_chat_id": "41"}),
        };
        admin
            .put(
                &format!("/api/v1/customers/{id}/notification-preferences"),
                &prefs,
            )
            .await
            .expect(200);
        customers.push(id);
    }
    let mut subs = Vec::new();
    for (i, id) in customers.iter().enumerate() {
        let sub = admin
            .post(
                "/api/v1/subscriptions",
                &json!({"customer_id": id, "plan_id": plan, "site_id": site, "username": format!("user{i}")}),
            )
            .await
            .expect(201);
        subs.push(sub["id"].as_str().unwrap().to_string());
    }

    // The healthy channel delivers both invoices while the dead one fails.
    eventually(
        Duration::from_secs(30),
        "healthy and flaky channels deliver",
        || async {
            let wa = messages(&admin, &format!("channel_id={healthy}&status=sent")).await;
            let flaky_sent = messages(&admin, &format!("channel_id={flaky}&status=sent")).await;
            (wa.len() == 2 && flaky_sent.len() == 2).then_some(())
        },
    )
    .await;
    assert!(
        messages(&admin, &format!("customer_id={}", customers[2]))
            .await
            .is_empty(),
        "an opted-out customer gets nothing"
    );

    // The flaky gateway: five failures then success, each message accepted exactly once.
    let flaky_hits = gw.hits("/flaky/");
    assert_eq!(flaky_hits.iter().filter(|h| h.answered == 503).count(), 5);
    assert_eq!(flaky_hits.iter().filter(|h| h.answered == 200).count(), 2);
    let flaky_msgs = messages(&admin, &format!("channel_id={flaky}")).await;
    let total_attempts: i64 = flaky_msgs
        .iter()
        .map(|m| m["attempts"].as_i64().unwrap())
        .sum();
    assert_eq!(
        total_attempts, 7,
        "five failed attempts and two successes: {flaky_msgs:#?}"
    );
    for h in flaky_hits.iter().filter(|h| h.answered == 200) {
        let v: Value = serde_json::from_str(&h.body).expect("the JSON body template stays JSON");
        assert!(v["phone"].as_str().unwrap().starts_with("628123450000"));
    }

    // English and the operator's template; the placeholder-like name stays literal.
    let wa_hits = gw.delivered("/wa/", "");
    let english: Vec<&Hit> = wa_hits
        .iter()
        .filter(|h| h.body.contains("Dear "))
        .collect();
    assert_eq!(english.len(), 1, "{wa_hits:#?}");
    let body: Value = serde_json::from_str(&english[0].body).unwrap();
    assert_eq!(
        body["text"]["body"]
            .as_str()
            .unwrap()
            .split(':')
            .next()
            .unwrap(),
        "Dear Wayan {{amount}}"
    );
    let invoice = admin
        .get(&format!("/api/v1/invoices?subscription_id={}", subs[1]))
        .await
        .expect(200)["items"][0]
        .clone();
    let owed = invoice["total"].as_i64().unwrap() - invoice["amount_paid"].as_i64().unwrap();
    assert!(
        body["text"]["body"]
            .as_str()
            .unwrap()
            .contains(&rupiah(owed, ',')),
        "English grouping: {body}"
    );
    assert!(
        wa_hits.iter().any(|h| h.body.contains("Halo Budi")),
        "Indonesian by default"
    );

    // The dead Telegram bot: its breaker opens, and its messages wait rather than burn
    // attempts; then they are dead-lettered after the attempt budget.
    eventually(Duration::from_secs(30), "the breaker trips", || async {
        let m = ctl.metrics().await;
        m.contains("mikrobill_breaker_trips_total{target=\"channel\"}")
            .then_some(())
    })
    .await;
    let dead_msgs = messages(&admin, &format!("channel_id={dead}")).await;
    assert_eq!(dead_msgs.len(), 2);
    assert!(dead_msgs.iter().all(|m| m["status"] != "sent"));

    // An admin can send a dead-lettered message again once the gateway is back.
    eventually(Duration::from_secs(60), "dead letters", || async {
        let d = messages(&admin, &format!("channel_id={dead}&status=dead")).await;
        (d.len() == 2).then_some(d)
    })
    .await;
    gw.set("/tg/", Behaviour::default());
    let first = &messages(&admin, &format!("channel_id={dead}&status=dead")).await[0];
    admin
        .post(
            &format!(
                "/api/v1/notifications/{}/retry",
                first["id"].as_str().unwrap()
            ),
            &json!({}),
        )
        .await
        .expect(200);
    eventually(
        Duration::from_secs(30),
        "the retried message is sent",
        || async {
            let d = admin
                .get(&format!(
                    "/api/v1/notifications/{}",
                    first["id"].as_str().unwrap()
                ))
                .await
                .json();
            (d["status"] == "sent").then_some(())
        },
    )
    .await;
}

async fn operators_hear_of_a_site_offline_past_the_delay_only(backend: Backend) {
    let Scenario {
        dir: _dir,
        db: _db,
        ctl: _ctl,
        admin,
    } = Scenario::start(backend).await;
    let gw = Gateway::default();
    let base = serve_gateway(gw.clone()).await;
    admin
        .put(
            "/api/v1/settings/notifications",
            &json!({"site_offline_delay_seconds": 2, "default_lang": "en"}),
        )
        .await
        .expect(200);
    channel(
        &admin,
        "NOC group",
        json!({"kind": "telegram", "api_base": format!("{base}/tg"), "bot_token": "5:noc", "operator_chat_id": "-100777"}),
    )
    .await;

    // One site goes down for good; the other flaps back within the delay.
    let (down_id, down, _down_dir) = agents::api_site(&admin, "Tower North").await;
    let (_flap_id, flap, flap_dir) = agents::api_site(&admin, "Tower South").await;
    down.shutdown().await;
    flap.shutdown().await;
    let flap = agents::restart(flap_dir.path()).await;
    agents::wait_connected(&flap).await;

    let alert = eventually(Duration::from_secs(30), "the offline alert", || async {
        gw.delivered("/tg/", "Tower North").into_iter().next()
    })
    .await;
    let body: Value = serde_json::from_str(&alert.body).unwrap();
    assert_eq!(body["chat_id"], "-100777");
    assert!(
        body["text"]
            .as_str()
            .unwrap()
            .starts_with("ALERT: site Tower North has been offline since"),
        "{body}"
    );
    // The flapping site's outage, if the controller saw one at all (a quick reconnect may
    // simply replace the session), ends before its alert is due: it is dropped, never sent.
    let alerts = eventually(Duration::from_secs(20), "the alerts settle", || async {
        let alerts = messages(&admin, "topic=site.offline").await;
        let settled = alerts
            .iter()
            .all(|m| m["status"] == "sent" || m["status"] == "cancelled");
        (settled && alerts.iter().any(|m| m["status"] == "sent")).then_some(alerts)
    })
    .await;
    assert!(
        alerts
            .iter()
            .any(|m| m["site_id"] == down_id.as_str() && m["status"] == "sent")
    );
    assert!(
        alerts
            .iter()
            .all(|m| m["site_id"] == down_id.as_str() || m["status"] == "cancelled"),
        "{alerts:#?}"
    );
    assert!(
        gw.hits("/tg/")
            .iter()
            .all(|h| !h.body.contains("Tower South")),
        "a site back within the delay pages nobody"
    );
    flap.shutdown().await;
}

fn rand_suffix() -> u64 {
    rand::random()
}

/// Two controller replicas on one PostgreSQL: every event becomes its messages once, and each
/// message reaches the gateway once, whichever replica fans out and sends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_send_each_message_once() {
    init_tracing();
    let db = TestDb::new(Backend::Postgres).await;
    let dir = tempfile::tempdir().unwrap();
    let a = Controller::start(dir.path(), &db).await;
    let b = Controller::start(dir.path(), &db).await;
    let admin_a = Api::admin(a.api_addr).await;
    let admin_b = Api::admin(b.api_addr).await;
    let gw = Gateway::default();
    let base = serve_gateway(gw.clone()).await;
    channel(
        &admin_a,
        "WhatsApp",
        json!({"kind": "whatsapp_cloud", "api_base": format!("{base}/wa"), "phone_number_id": "7", "access_token": "t"}),
    )
    .await;
    let (site, plan) = site_and_plan(&admin_a).await;
    // Invoices issued through both replicas.
    for i in 0..10 {
        let admin = if i % 2 == 0 { &admin_a } else { &admin_b };
        subscriber(
            admin,
            &site,
            &plan,
            &format!("Warga {i}"),
            &format!("0812777000{i:02}"),
        )
        .await;
    }
    let sent = eventually(Duration::from_secs(40), "ten invoice messages", || async {
        let sent = messages(&admin_b, "topic=invoice.created&status=sent").await;
        (sent.len() == 10).then_some(sent)
    })
    .await;
    // A moment for any stray duplicate to show up.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let hits = gw.delivered("/wa/", "");
    assert_eq!(hits.len(), 10, "{hits:#?}");
    let mut keys: Vec<&str> = hits.iter().map(|h| h.idempotency_key.as_str()).collect();
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), 10, "each message once");
    assert!(sent.iter().all(|m| m["attempts"] == 1), "{sent:#?}");
}

/// A voucher batch sold to a reseller reaches the operators (its producer once read a table
/// that does not exist and stalled every later message); an event that can never be handled
/// is parked after its attempts, operators are alerted, later events still produce their
/// messages, and an operator's retry is visible in the API.
async fn a_poison_event_is_parked_and_the_rest_flow(backend: Backend) {
    let Scenario {
        dir: _dir,
        db: _db,
        ctl,
        admin,
    } = Scenario::start(backend).await;
    let gw = Gateway::default();
    let base = serve_gateway(gw.clone()).await;
    admin
        .put(
            "/api/v1/settings/notifications",
            &json!({"default_lang": "en"}),
        )
        .await
        .expect(200);
    channel(
        &admin,
        "NOC group",
        json!({"kind": "telegram", "api_base": format!("{base}/tg"), "bot_token": "5:noc", "operator_chat_id": "-100777"}),
    )
    .await;
    let (site, plan) = site_and_plan(&admin).await;

    // The poison: a payment event for a customer that does not exist, as a bug elsewhere or
    // a hand-edited row could leave it. It sits before every later event.
    let store = ctl.db().await;
    sqlx::query(
        "INSERT INTO events (kind, customer_id, subscription_id, site_id, payload, created_at) \
         VALUES ('payment.received', 'no-such-customer', NULL, NULL, '{}', 0)",
    )
    .execute(&store.pool)
    .await
    .unwrap();

    // A reseller buys a batch: the operators hear of it.
    sell_batch_to_reseller(&admin, "toko-budi", 3).await;
    // Later customer events are read past the poison too (the cursor check below).
    subscriber(&admin, &site, &plan, "Rina Wati", "081233334444").await;

    let sold = eventually(Duration::from_secs(60), "the batch sale alert", || async {
        gw.delivered("/tg/", "toko-budi").into_iter().next()
    })
    .await;
    assert!(sold.body.contains("Harian"), "{}", sold.body);
    let alert = eventually(
        Duration::from_secs(60),
        "the parked-event alert",
        || async {
            gw.delivered("/tg/", "notifications failed on event")
                .into_iter()
                .next()
        },
    )
    .await;
    assert!(alert.body.contains("payment.received"), "{}", alert.body);

    // The parked event is listed with its error, counted in metrics, and retryable.
    let parked = admin
        .get("/api/v1/events/parked?consumer=notifications")
        .await
        .expect(200);
    let parked = parked.as_array().unwrap();
    assert_eq!(parked.len(), 1, "{parked:?}");
    assert_eq!(parked[0]["kind"], "payment.received");
    assert_eq!(parked[0]["attempts"], 5);
    assert!(
        parked[0]["last_error"]
            .as_str()
            .unwrap()
            .contains("no-such-customer"),
        "{parked:?}"
    );
    let event_id = parked[0]["event_id"].as_i64().unwrap();
    let metrics = ctl.metrics().await;
    assert!(
        metrics.contains("mikrobill_events_parked{consumer=\"notifications\"} 1"),
        "{metrics}"
    );
    let retry = format!("/api/v1/events/consumers/notifications/parked/{event_id}/retry");
    admin.post(&retry, &json!({})).await.expect(202);
    assert_eq!(
        admin
            .post(
                "/api/v1/events/consumers/notifications/parked/999999/retry",
                &json!({})
            )
            .await
            .status,
        404
    );
    // Still failing: it stays parked with one more attempt, and the retry flag is spent.
    eventually(Duration::from_secs(30), "the retry ran", || async {
        let p = admin
            .get("/api/v1/events/parked?consumer=notifications")
            .await
            .expect(200);
        (p[0]["attempts"] == 6 && p[0]["retry_requested"] == false).then_some(())
    })
    .await;
    // The consumer is at the head of the log, past the parked event.
    eventually(
        Duration::from_secs(30),
        "the consumer caught up",
        || async {
            let consumers = admin.get("/api/v1/events/consumers").await.expect(200);
            let head = admin.get("/api/v1/events?limit=1").await.expect(200)["items"][0]["id"]
                .as_i64()
                .unwrap();
            consumers
                .as_array()
                .unwrap()
                .iter()
                .any(|c| c["name"] == "notifications" && c["cursor"].as_i64() == Some(head))
                .then_some(())
        },
    )
    .await;
}

/// Every event kind that has a message produces it, on one controller, in one pass of the
/// consumer: an invoice, an isolation, a payment, a re-activation, a batch sold
/// to a reseller, a command that expired before its site came online, the site going offline,
/// and an event the consumer had to park. (Reminders come from the schedule, not an event, and
/// portal codes from a login: their own tests cover them. `subscription.terminated`,
/// `site.online` and `site.revoked` have no message by design.)
async fn every_event_kind_produces_its_message(backend: Backend) {
    let Scenario {
        dir: _dir,
        db: _db,
        ctl,
        admin,
    } = Scenario::start(backend).await;
    let gw = Gateway::default();
    let base = serve_gateway(gw.clone()).await;
    admin
        .put(
            "/api/v1/settings/notifications",
            &json!({"site_offline_delay_seconds": 1, "default_lang": "en"}),
        )
        .await
        .expect(200);
    channel(
        &admin,
        "Telegram",
        json!({"kind": "telegram", "api_base": format!("{base}/tg"), "bot_token": "9:all", "operator_chat_id": "-100999"}),
    )
    .await;

    // A command waits for a site that has never been online, and expires before it comes.
    let enrollment = admin
        .post("/api/v1/sites", &json!({"name": "Menara Barat"}))
        .await
        .expect(201);
    let site = enrollment["site"]["id"].as_str().unwrap().to_string();
    admin
        .post(
            &format!("/api/v1/sites/{site}/commands"),
            &json!({"command": {"kind": "resync_router"}, "ttl_secs": 1}),
        )
        .await
        .expect(201);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let agent_dir = tempfile::tempdir().unwrap();
    agents::enroll(enrollment["token"].as_str().unwrap(), agent_dir.path()).await;
    let agent = agents::start(agent_dir.path(), None).await;
    agents::wait_connected(&agent).await;

    // A subscriber is invoiced, isolated, pays and is re-activated.
    let plan = admin
        .post(
            "/api/v1/plans",
            &json!({"name": "Home 10M", "kind": "pppoe", "price": 150000}),
        )
        .await
        .expect(201);
    // The customer's chat is known before the first invoice is issued.
    let customer = admin
        .post(
            "/api/v1/customers",
            &json!({"name": "Dewi Lestari", "phone": "081211112222"}),
        )
        .await
        .expect(201);
    let customer = customer["id"].as_str().unwrap().to_string();
    admin
        .put(
            &format!("/api/v1/customers/{customer}/notification-preferences"),
            &json!({"telegram_chat_id": "555001"}),
        )
        .await
        .expect(200);
    let sub = admin
        .post(
            "/api/v1/subscriptions",
            &json!({"customer_id": customer, "plan_id": plan["id"], "site_id": site, "username": "dewi"}),
        )
        .await
        .expect(201)["id"]
        .as_str()
        .unwrap()
        .to_string();
    admin
        .post(&format!("/api/v1/subscriptions/{sub}/isolate"), &json!({}))
        .await
        .expect(200);
    // Sent before the payment: a settled invoice or a lifted isolation cancels its message.
    wait_sent(&admin, "invoice.created").await;
    wait_sent(&admin, "subscription.isolated").await;
    let invoice = admin
        .get(&format!("/api/v1/invoices?subscription_id={sub}"))
        .await
        .expect(200)["items"][0]
        .clone();
    let owed = invoice["total"].as_i64().unwrap() - invoice["amount_paid"].as_i64().unwrap();
    let paid = admin
        .post(
            "/api/v1/payments",
            &json!({"invoice_id": invoice["id"], "amount": owed, "method": "cash"}),
        )
        .await
        .expect(201);
    assert_eq!(paid["allocations"][0]["amount"], owed, "{paid}");
    // An operator's isolation is lifted by an operator, not by the payment.
    admin
        .post(
            &format!("/api/v1/subscriptions/{sub}/reactivate"),
            &json!({}),
        )
        .await
        .expect(200);

    // A reseller buys a batch.
    sell_batch_to_reseller(&admin, "toko-dewi", 2).await;

    // An event no consumer can handle, and the site going down for good.
    let store = ctl.db().await;
    sqlx::query(
        "INSERT INTO events (kind, customer_id, subscription_id, site_id, payload, created_at) \
         VALUES ('payment.received', 'no-such-customer', NULL, NULL, '{}', $1)",
    )
    .bind(mikrobill_core::db::now_ms())
    .execute(&store.pool)
    .await
    .unwrap();
    store.close().await;
    agent.shutdown().await;

    for topic in [
        "invoice.created",
        "subscription.isolated",
        "payment.received",
        "subscription.reactivated",
        "voucher_batch.sold",
        "command.failed",
        "site.offline",
        "event.parked",
    ] {
        let sent = wait_sent(&admin, topic).await;
        assert!(
            sent.iter().all(|m| m["attempts"] == 1),
            "{topic}: {sent:#?}"
        );
    }
    // Customer messages went to the customer's chat, operator alerts to the operators'.
    assert!(!gw.delivered("/tg/", "555001").is_empty());
    assert!(!gw.delivered("/tg/", "-100999").is_empty());
}

/// The sent messages of a topic, once there is one; fails with every message when none is
/// sent within a minute.
async fn wait_sent(admin: &Api, topic: &str) -> Vec<Value> {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let m = messages(admin, &format!("topic={topic}&status=sent")).await;
        if !m.is_empty() {
            return m;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no {topic} message sent; all messages: {:#?}",
            messages(admin, "").await
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A reseller named `username` is credited and buys a batch of `count` vouchers of a new
/// hotspot plan named "Harian": a `voucher_batch.sold` event.
async fn sell_batch_to_reseller(admin: &Api, username: &str, count: u32) {
    let hotspot = admin
        .post(
            "/api/v1/plans",
            &json!({"name": "Harian", "kind": "hotspot", "price": 1500}),
        )
        .await
        .expect(201);
    let reseller = admin
        .post(
            "/api/v1/admins",
            &json!({"username": username, "password": format!("{username}-password-1"), "role": "reseller"}),
        )
        .await
        .expect(201);
    let reseller_id = reseller["id"].as_str().unwrap();
    admin
        .post(
            &format!("/api/v1/resellers/{reseller_id}/credit"),
            &json!({"amount": 10_000}),
        )
        .await
        .expect(200);
    let batch = admin
        .post(
            "/api/v1/voucher-batches",
            &json!({"plan_id": hotspot["id"], "count": count, "scope": "all"}),
        )
        .await
        .expect(201);
    admin
        .post(
            &format!(
                "/api/v1/voucher-batches/{}/sell",
                batch["id"].as_str().unwrap()
            ),
            &json!({"reseller_id": reseller_id}),
        )
        .await
        .expect(200);
}
