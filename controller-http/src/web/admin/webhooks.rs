//! Integrations: the domain event log (what happened, newest first) and outgoing webhooks
//! (create with a one-time signing secret, deactivate, deliveries with their last error,
//! replay past events).

use super::ctx::Ctx;
use super::ctx::not_found;
use super::error::WebError;
use super::form::Form;
use super::form::NoFields;
use super::form_values::{self, opt};
use crate::server::AppState;
use crate::web::pager::{PAGE_ROWS, Pager};
use axum::extract::{Path, Query, State};
use axum::response::Response;
use mikrobill_core::auth::Perm;
use mikrobill_core::events::parking::{self, Parked};
use mikrobill_core::events::webhooks::{self, Delivery, Webhook};
use mikrobill_core::events::{self, ALL_KINDS, Event, EventFilter, EventKind};
use serde::Deserialize;

/// `?kind=&after=`.
#[derive(Debug, Default, Deserialize)]
pub struct EventQuery {
    kind: Option<String>,
    after: Option<String>,
}

#[derive(askama::Template)]
#[template(path = "admin/events.html")]
struct EventsPage<'a> {
    c: &'a Ctx,
    /// Events a consumer gave up on, shown above the log so an operator sees them first.
    parked: Vec<Parked>,
    rows: Vec<Event>,
    kinds: [EventKind; mikrobill_core::events::ALL_KINDS.len()],
    f: EventQuery,
    pager: Pager,
}

impl EventsPage<'_> {
    fn selected(&self, k: &EventKind) -> bool {
        self.f.kind.as_deref() == Some(k.as_str())
    }
}

/// `GET /events`.
pub async fn events(
    State(state): State<AppState>,
    c: Ctx,
    Query(q): Query<EventQuery>,
) -> Result<Response, WebError> {
    c.require(Perm::ReadAudit)?;
    let kind = opt(&q.kind).and_then(|k| ALL_KINDS.into_iter().find(|x| x.as_str() == k));
    let after = opt(&q.after).unwrap_or_default();
    let before = match after.as_str() {
        "" => None,
        a => Some(
            a.parse::<i64>()
                .map_err(|_| WebError::BadRequest(c.lang, "after".into()))?,
        ),
    };
    let f = EventFilter {
        kind,
        customer_id: None,
        from: None,
        to: None,
    };
    let mut rows = events::list(&state.db, &f, before, PAGE_ROWS + 1).await?;
    let parked = parking::list(&state.db, None, PARKED_ROWS).await?;
    let pager = Pager::split(
        &mut rows,
        &[("kind", q.kind.as_deref().unwrap_or(""))],
        &after,
        |e| e.id.to_string(),
    );
    Ok(c.render(&EventsPage {
        c: &c,
        parked,
        rows,
        kinds: ALL_KINDS,
        f: q,
        pager,
    }))
}

/// The most parked events the Events page lists (the API pages through all of them).
const PARKED_ROWS: u32 = 100;

/// `POST /events/parked/{consumer}/{event_id}/retry`: the consumer tries the event again.
pub async fn retry_parked(
    State(state): State<AppState>,
    c: Ctx,
    Path((consumer, event_id)): Path<(String, String)>,
    _form: Form<NoFields>,
) -> Result<Response, WebError> {
    // The same permission as the API's retry, checked before the path is looked at.
    c.require(Perm::WriteAdmins)?;
    let event_id: i64 = event_id.parse().map_err(|_| WebError::NotFound(c.lang))?;
    if !parking::retry(&state.db, &c.actor(), &consumer, event_id).await? {
        return Err(WebError::NotFound(c.lang));
    }
    Ok(c.done("/events", c.t("event.retry_requested")))
}

#[derive(askama::Template)]
#[template(path = "admin/webhooks.html")]
struct WebhooksPage<'a> {
    c: &'a Ctx,
    hooks: Vec<Webhook>,
    kinds: [EventKind; mikrobill_core::events::ALL_KINDS.len()],
    created: Option<(Webhook, String)>,
}

async fn webhooks_page(
    state: &AppState,
    c: &Ctx,
    created: Option<(Webhook, String)>,
) -> Result<Response, WebError> {
    let hooks = webhooks::list(&state.db).await?;
    Ok(c.render(&WebhooksPage {
        c,
        hooks,
        kinds: ALL_KINDS,
        created,
    }))
}

/// `GET /webhooks`.
pub async fn list(State(state): State<AppState>, c: Ctx) -> Result<Response, WebError> {
    c.require(Perm::WriteSettings)?;
    webhooks_page(&state, &c, None).await
}

/// `POST /webhooks`: the URL and the event kinds (checkboxes, repeated `events` fields).
pub async fn create(
    State(state): State<AppState>,
    c: Ctx,
    headers: axum::http::HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, WebError> {
    // Repeated fields do not fit a struct, so the pairs are read directly, after the same
    // CSRF and origin check `Form` makes.
    if !super::form::check_csrf(&headers, &body, super::session::COOKIE) {
        return Err(WebError::Csrf(c.lang));
    }
    c.require(Perm::WriteSettings)?;
    let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(&body)
        .map_err(|e| WebError::BadRequest(c.lang, e.to_string()))?;
    let url = pairs
        .iter()
        .find(|(k, _)| k == "url")
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    let kinds: Vec<String> = pairs
        .iter()
        .filter(|(k, _)| k == "events")
        .map(|(_, v)| v.clone())
        .collect();
    match webhooks::create(&state.db, &c.actor(), &url, &kinds).await {
        Ok(created) => webhooks_page(&state, &c, Some(created)).await,
        Err(e) => Ok(c.outcome(Err::<(), _>(e), |_| String::new(), "", "/webhooks")),
    }
}

/// `POST /webhooks/{id}/deactivate`.
pub async fn deactivate(
    State(state): State<AppState>,
    c: Ctx,
    Path(id): Path<String>,
    _form: Form<NoFields>,
) -> Result<Response, WebError> {
    c.require(Perm::WriteSettings)?;
    let result = webhooks::deactivate(&state.db, &c.actor(), &id).await;
    Ok(c.outcome(result, |_| "/webhooks".into(), c.t("saved"), "/webhooks"))
}

#[derive(askama::Template)]
#[template(path = "admin/deliveries.html")]
struct DeliveriesPage<'a> {
    c: &'a Ctx,
    hook: Webhook,
    rows: Vec<Delivery>,
}

/// `GET /webhooks/{id}`: the latest deliveries.
pub async fn deliveries(
    State(state): State<AppState>,
    c: Ctx,
    Path(id): Path<String>,
) -> Result<Response, WebError> {
    c.require(Perm::WriteSettings)?;
    let hook = webhooks::list(&state.db)
        .await?
        .into_iter()
        .find(|h| h.id == id)
        .ok_or(WebError::NotFound(c.lang))?;
    let rows = webhooks::deliveries(&state.db, &id, 100).await?;
    Ok(c.render(&DeliveriesPage { c: &c, hook, rows }))
}

/// The replay form.
#[derive(Debug, Deserialize)]
pub struct ReplayFields {
    after_event: Option<String>,
}

/// `POST /webhooks/{id}/replay`: events after the given id are sent again.
pub async fn replay(
    State(state): State<AppState>,
    c: Ctx,
    Path(id): Path<String>,
    form: Form<ReplayFields>,
) -> Result<Response, WebError> {
    c.require(Perm::WriteSettings)?;
    let f = form.fields().map_err(|e| WebError::BadRequest(c.lang, e))?;
    let after = form_values::number(&f.after_event, "after_event")
        .map_err(|e| WebError::BadRequest(c.lang, e))?
        .unwrap_or(0);
    let back = format!("/webhooks/{id}");
    let result = webhooks::replay(&state.db, &c.actor(), &id, after).await;
    if let Err(e @ mikrobill_core::error::DomainError::NotFound { .. }) = result {
        return Err(not_found(&c, e));
    }
    Ok(c.outcome(result, |_| back.clone(), c.t("webhook.replayed"), &back))
}
