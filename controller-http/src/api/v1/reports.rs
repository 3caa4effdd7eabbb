//! Business figures: the dashboard's headline numbers, for integrations and monitoring.

use crate::api::extract::Caller;
use crate::server::AppState;
use crate::server::problem::{ApiResult, Problem};
use axum::Json;
use axum::extract::State;
use mikrobill_core::auth::Perm;
use mikrobill_core::stats::{self, Summary};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Routes of this module.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(summary))
}

/// The dashboard's headline figures now, in the operator's local day and month: revenue
/// (payments, cash voucher sales and reseller top-ups), vouchers sold, overdue and isolated
/// subscriptions.
#[utoipa::path(get, path = "/reports/summary", tag = "reports", security(("bearer" = [])),
    responses((status = 200, body = Summary), (status = 403, body = Problem)))]
async fn summary(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<Summary>> {
    caller.require(Perm::ReadPayments)?;
    let offset = mikrobill_core::settings::billing(&state.db)
        .await?
        .utc_offset_minutes;
    Ok(Json(
        stats::summary(&state.db, mikrobill_core::db::now_ms(), offset).await?,
    ))
}
