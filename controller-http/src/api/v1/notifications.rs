//! Notifications: channels, templates, settings, customer preferences, and the message log
//! with every attempt.

use crate::api::extract::{Body, Caller, Query};
use crate::api::page::{Page, PageQuery};
use crate::server::AppState;
use crate::server::problem::{ApiResult, Problem};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use mikrobill_core::auth::Perm;
use mikrobill_core::locale::Lang;
use mikrobill_core::notify::Topic;
use mikrobill_core::notify::channels::{self, ChannelInput, ChannelView};
use mikrobill_core::notify::messages::{self, Message, MessageDetail};
use mikrobill_core::notify::prefs::{self, Preferences};
use mikrobill_core::notify::settings::{self, NotificationSettings};
use mikrobill_core::notify::templates::{self, Template};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Routes of this module.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_channels, create_channel))
        .routes(routes!(update_channel))
        .routes(routes!(list_templates))
        .routes(routes!(save_template, reset_template))
        .routes(routes!(get_settings, save_settings))
        .routes(routes!(get_preferences, save_preferences))
        .routes(routes!(list_notifications))
        .routes(routes!(get_notification))
        .routes(routes!(retry_notification))
}

/// Every channel, secrets redacted.
#[utoipa::path(get, path = "/notification-channels", tag = "notifications", security(("bearer" = [])),
    responses((status = 200, body = Vec<ChannelView>), (status = 403, body = Problem)))]
async fn list_channels(
    State(state): State<AppState>,
    caller: Caller,
) -> ApiResult<Json<Vec<ChannelView>>> {
    caller.require(Perm::ReadSettings)?;
    let all = channels::all(&state.db).await?;
    Ok(Json(all.iter().map(channels::Channel::view).collect()))
}

/// Adds a channel (WhatsApp Cloud API, generic HTTP gateway, Telegram bot, SMTP).
#[utoipa::path(post, path = "/notification-channels", tag = "notifications", security(("bearer" = [])), request_body = ChannelInput,
    responses((status = 201, body = ChannelView), (status = 403, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn create_channel(
    State(state): State<AppState>,
    caller: Caller,
    body: Body<ChannelInput>,
) -> ApiResult<(StatusCode, Json<ChannelView>)> {
    caller.require(Perm::WriteSettings)?;
    let input = body.into_inner()?;
    Ok((
        StatusCode::CREATED,
        Json(channels::create(&state.db, &caller.actor(), input).await?),
    ))
}

/// Replaces a channel's settings; a secret sent back as `<redacted>` keeps its stored value.
#[utoipa::path(put, path = "/notification-channels/{id}", tag = "notifications", security(("bearer" = [])), params(("id" = String, Path, description = "channel id")), request_body = ChannelInput,
    responses((status = 200, body = ChannelView), (status = 403, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem)))]
async fn update_channel(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    body: Body<ChannelInput>,
) -> ApiResult<Json<ChannelView>> {
    caller.require(Perm::WriteSettings)?;
    let input = body.into_inner()?;
    Ok(Json(
        channels::update(&state.db, &caller.actor(), &id, input).await?,
    ))
}

/// Every topic's template in both languages, with the placeholders each offers.
#[utoipa::path(get, path = "/notification-templates", tag = "notifications", security(("bearer" = [])),
    responses((status = 200, body = Vec<Template>), (status = 403, body = Problem)))]
async fn list_templates(
    State(state): State<AppState>,
    caller: Caller,
) -> ApiResult<Json<Vec<Template>>> {
    caller.require(Perm::ReadSettings)?;
    Ok(Json(templates::list(&state.db).await?))
}

/// A template's new text.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TemplateText {
    /// Subject line (e-mail).
    pub subject: String,
    /// Message text with `{{placeholder}}`s.
    pub body: String,
}

fn topic_lang(topic: &str, lang: &str) -> Result<(Topic, Lang), Problem> {
    let t = Topic::parse(topic)
        .ok_or_else(|| Problem::not_found(format!("no notification topic {topic:?}")))?;
    let l = Lang::parse(lang)
        .filter(|l| l.code() == lang)
        .ok_or_else(|| Problem::not_found(format!("no language {lang:?} (id or en)")))?;
    Ok((t, l))
}

/// Sets the operator's text of a topic in a language.
#[utoipa::path(put, path = "/notification-templates/{topic}/{lang}", tag = "notifications", security(("bearer" = [])),
    params(("topic" = String, Path, description = "topic, e.g. invoice.reminder"), ("lang" = String, Path, description = "id or en")), request_body = TemplateText,
    responses((status = 200, body = Template), (status = 403, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem)))]
async fn save_template(
    State(state): State<AppState>,
    caller: Caller,
    Path((topic, lang)): Path<(String, String)>,
    body: Body<TemplateText>,
) -> ApiResult<Json<Template>> {
    caller.require(Perm::WriteSettings)?;
    let (t, l) = topic_lang(&topic, &lang)?;
    let req = body.into_inner()?;
    Ok(Json(
        templates::save(&state.db, &caller.actor(), t, l, &req.subject, &req.body).await?,
    ))
}

/// Goes back to the built-in text of a topic in a language.
#[utoipa::path(delete, path = "/notification-templates/{topic}/{lang}", tag = "notifications", security(("bearer" = [])),
    params(("topic" = String, Path, description = "topic"), ("lang" = String, Path, description = "id or en")),
    responses((status = 200, body = Template), (status = 403, body = Problem), (status = 404, body = Problem)))]
async fn reset_template(
    State(state): State<AppState>,
    caller: Caller,
    Path((topic, lang)): Path<(String, String)>,
) -> ApiResult<Json<Template>> {
    caller.require(Perm::WriteSettings)?;
    let (t, l) = topic_lang(&topic, &lang)?;
    Ok(Json(
        templates::reset(&state.db, &caller.actor(), t, l).await?,
    ))
}

/// Reminder days, site-offline delay, public URL, default language.
#[utoipa::path(get, path = "/settings/notifications", tag = "notifications", security(("bearer" = [])),
    responses((status = 200, body = NotificationSettings), (status = 403, body = Problem)))]
async fn get_settings(
    State(state): State<AppState>,
    caller: Caller,
) -> ApiResult<Json<NotificationSettings>> {
    caller.require(Perm::ReadSettings)?;
    Ok(Json(settings::get(&state.db).await?))
}

/// Replaces the notification settings.
#[utoipa::path(put, path = "/settings/notifications", tag = "notifications", security(("bearer" = [])), request_body = NotificationSettings,
    responses((status = 200, body = NotificationSettings), (status = 403, body = Problem), (status = 422, body = Problem)))]
async fn save_settings(
    State(state): State<AppState>,
    caller: Caller,
    body: Body<NotificationSettings>,
) -> ApiResult<Json<NotificationSettings>> {
    caller.require(Perm::WriteSettings)?;
    let new = body.into_inner()?;
    Ok(Json(settings::save(&state.db, &caller.actor(), new).await?))
}

/// A customer's notification preferences.
#[utoipa::path(get, path = "/customers/{id}/notification-preferences", tag = "notifications", security(("bearer" = [])), params(("id" = String, Path, description = "customer id")),
    responses((status = 200, body = Preferences), (status = 403, body = Problem), (status = 404, body = Problem)))]
async fn get_preferences(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Preferences>> {
    caller.require(Perm::ReadCustomers)?;
    Ok(Json(prefs::get(&state.db, &id).await?))
}

/// Replaces a customer's notification preferences (language, channels, opt-out, Telegram chat).
#[utoipa::path(put, path = "/customers/{id}/notification-preferences", tag = "notifications", security(("bearer" = [])), params(("id" = String, Path, description = "customer id")), request_body = Preferences,
    responses((status = 200, body = Preferences), (status = 403, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem)))]
async fn save_preferences(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    body: Body<Preferences>,
) -> ApiResult<Json<Preferences>> {
    caller.require(Perm::WriteCustomers)?;
    let new = body.into_inner()?;
    Ok(Json(
        prefs::save(&state.db, &caller.actor(), &id, new).await?,
    ))
}

/// Filters of the message log.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct NotificationQuery {
    /// `pending`, `sending`, `sent`, `dead` or `cancelled`.
    pub status: Option<String>,
    /// One channel.
    pub channel_id: Option<String>,
    /// One customer's.
    pub customer_id: Option<String>,
    /// One topic, e.g. `invoice.reminder`.
    pub topic: Option<String>,
}

/// The message log, newest first.
#[utoipa::path(get, path = "/notifications", tag = "notifications", security(("bearer" = [])), params(NotificationQuery, PageQuery),
    responses((status = 200, body = Page<Message>), (status = 403, body = Problem), (status = 422, body = Problem)))]
async fn list_notifications(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<NotificationQuery>,
    Query(page): Query<PageQuery>,
) -> ApiResult<Json<Page<Message>>> {
    caller.require(Perm::ReadCustomers)?;
    let limit = page.limit()?;
    let after = page.after()?;
    let after = if after.is_empty() {
        None
    } else {
        let (at, id) = after
            .split_once(':')
            .and_then(|(at, id)| Some((at.parse::<i64>().ok()?, id.to_string())))
            .ok_or_else(|| Problem::invalid("cursor", "is not a cursor this API handed out"))?;
        Some((at, id))
    };
    if let Some(s) = &q.status
        && !matches!(
            s.as_str(),
            "pending" | "sending" | "sent" | "dead" | "cancelled"
        )
    {
        return Err(Problem::invalid(
            "status",
            "must be pending, sending, sent, dead or cancelled",
        ));
    }
    if let Some(t) = &q.topic
        && Topic::parse(t).is_none()
    {
        return Err(Problem::invalid(
            "topic",
            format!("unknown topic {t:?}; see GET /notification-templates"),
        ));
    }
    let f = messages::Filter {
        status: q.status,
        channel_id: q.channel_id,
        customer_id: q.customer_id,
        topic: q.topic,
    };
    let items = messages::list(&state.db, &f, after, limit + 1).await?;
    Ok(Json(Page::from_overfetch(items, limit, |m| {
        format!("{}:{}", m.created_at, m.id)
    })))
}

/// One message with every delivery attempt.
#[utoipa::path(get, path = "/notifications/{id}", tag = "notifications", security(("bearer" = [])), params(("id" = String, Path, description = "notification id")),
    responses((status = 200, body = MessageDetail), (status = 403, body = Problem), (status = 404, body = Problem)))]
async fn get_notification(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<MessageDetail>> {
    caller.require(Perm::ReadCustomers)?;
    Ok(Json(messages::get(&state.db, &id).await?))
}

/// Sends a dead or cancelled message again with a fresh attempt budget.
#[utoipa::path(post, path = "/notifications/{id}/retry", tag = "notifications", security(("bearer" = [])), params(("id" = String, Path, description = "notification id")),
    responses((status = 200, body = MessageDetail), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem)))]
async fn retry_notification(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<MessageDetail>> {
    caller.require(Perm::WriteSettings)?;
    Ok(Json(
        messages::retry(&state.db, &caller.actor(), &id).await?,
    ))
}
