//! The role x endpoint matrix: every authenticated operation in the OpenAPI document is
//! called with each role's token, and exactly the roles this table names get past the
//! authorization check (403 for everyone else). An operation missing from the table fails
//! the test, so a new endpoint cannot ship without deciding who may call it.

use mikrobill_tests::Backend;
use mikrobill_tests::Scenario;
use mikrobill_tests::http::Api;
use serde_json::json;
use std::collections::BTreeMap;

mikrobill_tests::on_both_backends!(every_role_gets_exactly_its_endpoints);

const ROLES: [&str; 5] = ["admin", "operator", "cashier", "reseller", "viewer"];

/// Who may call each operation: a = admin, o = operator, c = cashier, r = reseller, v = viewer.
const MATRIX: &[(&str, &str, &str)] = &[
    ("GET", "/auth/me", "aocrv"),
    ("POST", "/auth/password", "aocrv"),
    ("GET", "/auth/totp", "aocrv"),
    ("POST", "/auth/totp/enrolment", "aocrv"),
    ("POST", "/auth/totp/confirm", "aocrv"),
    ("POST", "/auth/totp/disable", "aocrv"),
    ("GET", "/admins", "a"),
    ("POST", "/admins", "a"),
    ("GET", "/admins/{id}", "a"),
    ("PATCH", "/admins/{id}", "a"),
    ("DELETE", "/admins/{id}/totp", "a"),
    ("GET", "/resellers", "ac"),
    ("POST", "/resellers/{id}/credit", "ac"),
    ("GET", "/tokens", "aocrv"),
    ("POST", "/tokens", "aocrv"),
    ("DELETE", "/tokens/{id}", "aocrv"),
    ("GET", "/audit", "a"),
    ("GET", "/customers", "aocv"),
    ("POST", "/customers", "ao"),
    ("GET", "/customers/{id}", "aocv"),
    ("PATCH", "/customers/{id}", "ao"),
    ("PUT", "/customers/{id}/portal-password", "ao"),
    ("POST", "/customers/{id}/apply-credit", "ac"),
    ("GET", "/plans", "aocrv"),
    ("POST", "/plans", "a"),
    ("POST", "/imports/phpnuxbill", "a"),
    ("GET", "/plans/{id}", "aocrv"),
    ("PUT", "/plans/{id}", "a"),
    ("POST", "/plans/{id}/archive", "a"),
    ("GET", "/sites", "aov"),
    ("POST", "/sites", "ao"),
    ("POST", "/sites/bulk", "ao"),
    ("GET", "/sites/{id}", "aov"),
    ("POST", "/sites/{id}/token", "ao"),
    ("POST", "/sites/{id}/revoke", "ao"),
    ("GET", "/sites/{id}/drift", "aov"),
    ("POST", "/sites/{id}/drift/repair", "ao"),
    ("GET", "/sites/{id}/hotspot-pages", "ao"),
    ("POST", "/sites/{id}/hotspot-pages", "ao"),
    ("POST", "/sites/{id}/router-import", "a"),
    ("GET", "/sites/{id}/router-import/{import_id}", "a"),
    ("POST", "/sites/{id}/router-import/{import_id}/apply", "a"),
    ("GET", "/subscriptions", "aocv"),
    ("POST", "/subscriptions", "ao"),
    ("GET", "/subscriptions/{id}", "aocv"),
    ("PATCH", "/subscriptions/{id}", "ao"),
    ("POST", "/subscriptions/{id}/change-plan", "ao"),
    ("POST", "/subscriptions/{id}/isolate", "ao"),
    ("POST", "/subscriptions/{id}/reactivate", "ao"),
    ("POST", "/subscriptions/{id}/terminate", "ao"),
    ("GET", "/invoices", "aocv"),
    ("GET", "/invoices/{id}", "aocv"),
    ("POST", "/invoices/{id}/void", "a"),
    ("GET", "/payments", "aocv"),
    ("GET", "/reports/summary", "aocv"),
    ("GET", "/reports/revenue", "aocv"),
    ("GET", "/reports/voucher-sales", "aocv"),
    ("GET", "/reports/receivables", "aocv"),
    ("GET", "/reports/subscribers", "aocv"),
    ("GET", "/reports/usage", "aocv"),
    // Each export has its own permission; the matrix asks for payments.
    ("GET", "/exports/{name}", "aocv"),
    ("POST", "/payments", "ac"),
    ("GET", "/payments/{id}", "aocv"),
    ("GET", "/settings/billing", "aocv"),
    ("PUT", "/settings/billing", "a"),
    ("GET", "/settings/security", "a"),
    ("PUT", "/settings/security", "a"),
    ("GET", "/settings/logo", "aocv"),
    ("PUT", "/settings/logo", "a"),
    ("DELETE", "/settings/logo", "a"),
    ("GET", "/site-groups", "aov"),
    ("POST", "/site-groups", "ao"),
    ("GET", "/site-groups/{id}", "aov"),
    ("PUT", "/site-groups/{id}/sites/{site_id}", "ao"),
    ("DELETE", "/site-groups/{id}/sites/{site_id}", "ao"),
    ("GET", "/voucher-batches", "aocrv"),
    ("POST", "/voucher-batches", "ao"),
    ("GET", "/voucher-batches/{id}", "aocrv"),
    ("GET", "/voucher-batches/{id}/vouchers", "aocrv"),
    ("POST", "/voucher-batches/{id}/sell", "aoc"),
    ("POST", "/voucher-batches/{id}/revoke", "ao"),
    ("GET", "/voucher-conflicts", "aocv"),
    ("GET", "/vouchers", "aocrv"),
    ("GET", "/vouchers/{code}", "aocrv"),
    ("POST", "/vouchers/{code}/sell", "aoc"),
    ("POST", "/vouchers/{code}/revoke", "ao"),
    ("POST", "/reseller/voucher-batches", "ar"),
    ("GET", "/commands", "aov"),
    ("GET", "/commands/{id}", "aov"),
    ("POST", "/sites/{id}/commands", "ao"),
    ("GET", "/sessions", "aov"),
    ("POST", "/subscriptions/{id}/kick", "ao"),
    ("GET", "/events", "a"),
    ("GET", "/events/consumers", "a"),
    ("POST", "/events/consumers/{name}/rewind", "a"),
    ("GET", "/events/parked", "a"),
    (
        "POST",
        "/events/consumers/{name}/parked/{event_id}/retry",
        "a",
    ),
    ("GET", "/webhooks", "a"),
    ("POST", "/webhooks", "a"),
    ("POST", "/webhooks/{id}/deactivate", "a"),
    ("GET", "/webhooks/{id}/deliveries", "a"),
    ("POST", "/webhooks/{id}/replay", "a"),
    ("GET", "/notification-channels", "aocv"),
    ("POST", "/notification-channels", "a"),
    ("PUT", "/notification-channels/{id}", "a"),
    ("GET", "/notification-templates", "aocv"),
    ("PUT", "/notification-templates/{topic}/{lang}", "a"),
    ("DELETE", "/notification-templates/{topic}/{lang}", "a"),
    ("GET", "/settings/notifications", "aocv"),
    ("PUT", "/settings/notifications", "a"),
    ("GET", "/customers/{id}/notification-preferences", "aocv"),
    ("PUT", "/customers/{id}/notification-preferences", "ao"),
    ("GET", "/notifications", "aocv"),
    ("GET", "/notifications/{id}", "aocv"),
    ("POST", "/notifications/{id}/retry", "a"),
    ("GET", "/jobs", "a"),
    ("POST", "/jobs/{name}/run", "a"),
    ("GET", "/ca", "a"),
    ("POST", "/ca/rotate", "a"),
    ("POST", "/ca/activate", "a"),
    ("POST", "/ca/retire", "a"),
];

/// Operations that take no bearer token, or end the caller's own session.
const NOT_IN_MATRIX: &[(&str, &str)] = &[
    ("POST", "/auth/login"),
    ("POST", "/auth/refresh"),
    ("POST", "/auth/logout"),
    ("POST", "/payments/webhooks/{gateway}"),
];

async fn every_role_gets_exactly_its_endpoints(backend: Backend) {
    let Scenario {
        dir: _dir,
        db: _db,
        ctl,
        admin,
    } = Scenario::start(backend).await;
    let mut apis = BTreeMap::new();
    for role in ROLES {
        let api = if role == "admin" {
            admin.clone()
        } else {
            let name = format!("{role}-user");
            admin
                .post(
                    "/api/v1/admins",
                    &json!({"username": name, "password": "role-test-password", "role": role}),
                )
                .await
                .expect(201);
            Api::login(ctl.api_addr, &name, "role-test-password").await
        };
        apis.insert(role, api);
    }

    let doc = Api::new(ctl.api_addr)
        .get("/api/v1/openapi.json")
        .await
        .expect(200);
    let mut documented = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in ["get", "post", "put", "patch", "delete"] {
            if item.get(method).is_some() {
                documented.push((method.to_uppercase(), path.clone()));
            }
        }
    }
    let missing: Vec<_> = documented
        .iter()
        .filter(|(m, p)| {
            !MATRIX.iter().any(|(mm, pp, _)| mm == m && pp == p)
                && !NOT_IN_MATRIX.iter().any(|(mm, pp)| mm == m && pp == p)
        })
        .collect();
    assert!(
        missing.is_empty(),
        "operations without a role decision: {missing:?}"
    );
    for (m, p, _) in MATRIX {
        assert!(
            documented.iter().any(|(dm, dp)| dm == m && dp == p),
            "{m} {p} is in the matrix but not in the OpenAPI document"
        );
    }

    let fake = "00000000-0000-0000-0000-000000000000";
    let mut failures = Vec::new();
    for (method, path, allowed) in MATRIX {
        let url = format!(
            "/api/v1{}",
            path.replace("/exports/{name}", "/exports/payments")
                .replace("{id}", fake)
                .replace("{name}", "no-such-job")
                .replace("{topic}", "invoice.reminder")
                .replace("{lang}", "en")
        );
        for role in ROLES {
            let api = &apis[role];
            let body = if *method == "GET" || *method == "DELETE" {
                None
            } else {
                Some(b"{}".to_vec())
            };
            let res = api.request(method, &url, body, "application/json").await;
            let may = allowed.contains(role.chars().next().unwrap());
            let ok = if may {
                res.status != 403 && res.status != 401
            } else {
                res.status == 403
            };
            if !ok {
                failures.push(format!(
                    "{role} {method} {path}: {} {}",
                    res.status, res.text
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "role matrix violations:\n{}",
        failures.join("\n")
    );
}
