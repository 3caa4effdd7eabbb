//! Billing settings.

use crate::api::extract::{Body, Caller};
use crate::server::AppState;
use crate::server::problem::{ApiResult, Problem};
use axum::Json;
use axum::extract::State;
use mikrobill_core::auth::Perm;
use mikrobill_core::settings::{self, BillingSettings};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Routes of this module.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(get_billing, put_billing))
}

/// The billing settings in effect.
#[utoipa::path(get, path = "/settings/billing", tag = "settings", security(("bearer" = [])),
    responses((status = 200, body = BillingSettings), (status = 403, body = Problem)))]
async fn get_billing(
    State(state): State<AppState>,
    caller: Caller,
) -> ApiResult<Json<BillingSettings>> {
    caller.require(Perm::ReadSettings)?;
    Ok(Json(settings::billing(&state.db).await?))
}

/// Replaces the billing settings (tax, currency, timezone, terms, company); they apply to
/// invoices issued from now on.
#[utoipa::path(put, path = "/settings/billing", tag = "settings", security(("bearer" = [])), request_body = BillingSettings,
    responses((status = 200, body = BillingSettings), (status = 403, body = Problem), (status = 422, body = Problem)))]
async fn put_billing(
    State(state): State<AppState>,
    caller: Caller,
    body: Body<BillingSettings>,
) -> ApiResult<Json<BillingSettings>> {
    caller.require(Perm::WriteSettings)?;
    let new = body.into_inner()?;
    Ok(Json(
        settings::save_billing(&state.db, &caller.actor(), new).await?,
    ))
}
