//! Midtrans Snap: payment pages created with `POST {base}/snap/v1/transactions`, HTTP Basic
//! authenticated with the server key as user name. Midtrans answers `{token, redirect_url}`
//! and later notifies the webhook with the same `order_id`.

use super::amount;
use super::client::{ApiClient, basic, payment_link};
use super::{LinkError, LinkRequest, PaymentLink};
use serde_json::{Value, json};

/// Snap's base URL for sandbox (test) merchants.
pub const SANDBOX_URL: &str = "https://app.sandbox.midtrans.com";
/// Snap's base URL for production merchants.
pub const PRODUCTION_URL: &str = "https://app.midtrans.com";

/// Creates a Snap page for one order.
pub(super) async fn create(
    snap: &ApiClient,
    server_key: &str,
    request: &LinkRequest,
) -> Result<PaymentLink, LinkError> {
    let mut customer = json!({ "first_name": request.customer_name });
    if let Some(email) = &request.customer_email {
        customer["email"] = json!(email);
    }
    if let Some(phone) = &request.customer_phone {
        customer["phone"] = json!(phone);
    }
    let mut body = json!({
        "transaction_details": {
            "order_id": request.order_id,
            "gross_amount": amount::to_json(request.amount, request.currency_exponent),
        },
        "customer_details": customer,
    });
    if let Some(url) = &request.return_url {
        body["callbacks"] = json!({ "finish": url });
    }
    let answer = snap
        .post("/snap/v1/transactions", &basic(server_key), &body)
        .await
        .map_err(LinkError::Unavailable)?;
    if !(200..300).contains(&answer.status) {
        let why = answer.body["error_messages"]
            .as_array()
            .map(|m| {
                m.iter()
                    .filter_map(Value::as_str)
                    .collect::<Vec<_>>()
                    .join("; ")
            })
            .filter(|m| !m.is_empty())
            .unwrap_or_else(|| format!("HTTP {}", answer.status));
        return Err(if answer.status >= 500 {
            LinkError::Unavailable(why)
        } else {
            LinkError::Refused(why)
        });
    }
    payment_link(&answer.body["redirect_url"], "redirect_url")
}
