//! Midtrans: HTTP notifications, the status API that confirms them, and Snap payment pages.
//!
//! Midtrans POSTs a JSON object whose `signature_key` is the lowercase hex SHA-512 of
//! `order_id + status_code + gross_amount + server_key`, concatenated as strings. Only those
//! three fields are signed: `transaction_status` and `transaction_id` are not, so they are
//! never believed. The notification names an order; `GET {api}/v2/{order_id}/status` with
//! the server key says what became of it, and that answer is what is recorded.

use serde_json::{Map, Value};
use sha2::{Digest, Sha512};

use super::amount::parse_decimal;
use super::client::{ApiClient, basic, path_segment};
use super::fields::{from_api, object};
use super::{
    Claim, Confirmed, Gateway, GatewayError, GatewayFuture, HeaderMap, LinkError, LinkRequest,
    PaymentLink, PaymentStatus, constant_time_eq,
};

/// The Core API's base URL for sandbox (test) merchants.
pub const SANDBOX_API_URL: &str = "https://api.sandbox.midtrans.com";
/// The Core API's base URL for production merchants.
pub const PRODUCTION_API_URL: &str = "https://api.midtrans.com";

/// The Midtrans gateway, holding the merchant's server key.
pub struct Midtrans {
    server_key: String,
    api: ApiClient,
    snap: ApiClient,
}

impl std::fmt::Debug for Midtrans {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The server key both signs notifications and authorises API calls: never log it.
        f.debug_struct("Midtrans")
            .field("server_key", &"<redacted>")
            .field("api", &self.api.base_url())
            .field("snap", &self.snap.base_url())
            .finish()
    }
}

impl Midtrans {
    /// A gateway with `server_key`, confirming at `api_url` and creating Snap pages at
    /// `snap_url`. The process's rustls crypto provider must be installed first.
    pub fn new(
        server_key: impl Into<String>,
        api_url: &str,
        snap_url: &str,
    ) -> Result<Midtrans, String> {
        Ok(Midtrans {
            server_key: server_key.into(),
            api: ApiClient::new(api_url)?,
            snap: ApiClient::new(snap_url)?,
        })
    }

    /// The `signature_key` Midtrans sends for these fields, for tests and test tools.
    pub fn sign(&self, order_id: &str, status_code: &str, gross_amount: &str) -> String {
        signature(&self.server_key, order_id, status_code, gross_amount)
    }

    async fn status(&self, claim: &Claim, exponent: u32) -> Result<Confirmed, GatewayError> {
        let path = format!("/v2/{}/status", path_segment(&claim.lookup));
        let answer = self
            .api
            .get(&path, &basic(&self.server_key))
            .await
            .map_err(GatewayError::Unavailable)?;
        let code = answer.body["status_code"].as_str().unwrap_or_default();
        if answer.status == 404 || code == "404" {
            return Err(GatewayError::Unconfirmed(format!(
                "Midtrans has no transaction for order {:?}",
                claim.order_id
            )));
        }
        let code_error = code.parse::<u16>().is_ok_and(|c| c >= 400 && c != 407);
        if answer.status >= 400 || code_error {
            // 401 means our server key is wrong: a configuration problem the operator must
            // fix, after which Midtrans' retries of this notification succeed.
            return Err(GatewayError::Unavailable(format!(
                "status API answered HTTP {} with status_code {code:?}",
                answer.status
            )));
        }
        let Value::Object(fields) = &answer.body else {
            return Err(GatewayError::Unavailable(format!(
                "status API answered HTTP {} without JSON",
                answer.status
            )));
        };
        parse_status(fields, exponent)
    }
}

/// The `signature_key` of these fields under `key`: SHA-512 hex of their concatenation.
pub fn signature(key: &str, order_id: &str, status_code: &str, gross_amount: &str) -> String {
    let mut hash = Sha512::new();
    hash.update(order_id.as_bytes());
    hash.update(status_code.as_bytes());
    hash.update(gross_amount.as_bytes());
    hash.update(key.as_bytes());
    hex::encode(hash.finalize())
}

/// Reads a notification after checking its signature: which order to ask about, and the
/// signed status code and amount to hold the answer to.
pub fn parse_notification(
    server_key: &str,
    body: &[u8],
    exponent: u32,
) -> Result<Claim, GatewayError> {
    let fields = object(body)?;
    let order_id = required(&fields, "order_id")?;
    let status_code = required(&fields, "status_code")?;
    let gross_amount = required(&fields, "gross_amount")?;
    let given = required(&fields, "signature_key")?;
    let expected = signature(server_key, order_id, status_code, gross_amount);
    if !constant_time_eq(expected.as_bytes(), given.as_bytes()) {
        return Err(GatewayError::BadSignature);
    }
    Ok(Claim {
        lookup: order_id.to_owned(),
        order_id: order_id.to_owned(),
        signed_status: Some(status_code.to_owned()),
        signed_amount: Some(parse_decimal(gross_amount, exponent)?),
    })
}

/// Reads a status API answer (the same fields a notification has, unsigned: the answer came
/// over TLS from Midtrans to our server key).
pub fn parse_status(fields: &Map<String, Value>, exponent: u32) -> Result<Confirmed, GatewayError> {
    let unexpected = from_api("status API");
    let get = |name| required(fields, name).map_err(&unexpected);
    let transaction_status = get("transaction_status")?;
    let fraud_status = optional(fields, "fraud_status").map_err(&unexpected)?;
    let status = map_status(transaction_status, fraud_status).map_err(&unexpected)?;
    let raw_status = match fraud_status {
        Some(fraud) => format!("{transaction_status}/{fraud}"),
        None => transaction_status.to_owned(),
    };
    Ok(Confirmed {
        transaction_id: get("transaction_id")?.to_owned(),
        order_id: get("order_id")?.to_owned(),
        amount: parse_decimal(get("gross_amount")?, exponent).map_err(&unexpected)?,
        currency: get("currency")?.to_owned(),
        status,
        status_code: get("status_code")?.to_owned(),
        raw_status,
    })
}

impl Gateway for Midtrans {
    fn name(&self) -> &'static str {
        "midtrans"
    }

    fn authenticate(
        &self,
        _headers: &HeaderMap,
        body: &[u8],
        currency_exponent: u32,
    ) -> Result<Claim, GatewayError> {
        parse_notification(&self.server_key, body, currency_exponent)
    }

    fn confirm<'a>(
        &'a self,
        claim: &'a Claim,
        currency_exponent: u32,
    ) -> GatewayFuture<'a, Result<Confirmed, GatewayError>> {
        Box::pin(self.status(claim, currency_exponent))
    }

    fn create_link<'a>(
        &'a self,
        request: &'a LinkRequest,
    ) -> GatewayFuture<'a, Result<PaymentLink, LinkError>> {
        Box::pin(super::midtrans_snap::create(
            &self.snap,
            &self.server_key,
            request,
        ))
    }
}

fn map_status(transaction: &str, fraud: Option<&str>) -> Result<PaymentStatus, GatewayError> {
    use PaymentStatus::*;
    Ok(match (transaction, fraud) {
        ("settlement", _) => Paid,
        // A card capture is only money in hand once fraud detection has accepted it; a
        // challenged one waits for the merchant's review in the Midtrans dashboard.
        ("capture", None | Some("accept")) => Paid,
        ("capture", Some("challenge")) => Pending,
        ("capture", Some("deny")) => Failed,
        ("capture", Some(other)) => {
            return Err(GatewayError::Malformed(format!(
                "unknown fraud_status `{other}`"
            )));
        }
        ("pending" | "authorize", _) => Pending,
        ("deny" | "cancel" | "expire" | "failure", _) => Failed,
        ("refund" | "partial_refund", _) => Refunded,
        (other, _) => {
            return Err(GatewayError::Malformed(format!(
                "unknown transaction_status `{other}`"
            )));
        }
    })
}

fn required<'a>(fields: &'a Map<String, Value>, name: &str) -> Result<&'a str, GatewayError> {
    optional(fields, name)?
        .ok_or_else(|| GatewayError::Malformed(format!("missing field `{name}`")))
}

/// A string field; absent and `null` both count as missing.
fn optional<'a>(
    fields: &'a Map<String, Value>,
    name: &str,
) -> Result<Option<&'a str>, GatewayError> {
    match fields.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(GatewayError::Malformed(format!(
            "field `{name}` is not a string"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const KEY: &str = "SB-Mid-server-test-key";

    fn gateway() -> Midtrans {
        let _ = rustls::crypto::ring::default_provider().install_default();
        Midtrans::new(
            KEY,
            SANDBOX_API_URL,
            super::super::midtrans_snap::SANDBOX_URL,
        )
        .unwrap()
    }

    /// A signed notification (or status answer) with the given status words and amount.
    fn body_with(transaction_status: &str, fraud_status: Option<&str>, gross: &str) -> Value {
        let mut body = json!({
            "transaction_time": "2026-03-01 10:00:00",
            "transaction_status": transaction_status,
            "transaction_id": "6ee793df-9b1d-4343-8eda-cc9663b4222f",
            "status_message": "midtrans payment notification",
            "status_code": "200",
            "signature_key": signature(KEY, "INV-2026-000123", "200", gross),
            "payment_type": "bank_transfer",
            "order_id": "INV-2026-000123",
            "merchant_id": "G000000000",
            "gross_amount": gross,
            "currency": "IDR",
        });
        if let Some(fraud) = fraud_status {
            body["fraud_status"] = json!(fraud);
        }
        body
    }

    fn body(transaction_status: &str, fraud_status: Option<&str>) -> Value {
        body_with(transaction_status, fraud_status, "150000.00")
    }

    fn verify(body: &Value) -> Result<Claim, GatewayError> {
        parse_notification(KEY, body.to_string().as_bytes(), 0)
    }

    fn status(body: &Value) -> Result<Confirmed, GatewayError> {
        parse_status(body.as_object().unwrap(), 0)
    }

    fn malformed<T: std::fmt::Debug>(result: Result<T, GatewayError>) -> String {
        match result {
            Err(GatewayError::Malformed(why)) => why,
            other => panic!("expected Malformed, got {other:?}"),
        }
    }

    fn unexpected<T: std::fmt::Debug>(result: Result<T, GatewayError>) -> String {
        match result {
            Err(GatewayError::Unavailable(why)) => why,
            other => panic!("expected Unavailable, got {other:?}"),
        }
    }

    #[test]
    fn a_notification_claims_only_its_signed_fields() {
        // The unsigned transaction_status and transaction_id play no part in the claim.
        for status in ["settlement", "pending", "expire"] {
            assert_eq!(
                verify(&body(status, None)).unwrap(),
                Claim {
                    lookup: "INV-2026-000123".into(),
                    order_id: "INV-2026-000123".into(),
                    signed_status: Some("200".into()),
                    signed_amount: Some(150_000),
                }
            );
        }
    }

    #[test]
    fn a_status_answer_is_confirmed() {
        assert_eq!(
            status(&body("settlement", None)).unwrap(),
            Confirmed {
                transaction_id: "6ee793df-9b1d-4343-8eda-cc9663b4222f".into(),
                order_id: "INV-2026-000123".into(),
                amount: 150_000,
                currency: "IDR".into(),
                status: PaymentStatus::Paid,
                status_code: "200".into(),
                raw_status: "settlement".into(),
            }
        );
    }

    #[test]
    fn sign_is_sha512_of_the_concatenation() {
        let expected = hex::encode(Sha512::digest(format!("1111200100000.00{KEY}")));
        let sig = gateway().sign("1111", "200", "100000.00");
        assert_eq!(sig, expected);
        assert_eq!(sig.len(), 128);
        assert!(
            sig.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        );
    }

    #[test]
    fn sign_matches_a_known_vector() {
        // SHA-512 of the empty string: all three fields and the key empty.
        assert_eq!(
            signature("", "", "", ""),
            "cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce\
             47d0d13c5d85f2b0ff8318d2877eec2f63b931bd47417a81a538327af927da3e"
        );
    }

    #[test]
    fn tampered_signed_fields_fail_the_signature() {
        for (field, value) in [
            ("gross_amount", "1500000.00"),
            ("order_id", "INV-2026-000124"),
            ("status_code", "201"),
        ] {
            let mut b = body("settlement", None);
            b[field] = json!(value);
            assert!(
                matches!(verify(&b), Err(GatewayError::BadSignature)),
                "{field}"
            );
        }
    }

    #[test]
    fn wrong_key_fails_the_signature() {
        let b = body("settlement", None);
        assert!(matches!(
            parse_notification("SB-Mid-server-other-key", b.to_string().as_bytes(), 0),
            Err(GatewayError::BadSignature)
        ));
    }

    #[test]
    fn truncated_or_uppercase_signature_fails() {
        let mut b = body("settlement", None);
        let sig = b["signature_key"].as_str().unwrap().to_owned();
        b["signature_key"] = json!(&sig[..127]);
        assert!(matches!(verify(&b), Err(GatewayError::BadSignature)));
        b["signature_key"] = json!("");
        assert!(matches!(verify(&b), Err(GatewayError::BadSignature)));
        b["signature_key"] = json!(format!("{sig}0"));
        assert!(matches!(verify(&b), Err(GatewayError::BadSignature)));
        // Midtrans sends lowercase hex; anything else was not made by Midtrans.
        b["signature_key"] = json!(sig.to_uppercase());
        assert!(matches!(verify(&b), Err(GatewayError::BadSignature)));
    }

    #[test]
    fn bad_signature_is_reported_before_other_problems() {
        let mut b = body("no-such-status", None);
        b["signature_key"] = json!("00");
        b.as_object_mut().unwrap().remove("transaction_id");
        assert!(matches!(verify(&b), Err(GatewayError::BadSignature)));
    }

    #[test]
    fn every_status() {
        use PaymentStatus::*;
        let cases = [
            ("settlement", None, Paid, "settlement"),
            ("settlement", Some("accept"), Paid, "settlement/accept"),
            ("capture", None, Paid, "capture"),
            ("capture", Some("accept"), Paid, "capture/accept"),
            ("capture", Some("challenge"), Pending, "capture/challenge"),
            ("capture", Some("deny"), Failed, "capture/deny"),
            ("pending", None, Pending, "pending"),
            ("authorize", Some("accept"), Pending, "authorize/accept"),
            ("deny", None, Failed, "deny"),
            ("cancel", None, Failed, "cancel"),
            ("expire", None, Failed, "expire"),
            ("failure", None, Failed, "failure"),
            ("refund", None, Refunded, "refund"),
            ("partial_refund", None, Refunded, "partial_refund"),
        ];
        for (transaction, fraud, expected, raw) in cases {
            let n = status(&body(transaction, fraud)).unwrap();
            assert_eq!(n.status, expected, "{transaction}/{fraud:?}");
            assert_eq!(n.raw_status, raw);
        }
    }

    #[test]
    fn null_fraud_status_counts_as_absent() {
        let mut b = body("capture", None);
        b["fraud_status"] = Value::Null;
        let n = status(&b).unwrap();
        assert_eq!(n.status, PaymentStatus::Paid);
        assert_eq!(n.raw_status, "capture");
    }

    #[test]
    fn unknown_statuses_are_named() {
        let why = unexpected(status(&body("chargeback", None)));
        assert!(why.contains("`chargeback`"), "{why}");
        let why = unexpected(status(&body("capture", Some("review"))));
        assert!(why.contains("`review`"), "{why}");
    }

    #[test]
    fn malformed_json() {
        let why = malformed(parse_notification(KEY, b"{not json", 0));
        assert!(why.starts_with("not JSON"), "{why}");
        assert_eq!(
            malformed(parse_notification(KEY, b"[1, 2]", 0)),
            "not a JSON object"
        );
        assert_eq!(
            malformed(parse_notification(KEY, b"\"settlement\"", 0)),
            "not a JSON object"
        );
        assert!(malformed(parse_notification(KEY, b"", 0)).starts_with("not JSON"));
        assert!(malformed(parse_notification(KEY, &[0xff, 0xfe], 0)).starts_with("not JSON"));
    }

    #[test]
    fn missing_fields() {
        for field in ["order_id", "status_code", "gross_amount", "signature_key"] {
            let mut b = body("settlement", None);
            b.as_object_mut().unwrap().remove(field);
            assert_eq!(
                malformed(verify(&b)),
                format!("missing field `{field}`"),
                "{field}"
            );
        }
        for field in [
            "transaction_id",
            "currency",
            "transaction_status",
            "order_id",
            "status_code",
        ] {
            let mut b = body("settlement", None);
            b.as_object_mut().unwrap().remove(field);
            let why = unexpected(status(&b));
            assert!(why.contains(&format!("missing field `{field}`")), "{why}");
        }
    }

    #[test]
    fn non_string_fields() {
        let b = json!({ "order_id": 1 });
        assert_eq!(malformed(verify(&b)), "field `order_id` is not a string");
        let mut b = body("settlement", None);
        b["order_id"] = Value::Null;
        assert_eq!(malformed(verify(&b)), "missing field `order_id`");
        let mut b = body("capture", None);
        b["fraud_status"] = json!(true);
        let why = unexpected(status(&b));
        assert!(
            why.contains("field `fraud_status` is not a string"),
            "{why}"
        );
    }

    #[test]
    fn signed_but_fractional_amount_is_refused() {
        let b = body_with("settlement", None, "150000.50");
        let why = malformed(verify(&b));
        assert!(why.contains("150000.50"), "{why}");
        // The same notification is fine for a ledger with cents.
        let n = parse_notification(KEY, b.to_string().as_bytes(), 2).unwrap();
        assert_eq!(n.signed_amount, Some(15_000_050));
    }

    #[test]
    fn amount_without_fraction_digits() {
        let n = verify(&body_with("settlement", None, "24145")).unwrap();
        assert_eq!(n.signed_amount, Some(24_145));
    }

    #[test]
    fn debug_redacts_the_key() {
        let shown = format!("{:?}", gateway());
        assert!(!shown.contains(KEY), "{shown}");
        assert!(shown.contains("redacted"), "{shown}");
    }

    #[test]
    fn registers_under_its_name() {
        let gateways = crate::payments::gateway::Gateways::default().with(gateway());
        assert_eq!(gateways.names(), vec!["midtrans"]);
        assert_eq!(gateways.links().unwrap().name(), "midtrans");
        let g = gateways.get("midtrans").unwrap();
        let claim = g.authenticate(
            &HeaderMap::new(),
            body("settlement", None).to_string().as_bytes(),
            0,
        );
        assert_eq!(claim.unwrap().order_id, "INV-2026-000123");
    }
}
