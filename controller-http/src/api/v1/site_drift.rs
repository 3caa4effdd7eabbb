//! Router drift of a site: its status (clean, drifted, unknown) with the agent's recent
//! reports, and the operator's repair (a full reconciliation that also writes the router's
//! RADIUS/AAA settings back), which may be queued by whoever may queue router commands.

use crate::api::extract::{Caller, Query};
use crate::server::AppState;
use crate::server::problem::{ApiResult, Problem};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use mikrobill_core::auth::Perm;
use mikrobill_core::commands::QueuedCommand;
use mikrobill_core::site_drift::{self, SiteDrift};
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Routes of this module.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_drift))
        .routes(routes!(repair_drift))
}

/// How much history to show.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DriftQuery {
    /// Reports to include, newest first (1 to 200, default 20).
    pub limit: Option<u32>,
}

/// A site's router drift: whether its router was changed by hand (owned items changed,
/// removed or shadowed, RADIUS/AAA settings changed) as its agent last reported, and the
/// recent reports.
#[utoipa::path(get, path = "/sites/{id}/drift", tag = "sites", security(("bearer" = [])),
    params(("id" = String, Path, description = "site id"), DriftQuery),
    responses((status = 200, body = SiteDrift), (status = 403, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem)))]
async fn get_drift(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Query(q): Query<DriftQuery>,
) -> ApiResult<Json<SiteDrift>> {
    caller.require(Perm::ReadSites)?;
    let limit = q.limit.unwrap_or(site_drift::HISTORY_SHOWN);
    Ok(Json(site_drift::status(&state.db, &id, limit).await?))
}

/// Queues the repair of a site's drift: the agent reconciles everything it owns and writes
/// its RADIUS/AAA settings back (a `resync_router` command).
#[utoipa::path(post, path = "/sites/{id}/drift/repair", tag = "sites", security(("bearer" = [])),
    params(("id" = String, Path, description = "site id")),
    responses((status = 201, body = QueuedCommand), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem)))]
async fn repair_drift(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<(StatusCode, Json<QueuedCommand>)> {
    caller.require(Perm::WriteSites)?;
    Ok((
        StatusCode::CREATED,
        Json(site_drift::queue_repair(&state.db, &caller.actor(), &id).await?),
    ))
}
