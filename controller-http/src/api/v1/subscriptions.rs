//! PPPoE subscriptions: create, change, change plan, isolate, re-activate, terminate.

use crate::api::extract::{Body, Caller, Query};
use crate::api::page::{Page, PageQuery};
use crate::server::AppState;
use crate::server::problem::{ApiResult, Problem};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use mikrobill_core::auth::Perm;
use mikrobill_core::subscriptions::{
    self, Subscription, SubscriptionFilter, SubscriptionInput, SubscriptionPatch,
    SubscriptionStatus,
};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Routes of this module.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_subscriptions, create_subscription))
        .routes(routes!(get_subscription, update_subscription))
        .routes(routes!(change_plan))
        .routes(routes!(isolate))
        .routes(routes!(reactivate))
        .routes(routes!(terminate))
}

/// Filters of the subscription list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SubscriptionQuery {
    /// One customer's.
    pub customer_id: Option<String>,
    /// One site's.
    pub site_id: Option<String>,
    /// One status.
    pub status: Option<SubscriptionStatus>,
    /// User names starting with this.
    pub q: Option<String>,
}

/// Lists subscriptions by PPPoE user name.
#[utoipa::path(get, path = "/subscriptions", tag = "subscriptions", security(("bearer" = [])), params(SubscriptionQuery, PageQuery),
    responses((status = 200, body = Page<Subscription>), (status = 403, body = Problem)))]
async fn list_subscriptions(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<SubscriptionQuery>,
    Query(page): Query<PageQuery>,
) -> ApiResult<Json<Page<Subscription>>> {
    caller.require(Perm::ReadSubscriptions)?;
    let limit = page.limit()?;
    let f = SubscriptionFilter {
        customer_id: q.customer_id,
        site_id: q.site_id,
        status: q.status,
        q: q.q.filter(|s| !s.is_empty()),
    };
    let items = subscriptions::list(&state.db, &f, &page.after()?, limit + 1).await?;
    Ok(Json(Page::from_overfetch(items, limit, |s| {
        s.username.clone()
    })))
}

/// Creates a subscription; the account reaches the site's agent and the first (prorated)
/// invoice is issued.
#[utoipa::path(post, path = "/subscriptions", tag = "subscriptions", security(("bearer" = [])), request_body = SubscriptionInput,
    responses((status = 201, body = Subscription), (status = 403, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn create_subscription(
    State(state): State<AppState>,
    caller: Caller,
    body: Body<SubscriptionInput>,
) -> ApiResult<(StatusCode, Json<Subscription>)> {
    caller.require(Perm::WriteSubscriptions)?;
    let input = body.into_inner()?;
    Ok((
        StatusCode::CREATED,
        Json(subscriptions::create(&state.db, &caller.actor(), input).await?),
    ))
}

/// One subscription.
#[utoipa::path(get, path = "/subscriptions/{id}", tag = "subscriptions", security(("bearer" = [])), params(("id" = String, Path, description = "subscription id")),
    responses((status = 200, body = Subscription), (status = 403, body = Problem), (status = 404, body = Problem)))]
async fn get_subscription(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Subscription>> {
    caller.require(Perm::ReadSubscriptions)?;
    Ok(Json(subscriptions::get(&state.db, &id).await?))
}

/// Changes account details (password, fixed IP, site, terms).
#[utoipa::path(patch, path = "/subscriptions/{id}", tag = "subscriptions", security(("bearer" = [])), params(("id" = String, Path, description = "subscription id")), request_body = SubscriptionPatch,
    responses((status = 200, body = Subscription), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn update_subscription(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    body: Body<SubscriptionPatch>,
) -> ApiResult<Json<Subscription>> {
    caller.require(Perm::WriteSubscriptions)?;
    let patch = body.into_inner()?;
    Ok(Json(
        subscriptions::update(&state.db, &caller.actor(), &id, patch).await?,
    ))
}

/// The plan to move to.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangePlan {
    /// A PPPoE plan.
    pub plan_id: String,
}

/// Moves the subscription to another plan today, with a proration invoice or credit.
#[utoipa::path(post, path = "/subscriptions/{id}/change-plan", tag = "subscriptions", security(("bearer" = [])), params(("id" = String, Path, description = "subscription id")), request_body = ChangePlan,
    responses((status = 200, body = Subscription), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn change_plan(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    body: Body<ChangePlan>,
) -> ApiResult<Json<Subscription>> {
    caller.require(Perm::WriteSubscriptions)?;
    let req = body.into_inner()?;
    Ok(Json(
        subscriptions::change_plan(&state.db, &caller.actor(), &id, &req.plan_id).await?,
    ))
}

/// Isolates the subscription by hand (an operator lifts it).
#[utoipa::path(post, path = "/subscriptions/{id}/isolate", tag = "subscriptions", security(("bearer" = [])), params(("id" = String, Path, description = "subscription id")),
    responses((status = 200, body = Subscription), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem)))]
async fn isolate(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Subscription>> {
    caller.require(Perm::WriteSubscriptions)?;
    Ok(Json(
        subscriptions::isolate(&state.db, &caller.actor(), &id).await?,
    ))
}

/// Re-activates an isolated subscription.
#[utoipa::path(post, path = "/subscriptions/{id}/reactivate", tag = "subscriptions", security(("bearer" = [])), params(("id" = String, Path, description = "subscription id")),
    responses((status = 200, body = Subscription), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem)))]
async fn reactivate(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Subscription>> {
    caller.require(Perm::WriteSubscriptions)?;
    Ok(Json(
        subscriptions::reactivate(&state.db, &caller.actor(), &id).await?,
    ))
}

/// Terminates the subscription: no more invoices; the account leaves the router.
#[utoipa::path(post, path = "/subscriptions/{id}/terminate", tag = "subscriptions", security(("bearer" = [])), params(("id" = String, Path, description = "subscription id")),
    responses((status = 200, body = Subscription), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem)))]
async fn terminate(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Subscription>> {
    caller.require(Perm::WriteSubscriptions)?;
    Ok(Json(
        subscriptions::terminate(&state.db, &caller.actor(), &id).await?,
    ))
}
