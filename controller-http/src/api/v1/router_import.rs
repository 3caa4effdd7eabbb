//! The import of a site's router (its hotspot users and PPP secrets): `POST` queues the
//! read, `GET` shows the dry run once the agent answered, `POST .../apply` imports it and
//! queues the adoption or retirement of the router entries.

use crate::api::extract::{Caller, Query};
use crate::server::AppState;
use crate::server::problem::{ApiResult, Problem};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use mikrobill_core::auth::Perm;
use mikrobill_core::db::now_ms;
use mikrobill_core::importer::router::{self, RouterImport};
use serde::Deserialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Routes of this module.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(start_router_import))
        .routes(routes!(show_router_import))
        .routes(routes!(apply_router_import))
}

/// An import creates sites' plans, customers, subscriptions and vouchers: only a caller who
/// may create all of them may run one.
fn require_import(caller: &Caller) -> Result<(), Problem> {
    for perm in [
        Perm::WriteSites,
        Perm::WritePlans,
        Perm::WriteCustomers,
        Perm::WriteSubscriptions,
        Perm::WriteVouchers,
    ] {
        caller.require(perm)?;
    }
    Ok(())
}

/// An import's id (its read command's) from the path: anything else names no import.
fn parse_import_id(id: &str) -> Result<i64, Problem> {
    id.parse()
        .map_err(|_| Problem::not_found(format!("no router import {id:?}")))
}

/// Queues the read of the site's router accounts (hotspot user profiles and users, PPP
/// profiles and secrets, who is online) by its agent; the answer's id is the import's.
#[utoipa::path(post, path = "/sites/{id}/router-import", tag = "imports", security(("bearer" = [])),
    params(("id" = String, Path, description = "site id")),
    responses((status = 202, body = RouterImport), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem)))]
async fn start_router_import(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<(StatusCode, Json<RouterImport>)> {
    require_import(&caller)?;
    let started = router::start(&state.db, &caller.actor(), &id).await?;
    Ok((StatusCode::ACCEPTED, Json(started)))
}

/// The read and, once the agent answered, the dry run: what applying it would create,
/// what an earlier run imported, and every entry skipped with its name, field and reason.
/// Nothing is written.
#[utoipa::path(get, path = "/sites/{id}/router-import/{import_id}", tag = "imports", security(("bearer" = [])),
    params(("id" = String, Path, description = "site id"), ("import_id" = i64, Path, description = "the read command's id")),
    responses((status = 200, body = RouterImport), (status = 403, body = Problem), (status = 404, body = Problem)))]
async fn show_router_import(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, import_id)): Path<(String, String)>,
) -> ApiResult<Json<RouterImport>> {
    require_import(&caller)?;
    let import_id = parse_import_id(&import_id)?;
    let shown = router::show(&state.db, &caller.actor(), &id, import_id, now_ms()).await?;
    Ok(Json(shown))
}

/// How to apply an import.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ApplyQuery {
    /// `adopt`: the agent owns the router entries from now on (API mode); `retire`: the
    /// local entries of logins that are not online are removed so RADIUS answers them.
    /// Required (optional here only so a caller without the role is told 403 first).
    pub mode: Option<String>,
}

/// Imports what the read found in one transaction and queues the adoption or retirement
/// of the imported router entries; running it again imports nothing twice.
#[utoipa::path(post, path = "/sites/{id}/router-import/{import_id}/apply", tag = "imports", security(("bearer" = [])),
    params(("id" = String, Path, description = "site id"), ("import_id" = i64, Path, description = "the read command's id"), ApplyQuery),
    responses((status = 200, body = RouterImport), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn apply_router_import(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, import_id)): Path<(String, String)>,
    Query(q): Query<ApplyQuery>,
) -> ApiResult<Json<RouterImport>> {
    require_import(&caller)?;
    let import_id = parse_import_id(&import_id)?;
    let mode = match q.mode.as_deref() {
        Some(m) => router::parse_mode(m)?,
        None => return Err(Problem::invalid("mode", "is required: adopt or retire")),
    };
    let applied = router::apply(&state.db, &caller.actor(), &id, import_id, mode, now_ms()).await?;
    Ok(Json(applied))
}
