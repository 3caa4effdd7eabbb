//! Xendit invoices: payment pages created with `POST {base}/v2/invoices`, invoice callbacks
//! authenticated by the static `x-callback-token` from the Xendit dashboard, confirmed by
//! `GET {base}/v2/invoices/{id}`. Both API calls use HTTP Basic with the secret key as user
//! name. The token proves only who called; the body is not signed, so nothing in it is
//! believed but the invoice id to look up.

use serde_json::{Map, Value, json};

use super::amount;
use super::client::{ApiClient, basic, link_refusal, path_segment, payment_link};
use super::fields::{from_api, object, string};
use super::{
    Claim, Confirmed, Gateway, GatewayError, GatewayFuture, HeaderMap, LinkError, LinkRequest,
    PaymentLink, PaymentStatus, constant_time_eq,
};

/// Xendit's API (one URL for test and live keys; the key decides the mode).
pub const API_URL: &str = "https://api.xendit.co";
/// How long an invoice stays payable, in seconds: a day, as the portal reuses a link 23 h.
const INVOICE_DURATION_S: i64 = 24 * 3600;

/// The Xendit gateway.
pub struct Xendit {
    secret_key: String,
    callback_token: String,
    api: ApiClient,
}

impl std::fmt::Debug for Xendit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Xendit")
            .field("secret_key", &"<redacted>")
            .field("callback_token", &"<redacted>")
            .field("api", &self.api.base_url())
            .finish()
    }
}

impl Xendit {
    /// A gateway calling `api_url` with `secret_key` and accepting callbacks that carry
    /// `callback_token`. The process's rustls crypto provider must be installed first.
    pub fn new(
        secret_key: impl Into<String>,
        callback_token: impl Into<String>,
        api_url: &str,
    ) -> Result<Xendit, String> {
        let callback_token = callback_token.into();
        if callback_token.is_empty() {
            return Err("the Xendit callback token must not be empty".into());
        }
        Ok(Xendit {
            secret_key: secret_key.into(),
            callback_token,
            api: ApiClient::new(api_url)?,
        })
    }

    async fn fetch(&self, claim: &Claim, exponent: u32) -> Result<Confirmed, GatewayError> {
        let path = format!("/v2/invoices/{}", path_segment(&claim.lookup));
        let answer = self
            .api
            .get(&path, &basic(&self.secret_key))
            .await
            .map_err(GatewayError::Unavailable)?;
        match answer.status {
            200..=299 => {}
            404 => {
                return Err(GatewayError::Unconfirmed(format!(
                    "Xendit has no invoice {:?}",
                    claim.lookup
                )));
            }
            status => {
                return Err(GatewayError::Unavailable(format!(
                    "invoice API answered HTTP {status}"
                )));
            }
        }
        let Value::Object(invoice) = &answer.body else {
            return Err(GatewayError::Unavailable(
                "invoice API answered without a JSON object".into(),
            ));
        };
        parse_invoice(invoice, exponent)
    }

    async fn create(&self, request: &LinkRequest) -> Result<PaymentLink, LinkError> {
        let mut customer = json!({ "given_names": request.customer_name });
        let mut body = json!({
            "external_id": request.order_id,
            "amount": amount::to_json(request.amount, request.currency_exponent),
            "currency": request.currency,
            "description": request.description,
            "invoice_duration": INVOICE_DURATION_S,
        });
        if let Some(email) = &request.customer_email {
            customer["email"] = json!(email);
            body["payer_email"] = json!(email);
        }
        if let Some(phone) = &request.customer_phone {
            customer["mobile_number"] = json!(phone);
        }
        body["customer"] = customer;
        if let Some(url) = &request.return_url {
            body["success_redirect_url"] = json!(url);
            body["failure_redirect_url"] = json!(url);
        }
        let answer = self
            .api
            .post("/v2/invoices", &basic(&self.secret_key), &body)
            .await
            .map_err(LinkError::Unavailable)?;
        if !(200..300).contains(&answer.status) {
            let why = answer.body["message"]
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| format!("HTTP {}", answer.status));
            return Err(link_refusal(answer.status, why));
        }
        payment_link(&answer.body["invoice_url"], "invoice_url")
    }
}

/// Reads a callback after checking its token: the invoice to look up and the order it names.
pub fn parse_callback(
    callback_token: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Claim, GatewayError> {
    let token = headers
        .get("x-callback-token")
        .map(|v| v.as_bytes())
        .unwrap_or_default();
    if !constant_time_eq(token, callback_token.as_bytes()) {
        return Err(GatewayError::BadSignature);
    }
    let fields = object(body)?;
    Ok(Claim {
        lookup: string(&fields, "id")?.to_owned(),
        order_id: string(&fields, "external_id")?.to_owned(),
        signed_status: None,
        signed_amount: None,
    })
}

/// Reads an invoice as the API returns it.
pub fn parse_invoice(
    invoice: &Map<String, Value>,
    exponent: u32,
) -> Result<Confirmed, GatewayError> {
    let unexpected = from_api("invoice API");
    let get = |name| string(invoice, name).map_err(&unexpected);
    let status_word = get("status")?;
    let status = match status_word {
        "PAID" | "SETTLED" => PaymentStatus::Paid,
        "PENDING" => PaymentStatus::Pending,
        "EXPIRED" => PaymentStatus::Failed,
        other => {
            return Err(unexpected(GatewayError::Malformed(format!(
                "unknown status `{other}`"
            ))));
        }
    };
    // What was paid (a payer may pay a different amount on some channels), else the
    // invoice's amount.
    let paid = match invoice.get("paid_amount") {
        Some(v) if !v.is_null() => v,
        _ => invoice.get("amount").unwrap_or(&Value::Null),
    };
    let amount = amount::parse_json(paid, "amount", exponent).map_err(&unexpected)?;
    let currency = match invoice.get("currency") {
        Some(Value::String(c)) => c.clone(),
        // Invoices of an IDR account may omit it.
        _ => "IDR".to_string(),
    };
    Ok(Confirmed {
        transaction_id: get("id")?.to_owned(),
        order_id: get("external_id")?.to_owned(),
        amount,
        currency,
        status,
        status_code: status_word.to_owned(),
        raw_status: status_word.to_owned(),
    })
}

impl Gateway for Xendit {
    fn name(&self) -> &'static str {
        "xendit"
    }

    fn authenticate(
        &self,
        headers: &HeaderMap,
        body: &[u8],
        _currency_exponent: u32,
    ) -> Result<Claim, GatewayError> {
        parse_callback(&self.callback_token, headers, body)
    }

    fn confirm<'a>(
        &'a self,
        claim: &'a Claim,
        currency_exponent: u32,
    ) -> GatewayFuture<'a, Result<Confirmed, GatewayError>> {
        Box::pin(self.fetch(claim, currency_exponent))
    }

    fn create_link<'a>(
        &'a self,
        request: &'a LinkRequest,
    ) -> GatewayFuture<'a, Result<PaymentLink, LinkError>> {
        Box::pin(self.create(request))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &str = "xnd-callback-token";

    fn headers(token: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("x-callback-token", token.parse().unwrap());
        h
    }

    fn callback() -> Value {
        json!({
            "id": "62f00ac409accd62c85673c4",
            "external_id": "INV-2026-000001~abc",
            "user_id": "6279ce4495d10c9afc3171b8",
            "status": "PAID",
            "merchant_name": "RT/RW Net",
            "amount": 150000,
            "paid_amount": 150000,
            "currency": "IDR",
            "paid_at": "2026-12-05T10:00:00.000Z",
            "created": "2026-12-05T09:00:00.000Z",
            "updated": "2026-12-05T10:00:00.000Z",
        })
    }

    #[test]
    fn a_callback_names_only_the_invoice_to_look_up() {
        let claim = parse_callback(TOKEN, &headers(TOKEN), callback().to_string().as_bytes());
        assert_eq!(
            claim.unwrap(),
            Claim {
                lookup: "62f00ac409accd62c85673c4".into(),
                order_id: "INV-2026-000001~abc".into(),
                signed_status: None,
                signed_amount: None,
            }
        );
    }

    #[test]
    fn a_wrong_or_missing_token_is_refused() {
        let body = callback().to_string();
        for h in [headers("other"), headers(""), HeaderMap::new()] {
            assert!(matches!(
                parse_callback(TOKEN, &h, body.as_bytes()),
                Err(GatewayError::BadSignature)
            ));
        }
    }

    #[test]
    fn malformed_callbacks_say_what_is_wrong() {
        let h = headers(TOKEN);
        let why = |body: &[u8]| match parse_callback(TOKEN, &h, body) {
            Err(GatewayError::Malformed(why)) => why,
            other => panic!("{other:?}"),
        };
        assert!(why(b"{").starts_with("not JSON"));
        assert_eq!(why(b"[]"), "not a JSON object");
        assert_eq!(why(b"{}"), "missing field `id`");
        assert_eq!(
            why(br#"{"id": "x", "external_id": 5}"#),
            "field `external_id` is not a non-empty string"
        );
    }

    #[test]
    fn invoice_statuses() {
        for (word, status) in [
            ("PAID", PaymentStatus::Paid),
            ("SETTLED", PaymentStatus::Paid),
            ("PENDING", PaymentStatus::Pending),
            ("EXPIRED", PaymentStatus::Failed),
        ] {
            let mut invoice = callback();
            invoice["status"] = json!(word);
            let c = parse_invoice(invoice.as_object().unwrap(), 0).unwrap();
            assert_eq!(c.status, status, "{word}");
            assert_eq!(c.transaction_id, "62f00ac409accd62c85673c4");
            assert_eq!(c.amount, 150_000);
        }
        let mut invoice = callback();
        invoice["status"] = json!("REFUNDED?");
        assert!(matches!(
            parse_invoice(invoice.as_object().unwrap(), 0),
            Err(GatewayError::Unavailable(_))
        ));
    }

    #[test]
    fn unpaid_invoices_carry_their_amount() {
        let mut invoice = callback();
        invoice["status"] = json!("PENDING");
        invoice.as_object_mut().unwrap().remove("paid_amount");
        invoice["amount"] = json!(99000.0);
        let c = parse_invoice(invoice.as_object().unwrap(), 0).unwrap();
        assert_eq!(c.amount, 99_000);
    }

    #[test]
    fn debug_redacts_the_keys() {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let x = Xendit::new("xnd_secret", TOKEN, API_URL).unwrap();
        let shown = format!("{x:?}");
        assert!(
            !shown.contains("xnd_secret") && !shown.contains(TOKEN),
            "{shown}"
        );
        assert!(Xendit::new("k", "", API_URL).is_err());
    }
}
