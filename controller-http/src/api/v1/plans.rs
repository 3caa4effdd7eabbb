//! Service plans.

use crate::api::extract::{Body, Caller, Query};
use crate::api::page::{Page, PageQuery};
use crate::server::AppState;
use crate::server::problem::{ApiResult, Problem};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use mikrobill_core::auth::Perm;
use mikrobill_core::plans::{self, PlanInfo, PlanInput, PlanKind};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Routes of this module.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_plans, create_plan))
        .routes(routes!(get_plan, update_plan))
        .routes(routes!(archive_plan))
}

/// Filters of the plan list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PlanQuery {
    /// Only hotspot or only PPPoE plans.
    pub kind: Option<PlanKind>,
    /// Include archived plans.
    #[serde(default)]
    pub archived: bool,
}

/// Lists plans by name.
#[utoipa::path(get, path = "/plans", tag = "plans", security(("bearer" = [])), params(PlanQuery, PageQuery),
    responses((status = 200, body = Page<PlanInfo>), (status = 403, body = Problem)))]
async fn list_plans(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<PlanQuery>,
    Query(page): Query<PageQuery>,
) -> ApiResult<Json<Page<PlanInfo>>> {
    caller.require(Perm::ReadPlans)?;
    let limit = page.limit()?;
    let items = plans::list(&state.db, q.kind, q.archived, &page.after()?, limit + 1).await?;
    Ok(Json(Page::from_overfetch(items, limit, |p| p.name.clone())))
}

/// Creates a plan; it reaches every site's cache.
#[utoipa::path(post, path = "/plans", tag = "plans", security(("bearer" = [])), request_body = PlanInput,
    responses((status = 201, body = PlanInfo), (status = 403, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn create_plan(
    State(state): State<AppState>,
    caller: Caller,
    body: Body<PlanInput>,
) -> ApiResult<(StatusCode, Json<PlanInfo>)> {
    caller.require(Perm::WritePlans)?;
    let input = body.into_inner()?;
    Ok((
        StatusCode::CREATED,
        Json(plans::create_from(&state.db, &caller.actor(), input).await?),
    ))
}

/// One plan.
#[utoipa::path(get, path = "/plans/{id}", tag = "plans", security(("bearer" = [])), params(("id" = String, Path, description = "plan id")),
    responses((status = 200, body = PlanInfo), (status = 403, body = Problem), (status = 404, body = Problem)))]
async fn get_plan(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<PlanInfo>> {
    caller.require(Perm::ReadPlans)?;
    Ok(Json(plans::get(&state.db, &id).await?))
}

/// Replaces a plan's fields; the new limits reach every site.
#[utoipa::path(put, path = "/plans/{id}", tag = "plans", security(("bearer" = [])), params(("id" = String, Path, description = "plan id")), request_body = PlanInput,
    responses((status = 200, body = PlanInfo), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn update_plan(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    body: Body<PlanInput>,
) -> ApiResult<Json<PlanInfo>> {
    caller.require(Perm::WritePlans)?;
    let input = body.into_inner()?;
    Ok(Json(
        plans::update(&state.db, &caller.actor(), &id, input).await?,
    ))
}

/// Archive flag.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Archive {
    /// True archives, false restores.
    pub archived: bool,
}

/// Archives (no new sales) or restores a plan.
#[utoipa::path(post, path = "/plans/{id}/archive", tag = "plans", security(("bearer" = [])), params(("id" = String, Path, description = "plan id")), request_body = Archive,
    responses((status = 200, body = PlanInfo), (status = 403, body = Problem), (status = 404, body = Problem)))]
async fn archive_plan(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    body: Body<Archive>,
) -> ApiResult<Json<PlanInfo>> {
    caller.require(Perm::WritePlans)?;
    let a = body.into_inner()?;
    Ok(Json(
        plans::set_archived(&state.db, &caller.actor(), &id, a.archived).await?,
    ))
}
