//! Notification settings: when reminders go out, how long a site may be offline before the
//! operators hear about it, and the public address payment links point to. One JSON document
//! in the `settings` table, like the billing settings.

use crate::audit::Actor;
use crate::db::Db;
use crate::error::{DomainError, DomainResult};
use serde::{Deserialize, Serialize};

const KEY: &str = "notifications";

/// Notification settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct NotificationSettings {
    /// Days before a due date a reminder goes out (each at most once per invoice).
    pub reminder_days: Vec<u32>,
    /// Seconds a site must stay offline before the operators are alerted.
    pub site_offline_delay_seconds: u64,
    /// The controller's public base URL (e.g. `https://billing.example.net`); payment links in
    /// messages point to the portal under it. Empty: messages name the invoice instead.
    pub public_url: String,
    /// Language for customers who chose none and for operator alerts.
    pub default_lang: crate::locale::Lang,
}

impl Default for NotificationSettings {
    fn default() -> Self {
        NotificationSettings {
            reminder_days: vec![7, 3, 1],
            site_offline_delay_seconds: 300,
            public_url: String::new(),
            default_lang: crate::locale::Lang::Id,
        }
    }
}

impl NotificationSettings {
    fn check(&mut self) -> DomainResult<()> {
        self.reminder_days.sort_unstable_by(|a, b| b.cmp(a));
        self.reminder_days.dedup();
        if self.reminder_days.len() > 10 || self.reminder_days.iter().any(|d| *d == 0 || *d > 60) {
            return Err(DomainError::invalid(
                "reminder_days",
                "at most 10 values, each between 1 and 60",
            ));
        }
        if self.site_offline_delay_seconds > 7 * 86_400 {
            return Err(DomainError::invalid(
                "site_offline_delay_seconds",
                "must be at most a week (604800)",
            ));
        }
        let url = self.public_url.trim().trim_end_matches('/').to_string();
        if !url.is_empty() {
            let parsed = reqwest::Url::parse(&url)
                .map_err(|_| DomainError::invalid("public_url", "is not a URL"))?;
            if !matches!(parsed.scheme(), "http" | "https") {
                return Err(DomainError::invalid("public_url", "must be http or https"));
            }
        }
        self.public_url = url;
        Ok(())
    }

    /// The link a customer pays an invoice at.
    pub fn payment_link(&self, invoice_id: &str) -> Option<String> {
        (!self.public_url.is_empty())
            .then(|| format!("{}/portal/invoices/{invoice_id}", self.public_url))
    }
}

/// The settings in effect.
pub async fn get(db: &Db) -> DomainResult<NotificationSettings> {
    crate::settings::load(db, KEY).await
}

/// The settings in effect, as the caller's transaction sees them.
pub(crate) async fn get_in(conn: &mut sqlx::AnyConnection) -> DomainResult<NotificationSettings> {
    crate::settings::load_in(conn, KEY).await
}

/// Saves new settings.
pub async fn save(
    db: &Db,
    actor: &Actor,
    mut new: NotificationSettings,
) -> DomainResult<NotificationSettings> {
    new.check()?;
    let before = get(db).await?;
    let mut tx = db.begin().await?;
    crate::settings::store(&mut tx, actor, KEY, &before, &new).await?;
    tx.commit().await?;
    Ok(new)
}
