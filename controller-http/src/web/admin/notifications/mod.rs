//! Notification pages: the message log (filters, keyset pages, one message with its attempt
//! log, retrying a dead one), and in the submodules the templates, the channels with the
//! notification settings, and a customer's preferences on the customer page. Every change
//! goes through `mikrobill_core::notify` as the `/api/v1` handlers do, with the same permissions.

pub mod channels;
pub mod prefs;
pub mod templates;

use super::ctx::Ctx;
use super::ctx::not_found;
use super::error::WebError;
use super::form::Form;
use super::form::NoFields;
use super::form_values::opt;
use crate::server::AppState;
use crate::web::pager::{PAGE_ROWS, Pager};
use axum::extract::{Path, Query, State};
use axum::response::Response;
use mikrobill_core::auth::Perm;
use mikrobill_core::notify::Topic;
use mikrobill_core::notify::messages::{self, Message, MessageDetail};
use serde::Deserialize;

/// Message states, in the order the filter lists them.
pub const STATUSES: [&str; 5] = ["pending", "sending", "sent", "dead", "cancelled"];

/// A message state in the page's language.
pub fn status_text(c: &Ctx, status: &str) -> &'static str {
    match status {
        "pending" => c.t("notify.pending"),
        "sending" => c.t("notify.sending"),
        "sent" => c.t("notify.sent"),
        "dead" => c.t("notify.dead"),
        "cancelled" => c.t("notify.cancelled"),
        _ => "?",
    }
}

/// The pill colour of a message state (or of an attempt's outcome).
pub fn status_class(status: &str) -> &'static str {
    match status {
        "sent" => "ok",
        "dead" => "bad",
        "pending" | "sending" | "retry" => "warn",
        _ => "muted",
    }
}

/// (id, name) of every channel by name, for filters and for showing which channel a
/// message went through.
async fn channel_names(state: &AppState) -> Result<Vec<(String, String)>, WebError> {
    Ok(mikrobill_core::notify::channels::all(&state.db)
        .await?
        .into_iter()
        .map(|ch| (ch.id, ch.name))
        .collect())
}

/// `?status=&channel_id=&topic=&customer_id=&after=`.
#[derive(Debug, Default, Deserialize)]
pub struct LogQuery {
    status: Option<String>,
    channel_id: Option<String>,
    topic: Option<String>,
    customer_id: Option<String>,
    after: Option<String>,
}

#[derive(askama::Template)]
#[template(path = "admin/notifications.html")]
struct LogPage<'a> {
    c: &'a Ctx,
    rows: Vec<Message>,
    names: Vec<(String, String)>,
    statuses: [&'static str; 5],
    topics: [Topic; mikrobill_core::notify::Topic::ALL.len()],
    f: messages::Filter,
    pager: Pager,
}

impl LogPage<'_> {
    fn channel(&self, id: &str) -> String {
        self.names
            .iter()
            .find(|(i, _)| i == id)
            .map_or_else(|| id.to_string(), |(_, n)| n.clone())
    }

    fn has(&self, field: &Option<String>, value: &str) -> bool {
        field.as_deref() == Some(value)
    }
}

/// `GET /notifications`: the message log, newest first.
pub async fn list(
    State(state): State<AppState>,
    c: Ctx,
    Query(q): Query<LogQuery>,
) -> Result<Response, WebError> {
    if !c.can(Perm::ReadCustomers) && c.can(Perm::ReadSettings) {
        // The log shows customers' messages; the rest of the section is still theirs.
        return Ok(crate::web::html::see_other("/notifications/templates"));
    }
    c.require(Perm::ReadCustomers)?;
    let after = opt(&q.after).unwrap_or_default();
    let cursor = match after.as_str() {
        "" => None,
        a => Some(
            a.split_once(':')
                .and_then(|(at, id)| Some((at.parse::<i64>().ok()?, id.to_string())))
                .ok_or_else(|| WebError::BadRequest(c.lang, "after".into()))?,
        ),
    };
    // Values the selects do not offer are ignored rather than matching nothing.
    let f = messages::Filter {
        status: opt(&q.status).filter(|s| STATUSES.contains(&s.as_str())),
        channel_id: opt(&q.channel_id),
        customer_id: opt(&q.customer_id),
        topic: opt(&q.topic).filter(|t| Topic::parse(t).is_some()),
    };
    let mut rows = messages::list(&state.db, &f, cursor, PAGE_ROWS + 1).await?;
    let pager = Pager::split(
        &mut rows,
        &[
            ("status", f.status.as_deref().unwrap_or("")),
            ("channel_id", f.channel_id.as_deref().unwrap_or("")),
            ("topic", f.topic.as_deref().unwrap_or("")),
            ("customer_id", f.customer_id.as_deref().unwrap_or("")),
        ],
        &after,
        |m| format!("{}:{}", m.created_at, m.id),
    );
    Ok(c.render(&LogPage {
        c: &c,
        rows,
        names: channel_names(&state).await?,
        statuses: STATUSES,
        topics: Topic::ALL,
        f,
        pager,
    }))
}

#[derive(askama::Template)]
#[template(path = "admin/notification.html")]
struct DetailPage<'a> {
    c: &'a Ctx,
    d: MessageDetail,
    channel: String,
    customer: Option<String>,
}

/// `GET /notifications/{id}`: subject, text and every attempt.
pub async fn detail(
    State(state): State<AppState>,
    c: Ctx,
    Path(id): Path<String>,
) -> Result<Response, WebError> {
    c.require(Perm::ReadCustomers)?;
    let d = messages::get(&state.db, &id)
        .await
        .map_err(|e| not_found(&c, e))?;
    let channel = channel_names(&state)
        .await?
        .into_iter()
        .find(|(i, _)| *i == d.message.channel_id)
        .map_or_else(|| d.message.channel_id.clone(), |(_, n)| n);
    // The customer's name, when the message was for one who still exists.
    let customer = match &d.message.customer_id {
        Some(id) => match mikrobill_core::customers::get(&state.db, id).await {
            Ok(cu) => Some(cu.name),
            Err(mikrobill_core::error::DomainError::NotFound { .. }) => None,
            Err(e) => return Err(e.into()),
        },
        None => None,
    };
    Ok(c.render(&DetailPage {
        c: &c,
        d,
        channel,
        customer,
    }))
}

/// `POST /notifications/{id}/retry`: a dead message gets a fresh attempt budget.
pub async fn retry(
    State(state): State<AppState>,
    c: Ctx,
    Path(id): Path<String>,
    _form: Form<NoFields>,
) -> Result<Response, WebError> {
    c.require(Perm::WriteSettings)?;
    let back = format!("/notifications/{id}");
    let result = messages::retry(&state.db, &c.actor(), &id).await;
    if let Err(e @ mikrobill_core::error::DomainError::NotFound { .. }) = result {
        return Err(not_found(&c, e));
    }
    Ok(c.outcome(result, |_| back.clone(), c.t("notify.retried"), &back))
}
