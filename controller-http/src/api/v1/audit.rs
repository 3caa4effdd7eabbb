//! The audit log, read-only.

use crate::api::extract::{Caller, Query};
use crate::api::page::{Page, PageQuery};
use crate::server::AppState;
use crate::server::problem::{ApiResult, Problem};
use axum::Json;
use axum::extract::State;
use mikrobill_core::audit::{self, AuditEntry, AuditFilter};
use mikrobill_core::auth::Perm;
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Routes of this module.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_audit))
}

/// Filters of the audit log.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// Kind of record, e.g. `customer`.
    pub entity: Option<String>,
    /// One record's id.
    pub entity_id: Option<String>,
    /// One admin user's id.
    pub actor_id: Option<String>,
}

/// The audit log, newest first.
#[utoipa::path(get, path = "/audit", tag = "audit", security(("bearer" = [])), params(AuditQuery, PageQuery),
    responses((status = 200, body = Page<AuditEntry>), (status = 403, body = Problem)))]
async fn list_audit(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<AuditQuery>,
    Query(page): Query<PageQuery>,
) -> ApiResult<Json<Page<AuditEntry>>> {
    caller.require(Perm::ReadAudit)?;
    let limit = page.limit()?;
    let before_id = page.after_id()?;
    let filter = AuditFilter {
        entity: q.entity,
        entity_id: q.entity_id,
        actor_id: q.actor_id,
        before_id,
    };
    let items = audit::list(&state.db, &filter, limit + 1).await?;
    Ok(Json(Page::from_overfetch(items, limit, |e| {
        e.id.to_string()
    })))
}
