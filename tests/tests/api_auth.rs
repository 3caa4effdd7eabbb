//! The admin API's access control through a real controller process: logins, token
//! rotation, lockout, API tokens, roles, the audit trail, problem details, the OpenAPI
//! document, readiness and metrics.

use mikrobill_tests::Scenario;
use mikrobill_tests::http::{ADMIN_PASSWORD, Api};
use mikrobill_tests::{Backend, Controller, TestDb, init_tracing};
use serde_json::json;

mikrobill_tests::on_both_backends!(
    login_refresh_logout_and_lockout,
    users_tokens_roles_and_audit,
    errors_docs_readiness_and_metrics,
    changing_a_password_is_throttled_like_login
);

async fn login_refresh_logout_and_lockout(backend: Backend) {
    init_tracing();
    let db = TestDb::new(backend).await;
    let dir = tempfile::tempdir().unwrap();
    let ctl = Controller::start(dir.path(), &db).await;
    let anon = Api::new(ctl.api_addr);

    // No token, a made-up token: 401 with a Bearer challenge.
    let res = anon.get("/api/v1/auth/me").await;
    assert_eq!(res.status, 401);
    assert_eq!(res.header("www-authenticate"), Some("Bearer"));
    assert_eq!(res.header("content-type"), Some("application/problem+json"));
    assert_eq!(
        anon.with_token("mba_nope")
            .get("/api/v1/auth/me")
            .await
            .status,
        401
    );

    let login = anon
        .post(
            "/api/v1/auth/login",
            &json!({"username": "admin", "password": ADMIN_PASSWORD}),
        )
        .await
        .expect(200);
    assert_eq!(login["token_type"], "Bearer");
    assert_eq!(login["admin"]["role"], "admin");
    assert!(login["expires_in"].as_i64().unwrap() > 800);
    let access = login["access_token"].as_str().unwrap();
    let refresh = login["refresh_token"].as_str().unwrap();
    let me = anon
        .with_token(access)
        .get("/api/v1/auth/me")
        .await
        .expect(200);
    assert_eq!(me["username"], "admin");
    assert!(me.get("password_hash").is_none());

    // A refresh token works once; its reuse revokes the whole session, new pair included.
    let pair = anon
        .post("/api/v1/auth/refresh", &json!({"refresh_token": refresh}))
        .await
        .expect(200);
    let access2 = pair["access_token"].as_str().unwrap();
    anon.with_token(access2)
        .get("/api/v1/auth/me")
        .await
        .expect(200);
    let reuse = anon
        .post("/api/v1/auth/refresh", &json!({"refresh_token": refresh}))
        .await;
    assert_eq!(reuse.status, 401);
    // Within the token cache's lifetime other replicas may still accept it; ours cleared.
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    assert_eq!(
        anon.with_token(access2).get("/api/v1/auth/me").await.status,
        401
    );

    // Logout ends the session.
    let api = Api::admin(ctl.api_addr).await;
    assert_eq!(
        api.post("/api/v1/auth/logout", &json!({})).await.status,
        204
    );
    assert_eq!(api.get("/api/v1/auth/me").await.status, 401);

    // Five wrong passwords lock this address out of the account, even for the right
    // password, with Retry-After (other addresses are only slowed down: tests/hardening.rs).
    for _ in 0..5 {
        let res = anon
            .post(
                "/api/v1/auth/login",
                &json!({"username": "admin", "password": "wrong password!"}),
            )
            .await;
        assert_eq!(res.status, 401, "{}", res.text);
        assert_eq!(res.json()["code"], "unauthenticated");
    }
    let locked = anon
        .post(
            "/api/v1/auth/login",
            &json!({"username": "admin", "password": ADMIN_PASSWORD}),
        )
        .await;
    assert_eq!(locked.status, 429, "{}", locked.text);
    assert_eq!(locked.json()["code"], "too_many_attempts");
    let retry: u64 = locked.header("retry-after").unwrap().parse().unwrap();
    assert!((800..=900).contains(&retry), "{retry}");
    // An unknown account answers like a wrong password.
    let unknown = anon
        .post(
            "/api/v1/auth/login",
            &json!({"username": "nobody", "password": "whatever123"}),
        )
        .await;
    assert_eq!(unknown.status, 401);
    // The operator unlocks by resetting the password from the CLI.
    let out = ctl.cli(&["admin", "reset-password", "admin"]);
    let new_pw = out
        .lines()
        .find_map(|l| l.strip_prefix("password: "))
        .unwrap()
        .to_string();
    assert!(!ctl.log().contains(&new_pw), "a password reached the log");
}

async fn users_tokens_roles_and_audit(backend: Backend) {
    let Scenario {
        dir: _dir,
        db: _db,
        ctl,
        admin,
    } = Scenario::start(backend).await;

    let viewer = admin
        .post(
            "/api/v1/admins",
            &json!({"username": "vera", "password": "viewer-password", "role": "viewer"}),
        )
        .await
        .expect(201);
    assert_eq!(viewer["role"], "viewer");
    let dup = admin
        .post(
            "/api/v1/admins",
            &json!({"username": "vera", "password": "viewer-password", "role": "viewer"}),
        )
        .await;
    assert_eq!(dup.status, 409);
    assert_eq!(dup.json()["code"], "exists");
    let weak = admin
        .post(
            "/api/v1/admins",
            &json!({"username": "weak", "password": "short", "role": "viewer"}),
        )
        .await;
    assert_eq!(weak.status, 422);
    assert_eq!(weak.json()["field"], "password");

    // The CLI creates users too.
    let out = ctl.cli(&["admin", "create", "kasir1", "--role", "cashier"]);
    let kasir_pw = out
        .lines()
        .find_map(|l| l.strip_prefix("password: "))
        .unwrap()
        .to_string();
    let kasir = Api::login(ctl.api_addr, "kasir1", &kasir_pw).await;
    assert_eq!(
        kasir.get("/api/v1/auth/me").await.expect(200)["role"],
        "cashier"
    );

    // Roles: a viewer cannot manage users or read the audit log.
    let vera = Api::login(ctl.api_addr, "vera", "viewer-password").await;
    assert_eq!(vera.get("/api/v1/admins").await.status, 403);
    assert_eq!(vera.get("/api/v1/audit").await.status, 403);
    let forbidden = vera
        .post(
            "/api/v1/admins",
            &json!({"username": "x", "password": "whatever-pass", "role": "admin"}),
        )
        .await;
    assert_eq!(forbidden.status, 403);
    assert_eq!(forbidden.json()["code"], "forbidden");
    // ... but reads its own account.
    let vera_id = viewer["id"].as_str().unwrap();
    vera.get(&format!("/api/v1/admins/{vera_id}"))
        .await
        .expect(200);

    // API tokens: shown once, usable, listed without secret, revocable.
    let created = vera
        .post(
            "/api/v1/tokens",
            &json!({"name": "dashboard", "expires_in_days": 30}),
        )
        .await
        .expect(201);
    let secret = created["secret"].as_str().unwrap();
    assert!(secret.starts_with("mbk_"));
    let integ = Api::new(ctl.api_addr).with_token(secret);
    assert_eq!(
        integ.get("/api/v1/auth/me").await.expect(200)["username"],
        "vera"
    );
    let listed = vera.get("/api/v1/tokens").await.expect(200);
    assert_eq!(listed.as_array().unwrap().len(), 1);
    assert!(!listed.to_string().contains(secret));
    let token_id = created["token"]["id"].as_str().unwrap();
    assert_eq!(
        kasir
            .delete(&format!("/api/v1/tokens/{token_id}"))
            .await
            .status,
        403
    );
    assert_eq!(
        vera.delete(&format!("/api/v1/tokens/{token_id}"))
            .await
            .status,
        204
    );
    assert_eq!(integ.get("/api/v1/auth/me").await.status, 401);

    // Disabling a user ends its sessions; admins cannot lock themselves out.
    admin
        .patch(
            &format!("/api/v1/admins/{vera_id}"),
            &json!({"disabled": true}),
        )
        .await
        .expect(200);
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    assert_eq!(vera.get("/api/v1/auth/me").await.status, 401);
    let me = admin.get("/api/v1/auth/me").await.expect(200);
    let self_lock = admin
        .patch(
            &format!("/api/v1/admins/{}", me["id"].as_str().unwrap()),
            &json!({"disabled": true}),
        )
        .await;
    assert_eq!(self_lock.status, 409);

    // The audit log names who did what, with before and after.
    let audit = admin
        .get("/api/v1/audit?entity=admin&limit=10")
        .await
        .expect(200);
    let items = audit["items"].as_array().unwrap();
    let update = items
        .iter()
        .find(|e| e["action"] == "admin.update")
        .unwrap();
    assert_eq!(update["actor_name"], "admin");
    assert_eq!(update["before"]["disabled"], false);
    assert_eq!(update["after"]["disabled"], true);
    assert_eq!(update["remote_addr"], "127.0.0.1");
    assert!(
        items
            .iter()
            .any(|e| e["action"] == "admin.create" && e["actor_name"] == "cli")
    );
    // The token's creation and revocation are audited by whoever did them, never with its
    // secret.
    let audit = admin
        .get("/api/v1/audit?entity=token&limit=10")
        .await
        .expect(200);
    let items = audit["items"].as_array().unwrap();
    assert!(!audit.to_string().contains(secret));
    let create = items
        .iter()
        .find(|e| e["action"] == "token.create")
        .expect("token.create audited");
    assert_eq!(create["actor_name"], "vera");
    assert_eq!(create["entity_id"], token_id);
    let revoke = items
        .iter()
        .find(|e| e["action"] == "token.revoke")
        .expect("token.revoke audited");
    assert_eq!(revoke["actor_name"], "vera");
    assert!(revoke["before"]["revoked_at"].is_null());
    assert!(revoke["after"]["revoked_at"].is_i64());

    let page = admin.get("/api/v1/audit?limit=1").await.expect(200);
    let cursor = page["next_cursor"].as_str().unwrap();
    let next = admin
        .get(&format!("/api/v1/audit?limit=1&cursor={cursor}"))
        .await
        .expect(200);
    assert!(next["items"][0]["id"].as_i64().unwrap() < page["items"][0]["id"].as_i64().unwrap());
}

async fn errors_docs_readiness_and_metrics(backend: Backend) {
    let Scenario {
        dir,
        db: _db,
        ctl,
        admin,
    } = Scenario::start(backend).await;

    let bad = admin
        .request(
            "POST",
            "/api/v1/admins",
            Some(b"{not json".to_vec()),
            "application/json",
        )
        .await;
    assert_eq!(bad.status, 400);
    assert_eq!(bad.json()["code"], "malformed_json");
    let wrong_type = admin
        .post(
            "/api/v1/admins",
            &json!({"username": "x1x", "password": "whatever-pass", "role": "emperor"}),
        )
        .await;
    assert_eq!(wrong_type.status, 400, "{}", wrong_type.text);
    assert_eq!(wrong_type.json()["field"], "role");
    let missing = admin
        .post("/api/v1/admins", &json!({"username": "x1x"}))
        .await;
    assert_eq!(missing.status, 400);
    assert_eq!(missing.json()["field"], "password");
    let unknown = admin
        .post("/api/v1/admins", &json!({"username": "x1x", "password": "whatever-pass", "role": "viewer", "is_root": true}))
        .await;
    assert_eq!(unknown.status, 400);
    let text = admin
        .request(
            "POST",
            "/api/v1/admins",
            Some(b"username=x".to_vec()),
            "application/x-www-form-urlencoded",
        )
        .await;
    assert_eq!(text.status, 415);
    let bad_limit = admin.get("/api/v1/admins?limit=0").await;
    assert_eq!(bad_limit.status, 422);
    assert_eq!(bad_limit.json()["field"], "limit");
    let bad_cursor = admin.get("/api/v1/admins?cursor=%25%25").await;
    assert_eq!(bad_cursor.status, 422);
    assert_eq!(admin.get("/api/v1/nothing-here").await.status, 404);

    // The OpenAPI document is generated from the handlers and lists every route.
    let doc = Api::new(ctl.api_addr)
        .get("/api/v1/openapi.json")
        .await
        .expect(200);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    for path in [
        "/auth/login",
        "/admins",
        "/admins/{id}",
        "/tokens",
        "/audit",
    ] {
        assert!(
            doc["paths"].get(path).is_some(),
            "{path} missing from the OpenAPI document"
        );
    }
    assert!(doc["components"]["securitySchemes"]["bearer"].is_object());
    // An independent validator (openapi-spec-validator, PyPI) accepts the document.
    let file = dir.path().join("openapi.json");
    std::fs::write(&file, doc.to_string()).unwrap();
    let out = std::process::Command::new("python3")
        .args(["-m", "openapi_spec_validator"])
        .arg(&file)
        .output()
        .expect("python3 runs (scripts/ensure-test-tools installs openapi-spec-validator)");
    assert!(
        out.status.success(),
        "the OpenAPI document does not validate: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let page = Api::new(ctl.api_addr).get("/api/v1/docs").await;
    assert_eq!(page.status, 200);
    assert!(page.text.contains("/auth/login") && page.text.contains("<h2"));
    assert!(!page.text.contains("<script"));

    Api::new(ctl.api_addr).get("/ready").await.expect(200);
    // Business figures are not on the public listener unless a metrics token opens them.
    assert_eq!(Api::new(ctl.api_addr).get("/metrics").await.status, 404);
    let metrics = ctl.metrics().await;
    assert!(
        metrics.contains("mikrobill_http_request_duration_seconds_bucket"),
        "{metrics}"
    );
    assert!(metrics.contains("route=\"/api/v1/admins\""));
    assert!(metrics.contains("mikrobill_receivables_minor_units"));
}

/// Guessing the current password through "change password" locks like the login form does,
/// so a stolen session cannot be turned into unlimited password guesses.
async fn changing_a_password_is_throttled_like_login(backend: Backend) {
    let Scenario {
        dir: _dir,
        db: _db,
        ctl,
        admin,
    } = Scenario::start(backend).await;
    admin
        .post(
            "/api/v1/admins",
            &json!({"username": "kasir9", "password": "kasir-password-9", "role": "cashier"}),
        )
        .await
        .expect(201);
    let kasir = Api::login(ctl.api_addr, "kasir9", "kasir-password-9").await;
    for _ in 0..5 {
        let r = kasir
            .post(
                "/api/v1/auth/password",
                &json!({"current_password": "guess-guess-1", "new_password": "another-pass-123"}),
            )
            .await;
        assert_eq!(r.status, 422, "{}", r.text);
    }
    let locked = kasir
        .post(
            "/api/v1/auth/password",
            &json!({"current_password": "kasir-password-9", "new_password": "another-pass-123"}),
        )
        .await;
    assert_eq!(locked.status, 409, "{}", locked.text);
    assert_eq!(locked.json()["code"], "locked");
}
