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
    let body = json!({
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": msg.to,
        "type": "text",
        "text": { "preview_url": false, "body": msg.text },
    });
    execute(
        json(client.post(url), &body)
            .bearer_auth(access_token)
            .header("Idempotency-Key", msg.id)
            .timeout(timeout),
    )
    .await
}
