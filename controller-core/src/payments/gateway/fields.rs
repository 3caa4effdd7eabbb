//! Reading gateways' JSON: a notification body, its required strings, and the one rule for
//! what a gateway API's own answer may get wrong (it is the gateway's fault, so the
//! notification is retried rather than refused).

use super::GatewayError;
use serde_json::{Map, Value};

/// A body that must be a JSON object.
pub(crate) fn object(body: &[u8]) -> Result<Map<String, Value>, GatewayError> {
    match serde_json::from_slice(body) {
        Ok(Value::Object(fields)) => Ok(fields),
        Ok(_) => Err(GatewayError::Malformed("not a JSON object".into())),
        Err(e) => Err(GatewayError::Malformed(format!("not JSON: {e}"))),
    }
}

/// A required, non-empty string field.
pub(crate) fn string<'a>(
    fields: &'a Map<String, Value>,
    name: &str,
) -> Result<&'a str, GatewayError> {
    match fields.get(name) {
        Some(Value::String(s)) if !s.is_empty() => Ok(s),
        None | Some(Value::Null) => Err(GatewayError::Malformed(format!("missing field `{name}`"))),
        Some(_) => Err(GatewayError::Malformed(format!(
            "field `{name}` is not a non-empty string"
        ))),
    }
}

/// Turns what is wrong with an API's answer (`answer` names it, e.g. `invoice API`) into
/// [`GatewayError::Unavailable`]: the notification was fine, the gateway's reply was not.
pub(crate) fn from_api(answer: &'static str) -> impl Fn(GatewayError) -> GatewayError {
    move |e| match e {
        GatewayError::Malformed(why) => {
            GatewayError::Unavailable(format!("unexpected {answer} answer: {why}"))
        }
        other => other,
    }
}
