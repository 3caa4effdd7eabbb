//! Invoices: list, read, void.

use crate::api::extract::{Body, Caller, Query};
use crate::api::page::{Page, PageQuery};
use crate::server::AppState;
use crate::server::problem::{ApiResult, Problem};
use axum::Json;
use axum::extract::{Path, State};
use mikrobill_core::auth::Perm;
use mikrobill_core::billing::invoices::{self, Invoice, InvoiceFilter, InvoiceStatus};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Routes of this module.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_invoices))
        .routes(routes!(get_invoice))
        .routes(routes!(void_invoice))
}

/// Filters of the invoice list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct InvoiceQuery {
    /// One customer's.
    pub customer_id: Option<String>,
    /// One subscription's.
    pub subscription_id: Option<String>,
    /// One status.
    pub status: Option<InvoiceStatus>,
    /// Only unpaid invoices past their due date.
    #[serde(default)]
    pub overdue: bool,
}

/// Lists invoices, newest number first (lines omitted).
#[utoipa::path(get, path = "/invoices", tag = "invoices", security(("bearer" = [])), params(InvoiceQuery, PageQuery),
    responses((status = 200, body = Page<Invoice>), (status = 403, body = Problem)))]
async fn list_invoices(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<InvoiceQuery>,
    Query(page): Query<PageQuery>,
) -> ApiResult<Json<Page<Invoice>>> {
    caller.require(Perm::ReadInvoices)?;
    let limit = page.limit()?;
    let f = InvoiceFilter {
        customer_id: q.customer_id,
        subscription_id: q.subscription_id,
        status: q.status,
        overdue: q.overdue,
    };
    let items = invoices::list(&state.db, &f, &page.after()?, limit + 1).await?;
    Ok(Json(Page::from_overfetch(items, limit, |i| {
        i.number.clone()
    })))
}

/// One invoice with its lines.
#[utoipa::path(get, path = "/invoices/{id}", tag = "invoices", security(("bearer" = [])), params(("id" = String, Path, description = "invoice id")),
    responses((status = 200, body = Invoice), (status = 403, body = Problem), (status = 404, body = Problem)))]
async fn get_invoice(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Invoice>> {
    caller.require(Perm::ReadInvoices)?;
    Ok(Json(invoices::get(&state.db, &id).await?))
}

/// Why an invoice is voided.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VoidRequest {
    /// Reason, kept in the audit log.
    pub reason: String,
}

/// Voids an unpaid invoice that received no payment; its number stays used.
#[utoipa::path(post, path = "/invoices/{id}/void", tag = "invoices", security(("bearer" = [])), params(("id" = String, Path, description = "invoice id")), request_body = VoidRequest,
    responses((status = 200, body = Invoice), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem)))]
async fn void_invoice(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    body: Body<VoidRequest>,
) -> ApiResult<Json<Invoice>> {
    caller.require(Perm::WriteInvoices)?;
    let req = body.into_inner()?;
    Ok(Json(
        invoices::void(&state.db, &caller.actor(), &id, &req.reason).await?,
    ))
}
