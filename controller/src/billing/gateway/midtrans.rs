//! Midtrans HTTP notifications (webhooks).
//!
//! Midtrans POSTs a JSON object whose `signature_key` is the lowercase hex SHA-512 of
//! `order_id + status_code + gross_amount + server_key`, concatenated as strings. Only those
//! three fields are signed, so the signature is checked before anything else in the body is
//! believed, and the amount is taken from the signed `gross_amount` string.

use serde_json::{Map, Value};
use sha2::{Digest, Sha512};

use crate::billing::gateway::{Gateway, GatewayError, Notification, PaymentStatus};
use crate::billing::tax::MAX_AMOUNT;

/// Integer digits `parse_amount` accepts: 10^15 minor units is the ledger's bound anyway.
const MAX_INTEGER_DIGITS: usize = 15;

/// The Midtrans gateway, holding the merchant's server key.
pub struct Midtrans {
    server_key: String,
}

impl std::fmt::Debug for Midtrans {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The server key both signs notifications and authorises API calls: never log it.
        f.debug_struct("Midtrans")
            .field("server_key", &"<redacted>")
            .finish()
    }
}

impl Midtrans {
    /// A gateway verifying with `server_key`.
    pub fn new(server_key: impl Into<String>) -> Midtrans {
        Midtrans {
            server_key: server_key.into(),
        }
    }

    /// The `signature_key` Midtrans sends for these fields, for tests and test tools.
    pub fn sign(&self, order_id: &str, status_code: &str, gross_amount: &str) -> String {
        let mut hash = Sha512::new();
        hash.update(order_id.as_bytes());
        hash.update(status_code.as_bytes());
        hash.update(gross_amount.as_bytes());
        hash.update(self.server_key.as_bytes());
        hex::encode(hash.finalize())
    }
}

impl Gateway for Midtrans {
    fn name(&self) -> &'static str {
        "midtrans"
    }

    fn verify(&self, body: &[u8], currency_exponent: u32) -> Result<Notification, GatewayError> {
        let value: Value = serde_json::from_slice(body)
            .map_err(|e| GatewayError::Malformed(format!("not JSON: {e}")))?;
        let Value::Object(fields) = value else {
            return Err(GatewayError::Malformed("not a JSON object".into()));
        };

        let order_id = required(&fields, "order_id")?;
        let status_code = required(&fields, "status_code")?;
        let gross_amount = required(&fields, "gross_amount")?;
        let signature = required(&fields, "signature_key")?;
        let expected = self.sign(order_id, status_code, gross_amount);
        if !constant_time_eq(expected.as_bytes(), signature.as_bytes()) {
            return Err(GatewayError::BadSignature);
        }

        let external_id = required(&fields, "transaction_id")?;
        let currency = required(&fields, "currency")?;
        let transaction_status = required(&fields, "transaction_status")?;
        let fraud_status = optional(&fields, "fraud_status")?;
        let status = map_status(transaction_status, fraud_status)?;
        let amount = parse_amount(gross_amount, currency_exponent)?;
        let raw_status = match fraud_status {
            Some(fraud) => format!("{transaction_status}/{fraud}"),
            None => transaction_status.to_owned(),
        };

        Ok(Notification {
            external_id: external_id.to_owned(),
            order_id: order_id.to_owned(),
            amount,
            currency: currency.to_owned(),
            status,
            raw_status,
        })
    }
}

/// Parses a Midtrans decimal string into minor units with `exponent` decimal places.
///
/// Accepts `digits` or `digits.digits` only: no sign, spaces or exponent, at most 15 integer
/// digits. Fraction digits beyond `exponent` must be zeros, since dropping them would record a
/// different amount than was paid.
pub fn parse_amount(s: &str, exponent: u32) -> Result<i64, GatewayError> {
    let bad = |why: &str| GatewayError::Malformed(format!("amount {s:?} {why}"));
    let (int, frac) = match s.split_once('.') {
        Some((int, frac)) => (int, frac),
        None => (s, ""),
    };
    let all_digits = |part: &str| part.bytes().all(|b| b.is_ascii_digit());
    if int.is_empty() || !all_digits(int) {
        return Err(bad("is not a decimal number"));
    }
    if s.contains('.') && (frac.is_empty() || !all_digits(frac)) {
        return Err(bad("is not a decimal number"));
    }
    if int.len() > MAX_INTEGER_DIGITS {
        return Err(bad("has too many digits"));
    }

    let places = usize::try_from(exponent).unwrap_or(usize::MAX);
    let (kept, dropped) = frac.split_at(frac.len().min(places));
    if dropped.bytes().any(|b| b != b'0') {
        return Err(bad("has a fraction finer than the currency's minor unit"));
    }

    let out_of_range = || bad("is out of range");
    // `kept` has at most `exponent` digits, so this pads it to exactly `exponent` places.
    let pad = exponent - u32::try_from(kept.len()).map_err(|_| out_of_range())?;
    let scale = 10_i64.checked_pow(exponent).ok_or_else(out_of_range)?;
    let pad_scale = 10_i64.checked_pow(pad).ok_or_else(out_of_range)?;
    let int: i64 = int.parse().map_err(|_| out_of_range())?;
    let frac: i64 = if kept.is_empty() {
        0
    } else {
        kept.parse().map_err(|_| out_of_range())?
    };
    let amount = int
        .checked_mul(scale)
        .and_then(|v| frac.checked_mul(pad_scale).and_then(|f| v.checked_add(f)))
        .ok_or_else(out_of_range)?;
    if amount > MAX_AMOUNT {
        return Err(out_of_range());
    }
    Ok(amount)
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

/// Compares without an early exit, so the time taken does not reveal how many leading bytes
/// of a forged signature were right. The length is public (always 128 hex digits).
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len()
        && std::hint::black_box(a.iter().zip(b).fold(0_u8, |acc, (x, y)| acc | (x ^ y))) == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const KEY: &str = "SB-Mid-server-test-key";

    fn gateway() -> Midtrans {
        Midtrans::new(KEY)
    }

    /// A signed notification with the given status words and amount.
    fn body_with(transaction_status: &str, fraud_status: Option<&str>, gross: &str) -> Value {
        let mut body = json!({
            "transaction_time": "2026-03-01 10:00:00",
            "transaction_status": transaction_status,
            "transaction_id": "6ee793df-9b1d-4343-8eda-cc9663b4222f",
            "status_message": "midtrans payment notification",
            "status_code": "200",
            "signature_key": gateway().sign("INV-2026-000123", "200", gross),
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

    fn verify(body: &Value) -> Result<Notification, GatewayError> {
        gateway().verify(body.to_string().as_bytes(), 0)
    }

    fn malformed(result: Result<Notification, GatewayError>) -> String {
        match result {
            Err(GatewayError::Malformed(why)) => why,
            other => panic!("expected Malformed, got {other:?}"),
        }
    }

    #[test]
    fn valid_settlement() {
        let n = verify(&body("settlement", None)).unwrap();
        assert_eq!(
            n,
            Notification {
                external_id: "6ee793df-9b1d-4343-8eda-cc9663b4222f".into(),
                order_id: "INV-2026-000123".into(),
                amount: 150_000,
                currency: "IDR".into(),
                status: PaymentStatus::Paid,
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
            Midtrans::new("").sign("", "", ""),
            "cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce\
             47d0d13c5d85f2b0ff8318d2877eec2f63b931bd47417a81a538327af927da3e"
        );
    }

    #[test]
    fn tampered_amount_fails_the_signature() {
        let mut b = body("settlement", None);
        b["gross_amount"] = json!("1500000.00");
        assert!(matches!(verify(&b), Err(GatewayError::BadSignature)));
    }

    #[test]
    fn tampered_order_or_status_code_fails_the_signature() {
        let mut b = body("settlement", None);
        b["order_id"] = json!("INV-2026-000124");
        assert!(matches!(verify(&b), Err(GatewayError::BadSignature)));
        let mut b = body("settlement", None);
        b["status_code"] = json!("201");
        assert!(matches!(verify(&b), Err(GatewayError::BadSignature)));
    }

    #[test]
    fn wrong_key_fails_the_signature() {
        let b = body("settlement", None);
        let other = Midtrans::new("SB-Mid-server-other-key");
        assert!(matches!(
            other.verify(b.to_string().as_bytes(), 0),
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
        for (transaction, fraud, status, raw) in cases {
            let n = verify(&body(transaction, fraud)).unwrap();
            assert_eq!(n.status, status, "{transaction}/{fraud:?}");
            assert_eq!(n.raw_status, raw);
        }
    }

    #[test]
    fn null_fraud_status_counts_as_absent() {
        let mut b = body("capture", None);
        b["fraud_status"] = Value::Null;
        let n = verify(&b).unwrap();
        assert_eq!(n.status, PaymentStatus::Paid);
        assert_eq!(n.raw_status, "capture");
    }

    #[test]
    fn unknown_statuses_are_named() {
        let why = malformed(verify(&body("chargeback", None)));
        assert!(why.contains("`chargeback`"), "{why}");
        let why = malformed(verify(&body("capture", Some("review"))));
        assert!(why.contains("`review`"), "{why}");
    }

    #[test]
    fn malformed_json() {
        let g = gateway();
        let why = malformed(g.verify(b"{not json", 0));
        assert!(why.starts_with("not JSON"), "{why}");
        assert_eq!(malformed(g.verify(b"[1, 2]", 0)), "not a JSON object");
        assert_eq!(
            malformed(g.verify(b"\"settlement\"", 0)),
            "not a JSON object"
        );
        assert!(malformed(g.verify(b"", 0)).starts_with("not JSON"));
        assert!(malformed(g.verify(&[0xff, 0xfe], 0)).starts_with("not JSON"));
    }

    #[test]
    fn missing_fields() {
        for field in [
            "order_id",
            "status_code",
            "gross_amount",
            "signature_key",
            "transaction_id",
            "currency",
            "transaction_status",
        ] {
            let mut b = body("settlement", None);
            b.as_object_mut().unwrap().remove(field);
            assert_eq!(
                malformed(verify(&b)),
                format!("missing field `{field}`"),
                "{field}"
            );
        }
        assert_eq!(
            malformed(gateway().verify(b"{}", 0)),
            "missing field `order_id`"
        );
    }

    #[test]
    fn non_string_fields() {
        let mut b = body("settlement", None);
        b["transaction_id"] = json!(12345);
        assert_eq!(
            malformed(verify(&b)),
            "field `transaction_id` is not a string"
        );
        let mut b = body("capture", None);
        b["fraud_status"] = json!(true);
        assert_eq!(
            malformed(verify(&b)),
            "field `fraud_status` is not a string"
        );
        let b = json!({ "order_id": 1 });
        assert_eq!(malformed(verify(&b)), "field `order_id` is not a string");
        let mut b = body("settlement", None);
        b["order_id"] = Value::Null;
        assert_eq!(malformed(verify(&b)), "missing field `order_id`");
    }

    #[test]
    fn signed_but_fractional_amount_is_refused() {
        let b = body_with("settlement", None, "150000.50");
        let why = malformed(verify(&b));
        assert!(why.contains("150000.50"), "{why}");
        // The same notification is fine for a ledger with cents.
        let n = gateway().verify(b.to_string().as_bytes(), 2).unwrap();
        assert_eq!(n.amount, 15_000_050);
    }

    #[test]
    fn amount_without_fraction_digits() {
        let n = verify(&body_with("settlement", None, "24145")).unwrap();
        assert_eq!(n.amount, 24_145);
    }

    #[test]
    fn parse_amount_accepts() {
        assert_eq!(parse_amount("150000.00", 0).unwrap(), 150_000);
        assert_eq!(parse_amount("150000", 0).unwrap(), 150_000);
        assert_eq!(parse_amount("150000.0", 0).unwrap(), 150_000);
        assert_eq!(parse_amount("12.5", 2).unwrap(), 1_250);
        assert_eq!(parse_amount("12.50", 2).unwrap(), 1_250);
        assert_eq!(parse_amount("12.500", 2).unwrap(), 1_250);
        assert_eq!(parse_amount("12", 2).unwrap(), 1_200);
        assert_eq!(parse_amount("0.01", 2).unwrap(), 1);
        assert_eq!(parse_amount("0", 0).unwrap(), 0);
        assert_eq!(parse_amount("007", 0).unwrap(), 7);
        assert_eq!(parse_amount("1.5", 3).unwrap(), 1_500);
        assert_eq!(
            parse_amount("999999999999999", 0).unwrap(),
            999_999_999_999_999
        );
        assert_eq!(parse_amount("1000000000000000", 0).ok(), None);
        assert_eq!(parse_amount("10000000000000.00", 2).unwrap(), MAX_AMOUNT);
    }

    #[test]
    fn parse_amount_rejects() {
        for (s, exp) in [
            ("150000.50", 0),
            ("12.345", 2),
            ("0.001", 2),
            ("", 0),
            (".", 0),
            (".5", 1),
            ("5.", 1),
            ("-1", 0),
            ("+1", 0),
            ("-0.00", 0),
            (" 1", 0),
            ("1 ", 0),
            ("1,000", 0),
            ("1.0.0", 0),
            ("1e3", 0),
            ("0x10", 0),
            ("١٢", 0),
            ("NaN", 0),
            ("1000000000000000", 0),
            ("1234567890123456.00", 0),
            ("99999999999999.00", 2),
            ("1", 19),
            ("1", u32::MAX),
        ] {
            assert!(
                matches!(parse_amount(s, exp), Err(GatewayError::Malformed(_))),
                "{s:?} exp {exp}"
            );
        }
    }

    #[test]
    fn parse_amount_messages() {
        let why = |s: &str| match parse_amount(s, 0) {
            Err(GatewayError::Malformed(why)) => why,
            other => panic!("expected Malformed, got {other:?}"),
        };
        assert_eq!(
            why("150000.50"),
            "amount \"150000.50\" has a fraction finer than the currency's minor unit"
        );
        assert_eq!(why("-1"), "amount \"-1\" is not a decimal number");
        assert_eq!(
            why("1234567890123456"),
            "amount \"1234567890123456\" has too many digits"
        );
    }

    #[test]
    fn debug_redacts_the_key() {
        let shown = format!("{:?}", gateway());
        assert!(!shown.contains(KEY), "{shown}");
        assert!(shown.contains("redacted"), "{shown}");
    }

    #[test]
    fn registers_under_its_name() {
        let gateways = crate::billing::gateway::Gateways::default().with(gateway());
        assert_eq!(gateways.names(), vec!["midtrans"]);
        let g = gateways.get("midtrans").unwrap();
        let n = g.verify(body("settlement", None).to_string().as_bytes(), 0);
        assert_eq!(n.unwrap().status, PaymentStatus::Paid);
    }

    #[test]
    fn constant_time_eq_compares_exactly() {
        assert!(constant_time_eq(b"", b""));
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
        assert!(!constant_time_eq(b"ab", b"abc"));
    }
}
