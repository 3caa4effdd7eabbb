//! The set-up most controller tests share: a started controller on either backend with its
//! admin signed in to the API, and the helpers that create what a scenario is about (a site,
//! a plan, a PPPoE subscriber with its first invoice) through the real API.

use crate::http::Api;
use crate::{Backend, Controller, TestDb, init_tracing};
use serde_json::{Value, json};

/// A started controller, its database and its admin's API session.
pub struct Scenario {
    /// The running controller (dropped before the database is cleaned up).
    pub ctl: Controller,
    /// The admin signed in to the API.
    pub admin: Api,
    /// The test database.
    pub db: TestDb,
    /// The controller's data directory.
    pub dir: tempfile::TempDir,
}

/// A customer with a PPPoE subscription and the first invoice the subscription issued.
#[derive(Debug, Clone)]
pub struct Subscriber {
    /// Customer id.
    pub customer_id: String,
    /// Customer number (`C-000001`).
    pub number: String,
    /// Subscription id.
    pub subscription_id: String,
    /// The first invoice's id.
    pub invoice_id: String,
    /// The first invoice's number.
    pub invoice_number: String,
    /// The first invoice's total.
    pub total: i64,
}

impl Scenario {
    /// Starts a controller on `backend` and signs its admin in.
    pub async fn start(backend: Backend) -> Scenario {
        Scenario::start_env(backend, &[] as &[(&str, &str)]).await
    }

    /// [`Scenario::start`] with extra environment for the controller process.
    pub async fn start_env(
        backend: Backend,
        env: &[(impl AsRef<str>, impl AsRef<str>)],
    ) -> Scenario {
        init_tracing();
        let db = TestDb::new(backend).await;
        let dir = tempfile::tempdir().unwrap();
        let ctl = Controller::start_env(dir.path(), &db, env).await;
        let admin = Api::admin(ctl.api_addr).await;
        Scenario {
            ctl,
            admin,
            db,
            dir,
        }
    }

    /// Stops the controller and drops the test database.
    pub async fn finish(self) {
        let Scenario { ctl, db, dir, .. } = self;
        drop(ctl);
        db.cleanup().await;
        drop(dir);
    }

    /// Creates a site through the API; returns its id.
    pub async fn site(&self, name: &str) -> String {
        site(&self.admin, name).await
    }

    /// Creates a PPPoE plan through the API; returns its id.
    pub async fn pppoe_plan(&self, name: &str, price: i64) -> String {
        pppoe_plan(&self.admin, name, price).await
    }

    /// Creates a customer with a PPPoE subscription; see [`subscriber`].
    pub async fn subscriber(
        &self,
        site_id: &str,
        plan_id: &str,
        name: &str,
        phone: &str,
        username: &str,
    ) -> Subscriber {
        subscriber(&self.admin, site_id, plan_id, name, phone, username).await
    }
}

/// Creates a site; returns its id.
pub async fn site(admin: &Api, name: &str) -> String {
    admin
        .post("/api/v1/sites", &json!({"name": name}))
        .await
        .expect(201)["site"]["id"]
        .as_str()
        .unwrap()
        .to_string()
}

/// Generates one voucher of `plan_id` valid at every site; returns its code.
pub async fn voucher(admin: &Api, plan_id: &str) -> String {
    let batch = admin
        .post(
            "/api/v1/voucher-batches",
            &serde_json::json!({"plan_id": plan_id, "count": 1, "scope": "all"}),
        )
        .await
        .expect(201);
    let codes = admin
        .get(&format!(
            "/api/v1/voucher-batches/{}/vouchers",
            batch["id"].as_str().unwrap()
        ))
        .await
        .expect(200);
    codes["items"][0]["code"].as_str().unwrap().to_string()
}

/// Creates a plan from a full JSON body; returns its id.
pub async fn plan(admin: &Api, body: &Value) -> String {
    admin.post("/api/v1/plans", body).await.expect(201)["id"]
        .as_str()
        .unwrap()
        .to_string()
}

/// Creates a PPPoE plan with a 5M/10M rate limit; returns its id.
pub async fn pppoe_plan(admin: &Api, name: &str, price: i64) -> String {
    plan(
        admin,
        &json!({"name": name, "kind": "pppoe", "price": price, "rate_limit": "5M/10M"}),
    )
    .await
}

/// Creates a customer (with an e-mail address made from the user name) and a PPPoE
/// subscription for them, and reads the first invoice it issued.
pub async fn subscriber(
    admin: &Api,
    site_id: &str,
    plan_id: &str,
    name: &str,
    phone: &str,
    username: &str,
) -> Subscriber {
    let mailbox: String = username
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .collect();
    let customer = admin
        .post(
            "/api/v1/customers",
            &json!({"name": name, "phone": phone, "email": format!("{mailbox}@example.net")}),
        )
        .await
        .expect(201);
    let customer_id = customer["id"].as_str().unwrap().to_string();
    let sub = admin
        .post(
            "/api/v1/subscriptions",
            &json!({"customer_id": customer_id, "plan_id": plan_id, "site_id": site_id, "username": username}),
        )
        .await
        .expect(201);
    let invoices = admin
        .get(&format!("/api/v1/invoices?customer_id={customer_id}"))
        .await
        .expect(200);
    let inv = &invoices["items"][0];
    Subscriber {
        number: customer["number"].as_str().unwrap().to_string(),
        subscription_id: sub["id"].as_str().unwrap().to_string(),
        invoice_id: inv["id"].as_str().unwrap().to_string(),
        invoice_number: inv["number"].as_str().unwrap().to_string(),
        total: inv["total"].as_i64().unwrap(),
        customer_id,
    }
}
