//! Amounts as gateways write them, to and from the ledger's integer minor units.

use crate::payments::gateway::GatewayError;
use crate::tax::MAX_AMOUNT;
use serde_json::{Value, json};

/// Integer digits `parse_decimal` accepts: 10^15 minor units is the ledger's bound anyway.
const MAX_INTEGER_DIGITS: usize = 15;

/// Parses a gateway's decimal string into minor units with `exponent` decimal places.
///
/// Accepts `digits` or `digits.digits` only: no sign, spaces or exponent, at most 15 integer
/// digits. Fraction digits beyond `exponent` must be zeros, since dropping them would record a
/// different amount than was paid.
pub fn parse_decimal(s: &str, exponent: u32) -> Result<i64, GatewayError> {
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

/// Reads an amount a gateway sends as a JSON number or a decimal string (Xendit and Tripay
/// send numbers, Midtrans strings). A number is read through its decimal text, so `50000`
/// and `50000.0` are exact and `0.1` never becomes `0.09999`.
pub fn parse_json(v: &Value, field: &str, exponent: u32) -> Result<i64, GatewayError> {
    match v {
        Value::Number(n) => parse_decimal(&plain_decimal(&n.to_string()), exponent),
        Value::String(s) => parse_decimal(s, exponent),
        Value::Null => Err(GatewayError::Malformed(format!("missing field `{field}`"))),
        _ => Err(GatewayError::Malformed(format!(
            "field `{field}` is not an amount"
        ))),
    }
}

/// `1e3` as `1000`: serde_json writes large floats in exponent form.
fn plain_decimal(s: &str) -> String {
    let Some((mantissa, exp)) = s.split_once(['e', 'E']) else {
        return s.to_string();
    };
    let Ok(exp) = exp.parse::<i32>() else {
        return s.to_string();
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    if !(0..=30).contains(&exp) || int.starts_with('-') {
        // Negative and tiny amounts are refused by parse_decimal either way.
        return s.to_string();
    }
    let exp = exp as usize;
    let mut digits = format!("{int}{frac}");
    let point = int.len() + exp;
    while digits.len() < point {
        digits.push('0');
    }
    let (i, f) = digits.split_at(point);
    if f.is_empty() {
        i.to_string()
    } else {
        format!("{i}.{f}")
    }
}

/// The amount as gateways read it: a whole number for currencies without minor units
/// (IDR), else a decimal number.
pub fn to_json(amount: i64, exponent: u32) -> Value {
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
    fn parse_decimal_accepts() {
        assert_eq!(parse_decimal("150000.00", 0).unwrap(), 150_000);
        assert_eq!(parse_decimal("150000", 0).unwrap(), 150_000);
        assert_eq!(parse_decimal("150000.0", 0).unwrap(), 150_000);
        assert_eq!(parse_decimal("12.5", 2).unwrap(), 1_250);
        assert_eq!(parse_decimal("12.50", 2).unwrap(), 1_250);
        assert_eq!(parse_decimal("12.500", 2).unwrap(), 1_250);
        assert_eq!(parse_decimal("12", 2).unwrap(), 1_200);
        assert_eq!(parse_decimal("0.01", 2).unwrap(), 1);
        assert_eq!(parse_decimal("0", 0).unwrap(), 0);
        assert_eq!(parse_decimal("007", 0).unwrap(), 7);
        assert_eq!(parse_decimal("1.5", 3).unwrap(), 1_500);
        assert_eq!(
            parse_decimal("999999999999999", 0).unwrap(),
            999_999_999_999_999
        );
        assert_eq!(parse_decimal("1000000000000000", 0).ok(), None);
        assert_eq!(parse_decimal("10000000000000.00", 2).unwrap(), MAX_AMOUNT);
    }

    #[test]
    fn parse_decimal_rejects() {
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
                matches!(parse_decimal(s, exp), Err(GatewayError::Malformed(_))),
                "{s:?} exp {exp}"
            );
        }
    }

    #[test]
    fn parse_decimal_messages() {
        let why = |s: &str| match parse_decimal(s, 0) {
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
    fn json_amounts() {
        assert_eq!(parse_json(&json!(150000), "amount", 0).unwrap(), 150_000);
        assert_eq!(parse_json(&json!(150000.0), "amount", 0).unwrap(), 150_000);
        assert_eq!(
            parse_json(&json!("150000.00"), "amount", 0).unwrap(),
            150_000
        );
        assert_eq!(parse_json(&json!(12.5), "amount", 2).unwrap(), 1_250);
        assert_eq!(parse_json(&json!(1e6), "amount", 0).unwrap(), 1_000_000);
        assert!(parse_json(&json!(-1), "amount", 0).is_err());
        assert!(parse_json(&json!(0.5), "amount", 0).is_err());
        assert!(parse_json(&json!(true), "amount", 0).is_err());
        assert!(parse_json(&Value::Null, "amount", 0).is_err());
        assert!(parse_json(&json!(1e300), "amount", 0).is_err());
    }

    #[test]
    fn amounts_are_whole_for_rupiah() {
        assert_eq!(to_json(150_000, 0), json!(150000));
        assert_eq!(to_json(1_250, 2), json!(12.5));
    }
}
