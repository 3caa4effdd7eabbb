//! Fake payment gateways on loopback: Midtrans (Snap and the status API), Xendit (invoices)
//! and Tripay (transactions), in one axum server. Each checks the credentials the real one
//! would, records every call, and answers from transactions the test sets, so a test can
//! make the gateway "confirm" exactly what it wants and prove the controller believes
//! nothing else.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use base64::Engine;
use mikrobill_core::payments::gateway::tripay;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

/// The Midtrans server key the fake checks.
pub const MIDTRANS_KEY: &str = crate::http::MIDTRANS_SERVER_KEY;
/// The Xendit secret key the fake checks.
pub const XENDIT_SECRET: &str = "xnd_development_test_secret";
/// The Xendit callback token the controller is given.
pub const XENDIT_TOKEN: &str = "xendit-callback-token-test";
/// The Tripay API key the fake checks.
pub const TRIPAY_API_KEY: &str = "DEV-tripay-api-key";
/// The Tripay private key both sides sign with.
pub const TRIPAY_PRIVATE_KEY: &str = "tripay-private-key-test";
/// The Tripay merchant code.
pub const TRIPAY_MERCHANT: &str = "T0001";

/// One call a fake received.
#[derive(Debug, Clone)]
pub struct Call {
    /// `GET` or `POST`.
    pub method: &'static str,
    /// Path (and query).
    pub path: String,
    /// The `Authorization` header.
    pub auth: String,
    /// The JSON body (Null for GET).
    pub body: Value,
}

#[derive(Default)]
struct Books {
    calls: Vec<Call>,
    /// Midtrans status answers by order id.
    midtrans: HashMap<String, Value>,
    /// Xendit invoices by id.
    xendit: HashMap<String, Value>,
    /// Tripay transactions by reference.
    tripay: HashMap<String, Value>,
    /// Answer 503 to status lookups (the gateway's API is down).
    down: bool,
}

/// The fake gateways; clones share state.
#[derive(Clone)]
pub struct FakeGateways {
    /// Where it listens.
    pub addr: SocketAddr,
    state: Arc<Mutex<Books>>,
}

fn auth(headers: &HeaderMap) -> String {
    headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string()
}

fn basic(user: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:"))
    )
}

type Shared = Arc<Mutex<Books>>;

fn record(s: &Shared, method: &'static str, path: String, headers: &HeaderMap, body: Value) {
    s.lock().unwrap().calls.push(Call {
        method,
        path,
        auth: auth(headers),
        body,
    });
}

async fn snap_create(
    State(s): State<Shared>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> (StatusCode, Json<Value>) {
    record(&s, "POST", "/snap/v1/transactions".into(), &headers, body);
    if auth(&headers) != basic(MIDTRANS_KEY) {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"error_messages": ["Access denied"]})),
        );
    }
    let n = s.lock().unwrap().calls.len();
    let token = format!("snap-token-{n}");
    (
        StatusCode::CREATED,
        Json(json!({
            "token": token,
            "redirect_url": format!("https://app.sandbox.midtrans.com/snap/v4/redirection/{token}"),
        })),
    )
}

async fn midtrans_status(
    State(s): State<Shared>,
    headers: HeaderMap,
    Path(order): Path<String>,
) -> (StatusCode, Json<Value>) {
    record(
        &s,
        "GET",
        format!("/v2/{order}/status"),
        &headers,
        Value::Null,
    );
    let st = s.lock().unwrap();
    if st.down {
        return (StatusCode::SERVICE_UNAVAILABLE, Json(json!({})));
    }
    if auth(&headers) != basic(MIDTRANS_KEY) {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"status_code": "401", "status_message": "Unknown Merchant server_key/id"})),
        );
    }
    match st.midtrans.get(&order) {
        Some(v) => (StatusCode::OK, Json(v.clone())),
        // Midtrans answers an unknown order with HTTP 200 and a 404 inside.
        None => (
            StatusCode::OK,
            Json(json!({"status_code": "404", "status_message": "Transaction doesn't exist."})),
        ),
    }
}

async fn xendit_create(
    State(s): State<Shared>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> (StatusCode, Json<Value>) {
    record(&s, "POST", "/v2/invoices".into(), &headers, body.clone());
    if auth(&headers) != basic(XENDIT_SECRET) {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"error_code": "INVALID_API_KEY", "message": "API key is invalid"})),
        );
    }
    let mut st = s.lock().unwrap();
    let id = format!("inv{:020}", st.xendit.len() + 1);
    let invoice = json!({
        "id": id,
        "external_id": body["external_id"],
        "user_id": "5f0000000000000000000001",
        "status": "PENDING",
        "merchant_name": "MikroBill test",
        "amount": body["amount"],
        "currency": body["currency"],
        "invoice_url": format!("https://checkout-staging.xendit.co/web/{id}"),
        "created": "2026-12-05T10:00:00.000Z",
        "updated": "2026-12-05T10:00:00.000Z",
    });
    st.xendit.insert(id, invoice.clone());
    (StatusCode::OK, Json(invoice))
}

async fn xendit_get(
    State(s): State<Shared>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> (StatusCode, Json<Value>) {
    record(
        &s,
        "GET",
        format!("/v2/invoices/{id}"),
        &headers,
        Value::Null,
    );
    let st = s.lock().unwrap();
    if st.down {
        return (StatusCode::SERVICE_UNAVAILABLE, Json(json!({})));
    }
    if auth(&headers) != basic(XENDIT_SECRET) {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"error_code": "INVALID_API_KEY", "message": "API key is invalid"})),
        );
    }
    match st.xendit.get(&id) {
        Some(v) => (StatusCode::OK, Json(v.clone())),
        None => (
            StatusCode::NOT_FOUND,
            Json(
                json!({"error_code": "INVOICE_NOT_FOUND_ERROR", "message": "Could not find invoice"}),
            ),
        ),
    }
}

async fn tripay_create(
    State(s): State<Shared>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> (StatusCode, Json<Value>) {
    record(
        &s,
        "POST",
        "/transaction/create".into(),
        &headers,
        body.clone(),
    );
    if auth(&headers) != format!("Bearer {TRIPAY_API_KEY}") {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"success": false, "message": "Invalid API Key"})),
        );
    }
    let merchant_ref = body["merchant_ref"].as_str().unwrap_or_default();
    let amount = body["amount"].as_i64().unwrap_or_default();
    let expected =
        tripay::transaction_signature(TRIPAY_PRIVATE_KEY, TRIPAY_MERCHANT, merchant_ref, amount);
    if body["signature"].as_str() != Some(expected.as_str()) {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"success": false, "message": "Invalid signature"})),
        );
    }
    let mut st = s.lock().unwrap();
    let reference = format!("DEV-T0001{:010}", st.tripay.len() + 1);
    let data = json!({
        "reference": reference,
        "merchant_ref": merchant_ref,
        "payment_method": body["method"],
        "amount": amount,
        "fee_merchant": 750,
        "fee_customer": 0,
        "total_fee": 750,
        "amount_received": amount - 750,
        "checkout_url": format!("https://tripay.co.id/checkout/{reference}"),
        "status": "UNPAID",
    });
    st.tripay.insert(reference, data.clone());
    (
        StatusCode::OK,
        Json(json!({"success": true, "message": "", "data": data})),
    )
}

async fn tripay_detail(
    State(s): State<Shared>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> (StatusCode, Json<Value>) {
    let reference = q.get("reference").cloned().unwrap_or_default();
    record(
        &s,
        "GET",
        format!("/transaction/detail?reference={reference}"),
        &headers,
        Value::Null,
    );
    let st = s.lock().unwrap();
    if st.down {
        return (StatusCode::SERVICE_UNAVAILABLE, Json(json!({})));
    }
    if auth(&headers) != format!("Bearer {TRIPAY_API_KEY}") {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"success": false, "message": "Invalid API Key"})),
        );
    }
    match st.tripay.get(&reference) {
        Some(v) => (
            StatusCode::OK,
            Json(json!({"success": true, "message": "", "data": v})),
        ),
        None => (
            StatusCode::NOT_FOUND,
            Json(json!({"success": false, "message": "Transaction not found"})),
        ),
    }
}

impl FakeGateways {
    /// Starts the fakes on a free loopback port.
    pub async fn start() -> FakeGateways {
        let state: Shared = Arc::default();
        let app = axum::Router::new()
            .route("/snap/v1/transactions", post(snap_create))
            .route("/v2/{order}/status", get(midtrans_status))
            .route("/v2/invoices", post(xendit_create))
            .route("/v2/invoices/{id}", get(xendit_get))
            .route("/transaction/create", post(tripay_create))
            .route("/transaction/detail", get(tripay_detail))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        FakeGateways { addr, state }
    }

    /// The controller environment that points all three gateways here; `links` chooses the
    /// gateway of the portal's Pay button.
    pub fn env(&self, links: &str) -> Vec<(&'static str, String)> {
        let url = format!("http://{}", self.addr);
        vec![
            ("MIKROBILL_MIDTRANS_API_URL", url.clone()),
            ("MIKROBILL_MIDTRANS_SNAP_URL", url.clone()),
            ("MIKROBILL_XENDIT_SECRET_KEY", XENDIT_SECRET.into()),
            ("MIKROBILL_XENDIT_CALLBACK_TOKEN", XENDIT_TOKEN.into()),
            ("MIKROBILL_XENDIT_API_URL", url.clone()),
            ("MIKROBILL_TRIPAY_API_KEY", TRIPAY_API_KEY.into()),
            ("MIKROBILL_TRIPAY_PRIVATE_KEY", TRIPAY_PRIVATE_KEY.into()),
            ("MIKROBILL_TRIPAY_MERCHANT_CODE", TRIPAY_MERCHANT.into()),
            ("MIKROBILL_TRIPAY_API_URL", url),
            ("MIKROBILL_PAYMENT_LINK_GATEWAY", links.into()),
        ]
    }

    /// Every call so far.
    pub fn calls(&self) -> Vec<Call> {
        self.state.lock().unwrap().calls.clone()
    }

    /// Makes the status APIs answer 503 (or work again).
    pub fn set_down(&self, down: bool) {
        self.state.lock().unwrap().down = down;
    }

    /// Sets what Midtrans' status API says about an order: a transaction with this id,
    /// status words and amount, and the status code Midtrans gives that status.
    pub fn midtrans_set(&self, order_id: &str, transaction_id: &str, status: &str, gross: &str) {
        let code = match status {
            "settlement" | "capture" | "cancel" | "refund" | "partial_refund" => "200",
            "pending" => "201",
            "expire" => "407",
            _ => "202",
        };
        let answer = json!({
            "status_code": code,
            "status_message": "Success, transaction is found",
            "transaction_id": transaction_id,
            "order_id": order_id,
            "merchant_id": "G000000000",
            "gross_amount": gross,
            "currency": "IDR",
            "payment_type": "bank_transfer",
            "transaction_time": "2026-12-05 10:00:00",
            "transaction_status": status,
            "fraud_status": "accept",
            "signature_key": mikrobill_core::payments::gateway::midtrans::signature(
                MIDTRANS_KEY, order_id, code, gross),
        });
        self.state
            .lock()
            .unwrap()
            .midtrans
            .insert(order_id.to_string(), answer);
    }

    /// Sets a Xendit invoice's status (and paid amount when paid); returns the invoice.
    pub fn xendit_set(&self, id: &str, status: &str) -> Value {
        let mut st = self.state.lock().unwrap();
        let invoice = st
            .xendit
            .get_mut(id)
            .expect("a Xendit invoice the fake created");
        invoice["status"] = json!(status);
        if status == "PAID" || status == "SETTLED" {
            invoice["paid_amount"] = invoice["amount"].clone();
            invoice["paid_at"] = json!("2026-12-05T10:05:00.000Z");
            invoice["payment_method"] = json!("QR_CODE");
        }
        invoice.clone()
    }

    /// The Xendit invoices the fake created, by id.
    pub fn xendit_invoices(&self) -> HashMap<String, Value> {
        self.state.lock().unwrap().xendit.clone()
    }

    /// Sets a Tripay transaction's status; returns the detail data.
    pub fn tripay_set(&self, reference: &str, status: &str) -> Value {
        let mut st = self.state.lock().unwrap();
        let t = st
            .tripay
            .get_mut(reference)
            .expect("a Tripay transaction the fake created");
        t["status"] = json!(status);
        t.clone()
    }

    /// The Tripay transactions the fake created, by reference.
    pub fn tripay_transactions(&self) -> HashMap<String, Value> {
        self.state.lock().unwrap().tripay.clone()
    }
}

/// A signed Midtrans notification as Midtrans would POST it.
pub fn midtrans_notification(
    order_id: &str,
    transaction_id: &str,
    status_code: &str,
    transaction_status: &str,
    gross: &str,
) -> Value {
    json!({
        "transaction_time": "2026-12-05 10:00:00",
        "transaction_status": transaction_status,
        "transaction_id": transaction_id,
        "status_message": "midtrans payment notification",
        "status_code": status_code,
        "signature_key": mikrobill_core::payments::gateway::midtrans::signature(
            MIDTRANS_KEY, order_id, status_code, gross),
        "payment_type": "bank_transfer",
        "order_id": order_id,
        "merchant_id": "G000000000",
        "gross_amount": gross,
        "currency": "IDR",
        "fraud_status": "accept",
    })
}

/// A Tripay callback body for a transaction's detail data, and its signature.
pub fn tripay_callback(data: &Value) -> (String, String) {
    let body = json!({
        "reference": data["reference"],
        "merchant_ref": data["merchant_ref"],
        "payment_method": "QRIS by ShopeePay",
        "payment_method_code": "QRIS",
        "total_amount": data["amount"],
        "fee_merchant": data["fee_merchant"],
        "fee_customer": data["fee_customer"],
        "total_fee": data["total_fee"],
        "amount_received": data["amount_received"],
        "is_closed_payment": 1,
        "status": data["status"],
        "paid_at": 1_764_928_800,
        "note": null,
    })
    .to_string();
    let signature = tripay::callback_signature(TRIPAY_PRIVATE_KEY, body.as_bytes());
    (body, signature)
}
