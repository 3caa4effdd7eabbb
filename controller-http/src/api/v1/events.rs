//! The domain event log, its consumers, and outgoing webhooks.

use crate::api::extract::{Body, Caller, Query};
use crate::api::page::{Page, PageQuery};
use crate::server::AppState;
use crate::server::problem::{ApiResult, Problem};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use mikrobill_core::auth::Perm;
use mikrobill_core::events::consumer::{self, ConsumerState};
use mikrobill_core::events::parking::{self, Parked};
use mikrobill_core::events::webhooks::{self, Delivery, Webhook};
use mikrobill_core::events::{self, Event, EventFilter, EventKind};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Routes of this module.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_events))
        .routes(routes!(list_consumers))
        .routes(routes!(rewind_consumer))
        .routes(routes!(list_parked))
        .routes(routes!(retry_parked))
        .routes(routes!(list_webhooks, create_webhook))
        .routes(routes!(deactivate_webhook))
        .routes(routes!(webhook_deliveries))
        .routes(routes!(replay_webhook))
}

/// Filters of the event list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EventQuery {
    /// One kind, e.g. `invoice.created`.
    pub kind: Option<EventKind>,
    /// One customer's.
    pub customer_id: Option<String>,
    /// At or after (unix ms).
    pub from: Option<i64>,
    /// Before (unix ms).
    pub to: Option<i64>,
}

/// Lists domain events, newest first.
#[utoipa::path(get, path = "/events", tag = "events", security(("bearer" = [])), params(EventQuery, PageQuery),
    responses((status = 200, body = Page<Event>), (status = 403, body = Problem)))]
async fn list_events(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<EventQuery>,
    Query(page): Query<PageQuery>,
) -> ApiResult<Json<Page<Event>>> {
    caller.require(Perm::ReadAudit)?;
    let limit = page.limit()?;
    let before = page.after_id()?;
    let f = EventFilter {
        kind: q.kind,
        customer_id: q.customer_id,
        from: q.from,
        to: q.to,
    };
    let items = events::list(&state.db, &f, before, limit + 1).await?;
    Ok(Json(Page::from_overfetch(items, limit, |e| {
        e.id.to_string()
    })))
}

/// Every consumer's cursor.
#[utoipa::path(get, path = "/events/consumers", tag = "events", security(("bearer" = [])),
    responses((status = 200, body = Vec<ConsumerState>), (status = 403, body = Problem)))]
async fn list_consumers(
    State(state): State<AppState>,
    caller: Caller,
) -> ApiResult<Json<Vec<ConsumerState>>> {
    caller.require(Perm::ReadAudit)?;
    Ok(Json(consumer::states(&state.db).await?))
}

/// Where to replay from.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Rewind {
    /// The consumer handles every event after this id again.
    pub after_event: i64,
}

/// Replays events for one consumer: its cursor is set back to `after_event`.
#[utoipa::path(post, path = "/events/consumers/{name}/rewind", tag = "events", security(("bearer" = [])), params(("name" = String, Path, description = "consumer name")), request_body = Rewind,
    responses((status = 204), (status = 403, body = Problem), (status = 404, body = Problem)))]
async fn rewind_consumer(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    body: Body<Rewind>,
) -> ApiResult<StatusCode> {
    caller.require(Perm::WriteAdmins)?;
    let req = body.into_inner()?;
    if !consumer::rewind(&state.db, &caller.actor(), &name, req.after_event).await? {
        return Err(Problem::not_found(format!("no event consumer {name:?}")));
    }
    Ok(StatusCode::NO_CONTENT)
}

/// Which parked events to list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ParkedQuery {
    /// One consumer's (`notifications`, `webhooks`).
    pub consumer: Option<String>,
    /// At most this many, newest first (1-500, default 100).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<u32>,
}

/// Events a consumer gave up on after repeated failures and moved past, newest first.
#[utoipa::path(get, path = "/events/parked", tag = "events", security(("bearer" = [])), params(ParkedQuery),
    responses((status = 200, body = Vec<Parked>), (status = 400, body = Problem, content_type = "application/problem+json"), (status = 401, body = Problem, content_type = "application/problem+json"), (status = 403, body = Problem, content_type = "application/problem+json")))]
async fn list_parked(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<ParkedQuery>,
) -> ApiResult<Json<Vec<Parked>>> {
    caller.require(Perm::ReadAudit)?;
    let limit = q.limit.unwrap_or(100);
    if !(1..=500).contains(&limit) {
        return Err(Problem::invalid("limit", "must be between 1 and 500"));
    }
    Ok(Json(
        parking::list(&state.db, q.consumer.as_deref(), limit).await?,
    ))
}

/// Asks a consumer to try a parked event again on its next run; success removes it from the
/// parked list, failure leaves it there with the new error.
#[utoipa::path(post, path = "/events/consumers/{name}/parked/{event_id}/retry", tag = "events", security(("bearer" = [])),
    params(("name" = String, Path, description = "consumer name"), ("event_id" = i64, Path, description = "the parked event")),
    responses((status = 202), (status = 401, body = Problem, content_type = "application/problem+json"), (status = 403, body = Problem, content_type = "application/problem+json"), (status = 404, body = Problem, content_type = "application/problem+json")))]
async fn retry_parked(
    State(state): State<AppState>,
    caller: Caller,
    Path((name, event_id)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    caller.require(Perm::WriteAdmins)?;
    // Parsed after the role check, so a caller without the role learns nothing from the URL.
    let event_id: i64 = event_id
        .parse()
        .map_err(|_| Problem::not_found(format!("no parked event {event_id:?}")))?;
    mikrobill_core::events::parking::retry(&state.db, &caller.actor(), &name, event_id)
        .await?
        .then_some(StatusCode::ACCEPTED)
        .ok_or_else(|| Problem::not_found(format!("no parked event {event_id} for {name:?}")))
}

/// Every webhook.
#[utoipa::path(get, path = "/webhooks", tag = "events", security(("bearer" = [])),
    responses((status = 200, body = Vec<Webhook>), (status = 403, body = Problem)))]
async fn list_webhooks(
    State(state): State<AppState>,
    caller: Caller,
) -> ApiResult<Json<Vec<Webhook>>> {
    caller.require(Perm::WriteSettings)?;
    Ok(Json(webhooks::list(&state.db).await?))
}

/// A new webhook.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateWebhook {
    /// Where to POST events (http or https).
    pub url: String,
    /// Event kinds to send, or `["*"]` for all.
    pub events: Vec<String>,
}

/// A created webhook with its signing secret, shown once.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedWebhook {
    /// The webhook.
    pub webhook: Webhook,
    /// Verify `X-MikroBill-Signature: t=<ts>,v1=<hex HMAC-SHA256(secret, "<ts>.<body>")>`.
    pub secret: String,
}

/// Creates a webhook; it receives the matching events that happen from now on.
#[utoipa::path(post, path = "/webhooks", tag = "events", security(("bearer" = [])), request_body = CreateWebhook,
    responses((status = 201, body = CreatedWebhook), (status = 403, body = Problem), (status = 422, body = Problem)))]
async fn create_webhook(
    State(state): State<AppState>,
    caller: Caller,
    body: Body<CreateWebhook>,
) -> ApiResult<(StatusCode, Json<CreatedWebhook>)> {
    caller.require(Perm::WriteSettings)?;
    let req = body.into_inner()?;
    let (webhook, secret) =
        webhooks::create(&state.db, &caller.actor(), &req.url, &req.events).await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedWebhook { webhook, secret }),
    ))
}

/// Stops a webhook; its pending deliveries are dead-lettered.
#[utoipa::path(post, path = "/webhooks/{id}/deactivate", tag = "events", security(("bearer" = [])), params(("id" = String, Path, description = "webhook id")),
    responses((status = 200, body = Webhook), (status = 403, body = Problem), (status = 404, body = Problem)))]
async fn deactivate_webhook(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Webhook>> {
    caller.require(Perm::WriteSettings)?;
    Ok(Json(
        webhooks::deactivate(&state.db, &caller.actor(), &id).await?,
    ))
}

/// A webhook's latest deliveries with every attempt's outcome.
#[utoipa::path(get, path = "/webhooks/{id}/deliveries", tag = "events", security(("bearer" = [])), params(("id" = String, Path, description = "webhook id")),
    responses((status = 200, body = Vec<Delivery>), (status = 403, body = Problem)))]
async fn webhook_deliveries(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Vec<Delivery>>> {
    caller.require(Perm::WriteSettings)?;
    Ok(Json(webhooks::deliveries(&state.db, &id, 200).await?))
}

/// How many deliveries a replay queued.
#[derive(Debug, Serialize, ToSchema)]
pub struct Replayed {
    /// Deliveries queued or reset.
    pub queued: u64,
}

/// Sends a webhook every matching event after `after_event` again.
#[utoipa::path(post, path = "/webhooks/{id}/replay", tag = "events", security(("bearer" = [])), params(("id" = String, Path, description = "webhook id")), request_body = Rewind,
    responses((status = 200, body = Replayed), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem)))]
async fn replay_webhook(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    body: Body<Rewind>,
) -> ApiResult<Json<Replayed>> {
    caller.require(Perm::WriteSettings)?;
    let req = body.into_inner()?;
    Ok(Json(Replayed {
        queued: webhooks::replay(&state.db, &caller.actor(), &id, req.after_event).await?,
    }))
}
