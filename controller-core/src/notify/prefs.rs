//! A customer's notification choices and addresses: language, which channels may reach
//! them, a linked Telegram chat, and a full opt-out that silences every customer message.

use super::channels::{AddressKind, Channel};
use crate::audit::{self, Actor};
use crate::db::Db;
use crate::error::{DomainError, DomainResult};
use crate::locale::Lang;
use serde::{Deserialize, Serialize};
use sqlx::Row;

/// A customer's preferences as shown and edited.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Preferences {
    /// Message language; none means the operator's default.
    #[serde(default)]
    pub lang: Option<Lang>,
    /// Channel ids that may reach the customer; none means every channel they have an
    /// address for.
    #[serde(default)]
    pub channels: Option<Vec<String>>,
    /// No messages at all.
    #[serde(default)]
    pub opt_out: bool,
    /// The Telegram chat the customer linked with the bot.
    #[serde(default)]
    pub telegram_chat_id: Option<String>,
}

/// Who a customer message goes to: name and addresses with the preferences.
#[derive(Debug, Clone)]
pub struct Recipient {
    /// Customer id.
    pub id: String,
    /// Customer number.
    pub number: String,
    /// Name.
    pub name: String,
    /// Phone, `+62...`.
    pub phone: Option<String>,
    /// E-mail.
    pub email: Option<String>,
    /// Preferences.
    pub prefs: Preferences,
}

impl Recipient {
    /// The address a channel reaches this customer at, if it may reach them at all.
    pub fn address_for(&self, channel: &Channel) -> Option<String> {
        if self.prefs.opt_out {
            return None;
        }
        if let Some(allowed) = &self.prefs.channels
            && !allowed.iter().any(|c| c == &channel.id)
        {
            return None;
        }
        let address = match channel.config.address_kind() {
            // Gateways want the international number without the plus.
            AddressKind::Phone => self
                .phone
                .as_deref()
                .map(|p| p.trim_start_matches('+').to_string()),
            AddressKind::Email => self.email.clone(),
            AddressKind::Telegram => self.prefs.telegram_chat_id.clone(),
        };
        address.filter(|a| !a.trim().is_empty())
    }
}

/// A customer's name, addresses and preferences.
pub async fn recipient(
    conn: &mut sqlx::AnyConnection,
    customer_id: &str,
) -> DomainResult<Recipient> {
    let r = sqlx::query(
        "SELECT id, number, name, phone, email, notify_lang, notify_channels, notify_opt_out, telegram_chat_id FROM customers WHERE id = $1",
    )
    .bind(customer_id)
    .fetch_optional(&mut *conn)
    .await?
    .ok_or_else(|| DomainError::not_found("customer", customer_id))?;
    let lang: Option<String> = r.try_get("notify_lang")?;
    let channels: Option<String> = r.try_get("notify_channels")?;
    Ok(Recipient {
        id: r.try_get("id")?,
        number: r.try_get("number")?,
        name: r.try_get("name")?,
        phone: r.try_get("phone")?,
        email: r.try_get("email")?,
        prefs: Preferences {
            lang: lang.as_deref().and_then(Lang::parse),
            // A stored list that does not parse allows no channel rather than every one.
            channels: channels.map(|c| serde_json::from_str(&c).unwrap_or_default()),
            opt_out: r.try_get::<i64, _>("notify_opt_out")? != 0,
            telegram_chat_id: r.try_get("telegram_chat_id")?,
        },
    })
}

/// A customer's preferences.
pub async fn get(db: &Db, customer_id: &str) -> DomainResult<Preferences> {
    let mut conn = db.pool.acquire().await?;
    Ok(recipient(&mut conn, customer_id).await?.prefs)
}

/// Replaces a customer's preferences.
pub async fn save(
    db: &Db,
    actor: &Actor,
    customer_id: &str,
    new: Preferences,
) -> DomainResult<Preferences> {
    if let Some(chat) = &new.telegram_chat_id
        && !super::channels::address_ok(AddressKind::Telegram, chat)
    {
        return Err(DomainError::invalid(
            "telegram_chat_id",
            "must be a numeric chat id or an @name",
        ));
    }
    let mut tx = db.begin().await?;
    if let Some(ids) = &new.channels {
        for id in ids {
            let known = sqlx::query("SELECT id FROM notification_channels WHERE id = $1")
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?;
            if known.is_none() {
                return Err(DomainError::invalid(
                    "channels",
                    format!("no channel {id:?}"),
                ));
            }
        }
    }
    let before = recipient(&mut tx, customer_id).await?.prefs;
    sqlx::query(
        "UPDATE customers SET notify_lang = $1, notify_channels = $2, notify_opt_out = $3, telegram_chat_id = $4, updated_at = $5 WHERE id = $6",
    )
    .bind(new.lang.map(Lang::code))
    .bind(new.channels.as_ref().map(|c| serde_json::to_string(c).expect("ids serialize")))
    .bind(new.opt_out as i64)
    .bind(new.telegram_chat_id.as_deref())
    .bind(crate::db::now_ms())
    .bind(customer_id)
    .execute(&mut *tx)
    .await?;
    audit::record(
        &mut tx,
        actor,
        "customer.notification_preferences",
        "customer",
        Some(customer_id),
        Some(&before),
        Some(&new),
    )
    .await?;
    tx.commit().await?;
    Ok(new)
}
