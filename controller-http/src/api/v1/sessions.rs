//! Who is online: the live sessions the controller knows from accounting. Kicking one goes
//! through the command queue (`POST /sites/{id}/commands` with a `disconnect`).

use crate::api::extract::{Caller, Query};
use crate::api::page::{Page, PageQuery};
use crate::server::AppState;
use crate::server::problem::{ApiResult, Problem};
use axum::Json;
use axum::extract::State;
use mikrobill_core::auth::Perm;
use mikrobill_core::db::now_ms;
use mikrobill_core::usage::online::{self, OnlineSession};
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Routes of this module.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_sessions))
}

/// Filters of the session list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SessionQuery {
    /// One site's.
    pub site_id: Option<String>,
}

/// Lists open sessions heard of lately (no Stop, last record within 2.5 interim intervals),
/// by site, NAS and session id.
#[utoipa::path(get, path = "/sessions", tag = "sessions", security(("bearer" = [])), params(SessionQuery, PageQuery),
    responses((status = 200, body = Page<OnlineSession>), (status = 403, body = Problem), (status = 422, body = Problem)))]
async fn list_sessions(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<SessionQuery>,
    Query(page): Query<PageQuery>,
) -> ApiResult<Json<Page<OnlineSession>>> {
    caller.require(Perm::ReadSites)?;
    let limit = page.limit()?;
    let items = online::list(
        &state.db,
        q.site_id.as_deref(),
        &page.after()?,
        limit + 1,
        now_ms(),
    )
    .await?;
    Ok(Json(Page::from_overfetch(items, limit, OnlineSession::key)))
}
