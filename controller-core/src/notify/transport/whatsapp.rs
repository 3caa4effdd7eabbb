//! Meta's WhatsApp Cloud API: a text message to one number.

use super::{Outgoing, SendError, execute, json};
use crate::notify::channels::ChannelConfig;
use serde_json::json;
use std::time::Duration;

/// Sends a text message.
pub async fn send(
    client: &reqwest::Client,
    config: &ChannelConfig,
    msg: &Outgoing<'_>,
    timeout: Duration,
) -> Result<Option<u16>, SendError> {
    let ChannelConfig::WhatsappCloud {
        api_base,
        phone_number_id,
        access_token,
        template,
        ..
    } = config
    else {
        unreachable!("dispatched by kind")
    };
    let url = format!(
        "{}/{}/messages",
        api_base.trim_end_matches('/'),
        phone_number_id
    );
    // Outside the 24-hour window after a customer's own message, WhatsApp delivers only
    // approved templates: with one configured, the text goes in as its single body parameter.
    let body = match template {
        Some(t) => json!({
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "to": msg.to,
            "type": "template",
            "template": {
                "name": t.name,
                "language": { "code": t.language },
                "components": [{
                    "type": "body",
                    "parameters": [{ "type": "text", "text": msg.text }],
                }],
            },
        }),
        None => json!({
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "to": msg.to,
            "type": "text",
            "text": { "preview_url": false, "body": msg.text },
        }),
    };
    execute(
        json(client.post(url), &body)
            .bearer_auth(access_token)
            .header("Idempotency-Key", msg.id)
            .timeout(timeout),
    )
    .await
}
