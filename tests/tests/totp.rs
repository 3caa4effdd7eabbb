//! Two-factor sign-in through a real controller: enrolment and confirmation, logins without,
//! with a wrong and with a right code, replayed codes, the throttle, roles that must use it,
//! an administrator's reset, the web UI's `/login/totp` step, and secrets kept out of the
//! audit log and the controller's log. Codes are computed here from the enrolment's secret.

use mikrobill_core::auth::totp::{self, Secret};
use mikrobill_core::db::now_ms;
use mikrobill_tests::Scenario;
use mikrobill_tests::http::{ADMIN_PASSWORD, Api};
use mikrobill_tests::web::{WebClient, csrf_of};
use mikrobill_tests::{Backend, init_tracing};
use serde_json::{Value, json};

mikrobill_tests::on_both_backends!(two_factor_sign_in);

const PASSWORD: &str = "totp-test-password";

/// Creates an admin user of `role` and returns its id.
async fn user(admin: &Api, name: &str, role: &str) -> String {
    let a = admin
        .post(
            "/api/v1/admins",
            &json!({"username": name, "password": PASSWORD, "role": role}),
        )
        .await
        .expect(201);
    a["id"].as_str().unwrap().to_string()
}

async fn login(api: &Api, name: &str, code: Option<&str>) -> mikrobill_tests::http::Response {
    let mut body = json!({"username": name, "password": PASSWORD});
    if let Some(c) = code {
        body["totp_code"] = json!(c);
    }
    api.post("/api/v1/auth/login", &body).await
}

/// Enrols the caller and confirms with the code of the current step; returns the secret and
/// the step its confirmation used up.
async fn enrol(api: &Api, password: &str) -> (Secret, String, i64) {
    let e = api
        .post(
            "/api/v1/auth/totp/enrolment",
            &json!({"current_password": password}),
        )
        .await
        .expect(201);
    let text = e["secret"].as_str().unwrap().to_string();
    let uri = e["otpauth_uri"].as_str().unwrap();
    assert!(uri.starts_with("otpauth://totp/MikroBill:"), "{uri}");
    assert!(uri.contains(&format!("secret={text}")), "{uri}");
    assert!(uri.contains("digits=6") && uri.contains("period=30"));
    let secret = Secret::from_base32(&text).unwrap();
    let step = totp::step_at(now_ms());
    let status = api
        .post(
            "/api/v1/auth/totp/confirm",
            &json!({"code": totp::code_at_step(&secret, step)}),
        )
        .await
        .expect(200);
    assert_eq!(status["enabled"], true);
    (secret, text, step)
}

/// A six-digit code that is none of the codes the window around `step` accepts.
fn wrong_code(secret: &Secret, step: i64) -> String {
    (0..1_000_000)
        .map(|n| format!("{n:06}"))
        .find(|c| ((step - 2)..=(step + 2)).all(|s| totp::code_at_step(secret, s) != *c))
        .unwrap()
}

fn problem_code(v: &Value) -> &str {
    v["code"].as_str().unwrap_or_default()
}

async fn two_factor_sign_in(backend: Backend) {
    init_tracing();
    let Scenario {
        dir: _dir,
        db: _db,
        ctl,
        admin,
    } = Scenario::start(backend).await;
    let anon = Api::new(ctl.api_addr);
    let mut secrets = Vec::new();

    // --- Enrolment and confirmation.
    let op_id = user(&admin, "op-user", "operator").await;
    let op = Api::login(ctl.api_addr, "op-user", PASSWORD).await;
    let st = op.get("/api/v1/auth/totp").await.expect(200);
    assert_eq!(
        (st["enabled"].clone(), st["enforced"].clone()),
        (json!(false), json!(false))
    );
    let res = op
        .post(
            "/api/v1/auth/totp/enrolment",
            &json!({"current_password": "not-the-password"}),
        )
        .await;
    assert_eq!(res.status, 422, "{}", res.text);
    // A wrong first code leaves the enrolment pending.
    let pending = op
        .post(
            "/api/v1/auth/totp/enrolment",
            &json!({"current_password": PASSWORD}),
        )
        .await
        .expect(201);
    let first = Secret::from_base32(pending["secret"].as_str().unwrap()).unwrap();
    let res = op
        .post(
            "/api/v1/auth/totp/confirm",
            &json!({"code": wrong_code(&first, totp::step_at(now_ms()))}),
        )
        .await;
    assert_eq!(res.status, 422, "{}", res.text);
    assert_eq!(
        op.get("/api/v1/auth/totp").await.expect(200)["pending"],
        true
    );
    secrets.push(pending["secret"].as_str().unwrap().to_string());
    let (secret, text, s0) = enrol(&op, PASSWORD).await;
    secrets.push(text.clone());
    let listed = admin
        .get(&format!("/api/v1/admins/{op_id}"))
        .await
        .expect(200);
    assert_eq!(listed["totp_enabled"], true);

    // --- Logins: no code, a wrong code, a replayed code, the right code, and it again.
    let res = login(&anon, "op-user", None).await;
    assert_eq!(
        (res.status, problem_code(&res.json())),
        (401, "totp_required")
    );
    let res = login(&anon, "op-user", Some(&wrong_code(&secret, s0))).await;
    assert_eq!(
        (res.status, problem_code(&res.json())),
        (401, "totp_invalid")
    );
    let confirm_code = totp::code_at_step(&secret, s0);
    let res = login(&anon, "op-user", Some(&confirm_code)).await;
    assert_eq!(
        (res.status, problem_code(&res.json())),
        (401, "totp_invalid"),
        "the code that confirmed the enrolment works no more"
    );
    let next = totp::code_at_step(&secret, s0 + 1);
    let ok = login(&anon, "op-user", Some(&next)).await.expect(200);
    assert_eq!(ok["totp_enrolment_required"], false);
    let op = anon.with_token(ok["access_token"].as_str().unwrap());
    op.get("/api/v1/customers").await.expect(200);
    let res = login(&anon, "op-user", Some(&next)).await;
    assert_eq!(
        (res.status, problem_code(&res.json())),
        (401, "totp_invalid"),
        "a code is never accepted twice"
    );
    // An older code than the one used is refused too.
    let res = login(&anon, "op-user", Some(&confirm_code)).await;
    assert_eq!(res.status, 401);

    // --- The admin turns it on and off for themself (password and a fresh code).
    let (asecret, atext, a0) = enrol(&admin, ADMIN_PASSWORD).await;
    secrets.push(atext);
    let res = admin
        .post(
            "/api/v1/auth/totp/disable",
            &json!({"current_password": ADMIN_PASSWORD, "code": totp::code_at_step(&asecret, a0)}),
        )
        .await;
    assert_eq!(
        res.status, 422,
        "a used code cannot turn it off: {}",
        res.text
    );
    admin
        .post(
            "/api/v1/auth/totp/disable",
            &json!({"current_password": ADMIN_PASSWORD, "code": totp::code_at_step(&asecret, a0 + 1)}),
        )
        .await
        .expect(204);
    assert_eq!(
        admin.get("/api/v1/auth/totp").await.expect(200)["enabled"],
        false
    );

    // --- A role that must use it: its logins may only enrol until they have.
    admin
        .put(
            "/api/v1/settings/security",
            &json!({"totp_required_roles": ["cashier"]}),
        )
        .await
        .expect(200);
    assert_eq!(
        admin.get("/api/v1/settings/security").await.expect(200)["totp_required_roles"],
        json!(["cashier"])
    );
    user(&admin, "cash-user", "cashier").await;
    let half = login(&anon, "cash-user", None).await.expect(200);
    assert_eq!(half["totp_enrolment_required"], true);
    let cash = anon.with_token(half["access_token"].as_str().unwrap());
    let res = cash.get("/api/v1/customers").await;
    assert_eq!(
        (res.status, problem_code(&res.json())),
        (403, "totp_enrolment_required")
    );
    assert_eq!(
        cash.get("/api/v1/auth/totp").await.expect(200)["enforced"],
        true
    );
    cash.get("/api/v1/auth/me").await.expect(200);
    // The web UI sends such a session to the enrolment page, whatever it asks for.
    let mut web_cash = WebClient::login(ctl.api_addr, "cash-user", PASSWORD).await;
    let res = web_cash.get("/customers").await;
    assert_eq!(
        (res.status, res.header("location")),
        (303, Some("/account/totp"))
    );
    assert_eq!(web_cash.get("/account/totp").await.status, 200);
    let (csecret, ctext, c0) = enrol(&cash, PASSWORD).await;
    secrets.push(ctext);
    cash.get("/api/v1/customers").await.expect(200);
    let res = cash
        .post(
            "/api/v1/auth/totp/disable",
            &json!({"current_password": PASSWORD, "code": totp::code_at_step(&csecret, c0 + 1)}),
        )
        .await;
    assert_eq!(
        (res.status, problem_code(&res.json())),
        (409, "totp_enforced")
    );
    let res = login(&anon, "cash-user", None).await;
    assert_eq!(
        (res.status, problem_code(&res.json())),
        (401, "totp_required")
    );

    // --- The web UI: password, then the code on /login/totp (a real form post).
    let mut web = WebClient::new(ctl.api_addr);
    let res = web
        .post_form(
            "/login",
            "/login",
            &[
                ("username", "op-user"),
                ("password", PASSWORD),
                ("next", "/customers"),
            ],
        )
        .await;
    assert_eq!(res.status, 303, "{}", res.text);
    assert_eq!(
        res.header("location"),
        Some("/login/totp?next=%2Fcustomers")
    );
    assert!(
        web.cookie("mb_admin").is_none(),
        "no session before the code"
    );
    let page = web.get("/login/totp?next=%2Fcustomers").await;
    assert_eq!(page.status, 200);
    let token = csrf_of(&page.text).unwrap();
    let res = web
        .post_raw(
            "/login/totp",
            &[("_csrf", &token), ("code", &next), ("next", "/customers")],
        )
        .await;
    assert_eq!(res.status, 401, "the API's code does not work here again");
    assert!(
        res.text.contains("sudah dipakai") || res.text.contains("used already"),
        "{}",
        res.text
    );
    // Without the anti-forgery token the code is not even looked at.
    let res = web
        .post_raw("/login/totp", &[("code", "123456"), ("next", "/")])
        .await;
    assert_eq!(res.status, 403);
    let fresh = totp::code_at_step(&secret, s0 + 2);
    let res = if totp::step_at(now_ms()) + 1 >= s0 + 2 {
        web.post_raw(
            "/login/totp",
            &[("_csrf", &token), ("code", &fresh), ("next", "/customers")],
        )
        .await
    } else {
        // Two codes of one account within one step: the next one is not accepted until the
        // clock is within a step of it, so wait for that.
        tokio::time::sleep(std::time::Duration::from_millis(
            (((s0 + 1) * 30_000) - now_ms()).max(0) as u64 + 200,
        ))
        .await;
        web.post_raw(
            "/login/totp",
            &[("_csrf", &token), ("code", &fresh), ("next", "/customers")],
        )
        .await
    };
    assert_eq!(res.status, 303, "{}", res.text);
    assert_eq!(res.header("location"), Some("/customers"));
    assert!(web.cookie("mb_admin").is_some());
    assert!(web.cookie("mb_login2").is_none());
    assert_eq!(web.get("/customers").await.status, 200);
    // The pending login is used up: the code page sends the browser back to the password.
    let res = web.get("/login/totp").await;
    assert_eq!(res.status, 303);

    // --- An administrator resets a lost phone: the account's sessions end.
    let reset = admin
        .delete(&format!("/api/v1/admins/{op_id}/totp"))
        .await
        .expect(200);
    assert_eq!(reset["totp_enabled"], false);
    assert_eq!(op.get("/api/v1/auth/me").await.status, 401);
    assert_eq!(web.get("/customers").await.status, 303);
    let again = login(&anon, "op-user", None).await.expect(200);
    assert_eq!(again["totp_enrolment_required"], false);

    // --- Wrong codes count toward the login throttle.
    let (secret, text, s1) = enrol(
        &anon.with_token(again["access_token"].as_str().unwrap()),
        PASSWORD,
    )
    .await;
    secrets.push(text);
    let mut last = 0;
    for _ in 0..8 {
        last = login(&anon, "op-user", Some(&wrong_code(&secret, s1)))
            .await
            .status;
        if last == 429 {
            break;
        }
        assert_eq!(last, 401);
    }
    assert_eq!(
        last, 429,
        "wrong codes lock the address out like wrong passwords"
    );

    // --- The audit log has every change and never a secret; neither has the log.
    let audit = admin.get("/api/v1/audit?limit=200").await;
    let audit_text = audit.text.clone();
    assert_eq!(audit.status, 200);
    for action in [
        "admin.totp_enabled",
        "admin.totp_disabled",
        "admin.totp_reset",
        "settings.security",
    ] {
        assert!(audit_text.contains(action), "no {action} in the audit log");
    }
    assert!(audit_text.contains("wrong_code"));
    let log = ctl.log();
    for s in &secrets {
        let lower = s.to_lowercase();
        assert!(!audit_text.contains(s.as_str()) && !audit_text.to_lowercase().contains(&lower));
        assert!(!log.contains(s.as_str()), "a secret in the controller log");
        assert!(!audit_text.contains("otpauth://"));
    }
}
