//! Linking a customer's Telegram chat: the portal hands the customer a deep link
//! (`https://t.me/<bot>?start=<token>`); opening it sends `/start <token>` to the bot; the
//! channel's worker reads the bot's updates and stores that chat as the customer's. Tokens
//! are random, single-use, valid an hour, and stored only as hashes.

use super::channels::{self, Channel, ChannelConfig};
use super::transport::{Outgoing, json};
use crate::db::{Db, now_ms};
use crate::error::DomainResult;
use serde_json::Value;
use sha2::{Digest, Sha256};
use sqlx::Row;
use std::time::Duration;

/// How long a link stays valid.
pub const LINK_LIFETIME_MS: i64 = 60 * 60 * 1000;

fn hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// The active Telegram channel whose bot links chats, if any.
pub async fn linking_channel(db: &Db) -> DomainResult<Option<Channel>> {
    Ok(channels::all(db).await?.into_iter().find(|c| {
        c.active
            && matches!(&c.config, ChannelConfig::Telegram { bot_username: Some(u), .. } if !u.is_empty())
    }))
}

/// A deep link that links the customer's chat to the bot that can do it; `None` when no
/// Telegram channel has a bot username.
pub async fn start(db: &Db, customer_id: &str) -> DomainResult<Option<String>> {
    let channel = linking_channel(db).await?;
    let Some(channel) = channel else {
        return Ok(None);
    };
    let ChannelConfig::Telegram {
        bot_username: Some(bot),
        ..
    } = &channel.config
    else {
        return Ok(None);
    };
    // Telegram start parameters allow letters, digits, `_` and `-`, up to 64 characters.
    let token = {
        use base64::Engine;
        use rand::RngCore;
        let mut b = [0u8; 24];
        rand::rng().fill_bytes(&mut b);
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
    };
    let now = now_ms();
    let mut tx = db.begin().await?;
    sqlx::query("DELETE FROM telegram_links WHERE expires_at < $1")
        .bind(now)
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "INSERT INTO telegram_links (token_hash, customer_id, channel_id, expires_at) VALUES ($1, $2, $3, $4)",
    )
    .bind(hash(&token))
    .bind(customer_id)
    .bind(&channel.id)
    .bind(now + LINK_LIFETIME_MS)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(Some(format!(
        "https://t.me/{}?start={token}",
        bot.trim_start_matches('@')
    )))
}

/// Why reading the bot's updates failed (the text never contains the token).
#[derive(Debug, thiserror::Error)]
pub enum PollError {
    /// The database.
    #[error(transparent)]
    Domain(#[from] crate::error::DomainError),
    /// The Bot API.
    #[error("Telegram getUpdates: {0}")]
    Api(String),
}

/// Reads the bot's new updates and links every chat that sent a valid `/start <token>`;
/// returns how many chats were linked.
pub async fn poll(
    db: &Db,
    client: &reqwest::Client,
    channel: &Channel,
    timeout: Duration,
) -> Result<u64, PollError> {
    let ChannelConfig::Telegram {
        api_base,
        bot_token,
        bot_username: Some(_),
        ..
    } = &channel.config
    else {
        return Ok(0);
    };
    let offset = next_update(db, &channel.id).await?;
    let base = format!("{}/bot{}", api_base.trim_end_matches('/'), bot_token);
    let body = serde_json::json!({"offset": offset, "timeout": 0, "allowed_updates": ["message"]});
    let response = json(client.post(format!("{base}/getUpdates")), &body)
        .timeout(timeout)
        .send()
        .await
        .map_err(|e| PollError::Api(e.without_url().to_string()))?;
    let status = response.status();
    let text = response
        .text()
        .await
        .map_err(|e| PollError::Api(e.without_url().to_string()))?;
    let answer: Value = serde_json::from_str(&text)
        .map_err(|e| PollError::Api(format!("answer is not JSON: {e}")))?;
    if !status.is_success() || answer["ok"] != true {
        return Err(PollError::Api(format!(
            "answered {status}: {}",
            answer["description"].as_str().unwrap_or("")
        )));
    }
    let updates = answer["result"].as_array().cloned().unwrap_or_default();
    let mut linked = 0;
    let mut next = offset;
    for u in &updates {
        let Some(id) = u["update_id"].as_i64() else {
            continue;
        };
        next = next.max(id + 1);
        let text = u["message"]["text"].as_str().unwrap_or_default();
        let chat = &u["message"]["chat"]["id"];
        let (Some(token), Some(chat)) = (text.strip_prefix("/start "), chat.as_i64()) else {
            continue;
        };
        if link(db, &channel.id, token.trim(), chat).await? {
            linked += 1;
            let chat = chat.to_string();
            let reply = Outgoing {
                id: &chat,
                to: &chat,
                subject: "",
                text: "✅ Terhubung / linked.",
            };
            // The confirmation is a courtesy: a failure does not undo the link.
            let _ = super::transport::send(client, &channel.config, &reply, timeout).await;
        }
    }
    if next != offset {
        save_next_update(db, &channel.id, next).await?;
    }
    Ok(linked)
}

/// Where the bot's update stream continues for a channel (0 before the first read).
async fn next_update(db: &Db, channel_id: &str) -> DomainResult<i64> {
    Ok(
        sqlx::query("SELECT next_update_id FROM telegram_offsets WHERE channel_id = $1")
            .bind(channel_id)
            .fetch_optional(&db.pool)
            .await?
            .map(|r| r.try_get("next_update_id"))
            .transpose()?
            .unwrap_or(0),
    )
}

async fn save_next_update(db: &Db, channel_id: &str, next: i64) -> DomainResult<()> {
    let mut tx = db.begin().await?;
    sqlx::query(
        "INSERT INTO telegram_offsets (channel_id, next_update_id) VALUES ($1, $2) \
         ON CONFLICT (channel_id) DO UPDATE SET next_update_id = excluded.next_update_id",
    )
    .bind(channel_id)
    .bind(next)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Uses a start token: stores `chat` as its customer's Telegram chat. False for an unknown,
/// used or expired token.
async fn link(db: &Db, channel_id: &str, token: &str, chat: i64) -> DomainResult<bool> {
    let mut tx = db.begin().await?;
    let row = sqlx::query(
        "DELETE FROM telegram_links WHERE token_hash = $1 AND channel_id = $2 AND expires_at >= $3 RETURNING customer_id",
    )
    .bind(hash(token))
    .bind(channel_id)
    .bind(now_ms())
    .fetch_all(&mut *tx)
    .await?
    .into_iter()
    .next();
    let Some(row) = row else {
        return Ok(false);
    };
    let customer: String = row.try_get("customer_id")?;
    sqlx::query("UPDATE customers SET telegram_chat_id = $1, updated_at = $2 WHERE id = $3")
        .bind(chat.to_string())
        .bind(now_ms())
        .bind(&customer)
        .execute(&mut *tx)
        .await?;
    crate::audit::record(
        &mut tx,
        &crate::audit::Actor {
            id: None,
            name: "telegram".into(),
            addr: None,
        },
        "customer.telegram_linked",
        "customer",
        Some(&customer),
        None::<&()>,
        Some(&serde_json::json!({ "telegram_chat_id": chat.to_string() })),
    )
    .await?;
    tx.commit().await?;
    Ok(true)
}
