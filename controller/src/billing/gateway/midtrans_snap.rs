//! Midtrans Snap: payment pages created with `POST {base}/snap/v1/transactions`, HTTP Basic
//! authenticated with the server key as user name. Midtrans answers `{token, redirect_url}`
//! and later notifies the webhook with the same `order_id`.

use crate::billing::gateway::{LinkError, LinkFuture, LinkGateway, LinkRequest, PaymentLink};
use base64::Engine;
use serde_json::{Value, json};
use std::time::Duration;

/// Snap's base URL for sandbox (test) merchants.
pub const SANDBOX_URL: &str = "https://app.sandbox.midtrans.com";
/// Snap's base URL for production merchants.
pub const PRODUCTION_URL: &str = "https://app.midtrans.com";
/// How long a Snap call may take before the payer is told to try again.
const TIMEOUT: Duration = Duration::from_secs(15);

/// Creates Snap payment pages.
pub struct MidtransSnap {
    server_key: String,
    base_url: String,
    client: reqwest::Client,
}

impl std::fmt::Debug for MidtransSnap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The server key authorises charges on the merchant's account: never log it.
        f.debug_struct("MidtransSnap")
            .field("server_key", &"<redacted>")
            .field("base_url", &self.base_url)
            .finish()
    }
}

impl MidtransSnap {
    /// A Snap client for `base_url` (see [`SANDBOX_URL`], [`PRODUCTION_URL`]). The process's
    /// rustls crypto provider must be installed first.
    pub fn new(
        server_key: impl Into<String>,
        base_url: impl Into<String>,
    ) -> Result<MidtransSnap, LinkError> {
        let client = reqwest::Client::builder()
            .timeout(TIMEOUT)
            .build()
            .map_err(|e| LinkError::Unavailable(format!("cannot build the HTTP client: {e}")))?;
        Ok(MidtransSnap {
            server_key: server_key.into(),
            base_url: base_url.into().trim_end_matches('/').to_string(),
            client,
        })
    }

    async fn create(&self, request: &LinkRequest) -> Result<PaymentLink, LinkError> {
        let body = json!({
            "transaction_details": {
                "order_id": request.order_id,
                "gross_amount": gross_amount(request.amount, request.currency_exponent),
            }
        });
        let auth =
            base64::engine::general_purpose::STANDARD.encode(format!("{}:", self.server_key));
        let response = self
            .client
            .post(format!("{}/snap/v1/transactions", self.base_url))
            .header("Authorization", format!("Basic {auth}"))
            .header("Content-Type", "application/json")
            .header("Accept", "application/json")
            .body(body.to_string())
            .send()
            .await
            .map_err(|e| LinkError::Unavailable(e.without_url().to_string()))?;
        let status = response.status();
        let bytes = response
            .bytes()
            .await
            .map_err(|e| LinkError::Unavailable(e.without_url().to_string()))?;
        let answer: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        if !status.is_success() {
            let why = answer["error_messages"]
                .as_array()
                .map(|m| {
                    m.iter()
                        .filter_map(Value::as_str)
                        .collect::<Vec<_>>()
                        .join("; ")
                })
                .filter(|m| !m.is_empty())
                .unwrap_or_else(|| format!("HTTP {status}"));
            return Err(if status.is_server_error() {
                LinkError::Unavailable(why)
            } else {
                LinkError::Refused(why)
            });
        }
        match answer["redirect_url"].as_str() {
            // The payer's browser is sent there: an absolute URL fit for a Location header.
            Some(url)
                if (url.starts_with("https://") || url.starts_with("http://"))
                    && url.bytes().all(|b| b.is_ascii_graphic()) =>
            {
                Ok(PaymentLink {
                    redirect_url: url.to_string(),
                })
            }
            _ => Err(LinkError::Unavailable(
                "answer has no redirect_url".to_string(),
            )),
        }
    }
}

impl LinkGateway for MidtransSnap {
    fn name(&self) -> &'static str {
        "midtrans"
    }

    fn create_link<'a>(&'a self, request: &'a LinkRequest) -> LinkFuture<'a> {
        Box::pin(self.create(request))
    }
}

/// The amount as Midtrans reads it: a whole number for currencies without minor units
/// (IDR), else a decimal number.
fn gross_amount(amount: i64, exponent: u32) -> Value {
    if exponent == 0 {
        return json!(amount);
    }
    let scale = 10_f64.powi(exponent.min(18) as i32);
    json!(amount as f64 / scale)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_are_whole_for_rupiah() {
        assert_eq!(gross_amount(150_000, 0), json!(150000));
        assert_eq!(gross_amount(1_250, 2), json!(12.5));
    }

    #[test]
    fn debug_redacts_the_key() {
        // reqwest is built without a default TLS provider; `serve` installs this one.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let snap = MidtransSnap::new("SB-Mid-server-secret", SANDBOX_URL).unwrap();
        let shown = format!("{snap:?}");
        assert!(!shown.contains("SB-Mid-server-secret"), "{shown}");
    }
}
