//! Customers.

use crate::api::extract::{Body, Caller, Query};
use crate::api::page::{Page, PageQuery};
use crate::server::AppState;
use crate::server::problem::{ApiResult, Problem};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use mikrobill_core::auth::Perm;
use mikrobill_core::customers::{self, Customer, CustomerFilter, CustomerInput, CustomerPatch};
use mikrobill_core::payments::{self, CreditApplied};
use mikrobill_core::portal::credentials::{self, PortalPasswordInput, PortalPasswordSet};
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Routes of this module.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_customers, create_customer))
        .routes(routes!(get_customer, update_customer))
        .routes(routes!(set_portal_password))
        .routes(routes!(apply_credit))
}

/// Filters of the customer list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CustomerQuery {
    /// Text in the name, customer number, phone or e-mail.
    pub q: Option<String>,
}

/// Lists customers by customer number.
#[utoipa::path(get, path = "/customers", tag = "customers", security(("bearer" = [])), params(CustomerQuery, PageQuery),
    responses((status = 200, body = Page<Customer>), (status = 403, body = Problem)))]
async fn list_customers(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<CustomerQuery>,
    Query(page): Query<PageQuery>,
) -> ApiResult<Json<Page<Box<serde_json::value::RawValue>>>> {
    caller.require(Perm::ReadCustomers)?;
    let limit = page.limit()?;
    let filter = CustomerFilter {
        q: q.q.filter(|s| !s.trim().is_empty()),
    };
    let items = customers::list_json(&state.db, &filter, &page.after()?, limit + 1).await?;
    Ok(Json(Page::from_overfetch_json(items, limit, "number")))
}

/// Creates a customer; the customer number is assigned.
#[utoipa::path(post, path = "/customers", tag = "customers", security(("bearer" = [])), request_body = CustomerInput,
    responses((status = 201, body = Customer), (status = 403, body = Problem), (status = 422, body = Problem)))]
async fn create_customer(
    State(state): State<AppState>,
    caller: Caller,
    body: Body<CustomerInput>,
) -> ApiResult<(StatusCode, Json<Customer>)> {
    caller.require(Perm::WriteCustomers)?;
    let input = body.into_inner()?;
    Ok((
        StatusCode::CREATED,
        Json(customers::create(&state.db, &caller.actor(), input).await?),
    ))
}

/// One customer.
#[utoipa::path(get, path = "/customers/{id}", tag = "customers", security(("bearer" = [])), params(("id" = String, Path, description = "customer id")),
    responses((status = 200, body = Customer), (status = 403, body = Problem), (status = 404, body = Problem)))]
async fn get_customer(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Customer>> {
    caller.require(Perm::ReadCustomers)?;
    Ok(Json(customers::get(&state.db, &id).await?))
}

/// Changes a customer; absent fields stay, empty strings clear.
#[utoipa::path(patch, path = "/customers/{id}", tag = "customers", security(("bearer" = [])), params(("id" = String, Path, description = "customer id")), request_body = CustomerPatch,
    responses((status = 200, body = Customer), (status = 403, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem)))]
async fn update_customer(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    body: Body<CustomerPatch>,
) -> ApiResult<Json<Customer>> {
    caller.require(Perm::WriteCustomers)?;
    let patch = body.into_inner()?;
    Ok(Json(
        customers::update(&state.db, &caller.actor(), &id, patch).await?,
    ))
}

/// Sets or resets the customer's password for the customer portal and ends their portal
/// sessions. Send `{"password": "..."}` to choose it, or `{}` to have one generated; a
/// generated password is returned this once and never again.
#[utoipa::path(put, path = "/customers/{id}/portal-password", tag = "customers", security(("bearer" = [])), params(("id" = String, Path, description = "customer id")), request_body = PortalPasswordInput,
    responses((status = 200, body = PortalPasswordSet), (status = 403, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem)))]
async fn set_portal_password(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    body: Body<PortalPasswordInput>,
) -> ApiResult<Json<PortalPasswordSet>> {
    caller.require(Perm::WriteCustomers)?;
    let input = body.into_inner()?;
    Ok(Json(
        credentials::set_password(&state.db, &caller.actor(), &id, input).await?,
    ))
}

/// Pays the customer's credit (balance) into their open invoices now, oldest due first, and
/// re-activates subscriptions that leaves with nothing overdue. Credit is also applied by
/// itself when an invoice is issued, when a plan downgrade credits the customer and before
/// the isolation sweep; this is for credit that arrived another way. A body is not needed.
#[utoipa::path(post, path = "/customers/{id}/apply-credit", tag = "customers", security(("bearer" = [])), params(("id" = String, Path, description = "customer id")),
    responses((status = 200, body = CreditApplied), (status = 403, body = Problem), (status = 404, body = Problem)))]
async fn apply_credit(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<CreditApplied>> {
    caller.require(Perm::WritePayments)?;
    Ok(Json(
        payments::apply_customer_credit(&state.db, &caller.actor(), &id).await?,
    ))
}
