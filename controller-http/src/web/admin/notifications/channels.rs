//! Channels and notification settings: the gateways messages go out through (list, create,
//! edit; the gateway settings are a JSON document shown with its secrets redacted, and a
//! `<redacted>` sent back keeps the stored secret), and the reminder days, site-offline
//! delay, public URL and default language.

use crate::server::AppState;
use crate::web::Lang;
use crate::web::admin::ctx::Ctx;
use crate::web::admin::ctx::not_found;
use crate::web::admin::error::WebError;
use crate::web::admin::form::Form;
use crate::web::admin::form_values::{number, opt};
use axum::extract::{Path, State};
use axum::response::Response;
use mikrobill_core::auth::Perm;
use mikrobill_core::error::DomainError;
use mikrobill_core::notify::channels::{self, ChannelConfig, ChannelInput, ChannelView};
use mikrobill_core::notify::settings::{self, NotificationSettings};
use serde::Deserialize;

const PAGE: &str = "/notifications/channels";

/// A starting point per gateway kind, shown under the create form.
pub const EXAMPLES: [(&str, &str); 4] = [
    (
        "telegram",
        r#"{"kind": "telegram", "bot_token": "123456789:AAE-your-bot-token", "operator_chat_id": "-1001234567890", "bot_username": "netdesa_billing_bot"}"#,
    ),
    (
        "whatsapp_cloud",
        r#"{"kind": "whatsapp_cloud", "phone_number_id": "109876543210", "access_token": "EAAG-your-access-token", "operator_to": "6281234567890"}"#,
    ),
    (
        "http",
        r#"{"kind": "http", "url": "https://wa-gateway.example.net/send", "headers": {"Authorization": "Bearer your-api-key"}, "body_template": "{\"phone\": \"{{to}}\", \"message\": \"{{text}}\"}", "encoding": "json", "address": "phone"}"#,
    ),
    (
        "smtp",
        r#"{"kind": "smtp", "host": "mail.example.net", "port": 587, "security": "starttls", "username": "billing@example.net", "password": "your-password", "from": "Billing <billing@example.net>"}"#,
    ),
];

/// A channel with its redacted settings as indented JSON.
struct Shown {
    ch: ChannelView,
    config: String,
}

fn shown(ch: ChannelView) -> Shown {
    let config = serde_json::to_string_pretty(&ch.config).expect("config serializes");
    Shown { ch, config }
}

#[derive(askama::Template)]
#[template(path = "admin/notification_channels.html")]
struct ChannelsPage<'a> {
    c: &'a Ctx,
    rows: Vec<Shown>,
    examples: [(&'static str, &'static str); 4],
    s: NotificationSettings,
    langs: [Lang; 2],
}

impl ChannelsPage<'_> {
    fn lang_name(&self, l: &Lang) -> &'static str {
        crate::web::admin::texts::text(*l, "lang.name")
    }

    fn days(&self) -> String {
        let days: Vec<String> = self.s.reminder_days.iter().map(u32::to_string).collect();
        days.join(", ")
    }
}

/// `GET /notifications/channels`: every channel, the create form and the settings.
pub async fn list(State(state): State<AppState>, c: Ctx) -> Result<Response, WebError> {
    c.require(Perm::ReadSettings)?;
    let rows = channels::all(&state.db)
        .await?
        .iter()
        .map(|ch| shown(ch.view()))
        .collect();
    Ok(c.render(&ChannelsPage {
        c: &c,
        rows,
        examples: EXAMPLES,
        s: settings::get(&state.db).await?,
        langs: Lang::ALL,
    }))
}

#[derive(askama::Template)]
#[template(path = "admin/notification_channel.html")]
struct EditPage<'a> {
    c: &'a Ctx,
    row: Shown,
}

/// `GET /notifications/channels/{id}`: one channel and its edit form.
pub async fn edit(
    State(state): State<AppState>,
    c: Ctx,
    Path(id): Path<String>,
) -> Result<Response, WebError> {
    c.require(Perm::ReadSettings)?;
    let ch = channels::get(&state.db, &id)
        .await
        .map_err(|e| not_found(&c, e))?;
    Ok(c.render(&EditPage {
        c: &c,
        row: shown(ch.view()),
    }))
}

/// The channel form.
#[derive(Debug, Deserialize)]
pub struct ChannelFields {
    #[serde(default)]
    name: String,
    rate_per_minute: Option<String>,
    max_attempts: Option<String>,
    active: Option<String>,
    #[serde(default)]
    config: String,
}

fn count(v: &Option<String>, field: &'static str) -> Result<Option<u32>, DomainError> {
    number(v, field)
        .map_err(|_| DomainError::invalid(field, "not a whole number"))?
        .map(|n| u32::try_from(n).map_err(|_| DomainError::invalid(field, "out of range")))
        .transpose()
}

fn input(f: ChannelFields) -> Result<ChannelInput, DomainError> {
    let config: ChannelConfig = serde_json::from_str(&f.config)
        .map_err(|e| DomainError::invalid("config", e.to_string()))?;
    Ok(ChannelInput {
        name: f.name,
        config,
        rate_per_minute: count(&f.rate_per_minute, "rate_per_minute")?,
        max_attempts: count(&f.max_attempts, "max_attempts")?,
        active: Some(f.active.is_some()),
    })
}

/// `POST /notifications/channels`.
pub async fn create(
    State(state): State<AppState>,
    c: Ctx,
    form: Form<ChannelFields>,
) -> Result<Response, WebError> {
    c.require(Perm::WriteSettings)?;
    let f = form.fields().map_err(|e| WebError::BadRequest(c.lang, e))?;
    let result = match input(f) {
        Ok(input) => channels::create(&state.db, &c.actor(), input).await,
        Err(e) => Err(e),
    };
    Ok(c.outcome(
        result,
        |ch| format!("{PAGE}/{}", ch.id),
        c.t("notify.channel_created"),
        PAGE,
    ))
}

/// `POST /notifications/channels/{id}`: replaces the channel's settings.
pub async fn update(
    State(state): State<AppState>,
    c: Ctx,
    Path(id): Path<String>,
    form: Form<ChannelFields>,
) -> Result<Response, WebError> {
    c.require(Perm::WriteSettings)?;
    let f = form.fields().map_err(|e| WebError::BadRequest(c.lang, e))?;
    let back = format!("{PAGE}/{id}");
    let result = match input(f) {
        Ok(input) => channels::update(&state.db, &c.actor(), &id, input).await,
        Err(e) => Err(e),
    };
    if let Err(e @ DomainError::NotFound { .. }) = result {
        return Err(not_found(&c, e));
    }
    Ok(c.outcome(result, |_| back.clone(), c.t("saved"), &back))
}

/// The notification settings form; a field left out keeps its value.
#[derive(Debug, Deserialize)]
pub struct SettingsFields {
    reminder_days: Option<String>,
    site_offline_delay_seconds: Option<String>,
    public_url: Option<String>,
    default_lang: Option<String>,
}

fn parse_settings(
    f: SettingsFields,
    old: NotificationSettings,
) -> Result<NotificationSettings, DomainError> {
    let reminder_days = match &f.reminder_days {
        None => old.reminder_days,
        Some(text) => text
            .split([',', ' ', ';'])
            .filter(|d| !d.is_empty())
            .map(|d| {
                d.parse::<u32>().map_err(|_| {
                    DomainError::invalid("reminder_days", format!("{d:?} is not a number of days"))
                })
            })
            .collect::<Result<_, _>>()?,
    };
    let delay = number(&f.site_offline_delay_seconds, "site_offline_delay_seconds")
        .map_err(|_| DomainError::invalid("site_offline_delay_seconds", "not a whole number"))?
        .map(|n| {
            u64::try_from(n)
                .map_err(|_| DomainError::invalid("site_offline_delay_seconds", "out of range"))
        })
        .transpose()?;
    Ok(NotificationSettings {
        reminder_days,
        site_offline_delay_seconds: delay.unwrap_or(old.site_offline_delay_seconds),
        public_url: f
            .public_url
            .map_or(old.public_url, |u| u.trim().to_string()),
        default_lang: opt(&f.default_lang)
            .and_then(|l| Lang::parse(&l))
            .unwrap_or(old.default_lang),
    })
}

/// `POST /notifications/settings`.
pub async fn save_settings(
    State(state): State<AppState>,
    c: Ctx,
    form: Form<SettingsFields>,
) -> Result<Response, WebError> {
    c.require(Perm::WriteSettings)?;
    let f = form.fields().map_err(|e| WebError::BadRequest(c.lang, e))?;
    let old = settings::get(&state.db).await?;
    let result = match parse_settings(f, old) {
        Ok(new) => settings::save(&state.db, &c.actor(), new).await,
        Err(e) => Err(e),
    };
    Ok(c.outcome(result, |_| PAGE.into(), c.t("saved"), PAGE))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_example_is_a_channel_of_its_kind() {
        for (kind, json) in EXAMPLES {
            let config: ChannelConfig = serde_json::from_str(json).unwrap();
            assert_eq!(config.kind(), kind);
        }
    }

    #[test]
    fn settings_fields_left_out_keep_their_values() {
        let old = NotificationSettings::default();
        let f = SettingsFields {
            reminder_days: Some("5, 2,1".into()),
            site_offline_delay_seconds: None,
            public_url: Some(" https://billing.example.net ".into()),
            default_lang: Some("en".into()),
        };
        let s = parse_settings(f, old.clone()).unwrap();
        assert_eq!(s.reminder_days, vec![5, 2, 1]);
        assert_eq!(s.site_offline_delay_seconds, old.site_offline_delay_seconds);
        assert_eq!(s.public_url, "https://billing.example.net");
        assert_eq!(s.default_lang, Lang::En);
        let none = SettingsFields {
            reminder_days: Some(String::new()),
            site_offline_delay_seconds: None,
            public_url: None,
            default_lang: None,
        };
        assert!(
            parse_settings(none, old.clone())
                .unwrap()
                .reminder_days
                .is_empty()
        );
        let bad = SettingsFields {
            reminder_days: Some("7, tiga".into()),
            site_offline_delay_seconds: None,
            public_url: None,
            default_lang: None,
        };
        assert!(parse_settings(bad, old).is_err());
    }
}
