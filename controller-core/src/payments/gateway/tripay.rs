//! Tripay closed payments: created with `POST {base}/transaction/create`, called back with the
//! raw JSON body signed as `X-Callback-Signature: hex(HMAC-SHA256(private_key, body))`, and
//! confirmed by `GET {base}/transaction/detail?reference=...`. API calls carry the API key as
//! a bearer token. Tripay answers `{success, message, data}` and its examples ignore the HTTP
//! status, so `success` decides.

use hmac::{Hmac, Mac};
use serde_json::{Map, Value, json};
use sha2::Sha256;

use super::client::{ApiClient, link_refusal, payment_link};
use super::fields::{from_api, object, string};
use super::{
    Claim, Confirmed, Gateway, GatewayError, GatewayFuture, HeaderMap, LinkError, LinkRequest,
    PaymentLink, PaymentStatus, constant_time_eq,
};

/// Tripay's sandbox API.
pub const SANDBOX_URL: &str = "https://tripay.co.id/api-sandbox";
/// Tripay's production API.
pub const PRODUCTION_URL: &str = "https://tripay.co.id/api";
/// How long a transaction stays payable: a day, as the portal reuses a link 23 h.
const EXPIRY_S: i64 = 24 * 3600;

/// The Tripay gateway's keys and settings.
pub struct TripayConfig {
    /// Bearer key for API calls.
    pub api_key: String,
    /// Signs transactions and callbacks.
    pub private_key: String,
    /// The merchant code (`T1234`).
    pub merchant_code: String,
    /// The payment channel links are created for (`QRIS`, `BRIVA`, ...).
    pub method: String,
    /// The API base URL ([`SANDBOX_URL`] or [`PRODUCTION_URL`]).
    pub api_url: String,
}

/// The Tripay gateway.
pub struct Tripay {
    config: TripayConfig,
    api: ApiClient,
}

impl std::fmt::Debug for Tripay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tripay")
            .field("api_key", &"<redacted>")
            .field("private_key", &"<redacted>")
            .field("merchant_code", &self.config.merchant_code)
            .field("method", &self.config.method)
            .field("api", &self.api.base_url())
            .finish()
    }
}

/// The `X-Callback-Signature` of a callback body under `private_key`, for tests and tools.
pub fn callback_signature(private_key: &str, body: &[u8]) -> String {
    hmac_hex(private_key, body)
}

/// The `signature` of a new transaction: HMAC of merchant code, reference and amount.
pub fn transaction_signature(
    private_key: &str,
    merchant_code: &str,
    merchant_ref: &str,
    amount: i64,
) -> String {
    hmac_hex(
        private_key,
        format!("{merchant_code}{merchant_ref}{amount}").as_bytes(),
    )
}

/// Lowercase hex HMAC-SHA256 of `message` under `key`.
fn hmac_hex(key: &str, message: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key.as_bytes()).expect("HMAC takes any key");
    mac.update(message);
    hex::encode(mac.finalize().into_bytes())
}

impl Tripay {
    /// A gateway with `config`. The process's rustls crypto provider must be installed first.
    pub fn new(config: TripayConfig) -> Result<Tripay, String> {
        if config.private_key.is_empty() || config.merchant_code.is_empty() {
            return Err("Tripay needs its private key and merchant code".into());
        }
        let api = ApiClient::new(&config.api_url)?;
        Ok(Tripay { config, api })
    }

    fn sign_transaction(&self, merchant_ref: &str, amount: i64) -> String {
        transaction_signature(
            &self.config.private_key,
            &self.config.merchant_code,
            merchant_ref,
            amount,
        )
    }

    fn bearer(&self) -> String {
        format!("Bearer {}", self.config.api_key)
    }

    async fn detail(&self, claim: &Claim) -> Result<Confirmed, GatewayError> {
        let query: String = form_urlencoded::Serializer::new(String::new())
            .append_pair("reference", &claim.lookup)
            .finish();
        let answer = self
            .api
            .get(&format!("/transaction/detail?{query}"), &self.bearer())
            .await
            .map_err(GatewayError::Unavailable)?;
        if answer.status >= 500 || answer.status == 429 {
            return Err(GatewayError::Unavailable(format!(
                "transaction API answered HTTP {}",
                answer.status
            )));
        }
        if answer.body["success"] != json!(true) {
            let why = answer.body["message"].as_str().unwrap_or("no message");
            return Err(if answer.status == 404 || answer.status == 400 {
                GatewayError::Unconfirmed(format!("Tripay does not confirm the transaction: {why}"))
            } else {
                GatewayError::Unavailable(format!(
                    "transaction API answered HTTP {}: {why}",
                    answer.status
                ))
            });
        }
        let Value::Object(data) = &answer.body["data"] else {
            return Err(GatewayError::Unavailable(
                "transaction API answered without data".into(),
            ));
        };
        parse_detail(data)
    }

    async fn create(&self, request: &LinkRequest) -> Result<PaymentLink, LinkError> {
        if request.currency_exponent != 0 || !request.currency.eq_ignore_ascii_case("IDR") {
            return Err(LinkError::Refused(
                "Tripay takes whole rupiah only (ledger currency IDR without decimals)".into(),
            ));
        }
        // Tripay requires an e-mail; `.invalid` never delivers, so a customer without one
        // gets no mail from Tripay rather than someone else's.
        let email = request
            .customer_email
            .clone()
            .unwrap_or_else(|| "no-email@customers.invalid".to_string());
        let mut body = json!({
            "method": self.config.method,
            "merchant_ref": request.order_id,
            "amount": request.amount,
            "customer_name": request.customer_name,
            "customer_email": email,
            "order_items": [{
                "name": request.description,
                "price": request.amount,
                "quantity": 1,
            }],
            "expired_time": crate::db::now_ms() / 1000 + EXPIRY_S,
            "signature": self.sign_transaction(&request.order_id, request.amount),
        });
        if let Some(phone) = &request.customer_phone {
            body["customer_phone"] = json!(phone);
        }
        if let Some(url) = &request.return_url {
            body["return_url"] = json!(url);
        }
        let answer = self
            .api
            .post("/transaction/create", &self.bearer(), &body)
            .await
            .map_err(LinkError::Unavailable)?;
        if answer.body["success"] != json!(true) {
            let why = answer.body["message"]
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| format!("HTTP {}", answer.status));
            return Err(link_refusal(answer.status, why));
        }
        payment_link(&answer.body["data"]["checkout_url"], "checkout_url")
    }
}

/// Reads a callback after checking its signature over the raw body. The whole body is
/// signed, so its status and amount are held against the transaction API's answer.
pub fn parse_callback(
    private_key: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Claim, GatewayError> {
    let given = headers
        .get("x-callback-signature")
        .map(|v| v.as_bytes())
        .unwrap_or_default();
    if !constant_time_eq(hmac_hex(private_key, body).as_bytes(), given) {
        return Err(GatewayError::BadSignature);
    }
    if let Some(event) = headers.get("x-callback-event")
        && event.as_bytes() != b"payment_status"
    {
        return Err(GatewayError::Malformed(format!(
            "callback event {:?} is not payment_status",
            String::from_utf8_lossy(event.as_bytes())
        )));
    }
    let fields = object(body)?;
    Ok(Claim {
        lookup: string(&fields, "reference")?.to_owned(),
        order_id: string(&fields, "merchant_ref")?.to_owned(),
        signed_status: Some(string(&fields, "status")?.to_owned()),
        signed_amount: Some(billed(&fields, "total_amount")?),
    })
}

/// Reads a transaction as the detail API returns it.
pub fn parse_detail(data: &Map<String, Value>) -> Result<Confirmed, GatewayError> {
    let unexpected = from_api("transaction API");
    let status_word = string(data, "status").map_err(&unexpected)?;
    let status = match status_word {
        "PAID" => PaymentStatus::Paid,
        "UNPAID" => PaymentStatus::Pending,
        "EXPIRED" | "FAILED" => PaymentStatus::Failed,
        "REFUND" => PaymentStatus::Refunded,
        other => {
            return Err(unexpected(GatewayError::Malformed(format!(
                "unknown status `{other}`"
            ))));
        }
    };
    Ok(Confirmed {
        transaction_id: string(data, "reference").map_err(&unexpected)?.to_owned(),
        order_id: string(data, "merchant_ref")
            .map_err(&unexpected)?
            .to_owned(),
        amount: billed(data, "amount").map_err(&unexpected)?,
        currency: "IDR".to_string(),
        status,
        status_code: status_word.to_owned(),
        raw_status: status_word.to_owned(),
    })
}

/// What the invoice is credited with: the payer's total less the fee Tripay charged the payer
/// on top (zero unless the merchant passes fees on), i.e. the amount the link asked for.
fn billed(fields: &Map<String, Value>, total_field: &str) -> Result<i64, GatewayError> {
    let total = whole(fields, total_field)?;
    let fee = match fields.get("fee_customer") {
        None | Some(Value::Null) => 0,
        Some(_) => whole(fields, "fee_customer")?,
    };
    total
        .checked_sub(fee)
        .filter(|a| (0..=crate::tax::MAX_AMOUNT).contains(a))
        .ok_or_else(|| GatewayError::Malformed(format!("`{total_field}` is out of range")))
}

fn whole(fields: &Map<String, Value>, name: &str) -> Result<i64, GatewayError> {
    match fields.get(name) {
        Some(v @ (Value::Number(_) | Value::String(_))) => super::amount::parse_json(v, name, 0),
        None | Some(Value::Null) => Err(GatewayError::Malformed(format!("missing field `{name}`"))),
        Some(_) => Err(GatewayError::Malformed(format!(
            "field `{name}` is not an amount"
        ))),
    }
}

impl Gateway for Tripay {
    fn name(&self) -> &'static str {
        "tripay"
    }

    fn authenticate(
        &self,
        headers: &HeaderMap,
        body: &[u8],
        currency_exponent: u32,
    ) -> Result<Claim, GatewayError> {
        if currency_exponent != 0 {
            return Err(GatewayError::Malformed(
                "Tripay pays whole rupiah; the ledger has minor units".into(),
            ));
        }
        parse_callback(&self.config.private_key, headers, body)
    }

    fn confirm<'a>(
        &'a self,
        claim: &'a Claim,
        _currency_exponent: u32,
    ) -> GatewayFuture<'a, Result<Confirmed, GatewayError>> {
        Box::pin(self.detail(claim))
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

    const KEY: &str = "tripay-private-key";

    fn callback() -> Value {
        json!({
            "reference": "T0001000023000XXXXX",
            "merchant_ref": "INV-2026-000001~abc",
            "payment_method": "QRIS",
            "payment_method_code": "QRIS",
            "total_amount": 150000,
            "fee_merchant": 1500,
            "fee_customer": 0,
            "total_fee": 1500,
            "amount_received": 148500,
            "is_closed_payment": 1,
            "status": "PAID",
            "paid_at": 1608133017,
            "note": null,
        })
    }

    fn signed(body: &[u8]) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("x-callback-signature", hmac_hex(KEY, body).parse().unwrap());
        h.insert("x-callback-event", "payment_status".parse().unwrap());
        h
    }

    #[test]
    fn a_signed_callback_claims_its_status_and_amount() {
        let body = callback().to_string();
        let claim = parse_callback(KEY, &signed(body.as_bytes()), body.as_bytes()).unwrap();
        assert_eq!(
            claim,
            Claim {
                lookup: "T0001000023000XXXXX".into(),
                order_id: "INV-2026-000001~abc".into(),
                signed_status: Some("PAID".into()),
                signed_amount: Some(150_000),
            }
        );
    }

    #[test]
    fn any_change_to_the_body_breaks_the_signature() {
        let body = callback().to_string();
        let h = signed(body.as_bytes());
        let edited = body.replace("150000", "150001");
        assert!(matches!(
            parse_callback(KEY, &h, edited.as_bytes()),
            Err(GatewayError::BadSignature)
        ));
        assert!(matches!(
            parse_callback("other", &h, body.as_bytes()),
            Err(GatewayError::BadSignature)
        ));
        assert!(matches!(
            parse_callback(KEY, &HeaderMap::new(), body.as_bytes()),
            Err(GatewayError::BadSignature)
        ));
    }

    #[test]
    fn other_events_are_refused() {
        let body = callback().to_string();
        let mut h = signed(body.as_bytes());
        h.insert("x-callback-event", "something_else".parse().unwrap());
        assert!(matches!(
            parse_callback(KEY, &h, body.as_bytes()),
            Err(GatewayError::Malformed(_))
        ));
    }

    #[test]
    fn a_fee_passed_to_the_payer_is_not_credited() {
        let mut data = callback();
        data["amount"] = json!(152_000);
        data["fee_customer"] = json!(2_000);
        let c = parse_detail(data.as_object().unwrap()).unwrap();
        assert_eq!(c.amount, 150_000);
        assert_eq!(c.transaction_id, "T0001000023000XXXXX");
        assert_eq!(c.status, PaymentStatus::Paid);
    }

    #[test]
    fn detail_statuses() {
        for (word, status) in [
            ("PAID", PaymentStatus::Paid),
            ("UNPAID", PaymentStatus::Pending),
            ("EXPIRED", PaymentStatus::Failed),
            ("FAILED", PaymentStatus::Failed),
            ("REFUND", PaymentStatus::Refunded),
        ] {
            let mut data = callback();
            data["amount"] = json!(150_000);
            data["status"] = json!(word);
            assert_eq!(
                parse_detail(data.as_object().unwrap()).unwrap().status,
                status
            );
        }
    }

    #[test]
    fn transaction_signature_is_the_documented_hmac() {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let t = Tripay::new(TripayConfig {
            api_key: "api".into(),
            private_key: KEY.into(),
            merchant_code: "T12345".into(),
            method: "QRIS".into(),
            api_url: SANDBOX_URL.into(),
        })
        .unwrap();
        assert_eq!(
            t.sign_transaction("INV345675", 1_000_000),
            hmac_hex(KEY, b"T12345INV3456751000000")
        );
        let shown = format!("{t:?}");
        assert!(
            !shown.contains(KEY) && !shown.contains("\"api\""),
            "{shown}"
        );
    }
}
