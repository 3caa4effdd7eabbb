//! Notification channels: a configured gateway (WhatsApp Cloud API, a generic HTTP gateway
//! for local WhatsApp/SMS providers, a Telegram bot, an SMTP server). Secrets in a channel's
//! configuration are stored for sending but never returned by the API or logged.

use crate::audit::{self, Actor};
use crate::db::{Db, now_ms};
use crate::error::{DomainError, DomainResult};
use serde::{Deserialize, Serialize};
use sqlx::Row;
use std::collections::BTreeMap;

/// What a secret field shows in the API; sending it back keeps the stored value.
pub const REDACTED: &str = "<redacted>";

/// How a generic HTTP gateway's body template escapes values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum BodyEncoding {
    /// Values are escaped as JSON string contents (write `"{{text}}"` in the template).
    Json,
    /// Values are percent-encoded (`to={{to}}&msg={{text}}`).
    Form,
}

/// Which of a customer's addresses a channel sends to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AddressKind {
    /// The phone number in international form without `+` (628...).
    Phone,
    /// The e-mail address.
    Email,
    /// The Telegram chat the customer linked.
    Telegram,
}

/// SMTP transport security.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SmtpSecurity {
    /// Plain connection upgraded with STARTTLS, which must succeed (port 587).
    Starttls,
    /// TLS from the first byte (port 465).
    Tls,
    /// No encryption: only for a relay on the same host or a test sink.
    None,
}

/// An approved WhatsApp message template with one body parameter, which carries the text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WhatsappTemplate {
    /// Template name as approved by Meta.
    pub name: String,
    /// Template language code, e.g. `id`.
    pub language: String,
}

/// A channel's gateway settings, tagged by `kind`. `Debug` shows it redacted.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum ChannelConfig {
    /// Meta's WhatsApp Cloud API (`POST {api_base}/{phone_number_id}/messages`).
    WhatsappCloud {
        /// Graph API base, e.g. `https://graph.facebook.com/v21.0`.
        #[serde(default = "default_graph_base")]
        api_base: String,
        /// The sending number's id.
        phone_number_id: String,
        /// Bearer access token (secret).
        access_token: String,
        /// Send as this approved template (needed outside the 24-hour customer window).
        #[serde(default)]
        template: Option<WhatsappTemplate>,
        /// Operators' number for alerts, if any.
        #[serde(default)]
        operator_to: Option<String>,
    },
    /// Any HTTP gateway: local WhatsApp gateways, SMS providers. The body is rendered from
    /// `body_template` with `{{to}}`, `{{text}}`, `{{subject}}` and `{{id}}` (a stable message id
    /// the gateway may use to drop duplicates).
    Http {
        /// Target URL.
        url: String,
        /// `POST` or `PUT`.
        #[serde(default = "default_method")]
        method: String,
        /// Extra headers (values are secrets: API keys usually live here).
        #[serde(default)]
        headers: BTreeMap<String, String>,
        /// Body template.
        body_template: String,
        /// How values are escaped into the body.
        encoding: BodyEncoding,
        /// Which customer address it sends to.
        #[serde(default = "default_address")]
        address: AddressKind,
        /// A 2xx answer counts as accepted only if its body contains this (for gateways that
        /// answer 200 with an error inside).
        #[serde(default)]
        success_contains: Option<String>,
        /// Operators' address for alerts, if any.
        #[serde(default)]
        operator_to: Option<String>,
    },
    /// A Telegram bot (`POST {api_base}/bot{token}/sendMessage`).
    Telegram {
        /// Bot API base, e.g. `https://api.telegram.org`.
        #[serde(default = "default_telegram_base")]
        api_base: String,
        /// The bot token (secret).
        bot_token: String,
        /// The operators' group chat id for alerts, if any.
        #[serde(default)]
        operator_chat_id: Option<String>,
        /// The bot's @username: set it to let customers link their chat from the portal (the
        /// bot's updates are then read with getUpdates, so it must not have a webhook).
        #[serde(default)]
        bot_username: Option<String>,
    },
    /// E-mail through an SMTP server.
    Smtp {
        /// Server host name.
        host: String,
        /// Server port (587 for STARTTLS, 465 for TLS).
        port: u16,
        /// Transport security.
        security: SmtpSecurity,
        /// Login name, if the server wants one.
        #[serde(default)]
        username: Option<String>,
        /// Login password (secret).
        #[serde(default)]
        password: Option<String>,
        /// Sender, e.g. `Billing <billing@example.net>`.
        from: String,
        /// Extra trusted CA certificate (PEM) for a server with a private CA.
        #[serde(default)]
        ca_pem: Option<String>,
        /// Operators' address for alerts, if any.
        #[serde(default)]
        operator_to: Option<String>,
    },
}

fn default_graph_base() -> String {
    "https://graph.facebook.com/v21.0".into()
}
fn default_telegram_base() -> String {
    "https://api.telegram.org".into()
}
fn default_method() -> String {
    "POST".into()
}
fn default_address() -> AddressKind {
    AddressKind::Phone
}

impl std::fmt::Debug for ChannelConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let shown = serde_json::to_string(&self.redacted()).map_err(|_| std::fmt::Error)?;
        f.write_str(&shown)
    }
}

/// Placeholders a generic gateway's body template may use.
const BODY_PLACEHOLDERS: [&str; 4] = ["to", "text", "subject", "id"];

fn is_loopback(host: &str) -> bool {
    host == "localhost"
        || host
            .trim_matches(['[', ']'])
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Whether `to` looks like an address of this kind: an international phone number, an
/// e-mail address, or a Telegram chat (a numeric id, or an @channel name).
pub(crate) fn address_ok(kind: AddressKind, to: &str) -> bool {
    match kind {
        AddressKind::Phone => {
            let digits = to.trim_start_matches('+');
            (8..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit())
        }
        AddressKind::Email => to.parse::<lettre::message::Mailbox>().is_ok(),
        AddressKind::Telegram => {
            to.parse::<i64>().is_ok()
                || to.strip_prefix('@').is_some_and(|n| {
                    (5..=32).contains(&n.len())
                        && n.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
                })
        }
    }
}

fn check_url(field: &'static str, url: &str) -> DomainResult<()> {
    let parsed =
        reqwest::Url::parse(url).map_err(|_| DomainError::invalid(field, "is not a URL"))?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
        return Err(DomainError::invalid(field, "must be an http or https URL"));
    }
    Ok(())
}

fn nonempty(field: &'static str, v: &str) -> DomainResult<()> {
    if v.trim().is_empty() {
        return Err(DomainError::invalid(field, "must not be empty"));
    }
    Ok(())
}

impl ChannelConfig {
    /// The kind's name.
    pub fn kind(&self) -> &'static str {
        match self {
            ChannelConfig::WhatsappCloud { .. } => "whatsapp_cloud",
            ChannelConfig::Http { .. } => "http",
            ChannelConfig::Telegram { .. } => "telegram",
            ChannelConfig::Smtp { .. } => "smtp",
        }
    }

    /// Which customer address this channel uses.
    pub fn address_kind(&self) -> AddressKind {
        match self {
            ChannelConfig::WhatsappCloud { .. } => AddressKind::Phone,
            ChannelConfig::Http { address, .. } => *address,
            ChannelConfig::Telegram { .. } => AddressKind::Telegram,
            ChannelConfig::Smtp { .. } => AddressKind::Email,
        }
    }

    /// Where operator alerts go on this channel, if anywhere.
    pub fn operator_recipient(&self) -> Option<&str> {
        match self {
            ChannelConfig::WhatsappCloud { operator_to, .. }
            | ChannelConfig::Http { operator_to, .. }
            | ChannelConfig::Smtp { operator_to, .. } => operator_to.as_deref(),
            ChannelConfig::Telegram {
                operator_chat_id, ..
            } => operator_chat_id.as_deref(),
        }
        .filter(|s| !s.trim().is_empty())
    }

    fn check(&self) -> DomainResult<()> {
        self.check_gateway()?;
        if let Some(to) = self.operator_recipient()
            && !address_ok(self.address_kind(), to)
        {
            return Err(DomainError::invalid(
                "config.operator_to",
                format!("{to:?} is not a valid address for this channel"),
            ));
        }
        Ok(())
    }

    fn check_gateway(&self) -> DomainResult<()> {
        match self {
            ChannelConfig::WhatsappCloud {
                api_base,
                phone_number_id,
                access_token,
                ..
            } => {
                check_url("config.api_base", api_base)?;
                nonempty("config.phone_number_id", phone_number_id)?;
                nonempty("config.access_token", access_token)?;
            }
            ChannelConfig::Http {
                url,
                method,
                body_template,
                headers,
                ..
            } => {
                check_url("config.url", url)?;
                if !matches!(method.as_str(), "POST" | "PUT") {
                    return Err(DomainError::invalid("config.method", "must be POST or PUT"));
                }
                nonempty("config.body_template", body_template)?;
                let used = super::templates::names(body_template)
                    .map_err(|m| DomainError::invalid("config.body_template", m))?;
                if let Some(bad) = used.iter().find(|n| !BODY_PLACEHOLDERS.contains(n)) {
                    return Err(DomainError::invalid(
                        "config.body_template",
                        format!("unknown placeholder {{{{{bad}}}}}; use to, text, subject, id"),
                    ));
                }
                for needed in ["to", "text"] {
                    if !used.contains(&needed) {
                        return Err(DomainError::invalid(
                            "config.body_template",
                            format!("must contain {{{{{needed}}}}}"),
                        ));
                    }
                }
                for (name, value) in headers {
                    if reqwest::header::HeaderName::from_bytes(name.as_bytes()).is_err()
                        || reqwest::header::HeaderValue::from_str(value).is_err()
                    {
                        return Err(DomainError::invalid(
                            "config.headers",
                            format!("header {name:?} is not a valid HTTP header"),
                        ));
                    }
                }
            }
            ChannelConfig::Telegram {
                api_base,
                bot_token,
                ..
            } => {
                check_url("config.api_base", api_base)?;
                nonempty("config.bot_token", bot_token)?;
            }
            ChannelConfig::Smtp {
                host,
                from,
                ca_pem,
                security,
                password,
                ..
            } => {
                nonempty("config.host", host)?;
                if *security == SmtpSecurity::None && password.is_some() && !is_loopback(host) {
                    return Err(DomainError::invalid(
                        "config.security",
                        "a password is sent only over TLS (starttls or tls), or to a relay on this host",
                    ));
                }
                from.parse::<lettre::message::Mailbox>()
                    .map_err(|_| DomainError::invalid("config.from", "is not an e-mail address"))?;
                if let Some(pem) = ca_pem {
                    lettre::transport::smtp::client::Certificate::from_pem(pem.as_bytes())
                        .map_err(|_| {
                            DomainError::invalid("config.ca_pem", "is not a PEM certificate")
                        })?;
                }
            }
        }
        Ok(())
    }

    /// Every secret field, for redaction and merging.
    fn secrets_mut(&mut self) -> Vec<&mut String> {
        match self {
            ChannelConfig::WhatsappCloud { access_token, .. } => vec![access_token],
            ChannelConfig::Http { headers, .. } => headers.values_mut().collect(),
            ChannelConfig::Telegram { bot_token, .. } => vec![bot_token],
            ChannelConfig::Smtp { password, .. } => password.iter_mut().collect(),
        }
    }

    /// The configuration with its secrets replaced by [`REDACTED`]; a generic gateway's URL
    /// loses its query string, where such gateways often take their key.
    pub fn redacted(&self) -> ChannelConfig {
        let mut c = self.clone();
        for s in c.secrets_mut() {
            *s = REDACTED.into();
        }
        if let ChannelConfig::Http { url, .. } = &mut c
            && let Some((base, _)) = url.split_once('?')
        {
            *url = format!("{base}?{REDACTED}");
        }
        c
    }

    /// Where the secrets are sent: kept secrets follow only an unchanged endpoint, so an edit
    /// cannot point a stored token at another host.
    fn endpoint(&self) -> String {
        match self {
            ChannelConfig::WhatsappCloud {
                api_base,
                phone_number_id,
                ..
            } => format!("{api_base}/{phone_number_id}"),
            ChannelConfig::Http { url, .. } => {
                url.split('?').next().unwrap_or_default().to_string()
            }
            ChannelConfig::Telegram { api_base, .. } => api_base.clone(),
            ChannelConfig::Smtp { host, port, .. } => format!("{host}:{port}"),
        }
    }

    /// Puts back the stored secrets where an update sent [`REDACTED`] (an edited channel
    /// keeps its token unless a new one is given; headers match by name). Refuses a
    /// [`REDACTED`] that has nothing to stand for: a new secret, a changed endpoint or kind.
    fn keep_secrets_from(&mut self, old: &ChannelConfig) -> DomainResult<()> {
        if self.kind() != old.kind() {
            return Err(DomainError::invalid(
                "config.kind",
                "a channel's kind cannot change (its queued messages are addressed for it); add a new channel",
            ));
        }
        if self.endpoint() == old.endpoint() {
            match (&mut *self, old) {
                (
                    ChannelConfig::Http { headers, url, .. },
                    ChannelConfig::Http {
                        headers: old_headers,
                        url: old_url,
                        ..
                    },
                ) => {
                    for (name, value) in headers.iter_mut() {
                        if value == REDACTED
                            && let Some(v) = old_headers.get(name)
                        {
                            *value = v.clone();
                        }
                    }
                    if url.ends_with(&format!("?{REDACTED}")) {
                        *url = old_url.clone();
                    }
                }
                (new, old) => {
                    let mut old = old.clone();
                    for (n, o) in new.secrets_mut().into_iter().zip(old.secrets_mut()) {
                        if n == REDACTED {
                            *n = std::mem::take(o);
                        }
                    }
                }
            }
        }
        let left = match &mut *self {
            ChannelConfig::Http { url, .. } if url.contains(REDACTED) => true,
            c => c.secrets_mut().iter().any(|s| s.as_str() == REDACTED),
        };
        if left {
            return Err(DomainError::invalid(
                "config",
                "a secret is <redacted> but no stored value can stand for it (new secret or changed address): enter it",
            ));
        }
        Ok(())
    }
}

/// A channel as stored (with secrets; only the sender sees this).
#[derive(Debug, Clone)]
pub struct Channel {
    /// Id.
    pub id: String,
    /// Operator's name for it.
    pub name: String,
    /// Gateway settings.
    pub config: ChannelConfig,
    /// Messages per minute.
    pub rate_per_minute: u32,
    /// Attempts before a message is dead.
    pub max_attempts: u32,
    /// Whether it sends.
    pub active: bool,
}

/// A channel as the API shows it: secrets redacted.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ChannelView {
    /// Id.
    pub id: String,
    /// Operator's name for it.
    pub name: String,
    /// Gateway settings, secrets shown as `<redacted>`.
    pub config: ChannelConfig,
    /// Messages per minute the worker sends at most.
    pub rate_per_minute: u32,
    /// Attempts before a message goes to the dead letter.
    pub max_attempts: u32,
    /// Whether it sends.
    pub active: bool,
}

impl Channel {
    /// The API's view.
    pub fn view(&self) -> ChannelView {
        ChannelView {
            id: self.id.clone(),
            name: self.name.clone(),
            config: self.config.redacted(),
            rate_per_minute: self.rate_per_minute,
            max_attempts: self.max_attempts,
            active: self.active,
        }
    }
}

/// What an operator sends to create or replace a channel.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChannelInput {
    /// Name, unique.
    pub name: String,
    /// Gateway settings; on update, `<redacted>` keeps a stored secret.
    pub config: ChannelConfig,
    /// Messages per minute (default 60).
    #[serde(default)]
    pub rate_per_minute: Option<u32>,
    /// Attempts before the dead letter (default 8).
    #[serde(default)]
    pub max_attempts: Option<u32>,
    /// Whether it sends (default true).
    #[serde(default)]
    pub active: Option<bool>,
}

const COLUMNS: &str = "id, name, config, rate_per_minute, max_attempts, active";

fn from_row(r: &sqlx::any::AnyRow) -> DomainResult<Channel> {
    let config: String = r.try_get("config")?;
    let rate: i64 = r.try_get("rate_per_minute")?;
    let attempts: i64 = r.try_get("max_attempts")?;
    Ok(Channel {
        id: r.try_get("id")?,
        name: r.try_get("name")?,
        config: serde_json::from_str(&config).map_err(|e| {
            DomainError::Db(crate::db::DbError::Sqlx(sqlx::Error::Decode(
                format!("stored channel configuration is corrupt: {e}").into(),
            )))
        })?,
        rate_per_minute: rate as u32,
        max_attempts: attempts as u32,
        active: r.try_get::<i64, _>("active")? != 0,
    })
}

fn checked(input: &ChannelInput) -> DomainResult<(u32, u32, bool)> {
    crate::error::required_text("name", &input.name, 100)?;
    input.config.check()?;
    let rate = input.rate_per_minute.unwrap_or(60);
    if !(1..=6000).contains(&rate) {
        return Err(DomainError::invalid(
            "rate_per_minute",
            "must be between 1 and 6000",
        ));
    }
    let attempts = input.max_attempts.unwrap_or(8);
    if !(1..=30).contains(&attempts) {
        return Err(DomainError::invalid(
            "max_attempts",
            "must be between 1 and 30",
        ));
    }
    Ok((rate, attempts, input.active.unwrap_or(true)))
}

fn name_taken(e: sqlx::Error, name: &str) -> DomainError {
    match &e {
        sqlx::Error::Database(d) if d.is_unique_violation() => {
            DomainError::conflict("duplicate", format!("a channel named {name:?} exists"))
        }
        _ => e.into(),
    }
}

/// Writes a checked channel row: a new one, or over the existing row with this id (its
/// creation time kept). Returns the channel as the API shows it.
async fn write(
    conn: &mut sqlx::AnyConnection,
    id: &str,
    input: &ChannelInput,
) -> DomainResult<ChannelView> {
    let (rate, attempts, active) = checked(input)?;
    sqlx::query(
        "INSERT INTO notification_channels (id, name, kind, config, rate_per_minute, max_attempts, active, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8) \
         ON CONFLICT (id) DO UPDATE SET name = excluded.name, kind = excluded.kind, config = excluded.config, \
         rate_per_minute = excluded.rate_per_minute, max_attempts = excluded.max_attempts, active = excluded.active, updated_at = excluded.updated_at",
    )
    .bind(id)
    .bind(input.name.trim())
    .bind(input.config.kind())
    .bind(serde_json::to_string(&input.config).expect("config serializes"))
    .bind(rate as i64)
    .bind(attempts as i64)
    .bind(active as i64)
    .bind(now_ms())
    .execute(&mut *conn)
    .await
    .map_err(|e| name_taken(e, &input.name))?;
    Ok(get_in(conn, id).await?.view())
}

/// Creates a channel.
pub async fn create(db: &Db, actor: &Actor, input: ChannelInput) -> DomainResult<ChannelView> {
    let id = uuid::Uuid::new_v4().to_string();
    let mut tx = db.begin().await?;
    let view = write(&mut tx, &id, &input).await?;
    audit::record(
        &mut tx,
        actor,
        "notification_channel.create",
        "notification_channel",
        Some(&id),
        None::<&()>,
        Some(&view),
    )
    .await?;
    tx.commit().await?;
    Ok(view)
}

/// Replaces a channel's settings; redacted secrets keep their stored values.
pub async fn update(
    db: &Db,
    actor: &Actor,
    id: &str,
    mut input: ChannelInput,
) -> DomainResult<ChannelView> {
    let mut tx = db.begin().await?;
    let before = get_in(&mut tx, id).await?;
    input.config.keep_secrets_from(&before.config)?;
    let after = write(&mut tx, id, &input).await?;
    audit::record(
        &mut tx,
        actor,
        "notification_channel.update",
        "notification_channel",
        Some(id),
        Some(&before.view()),
        Some(&after),
    )
    .await?;
    tx.commit().await?;
    Ok(after)
}

async fn get_in(conn: &mut sqlx::AnyConnection, id: &str) -> DomainResult<Channel> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM notification_channels WHERE id = $1"
    )))
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?
    .ok_or_else(|| DomainError::not_found("notification channel", id))?;
    from_row(&row)
}

/// One channel, with secrets (for sending).
pub async fn get(db: &Db, id: &str) -> DomainResult<Channel> {
    let mut conn = db.pool.acquire().await?;
    get_in(&mut conn, id).await
}

/// Every channel, with secrets (for producers and workers).
pub async fn all(db: &Db) -> DomainResult<Vec<Channel>> {
    let mut conn = db.pool.acquire().await?;
    all_in(&mut conn).await
}

/// Every channel, as the caller's transaction sees them.
pub(crate) async fn all_in(conn: &mut sqlx::AnyConnection) -> DomainResult<Vec<Channel>> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM notification_channels ORDER BY name"
    )))
    .fetch_all(&mut *conn)
    .await?;
    rows.iter().map(from_row).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn telegram(token: &str) -> ChannelConfig {
        ChannelConfig::Telegram {
            api_base: default_telegram_base(),
            bot_token: token.into(),
            operator_chat_id: None,
            bot_username: None,
        }
    }

    #[test]
    fn redaction_hides_every_secret_and_an_update_keeps_them() {
        let mut headers = BTreeMap::new();
        headers.insert("Authorization".to_string(), "Bearer k3y".to_string());
        let http = ChannelConfig::Http {
            url: "http://127.0.0.1:1/send".into(),
            method: "POST".into(),
            headers,
            body_template: r#"{"to":"{{to}}"}"#.into(),
            encoding: BodyEncoding::Json,
            address: AddressKind::Phone,
            success_contains: None,
            operator_to: None,
        };
        let shown = serde_json::to_string(&http.redacted()).unwrap();
        assert!(!shown.contains("k3y"), "{shown}");
        let mut edited = http.redacted();
        edited.keep_secrets_from(&http).unwrap();
        assert_eq!(edited, http);
        // The stored key does not follow the channel to another host.
        let mut moved = http.redacted();
        if let ChannelConfig::Http { url, .. } = &mut moved {
            *url = "http://attacker.example/send".into();
        }
        assert!(moved.keep_secrets_from(&http).is_err());

        let mut t = telegram(REDACTED);
        t.keep_secrets_from(&telegram("123:abc")).unwrap();
        assert_eq!(t, telegram("123:abc"));
        let mut t = telegram("456:new");
        t.keep_secrets_from(&telegram("123:abc")).unwrap();
        assert_eq!(t, telegram("456:new"));
        assert!(
            !format!("{:?}", telegram("123:abc")).contains("123:abc"),
            "Debug redacts"
        );
    }

    #[test]
    fn a_gateway_key_in_the_url_is_redacted_and_kept() {
        let http = ChannelConfig::Http {
            url: "https://gw.example/api/send?token=s3cret".into(),
            method: "POST".into(),
            headers: BTreeMap::new(),
            body_template: "to={{to}}&m={{text}}".into(),
            encoding: BodyEncoding::Form,
            address: AddressKind::Phone,
            success_contains: None,
            operator_to: None,
        };
        let shown = http.redacted();
        assert!(!serde_json::to_string(&shown).unwrap().contains("s3cret"));
        let mut back = shown.clone();
        back.keep_secrets_from(&http).unwrap();
        assert_eq!(back, http);
    }

    #[test]
    fn configs_are_checked() {
        assert!(telegram("").check().is_err());
        assert!(telegram("1:x").check().is_ok());
        let bad: Result<ChannelConfig, _> = serde_json::from_str(r#"{"kind":"pigeon","url":"x"}"#);
        assert!(bad.is_err());
    }
}
