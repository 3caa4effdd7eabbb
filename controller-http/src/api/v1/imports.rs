//! Imports from other billing systems over HTTP: the dump is the request body, the answer
//! is the report the CLI prints, as JSON. A dry run writes nothing.

use crate::api::extract::{Caller, Query};
use crate::server::AppState;
use crate::server::problem::{ApiResult, Problem};
use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::StatusCode;
use mikrobill_core::db::now_ms;
use mikrobill_core::importer::{self, ImportError, PhpnuxbillOptions, report::Report};
use serde::Deserialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The largest dump taken over HTTP (the CLI reads any size from a file); the listener lets
/// this route's bodies grow to it (`server::body::limit_for`).
pub const MAX_DUMP_BYTES: usize = 64 * 1024 * 1024;

/// Routes of this module.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(import_phpnuxbill))
}

/// How to import.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ImportQuery {
    /// Report what would be created and skipped, and write nothing.
    pub dry_run: Option<bool>,
    /// The site (existing, or created) for rows whose router is not among those imported.
    pub site_for_unassigned: Option<String>,
}

/// Imports PHPNuxBill's routers, plans, customers, active recharges and unused vouchers from
/// a `mysqldump` SQL file sent as the body (at most 64 MiB), or its customers from a customer
/// CSV export (a first line naming `id` and `username`), in one transaction; re-running
/// reports what an earlier run imported. Needs the permission to create each of those.
#[utoipa::path(post, path = "/imports/phpnuxbill", tag = "imports", security(("bearer" = [])), params(ImportQuery),
    request_body(content = String, content_type = "text/plain", description = "The mysqldump SQL file or the customer CSV export (any content type; the first line tells which)"),
    responses((status = 200, body = Report), (status = 403, body = Problem), (status = 413, body = Problem), (status = 422, body = Problem)))]
async fn import_phpnuxbill(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<ImportQuery>,
    body: Body,
) -> ApiResult<Json<Report>> {
    for perm in importer::PERMS {
        caller.require(perm)?;
    }
    // Read only after the role check: a caller who may not import never uploads 64 MiB.
    let body = axum::body::to_bytes(body, MAX_DUMP_BYTES)
        .await
        .map_err(|_| {
            Problem::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "too_large",
                format!(
                    "the dump is larger than {} MiB or was cut off: use `mikrobill-controller import phpnuxbill FILE`",
                    MAX_DUMP_BYTES / (1024 * 1024)
                ),
            )
        })?;
    let report = importer::import_phpnuxbill(
        &state.db,
        &caller.actor(),
        std::io::Cursor::new(body),
        PhpnuxbillOptions {
            dry_run: q.dry_run.unwrap_or(false),
            site_for_unassigned: q.site_for_unassigned,
        },
        now_ms(),
    )
    .await
    .map_err(|e| match e {
        e @ ImportError::Dump(_) => Problem::invalid("body", e.to_string()),
        ImportError::Domain(d) => Problem::from(d),
    })?;
    Ok(Json(report))
}
