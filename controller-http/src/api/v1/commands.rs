//! The per-site command queue: list, read, queue a kick or a router re-sync by hand.

use crate::api::extract::{Body, Caller, Query};
use crate::api::page::{Page, PageQuery};
use crate::server::AppState;
use crate::server::problem::{ApiResult, Problem};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use mikrobill_core::auth::Perm;
use mikrobill_core::commands::{self, CommandFilter, CommandStatus, QueuedCommand};
use mikrobill_protocol::messages::Command;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Routes of this module.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_commands))
        .routes(routes!(get_command))
        .routes(routes!(queue_command))
        .routes(routes!(kick_subscription))
}

/// Filters of the command list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CommandQuery {
    /// One site's.
    pub site_id: Option<String>,
    /// One subscription's.
    pub subscription_id: Option<String>,
    /// One status.
    pub status: Option<CommandStatus>,
}

/// Lists commands, newest first, with their results.
#[utoipa::path(get, path = "/commands", tag = "commands", security(("bearer" = [])), params(CommandQuery, PageQuery),
    responses((status = 200, body = Page<QueuedCommand>), (status = 403, body = Problem)))]
async fn list_commands(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<CommandQuery>,
    Query(page): Query<PageQuery>,
) -> ApiResult<Json<Page<QueuedCommand>>> {
    caller.require(Perm::ReadSites)?;
    let limit = page.limit()?;
    let before = page.after_id()?;
    let f = CommandFilter {
        site_id: q.site_id,
        subscription_id: q.subscription_id,
        status: q.status,
    };
    let items = commands::list(&state.db, &f, before, limit + 1).await?;
    Ok(Json(Page::from_overfetch(items, limit, |c| {
        c.id.to_string()
    })))
}

/// One command with its result.
#[utoipa::path(get, path = "/commands/{id}", tag = "commands", security(("bearer" = [])), params(("id" = i64, Path, description = "command id")),
    responses((status = 200, body = QueuedCommand), (status = 403, body = Problem), (status = 404, body = Problem)))]
async fn get_command(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<QueuedCommand>> {
    caller.require(Perm::ReadSites)?;
    let id: i64 = id
        .parse()
        .map_err(|_| Problem::not_found(format!("no command {id:?}")))?;
    Ok(Json(commands::get(&state.db, id).await?))
}

/// What to queue for a site.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "snake_case", tag = "kind")]
pub enum ManualCommand {
    /// End an account's sessions on the site's router.
    Disconnect {
        /// The account (PPPoE user name or voucher code).
        username: String,
    },
    /// Re-apply the router configuration the agent manages.
    ResyncRouter,
}

/// A manual command and how long it may wait for an offline site.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QueueRequest {
    /// The command.
    pub command: ManualCommand,
    /// Seconds it may wait for the site (default 86400, at most 7 days).
    pub ttl_secs: Option<u32>,
}

async fn queue(
    state: &AppState,
    caller: &Caller,
    site_id: &str,
    sub: Option<&str>,
    command: Command,
    ttl_secs: Option<u32>,
) -> ApiResult<QueuedCommand> {
    Ok(commands::queue_manual(&state.db, &caller.actor(), site_id, sub, command, ttl_secs).await?)
}

/// Queues a command for a site's agent; it is delivered when the site is connected.
#[utoipa::path(post, path = "/sites/{id}/commands", tag = "commands", security(("bearer" = [])), params(("id" = String, Path, description = "site id")), request_body = QueueRequest,
    responses((status = 201, body = QueuedCommand), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn queue_command(
    State(state): State<AppState>,
    caller: Caller,
    Path(site_id): Path<String>,
    body: Body<QueueRequest>,
) -> ApiResult<(StatusCode, Json<QueuedCommand>)> {
    caller.require(Perm::WriteSites)?;
    let req = body.into_inner()?;
    let command = match req.command {
        ManualCommand::Disconnect { username } => Command::Disconnect { username },
        ManualCommand::ResyncRouter => Command::ResyncRouter,
    };
    Ok((
        StatusCode::CREATED,
        Json(queue(&state, &caller, &site_id, None, command, req.ttl_secs).await?),
    ))
}

/// Kicks a subscription's running sessions (they log in again with the current settings).
#[utoipa::path(post, path = "/subscriptions/{id}/kick", tag = "commands", security(("bearer" = [])), params(("id" = String, Path, description = "subscription id")),
    responses((status = 201, body = QueuedCommand), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem)))]
async fn kick_subscription(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<(StatusCode, Json<QueuedCommand>)> {
    caller.require(Perm::WriteSubscriptions)?;
    let sub = mikrobill_core::subscriptions::get(&state.db, &id).await?;
    let command = Command::Disconnect {
        username: sub.username.clone(),
    };
    Ok((
        StatusCode::CREATED,
        Json(queue(&state, &caller, &sub.site_id, Some(&sub.id), command, None).await?),
    ))
}
