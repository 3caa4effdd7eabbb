//! Invoice pages: the list (status and overdue filters, newest number first, keyset pages)
//! and one invoice as a printable document.

use super::ctx::Ctx;
use super::ctx::not_found;
use super::error::WebError;
use super::form::Form;
use super::form_values::opt;
use crate::server::AppState;
use crate::web::pager::{PAGE_ROWS, Pager};
use axum::extract::{Path, Query, State};
use axum::response::Response;
use mikrobill_core::auth::Perm;
use mikrobill_core::billing::invoices::{self, Invoice, InvoiceFilter, InvoiceStatus};
use mikrobill_core::customers::{self, Customer};
use serde::Deserialize;
use std::collections::HashMap;

/// Filters of the list.
#[derive(Debug, Default, Deserialize)]
pub struct InvoiceQuery {
    status: Option<String>,
    overdue: Option<String>,
    customer: Option<String>,
    after: Option<String>,
}

#[derive(askama::Template)]
#[template(path = "admin/invoices.html")]
struct ListPage<'a> {
    c: &'a Ctx,
    invoices: Vec<Invoice>,
    customers: HashMap<String, Customer>,
    f: InvoiceQuery,
    pager: Pager,
}

impl ListPage<'_> {
    fn customer_name(&self, id: &str) -> String {
        self.customers
            .get(id)
            .map(|c| c.name.clone())
            .unwrap_or_default()
    }

    fn selected(&self, value: &str) -> bool {
        self.f.status.as_deref() == Some(value)
    }
}

/// `GET /invoices`.
pub async fn list(
    State(state): State<AppState>,
    c: Ctx,
    Query(f): Query<InvoiceQuery>,
) -> Result<Response, WebError> {
    c.require(Perm::ReadInvoices)?;
    let status = match opt(&f.status).as_deref() {
        Some("unpaid") => Some(InvoiceStatus::Unpaid),
        Some("paid") => Some(InvoiceStatus::Paid),
        Some("void") => Some(InvoiceStatus::Void),
        Some(_) => return Err(WebError::BadRequest(c.lang, "status".into())),
        None => None,
    };
    let filter = InvoiceFilter {
        customer_id: opt(&f.customer),
        subscription_id: None,
        status,
        overdue: opt(&f.overdue).is_some(),
    };
    let after = opt(&f.after).unwrap_or_default();
    let mut invoices = invoices::list(&state.db, &filter, &after, PAGE_ROWS + 1).await?;
    let fields = [
        ("status", f.status.as_deref().unwrap_or("")),
        ("overdue", f.overdue.as_deref().unwrap_or("")),
        ("customer", f.customer.as_deref().unwrap_or("")),
    ];
    let pager = Pager::split(&mut invoices, &fields, &after, |i| i.number.clone());
    let ids: Vec<String> = invoices.iter().map(|i| i.customer_id.clone()).collect();
    let customers = customers::by_ids(&state.db, &ids).await?;
    Ok(c.render(&ListPage {
        c: &c,
        invoices,
        customers,
        f,
        pager,
    }))
}

#[derive(askama::Template)]
#[template(path = "admin/invoice.html")]
struct InvoicePage<'a> {
    c: &'a Ctx,
    i: Invoice,
    customer: Customer,
    tax_percent: String,
}

/// `GET /invoices/{id}`: the invoice as a document, with print CSS.
pub async fn show(
    State(state): State<AppState>,
    c: Ctx,
    Path(id): Path<String>,
) -> Result<Response, WebError> {
    c.require(Perm::ReadInvoices)?;
    let i = invoices::get(&state.db, &id)
        .await
        .map_err(|e| not_found(&c, e))?;
    let customer = customers::get(&state.db, &i.customer_id).await?;
    let tax_percent = format!("{}.{:02} %", i.tax_rate_bp / 100, i.tax_rate_bp % 100);
    Ok(c.render(&InvoicePage {
        c: &c,
        i,
        customer,
        tax_percent,
    }))
}

/// The void form.
#[derive(Debug, Deserialize)]
pub struct VoidFields {
    #[serde(default)]
    reason: String,
}

/// `POST /invoices/{id}/void`: cancels an unpaid invoice (the domain refuses paid ones).
pub async fn void(
    State(state): State<AppState>,
    c: Ctx,
    Path(id): Path<String>,
    form: Form<VoidFields>,
) -> Result<Response, WebError> {
    c.require(Perm::WriteInvoices)?;
    let f = form.fields().map_err(|e| WebError::BadRequest(c.lang, e))?;
    let back = format!("/invoices/{id}");
    let result = invoices::void(&state.db, &c.actor(), &id, &f.reason).await;
    Ok(c.outcome(result, |_| back.clone(), c.t("invoice.voided"), &back))
}
