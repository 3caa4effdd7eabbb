//! The role x page matrix of the admin web UI, like `api_roles.rs` for the API: every page
//! is opened and every form action posted (with a valid CSRF token) by each role, and
//! exactly the roles this table names get past the authorization check (403 for the rest).
//! Every page a role may open is also searched for forms: each one must post to an action
//! that role may use, so no write control is shown to a role that cannot use it.

use mikrobill_tests::Scenario;
use mikrobill_tests::http::ADMIN_PASSWORD;
use mikrobill_tests::web::{WebClient, csrf_of};
use mikrobill_tests::{Backend, eventually};
use serde_json::json;
use std::collections::BTreeMap;
use std::time::Duration;

mikrobill_tests::on_both_backends!(every_role_gets_exactly_its_pages);

const ROLES: [(&str, char); 5] = [
    ("admin", 'a'),
    ("operator", 'o'),
    ("cashier", 'c'),
    ("reseller", 'r'),
    ("viewer", 'v'),
];

/// Pages: path pattern, who may open it (a capital letter: that role is answered 404, the
/// record being none of its business, rather than 403).
const PAGES: &[(&str, &str)] = &[
    ("/", "aocrv"),
    ("/account/password", "aocrv"),
    ("/account/totp", "aocrv"),
    ("/tokens", "aocrv"),
    ("/customers", "aocv"),
    ("/customers/{customer}", "aocv"),
    ("/plans", "aocrv"),
    ("/plans/{plan}", "aocrv"),
    ("/vouchers", "aocv"),
    ("/vouchers/batches", "aocv"),
    ("/vouchers/batches/new", "ao"),
    ("/vouchers/batches/{batch}", "aocvR"),
    ("/vouchers/batches/{batch}/print", "aocvR"),
    ("/voucher-conflicts", "aocv"),
    ("/shop", "r"),
    ("/subscriptions", "aocv"),
    ("/subscriptions/{sub}", "aocv"),
    ("/invoices", "aocv"),
    ("/invoices/{invoice}", "aocv"),
    ("/cash", "ac"),
    ("/cash?customer={customer}", "ac"),
    ("/payments", "aocv"),
    ("/payments/{payment}", "aocv"),
    ("/resellers", "ac"),
    ("/sites", "aov"),
    ("/sites/{site}", "aov"),
    ("/sites/{site}/hotspot.zip", "ao"),
    ("/sites/{site}/router-import/{import}", "a"),
    ("/sites/groups", "aov"),
    ("/sessions", "aov"),
    ("/jobs", "a"),
    ("/imports", "a"),
    ("/events", "a"),
    ("/webhooks", "a"),
    ("/webhooks/{hook}", "a"),
    ("/admins", "a"),
    ("/admins/{admin}", "a"),
    ("/audit", "a"),
    ("/reports", "aocv"),
    ("/reports?view=revenue", "aocv"),
    ("/reports?view=voucher-sales&period=month", "aocv"),
    ("/reports?view=receivables", "aocv"),
    ("/reports?view=subscribers", "aocv"),
    ("/reports?view=usage&by=customer", "aocv"),
    ("/reports/csv?view=revenue", "aocv"),
    ("/exports/payments.csv", "aocv"),
    ("/exports/customers.csv", "aocv"),
    ("/exports/audit.csv", "a"),
    ("/settings", "aocv"),
    ("/notifications", "aocv"),
    ("/notifications/{notification}", "aocv"),
    ("/notifications/templates", "aocv"),
    ("/notifications/channels", "aocv"),
    ("/notifications/channels/{channel}", "aocv"),
];

/// Form actions: path pattern, who may post it. `/logout` is everyone's and not posted here.
const ACTIONS: &[(&str, &str)] = &[
    ("/shop", "r"),
    ("/account/password", "aocrv"),
    ("/account/totp/enrol", "aocrv"),
    ("/account/totp/confirm", "aocrv"),
    ("/account/totp/disable", "aocrv"),
    ("/tokens", "aocrv"),
    ("/tokens/{token}/revoke", "aocrv"),
    ("/customers", "ao"),
    ("/customers/{customer}", "ao"),
    ("/plans", "a"),
    ("/plans/{plan}", "a"),
    ("/plans/{plan}/archive", "a"),
    ("/plans/{plan}/restore", "a"),
    ("/vouchers/batches", "ao"),
    ("/vouchers/batches/{batch}/revoke", "ao"),
    ("/vouchers/batches/{batch}/sell", "aoc"),
    ("/vouchers/{code}/revoke", "ao"),
    ("/vouchers/{code}/sell", "aoc"),
    ("/subscriptions", "ao"),
    ("/subscriptions/{sub}/isolate", "ao"),
    ("/subscriptions/{sub}/reactivate", "ao"),
    ("/subscriptions/{sub}/terminate", "ao"),
    ("/subscriptions/{sub}/kick", "ao"),
    ("/subscriptions/{sub}/plan", "ao"),
    ("/cash/pay", "ac"),
    ("/invoices/{invoice}/void", "a"),
    ("/resellers/{admin}/credit", "ac"),
    ("/sites", "ao"),
    ("/sites/{site}/token", "ao"),
    ("/sites/{site}/revoke", "ao"),
    ("/sites/{site}/commands", "ao"),
    ("/sites/{site}/drift/repair", "ao"),
    ("/sites/{site}/router-import", "a"),
    ("/sites/{site}/router-import/{import}/apply", "a"),
    ("/sites/groups", "ao"),
    ("/sites/groups/{group}/add", "ao"),
    ("/sites/groups/{group}/remove", "ao"),
    ("/sessions/kick", "ao"),
    ("/jobs/{job}/run", "a"),
    ("/webhooks", "a"),
    ("/webhooks/{hook}/deactivate", "a"),
    ("/webhooks/{hook}/replay", "a"),
    ("/admins", "a"),
    ("/admins/{admin}", "a"),
    ("/admins/{admin}/totp/reset", "a"),
    ("/settings", "a"),
    ("/settings/security", "a"),
    ("/settings/logo", "a"),
    ("/settings/logo/remove", "a"),
    ("/imports", "a"),
    ("/customers/{customer}/notifications", "ao"),
    ("/notifications/{notification}/retry", "a"),
    ("/notifications/templates", "a"),
    ("/notifications/templates/reset", "a"),
    ("/notifications/channels", "a"),
    ("/notifications/channels/{channel}", "a"),
    ("/notifications/settings", "a"),
];

/// The `action` of every `<form method="post">` on a page.
fn post_actions(html: &str) -> Vec<String> {
    let marker = "method=\"post\" action=\"";
    html.match_indices(marker)
        .map(|(i, _)| {
            let rest = &html[i + marker.len()..];
            rest[..rest.find('"').unwrap()].to_string()
        })
        .collect()
}

async fn every_role_gets_exactly_its_pages(backend: Backend) {
    let Scenario {
        dir: _dir,
        db: _db,
        ctl,
        admin,
    } = Scenario::start(backend).await;

    // One of everything, so every detail page exists.
    let site = admin
        .post("/api/v1/sites", &json!({"name": "Matriks"}))
        .await
        .expect(201);
    let site_id = site["site"]["id"].as_str().unwrap().to_string();
    let hotspot = admin
        .post(
            "/api/v1/plans",
            &json!({"name": "Voucher 3 jam", "kind": "hotspot", "price": 3000}),
        )
        .await
        .expect(201);
    let pppoe = admin
        .post(
            "/api/v1/plans",
            &json!({"name": "Rumah 5M", "kind": "pppoe", "price": 100000}),
        )
        .await
        .expect(201);
    let upgrade = admin
        .post(
            "/api/v1/plans",
            &json!({"name": "Rumah 9M", "kind": "pppoe", "price": 150000}),
        )
        .await
        .expect(201);
    let customer = admin
        .post("/api/v1/customers", &json!({"name": "Budi"}))
        .await
        .expect(201);
    let customer_id = customer["id"].as_str().unwrap().to_string();
    // A channel nobody answers at, so the customer's first invoice message dies at once
    // (its page then shows the retry form); a custom template shows the reset form.
    let channel = admin
        .post(
            "/api/v1/notification-channels",
            &json!({"name": "Telegram", "max_attempts": 1,
                    "config": {"kind": "telegram", "api_base": "http://127.0.0.1:9", "bot_token": "1:x"}}),
        )
        .await
        .expect(201);
    let channel_id = channel["id"].as_str().unwrap().to_string();
    admin
        .put(
            &format!("/api/v1/customers/{customer_id}/notification-preferences"),
            &json!({"telegram_chat_id": "777001"}),
        )
        .await
        .expect(200);
    admin
        .put(
            "/api/v1/notification-templates/invoice.created/id",
            &json!({"subject": "Tagihan", "body": "Tagihan {{invoice_number}}: {{amount}}"}),
        )
        .await
        .expect(200);
    let sub = admin
        .post(
            "/api/v1/subscriptions",
            &json!({"customer_id": customer_id, "plan_id": pppoe["id"], "site_id": site_id,
                    "username": "budi@matriks", "password": "rahasia123"}),
        )
        .await
        .expect(201);
    let sub_id = sub["id"].as_str().unwrap().to_string();
    let invoice = admin
        .get(&format!("/api/v1/invoices?subscription_id={sub_id}"))
        .await
        .expect(200)["items"][0]
        .clone();
    let invoice_id = invoice["id"].as_str().unwrap().to_string();
    let notification_id = eventually(Duration::from_secs(60), "a dead message", || {
        let admin = &admin;
        let customer_id = &customer_id;
        async move {
            admin
                .get(&format!(
                    "/api/v1/notifications?customer_id={customer_id}&status=dead"
                ))
                .await
                .expect(200)["items"][0]["id"]
                .as_str()
                .map(str::to_string)
        }
    })
    .await;
    let payment = admin
        .post(
            "/api/v1/payments",
            &json!({"customer_id": customer_id, "amount": 1000, "method": "cash"}),
        )
        .await
        .expect(201);
    let payment_id = payment["payment"]["id"].as_str().unwrap().to_string();
    let batch = admin
        .post(
            "/api/v1/voucher-batches",
            &json!({"plan_id": hotspot["id"], "count": 2, "scope": "all"}),
        )
        .await
        .expect(201);
    let batch_id = batch["id"].as_str().unwrap().to_string();
    let codes: Vec<String> = admin
        .get(&format!("/api/v1/voucher-batches/{batch_id}/vouchers"))
        .await
        .expect(200)["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["code"].as_str().unwrap().to_string())
        .collect();
    let group = admin
        .post("/api/v1/site-groups", &json!({"name": "Kecamatan"}))
        .await
        .expect(201);
    let group_id = group["id"].as_str().unwrap().to_string();
    admin
        .put(
            &format!("/api/v1/site-groups/{group_id}/sites/{site_id}"),
            &json!({}),
        )
        .await
        .expect(200);
    let hook = admin
        .post(
            "/api/v1/webhooks",
            &json!({"url": "http://127.0.0.1:9/hook", "events": ["*"]}),
        )
        .await
        .expect(201);
    let hook_id = hook["webhook"]["id"].as_str().unwrap().to_string();
    let import = admin
        .post(
            &format!("/api/v1/sites/{site_id}/router-import"),
            &json!({}),
        )
        .await
        .expect(202);
    let import_id = import["read"]["id"].as_i64().unwrap().to_string();
    let mut admin_ids = Vec::new();
    for (role, _) in ROLES.iter().skip(1) {
        let a = admin
            .post(
                "/api/v1/admins",
                &json!({"username": format!("{role}-user"), "password": format!("{role}-password"), "role": role}),
            )
            .await
            .expect(201);
        admin_ids.push(a["id"].as_str().unwrap().to_string());
    }

    // Real ids for opening pages; ids of nothing for posting, so an allowed post changes
    // nothing and still shows it got past the role check (a redirect, 400 or 404).
    let real: BTreeMap<&str, String> = [
        ("{customer}", customer_id.clone()),
        ("{batch}", batch_id.clone()),
        ("{sub}", sub_id.clone()),
        ("{invoice}", invoice_id.clone()),
        ("{payment}", payment_id.clone()),
        ("{site}", site_id.clone()),
        ("{admin}", admin_ids[0].clone()),
        ("{group}", group_id.clone()),
        ("{hook}", hook_id.clone()),
        ("{plan}", hotspot["id"].as_str().unwrap().to_string()),
        ("{notification}", notification_id.clone()),
        ("{channel}", channel_id.clone()),
        ("{import}", import_id.clone()),
    ]
    .into();
    let fill = |pattern: &str, ids: &dyn Fn(&str) -> String| {
        let mut p = pattern.to_string();
        for key in [
            "{customer}",
            "{batch}",
            "{sub}",
            "{invoice}",
            "{payment}",
            "{site}",
            "{admin}",
            "{plan}",
            "{code}",
            "{token}",
            "{group}",
            "{job}",
            "{hook}",
            "{notification}",
            "{channel}",
            "{import}",
        ] {
            if p.contains(key) {
                p = p.replace(key, &ids(key));
            }
        }
        p
    };
    // Turns a form action found on a page back into its pattern.
    let mut known: Vec<(String, &str)> = real
        .iter()
        .filter(|(k, _)| **k != "{import}")
        .map(|(k, v)| (v.clone(), *k))
        .collect();
    for id in &admin_ids {
        known.push((id.clone(), "{admin}"));
    }
    for p in [&hotspot, &pppoe, &upgrade] {
        known.push((p["id"].as_str().unwrap().to_string(), "{plan}"));
    }
    for code in &codes {
        known.push((code.clone(), "{code}"));
    }
    // The import id is a number: only where it stands in an import's path is it one.
    known.push((
        format!("router-import/{import_id}/"),
        "router-import/{import}/",
    ));
    for job in [
        "invoice-run",
        "isolation-sweep",
        "voucher-expiry",
        "notification-reminders",
        "sync-compaction",
    ] {
        known.push((job.to_string(), "{job}"));
    }
    let pattern_of = |action: &str| -> String {
        let mut p = action.to_string();
        for (id, key) in &known {
            p = p.replace(id.as_str(), key);
        }
        p
    };

    let mut failures = Vec::new();
    for (role, letter) in ROLES {
        let password = if role == "admin" {
            ADMIN_PASSWORD.to_string()
        } else {
            format!("{role}-password")
        };
        let username = if role == "admin" {
            "admin".to_string()
        } else {
            format!("{role}-user")
        };
        let mut web = WebClient::login(ctl.api_addr, &username, &password).await;
        for (pattern, who) in PAGES {
            let path = fill(pattern, &|k| real[k].clone());
            let res = web.get(&path).await;
            let allowed = who.contains(letter);
            let hidden = who.contains(letter.to_ascii_uppercase());
            let ok = if allowed {
                res.status == 200
            } else if hidden {
                res.status == 404
            } else {
                res.status == 403
            };
            if !ok {
                failures.push(format!("{role} GET {pattern}: {}", res.status));
                continue;
            }
            if !allowed {
                continue;
            }
            for action in post_actions(&res.text) {
                if action == "/logout" {
                    continue;
                }
                let p = pattern_of(&action);
                match ACTIONS.iter().find(|(a, _)| *a == p) {
                    Some((_, who)) if who.contains(letter) => {}
                    Some(_) => failures.push(format!("{role} is shown a form to {p} on {pattern}")),
                    None => {
                        failures.push(format!("form action {p} on {pattern} is not in the matrix"))
                    }
                }
            }
        }
        let token = csrf_of(&web.get("/").await.text).expect("a token on the dashboard");
        for (pattern, who) in ACTIONS {
            let path = fill(pattern, &|_| "does-not-exist".to_string());
            let fields: &[(&str, &str)] = match *pattern {
                "/account/password" => &[
                    ("current_password", "x"),
                    ("new_password", "a"),
                    ("confirm_password", "b"),
                ],
                "/resellers/{admin}/credit" | "/cash/pay" => &[
                    ("amount", "1"),
                    ("customer_id", "does-not-exist"),
                    ("method", "cash"),
                ],
                _ => &[],
            };
            let mut all = vec![("_csrf", token.as_str())];
            all.extend_from_slice(fields);
            let res = web.post_raw(&path, &all).await;
            let allowed = who.contains(letter);
            let ok = if allowed {
                res.status != 403 && res.status < 500
            } else {
                res.status == 403
            };
            if !ok {
                failures.push(format!(
                    "{role} POST {pattern}: {} {}",
                    res.status,
                    res.header("location").unwrap_or("")
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "role x page matrix:\n{}",
        failures.join("\n")
    );

    // Nothing the posts could reach changed.
    let detail = admin
        .get(&format!("/api/v1/voucher-batches/{batch_id}"))
        .await
        .expect(200);
    assert_eq!(detail["counts"]["new"], 2);
    let s = admin
        .get(&format!("/api/v1/subscriptions/{sub_id}"))
        .await
        .expect(200);
    assert_eq!(s["status"], "active");
}
