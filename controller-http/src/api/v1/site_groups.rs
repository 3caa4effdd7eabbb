//! Site groups, the sets of sites a voucher batch can be scoped to.

use crate::api::extract::{Body, Caller, Query};
use crate::api::page::{Page, PageQuery};
use crate::server::AppState;
use crate::server::problem::{ApiResult, Problem};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use mikrobill_core::auth::Perm;
use mikrobill_core::site_groups::{self, SiteGroup};
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Routes of this module.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_groups, create_group))
        .routes(routes!(get_group))
        .routes(routes!(add_site, remove_site))
}

/// Lists site groups by name, with their member sites.
#[utoipa::path(get, path = "/site-groups", tag = "site-groups", security(("bearer" = [])), params(PageQuery),
    responses((status = 200, body = Page<SiteGroup>), (status = 403, body = Problem), (status = 422, body = Problem)))]
async fn list_groups(
    State(state): State<AppState>,
    caller: Caller,
    Query(page): Query<PageQuery>,
) -> ApiResult<Json<Page<SiteGroup>>> {
    caller.require(Perm::ReadSites)?;
    let limit = page.limit()?;
    let items = site_groups::list(&state.db, &page.after()?, limit + 1).await?;
    Ok(Json(Page::from_overfetch(items, limit, |g| g.name.clone())))
}

/// A new site group.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateGroup {
    /// Unique name (1-64 characters).
    pub name: String,
}

/// Creates an empty site group.
#[utoipa::path(post, path = "/site-groups", tag = "site-groups", security(("bearer" = [])), request_body = CreateGroup,
    responses((status = 201, body = SiteGroup), (status = 403, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn create_group(
    State(state): State<AppState>,
    caller: Caller,
    body: Body<CreateGroup>,
) -> ApiResult<(StatusCode, Json<SiteGroup>)> {
    caller.require(Perm::WriteSites)?;
    let req = body.into_inner()?;
    let group = site_groups::create(&state.db, &caller.actor(), &req.name).await?;
    Ok((StatusCode::CREATED, Json(group)))
}

/// One site group with its member sites.
#[utoipa::path(get, path = "/site-groups/{id}", tag = "site-groups", security(("bearer" = [])),
    params(("id" = String, Path, description = "site group id")),
    responses((status = 200, body = SiteGroup), (status = 403, body = Problem), (status = 404, body = Problem)))]
async fn get_group(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<SiteGroup>> {
    caller.require(Perm::ReadSites)?;
    Ok(Json(site_groups::get(&state.db, &id).await?))
}

/// Adds a site to a group: the group's vouchers are synced to the site's agent. Adding a
/// member again changes nothing.
#[utoipa::path(put, path = "/site-groups/{id}/sites/{site_id}", tag = "site-groups", security(("bearer" = [])),
    params(("id" = String, Path, description = "site group id"), ("site_id" = String, Path, description = "site id")),
    responses((status = 200, body = SiteGroup), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem)))]
async fn add_site(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, site_id)): Path<(String, String)>,
) -> ApiResult<Json<SiteGroup>> {
    caller.require(Perm::WriteSites)?;
    Ok(Json(
        site_groups::add_site(&state.db, &caller.actor(), &id, &site_id).await?,
    ))
}

/// Removes a site from a group: the group's vouchers are deleted from the site's agent.
#[utoipa::path(delete, path = "/site-groups/{id}/sites/{site_id}", tag = "site-groups", security(("bearer" = [])),
    params(("id" = String, Path, description = "site group id"), ("site_id" = String, Path, description = "site id")),
    responses((status = 200, body = SiteGroup), (status = 403, body = Problem), (status = 404, body = Problem)))]
async fn remove_site(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, site_id)): Path<(String, String)>,
) -> ApiResult<Json<SiteGroup>> {
    caller.require(Perm::WriteSites)?;
    Ok(Json(
        site_groups::remove_site(&state.db, &caller.actor(), &id, &site_id).await?,
    ))
}
