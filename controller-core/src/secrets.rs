//! Secrets never leave the controller through its records of what happened: the audit log's
//! before/after snapshots and the event payloads (which webhooks deliver) pass through
//! [`redact`] before they are stored, and the database's data step `scrub_audit_secrets`
//! applies the same rule to rows written before it existed. Pure: no storage here.

use serde_json::Value;

/// What a redacted value reads as; the key stays so a reader sees that it was set.
pub const REDACTED: &str = "[redacted]";

/// Whether a JSON key names a secret (a password, a token, a key, a hash of one of those).
///
/// Matching is by name because snapshots are whole records of many kinds: a new struct with a
/// `password` or `*_token` field is covered without anyone remembering to list it.
pub fn is_secret_key(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    const EXACT: [&str; 10] = [
        "password",
        "passwd",
        "secret",
        "token",
        "pin",
        "otp",
        "passphrase",
        "credentials",
        // An authenticator's enrolment URI holds its secret; a typed code is a credential.
        "otpauth_uri",
        "totp_code",
    ];
    const SUFFIXES: [&str; 7] = [
        "_password",
        "_secret",
        "_token",
        "_key",
        "_hash",
        "_passphrase",
        "_pem",
    ];
    // Names that end like a secret but hold an identifier or a display prefix.
    const NOT_SECRET: [&str; 5] = [
        "idempotency_key",
        "dedupe_key",
        "item_key",
        "token_prefix",
        "sort_key",
    ];
    if NOT_SECRET.contains(&k.as_str()) {
        return false;
    }
    EXACT.contains(&k.as_str()) || SUFFIXES.iter().any(|s| k.ends_with(s))
}

/// Replaces every non-null value under a secret key, at any depth; returns whether it changed.
pub fn redact_in_place(value: &mut Value) -> bool {
    match value {
        Value::Object(map) => {
            let mut changed = false;
            for (k, v) in map.iter_mut() {
                if is_secret_key(k) {
                    if !v.is_null() && *v != Value::String(REDACTED.into()) {
                        *v = Value::String(REDACTED.into());
                        changed = true;
                    }
                } else {
                    changed |= redact_in_place(v);
                }
            }
            changed
        }
        Value::Array(items) => items
            .iter_mut()
            .fold(false, |acc, v| redact_in_place(v) | acc),
        _ => false,
    }
}

/// A serializable record as JSON with its secrets redacted.
pub fn redact<T: serde::Serialize + ?Sized>(record: &T) -> Value {
    let mut v = serde_json::to_value(record).unwrap_or(Value::Null);
    redact_in_place(&mut v);
    v
}

/// A stored JSON text with its secrets redacted, or `None` when it needs no change (or is not
/// JSON, which this module never wrote and leaves alone).
pub fn redact_text(text: &str) -> Option<String> {
    let mut v: Value = serde_json::from_str(text).ok()?;
    redact_in_place(&mut v).then(|| v.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    #[test]
    fn secrets_are_redacted_at_any_depth_and_the_rest_is_kept() {
        let mut v = json!({
            "id": "sub_1", "username": "budi", "password": "hunter2",
            "config": {"bot_token": "123:abc", "chat_id": 42, "smtp": {"password": "p"}},
            "keys": [{"api_key": "k1", "name": "x"}],
            "token_prefix": "mbt_ab", "idempotency_key": "k-1", "password_hash": null,
        });
        assert!(redact_in_place(&mut v));
        assert_eq!(v["password"], REDACTED);
        assert_eq!(v["config"]["bot_token"], REDACTED);
        assert_eq!(v["config"]["smtp"]["password"], REDACTED);
        assert_eq!(v["keys"][0]["api_key"], REDACTED);
        assert_eq!(v["keys"][0]["name"], "x");
        assert_eq!(v["config"]["chat_id"], 42);
        assert_eq!(v["username"], "budi");
        assert_eq!(v["token_prefix"], "mbt_ab");
        assert_eq!(v["idempotency_key"], "k-1");
        assert!(
            v["password_hash"].is_null(),
            "an unset secret stays visibly unset"
        );
        assert!(!redact_in_place(&mut v), "a second pass changes nothing");
    }

    #[test]
    fn authenticator_secrets_and_codes_are_secret_keys() {
        for k in ["secret", "totp_secret", "otpauth_uri", "totp_code"] {
            assert!(is_secret_key(k), "{k}");
        }
        for k in ["totp_enabled", "totp_required_roles", "code"] {
            assert!(!is_secret_key(k), "{k}");
        }
    }

    #[test]
    fn text_that_is_not_json_is_left_alone() {
        assert_eq!(redact_text("not json"), None);
        assert_eq!(redact_text(r#"{"name":"a"}"#), None);
        assert_eq!(
            redact_text(r#"{"secret":"s"}"#).as_deref(),
            Some(r#"{"secret":"[redacted]"}"#)
        );
    }

    fn arb_json() -> impl Strategy<Value = Value> {
        let key = prop_oneof![
            Just("password".to_string()),
            Just("secret".to_string()),
            Just("server_key".to_string()),
            Just("name".to_string()),
            Just("amount".to_string()),
            "[a-z_]{1,12}",
        ];
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<i64>().prop_map(Value::from),
            "[ -~]{0,12}".prop_map(Value::from),
        ];
        leaf.prop_recursive(4, 48, 6, move |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::btree_map(key.clone(), inner, 0..5)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    /// Every value found under a secret key, at any depth.
    fn secret_values(v: &Value, out: &mut Vec<Value>) {
        match v {
            Value::Object(m) => {
                for (k, v) in m {
                    if is_secret_key(k) {
                        out.push(v.clone());
                    } else {
                        secret_values(v, out);
                    }
                }
            }
            Value::Array(a) => a.iter().for_each(|v| secret_values(v, out)),
            _ => {}
        }
    }

    proptest! {
        #[test]
        fn no_secret_value_survives_and_redaction_is_idempotent(v in arb_json()) {
            let mut once = v.clone();
            redact_in_place(&mut once);
            let mut found = Vec::new();
            secret_values(&once, &mut found);
            prop_assert!(found.iter().all(|s| s.is_null() || *s == Value::String(REDACTED.into())));
            let mut twice = once.clone();
            prop_assert!(!redact_in_place(&mut twice));
            prop_assert_eq!(twice, once);
        }
    }
}
