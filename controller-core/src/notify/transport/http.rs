//! A generic HTTP gateway, the shape most local WhatsApp and SMS gateways in Indonesia take:
//! a URL, a method, headers (an API key) and a body template filled with the recipient and
//! the text, escaped for the body's encoding.

use super::{Outgoing, SendError, execute_expecting};
use crate::notify::channels::{BodyEncoding, ChannelConfig};
use crate::notify::templates::render_with;
use std::collections::BTreeMap;
use std::time::Duration;

/// Renders the body for a message.
pub fn body(template: &str, encoding: BodyEncoding, msg: &Outgoing<'_>) -> String {
    let mut vars = BTreeMap::new();
    vars.insert("to", msg.to.to_string());
    vars.insert("text", msg.text.to_string());
    vars.insert("subject", msg.subject.to_string());
    vars.insert("id", msg.id.to_string());
    match encoding {
        BodyEncoding::Json => render_with(template, &vars, |v| {
            let quoted = serde_json::Value::String(v.to_string()).to_string();
            quoted[1..quoted.len() - 1].to_string()
        }),
        BodyEncoding::Form => render_with(template, &vars, |v| {
            form_urlencoded::byte_serialize(v.as_bytes()).collect()
        }),
    }
}

/// Sends a message.
pub async fn send(
    client: &reqwest::Client,
    config: &ChannelConfig,
    msg: &Outgoing<'_>,
    timeout: Duration,
) -> Result<Option<u16>, SendError> {
    let ChannelConfig::Http {
        url,
        method,
        headers,
        body_template,
        encoding,
        success_contains,
        ..
    } = config
    else {
        unreachable!("dispatched by kind")
    };
    let method = if method == "PUT" {
        reqwest::Method::PUT
    } else {
        reqwest::Method::POST
    };
    let content_type = match encoding {
        BodyEncoding::Json => "application/json",
        BodyEncoding::Form => "application/x-www-form-urlencoded",
    };
    let mut request = client
        .request(method, url)
        .header(reqwest::header::CONTENT_TYPE, content_type)
        .header("Idempotency-Key", msg.id)
        .body(body(body_template, *encoding, msg))
        .timeout(timeout);
    for (name, value) in headers {
        request = request.header(name.as_str(), value.as_str());
    }
    execute_expecting(request, success_contains.as_deref()).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg() -> Outgoing<'static> {
        Outgoing {
            id: "m1",
            to: "628123",
            subject: "S",
            text: "Tagihan \"A&B\" = Rp 1.000\nbayar",
        }
    }

    #[test]
    fn json_bodies_stay_valid_json_whatever_the_text() {
        let b = body(
            r#"{"phone":"{{to}}","message":"{{text}}","ref":"{{id}}"}"#,
            BodyEncoding::Json,
            &msg(),
        );
        let v: serde_json::Value = serde_json::from_str(&b).unwrap();
        assert_eq!(v["message"], "Tagihan \"A&B\" = Rp 1.000\nbayar");
        assert_eq!(v["phone"], "628123");
    }

    #[test]
    fn form_bodies_percent_encode_values() {
        let b = body("target={{to}}&message={{text}}", BodyEncoding::Form, &msg());
        let pairs: Vec<(String, String)> =
            form_urlencoded::parse(b.as_bytes()).into_owned().collect();
        assert_eq!(pairs[1].1, "Tagihan \"A&B\" = Rp 1.000\nbayar");
        assert_eq!(pairs.len(), 2);
    }
}
