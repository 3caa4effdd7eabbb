//! A customer's notification preferences on the customer page: language, opt-out, Telegram
//! chat and the channels that may reach them (none ticked: every channel), saved through
//! `notify::prefs::save`.

use crate::server::AppState;
use crate::web::Lang;
use crate::web::admin::ctx::Ctx;
use crate::web::admin::error::WebError;
use crate::web::admin::form::Form;
use axum::extract::{Path, State};
use axum::response::Response;
use mikrobill_core::auth::Perm;
use mikrobill_core::error::DomainError;
use mikrobill_core::notify::prefs::{self, Preferences};

/// What the customer page shows of a customer's notifications.
#[derive(Debug, Clone)]
pub struct Section {
    /// The customer's preferences.
    pub prefs: Preferences,
    /// (id, name) of every channel, for the checkboxes.
    pub channels: Vec<(String, String)>,
    /// The languages to choose from.
    pub langs: [Lang; 2],
}

impl Section {
    /// Loads the section for one customer.
    pub async fn load(state: &AppState, customer_id: &str) -> Result<Section, WebError> {
        let prefs = prefs::get(&state.db, customer_id).await?;
        let channels = mikrobill_core::notify::channels::all(&state.db)
            .await?
            .into_iter()
            .map(|ch| (ch.id, ch.name))
            .collect();
        Ok(Section {
            prefs,
            channels,
            langs: Lang::ALL,
        })
    }

    /// Whether the channel's box is ticked.
    pub fn allows(&self, channel_id: &str) -> bool {
        self.prefs
            .channels
            .as_ref()
            .is_some_and(|ids| ids.iter().any(|i| i == channel_id))
    }

    /// Whether `lang` is the customer's chosen language.
    pub fn is_lang(&self, lang: &Lang) -> bool {
        self.prefs.lang == Some(*lang)
    }

    /// A language's name in itself.
    pub fn lang_name(&self, lang: &Lang) -> &'static str {
        crate::web::admin::texts::text(*lang, "lang.name")
    }
}

/// The preferences a form sent: repeated `channels` fields are the ticked boxes.
fn parse(pairs: &[(String, String)]) -> Result<Preferences, DomainError> {
    let field = |name: &str| {
        pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.trim().to_string())
            .filter(|v| !v.is_empty())
    };
    let lang = match field("lang") {
        None => None,
        Some(code) => Some(
            Lang::parse(&code)
                .ok_or_else(|| DomainError::invalid("lang", format!("no language {code:?}")))?,
        ),
    };
    let channels: Vec<String> = pairs
        .iter()
        .filter(|(k, _)| k == "channels")
        .map(|(_, v)| v.clone())
        .collect();
    Ok(Preferences {
        lang,
        channels: (!channels.is_empty()).then_some(channels),
        opt_out: field("opt_out").is_some(),
        telegram_chat_id: field("telegram_chat_id"),
    })
}

/// `POST /customers/{id}/notifications`.
pub async fn save(
    State(state): State<AppState>,
    c: Ctx,
    Path(id): Path<String>,
    form: Form<Vec<(String, String)>>,
) -> Result<Response, WebError> {
    c.require(Perm::WriteCustomers)?;
    let pairs = form.fields().map_err(|e| WebError::BadRequest(c.lang, e))?;
    let back = format!("/customers/{id}");
    let result = match parse(&pairs) {
        Ok(new) => prefs::save(&state.db, &c.actor(), &id, new).await,
        Err(e) => Err(e),
    };
    Ok(c.outcome(result, |_| back.clone(), c.t("saved"), &back))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
        p.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn no_ticked_channel_means_every_channel() {
        let p = parse(&pairs(&[
            ("_csrf", "t"),
            ("lang", ""),
            ("telegram_chat_id", " "),
        ]))
        .unwrap();
        assert_eq!(
            p,
            Preferences {
                lang: None,
                channels: None,
                opt_out: false,
                telegram_chat_id: None,
            }
        );
        let p = parse(&pairs(&[
            ("lang", "en"),
            ("opt_out", "1"),
            ("channels", "a"),
            ("channels", "b"),
            ("telegram_chat_id", "777001"),
        ]))
        .unwrap();
        assert_eq!(p.lang, Some(Lang::En));
        assert!(p.opt_out);
        assert_eq!(p.channels, Some(vec!["a".to_string(), "b".to_string()]));
        assert_eq!(p.telegram_chat_id.as_deref(), Some("777001"));
        assert!(parse(&pairs(&[("lang", "fr")])).is_err());
    }
}
