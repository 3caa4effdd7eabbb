//! Message templates: every topic in both languages, with the operator's text or the
//! built-in one and the placeholders the topic offers; saving checks the placeholders
//! (`notify::templates::save`), resetting goes back to the built-in text.

use crate::server::AppState;
use crate::web::Lang;
use crate::web::admin::ctx::Ctx;
use crate::web::admin::error::WebError;
use crate::web::admin::form::Form;
use axum::extract::State;
use axum::response::Response;
use mikrobill_core::auth::Perm;
use mikrobill_core::error::DomainError;
use mikrobill_core::notify::Topic;
use mikrobill_core::notify::templates::{self, Template};
use serde::Deserialize;

const PAGE: &str = "/notifications/templates";

#[derive(askama::Template)]
#[template(path = "admin/notification_templates.html")]
struct TemplatesPage<'a> {
    c: &'a Ctx,
    rows: Vec<Template>,
    topics: [Topic; mikrobill_core::notify::Topic::ALL.len()],
}

impl TemplatesPage<'_> {
    fn lang_name(&self, l: &Lang) -> &'static str {
        crate::web::admin::texts::text(*l, "lang.name")
    }
}

/// `GET /notifications/templates`.
pub async fn page(State(state): State<AppState>, c: Ctx) -> Result<Response, WebError> {
    c.require(Perm::ReadSettings)?;
    let rows = templates::list(&state.db).await?;
    Ok(c.render(&TemplatesPage {
        c: &c,
        rows,
        topics: Topic::ALL,
    }))
}

/// Which template a form is for, and (when saving) its new text.
#[derive(Debug, Deserialize)]
pub struct TemplateFields {
    #[serde(default)]
    topic: String,
    #[serde(default)]
    lang: String,
    #[serde(default)]
    subject: String,
    #[serde(default)]
    body: String,
}

fn topic_lang(c: &Ctx, f: &TemplateFields) -> Result<(Topic, Lang), WebError> {
    let topic = Topic::parse(&f.topic)
        .ok_or_else(|| WebError::BadRequest(c.lang, format!("topic: {:?}", f.topic)))?;
    let lang = Lang::parse(&f.lang)
        .filter(|l| l.code() == f.lang)
        .ok_or_else(|| WebError::BadRequest(c.lang, format!("lang: {:?}", f.lang)))?;
    Ok((topic, lang))
}

/// Browsers send a textarea's line breaks as CRLF; messages use LF.
fn lines(text: &str) -> String {
    text.replace("\r\n", "\n")
}

/// `POST /notifications/templates`: saves a topic's text in one language.
pub async fn save(
    State(state): State<AppState>,
    c: Ctx,
    form: Form<TemplateFields>,
) -> Result<Response, WebError> {
    c.require(Perm::WriteSettings)?;
    let f = form.fields().map_err(|e| WebError::BadRequest(c.lang, e))?;
    let (topic, lang) = topic_lang(&c, &f)?;
    let result = templates::save(
        &state.db,
        &c.actor(),
        topic,
        lang,
        &lines(&f.subject),
        &lines(&f.body),
    )
    .await
    .map_err(|e| named(topic, lang, e));
    Ok(c.outcome(result, |_| PAGE.into(), c.t("saved"), PAGE))
}

/// `POST /notifications/templates/reset`: back to the built-in text.
pub async fn reset(
    State(state): State<AppState>,
    c: Ctx,
    form: Form<TemplateFields>,
) -> Result<Response, WebError> {
    c.require(Perm::WriteSettings)?;
    let f = form.fields().map_err(|e| WebError::BadRequest(c.lang, e))?;
    let (topic, lang) = topic_lang(&c, &f)?;
    let result = templates::reset(&state.db, &c.actor(), topic, lang).await;
    Ok(c.outcome(result, |_| PAGE.into(), c.t("notify.reset_done"), PAGE))
}

/// A refusal names the template, as the page lists eighteen of them.
fn named(topic: Topic, lang: Lang, e: DomainError) -> DomainError {
    match e {
        DomainError::Invalid { field, message } => DomainError::Invalid {
            field,
            message: format!("{message} ({} / {})", topic.as_str(), lang.code()),
        },
        other => other,
    }
}
