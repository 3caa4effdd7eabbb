//! The Telegram Bot API: `sendMessage` to a chat.

use super::{Outgoing, SendError, execute, json};
use crate::notify::channels::ChannelConfig;
use serde_json::json;
use std::time::Duration;

/// Sends a text message to a chat.
pub async fn send(
    client: &reqwest::Client,
    config: &ChannelConfig,
    msg: &Outgoing<'_>,
    timeout: Duration,
) -> Result<Option<u16>, SendError> {
    let ChannelConfig::Telegram {
        api_base,
        bot_token,
        ..
    } = config
    else {
        unreachable!("dispatched by kind")
    };
    let url = format!(
        "{}/bot{}/sendMessage",
        api_base.trim_end_matches('/'),
        bot_token
    );
    let body = json!({
        "chat_id": msg.to,
        "text": msg.text,
        "disable_web_page_preview": true,
    });
    execute(json(client.post(url), &body).timeout(timeout)).await
}
