//! Offline double use: the conflicts ingest found when records from several sites showed a
//! voucher used beyond its plan, newest first.

use crate::api::extract::{Caller, Query};
use crate::api::page::{Page, PageQuery};
use crate::server::AppState;
use crate::server::problem::{ApiResult, Problem};
use axum::Json;
use axum::extract::State;
use mikrobill_core::auth::Perm;
use mikrobill_core::error::DomainError;
use mikrobill_core::vouchers::conflict::ConflictKind;
use mikrobill_core::vouchers::conflicts::{self, ConflictFilter, ConflictRecord};
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Routes of this module.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_conflicts))
}

/// Filters of the conflict list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ConflictQuery {
    /// One voucher's.
    pub voucher_code: Option<String>,
    /// One kind: `over_budget`, `too_many_devices` or `mac_lock`.
    pub kind: Option<String>,
    /// Those involving this site.
    pub site_id: Option<String>,
}

/// Lists voucher conflicts (a voucher used beyond its plan across sites), newest first.
#[utoipa::path(get, path = "/voucher-conflicts", tag = "vouchers", security(("bearer" = [])), params(ConflictQuery, PageQuery),
    responses((status = 200, body = Page<ConflictRecord>), (status = 403, body = Problem), (status = 422, body = Problem)))]
async fn list_conflicts(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<ConflictQuery>,
    Query(page): Query<PageQuery>,
) -> ApiResult<Json<Page<ConflictRecord>>> {
    caller.require(Perm::ReadVouchers)?;
    let kind = q
        .kind
        .as_deref()
        .filter(|k| !k.is_empty())
        .map(|k| {
            ConflictKind::parse(k).ok_or_else(|| {
                DomainError::invalid("kind", "must be over_budget, too_many_devices or mac_lock")
            })
        })
        .transpose()?;
    let filter = ConflictFilter {
        voucher_code: q.voucher_code.filter(|c| !c.is_empty()),
        kind,
        site_id: q.site_id.filter(|s| !s.is_empty()),
    };
    let limit = page.limit()?;
    let items = conflicts::list(&state.db, &filter, &page.after()?, limit + 1).await?;
    Ok(Json(Page::from_overfetch(
        items,
        limit,
        ConflictRecord::key,
    )))
}
