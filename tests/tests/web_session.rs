//! Admin UI sessions through the real controller: the cookie's attributes, login throttling
//! shared with the API, logout, and the events that must end a session (password change,
//! disabling); a session cookie is no API credential; unknown pages get an HTML 404.

use mikrobill_tests::Backend;
use mikrobill_tests::Scenario;
use mikrobill_tests::http::{ADMIN_PASSWORD, Api};
use mikrobill_tests::web::{WebClient, csrf_of};
use serde_json::json;

mikrobill_tests::on_both_backends!(sessions_end_when_they_must);

fn session_cookie(c: &WebClient) -> Option<String> {
    c.cookie("mb_admin")
}

async fn sessions_end_when_they_must(backend: Backend) {
    let Scenario {
        dir: _dir,
        db: _db,
        ctl,
        admin,
    } = Scenario::start(backend).await;
    let op = admin
        .post(
            "/api/v1/admins",
            &json!({"username": "opi", "password": "opi-password-1", "role": "operator"}),
        )
        .await
        .expect(201);
    let op_id = op["id"].as_str().unwrap().to_string();

    // Anonymous pages redirect to the login page, which remembers where to go back.
    let mut anon = WebClient::new(ctl.api_addr);
    let res = anon.get("/vouchers?status=new").await;
    assert_eq!(res.status, 303);
    assert_eq!(
        res.header("location"),
        Some("/login?next=%2Fvouchers%3Fstatus%3Dnew")
    );
    let login = anon.get("/login").await;
    assert_eq!(login.status, 200);
    assert!(
        login
            .header("content-security-policy")
            .unwrap()
            .contains("script-src 'self'")
    );
    // Wrong passwords count in the same throttle as the API's login.
    for _ in 0..5 {
        let r = anon
            .post_form(
                "/login",
                "/login",
                &[("username", "opi"), ("password", "wrong-password")],
            )
            .await;
        assert_eq!(r.status, 401);
    }
    let locked = anon
        .post_form(
            "/login",
            "/login",
            &[("username", "opi"), ("password", "opi-password-1")],
        )
        .await;
    assert_eq!(locked.status, 429);
    let api_locked = Api::new(ctl.api_addr)
        .post(
            "/api/v1/auth/login",
            &json!({"username": "opi", "password": "opi-password-1"}),
        )
        .await;
    assert_eq!(api_locked.status, 429);
    // A login form without the token is refused before the password is looked at.
    let forged = WebClient::new(ctl.api_addr)
        .post_raw(
            "/login",
            &[("username", "admin"), ("password", ADMIN_PASSWORD)],
        )
        .await;
    assert_eq!(forged.status, 403);

    // The session cookie: HttpOnly, SameSite, Secure behind a TLS proxy.
    let mut a = WebClient::login(ctl.api_addr, "admin", ADMIN_PASSWORD).await;
    let page = a
        .get_with("/login", &[("X-Forwarded-Proto", "https")])
        .await;
    let pre = page.header("set-cookie").unwrap_or("");
    assert!(
        pre.contains("HttpOnly") && pre.contains("SameSite=Lax") && pre.contains("Secure"),
        "{pre}"
    );
    let cookie = session_cookie(&a).unwrap();
    assert!(cookie.starts_with("mbs_"));
    // It is not an API credential.
    assert_eq!(
        Api::new(ctl.api_addr)
            .with_token(&cookie)
            .get("/api/v1/auth/me")
            .await
            .status,
        401
    );

    // Logout ends exactly this session.
    let mut b = WebClient::login(ctl.api_addr, "admin", ADMIN_PASSWORD).await;
    let stale = b.clone();
    assert_eq!(b.post_form("/", "/logout", &[]).await.status, 303);
    assert_eq!(stale.clone().get("/").await.status, 303);
    // A form posted with an ended session leads back to the form's page after signing in.
    let res = stale
        .clone()
        .post_raw("/customers", &[("_csrf", "x"), ("name", "x")])
        .await;
    assert_eq!(res.status, 303);
    assert_eq!(res.header("location"), Some("/login?next=%2F"));
    assert_eq!(a.get("/").await.status, 200);

    // A password change ends the admin's other sessions; this browser gets a new one.
    let mut other = WebClient::login(ctl.api_addr, "admin", ADMIN_PASSWORD).await;
    let res = a
        .post_form(
            "/account/password",
            "/account/password",
            &[
                ("current_password", ADMIN_PASSWORD),
                ("new_password", "a-brand-new-password"),
                ("confirm_password", "a-brand-new-password"),
            ],
        )
        .await;
    assert_eq!(res.status, 303);
    assert_eq!(res.header("location"), Some("/"));
    assert_ne!(session_cookie(&a).unwrap(), cookie);
    assert_eq!(a.get("/").await.status, 200);
    assert_eq!(other.get("/").await.status, 303);

    // Disabling an admin ends their sessions.
    let admin = Api::login(ctl.api_addr, "admin", "a-brand-new-password").await;
    admin
        .post(
            "/api/v1/admins",
            &json!({"username": "ona", "password": "ona-password-1", "role": "viewer"}),
        )
        .await
        .expect(201);
    let mut ona = WebClient::login(ctl.api_addr, "ona", "ona-password-1").await;
    assert_eq!(ona.get("/").await.status, 200);
    let ona_id = admin.get("/api/v1/admins?role=viewer").await.expect(200)["items"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    admin
        .patch(
            &format!("/api/v1/admins/{ona_id}"),
            &json!({"disabled": true}),
        )
        .await
        .expect(200);
    assert_eq!(ona.get("/").await.status, 303);
    let _ = op_id;

    // Unknown pages: HTML for browsers, problem details under /api.
    let res = a.get("/no-such-page").await;
    assert_eq!(res.status, 404);
    assert_eq!(res.header("content-type"), Some("text/html; charset=utf-8"));
    let res = Api::new(ctl.api_addr).get("/api/v1/no-such-thing").await;
    assert_eq!(res.status, 404);
    assert!(res.text.contains("not_found"));
    // The CSRF token of one session is worthless in another.
    let token_a = csrf_of(&a.get("/").await.text).unwrap();
    let mut c = WebClient::login(ctl.api_addr, "admin", "a-brand-new-password").await;
    let res = c.post_raw("/logout", &[("_csrf", &token_a)]).await;
    assert_eq!(res.status, 403);
}
