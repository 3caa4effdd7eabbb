//! Money in: the cash desk (find a customer, see what they owe, take cash or a transfer),
//! the printable receipt, and the payment list. Payments go through
//! `payments::record_manual`, which allocates them to invoices, keeps the rest as
//! credit and re-activates subscriptions the payment settles.

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
use mikrobill_core::customers::{self, Customer, CustomerFilter};
use mikrobill_core::payments::{self, Payment, PaymentFilter, PaymentInput, PaymentMethod};
use mikrobill_core::subscriptions::{self, Subscription, SubscriptionFilter};
use serde::Deserialize;
use std::collections::HashMap;

/// A customer found at the cash desk.
#[derive(Debug, Clone, Deserialize)]
pub struct Found {
    /// Customer id.
    pub id: String,
    /// Customer number.
    pub number: String,
    /// Name.
    pub name: String,
    /// Phone.
    pub phone: Option<String>,
    /// Credit held.
    pub balance: i64,
}

/// Customers matching a search (name, number, phone, e-mail), at most `limit`.
pub async fn search(
    state: &AppState,
    q: &str,
    after: &str,
    limit: u32,
) -> Result<Vec<Found>, WebError> {
    let f = CustomerFilter {
        q: Some(q.to_string()).filter(|q| !q.is_empty()),
    };
    let rows = customers::list_json(&state.db, &f, after, limit).await?;
    Ok(rows
        .iter()
        .filter_map(|r| serde_json::from_str::<Found>(r.get()).ok())
        .collect())
}

/// `?q=` (search) or `?customer=` (the chosen customer).
#[derive(Debug, Default, Deserialize)]
pub struct DeskQuery {
    q: Option<String>,
    customer: Option<String>,
}

#[derive(askama::Template)]
#[template(path = "admin/cash.html")]
struct DeskPage<'a> {
    c: &'a Ctx,
    q: String,
    found: Vec<Found>,
    by_username: Vec<(Subscription, String)>,
    customer: Option<Customer>,
    invoices: Vec<Invoice>,
    subs: Vec<Subscription>,
    due: i64,
}

/// `GET /cash`.
pub async fn desk(
    State(state): State<AppState>,
    c: Ctx,
    Query(dq): Query<DeskQuery>,
) -> Result<Response, WebError> {
    c.require(Perm::WritePayments)?;
    let q = opt(&dq.q).unwrap_or_default();
    let found = if q.is_empty() {
        Vec::new()
    } else {
        search(&state, &q, "", 20).await?
    };
    // Cashiers are often told the PPPoE user name rather than the customer's.
    let by_username = if q.is_empty() {
        Vec::new()
    } else {
        let f = SubscriptionFilter {
            q: Some(q.clone()),
            ..SubscriptionFilter::default()
        };
        let subs = subscriptions::list(&state.db, &f, "", 20).await?;
        let ids: Vec<String> = subs.iter().map(|s| s.customer_id.clone()).collect();
        let names = customers::by_ids(&state.db, &ids).await?;
        subs.into_iter()
            .map(|s| {
                let name = names
                    .get(&s.customer_id)
                    .map(|c| c.name.clone())
                    .unwrap_or_default();
                (s, name)
            })
            .collect()
    };
    let (customer, invoices, subs) = match opt(&dq.customer) {
        Some(id) => {
            let customer = customers::get(&state.db, &id)
                .await
                .map_err(|e| not_found(&c, e))?;
            let f = InvoiceFilter {
                customer_id: Some(id.clone()),
                status: Some(InvoiceStatus::Unpaid),
                ..InvoiceFilter::default()
            };
            let invoices = invoices::list(&state.db, &f, "", 100).await?;
            let sf = SubscriptionFilter {
                customer_id: Some(id),
                ..SubscriptionFilter::default()
            };
            let subs = subscriptions::list(&state.db, &sf, "", 100).await?;
            (Some(customer), invoices, subs)
        }
        None => (None, Vec::new(), Vec::new()),
    };
    let due = invoices.iter().map(|i| i.total - i.amount_paid).sum();
    Ok(c.render(&DeskPage {
        c: &c,
        q,
        found,
        by_username,
        customer,
        invoices,
        subs,
        due,
    }))
}

/// The payment form.
#[derive(Debug, Deserialize)]
pub struct PayFields {
    customer_id: String,
    invoice_id: Option<String>,
    amount: Option<String>,
    method: String,
    reference: Option<String>,
    note: Option<String>,
}

/// `POST /cash/pay`: records the payment and opens its receipt.
pub async fn pay(
    State(state): State<AppState>,
    c: Ctx,
    form: Form<PayFields>,
) -> Result<Response, WebError> {
    c.require(Perm::WritePayments)?;
    let f = form.fields().map_err(|e| WebError::BadRequest(c.lang, e))?;
    let back = format!("/cash?customer={}", f.customer_id);
    let amount = match c.money_input().parse(&f.amount, "amount") {
        Ok(a) => a.unwrap_or(0),
        Err(e) => {
            return Ok(c.redirect_with(
                &back,
                super::flash::Flash {
                    kind: "error",
                    text: e,
                },
            ));
        }
    };
    let input = PaymentInput {
        invoice_id: opt(&f.invoice_id),
        customer_id: Some(f.customer_id.clone()),
        amount,
        method: if f.method == "transfer" {
            PaymentMethod::Transfer
        } else {
            PaymentMethod::Cash
        },
        reference: opt(&f.reference),
        note: opt(&f.note),
    };
    let result = payments::record_manual(&state.db, &c.actor(), input).await;
    let message = match &result {
        Ok(r) => {
            let mut m = format!("{} {}", c.t("cash.recorded"), c.money(r.payment.amount));
            if !r.allocations.is_empty() {
                let numbers: Vec<&str> = r.allocations.iter().map(|a| a.number.as_str()).collect();
                m.push_str(&format!(" · {}", numbers.join(", ")));
            }
            if !r.reactivated.is_empty() {
                m.push_str(&format!(
                    " · {} {}",
                    c.t("cash.reactivated"),
                    r.reactivated.len()
                ));
            }
            if r.credited > 0 {
                m.push_str(&format!(
                    " · {} {}",
                    c.t("cash.credited"),
                    c.money(r.credited)
                ));
            }
            m
        }
        Err(_) => String::new(),
    };
    Ok(c.outcome(
        result,
        |r| format!("/payments/{}", r.payment.id),
        &message,
        &back,
    ))
}

#[derive(askama::Template)]
#[template(path = "admin/receipt.html")]
struct ReceiptPage<'a> {
    c: &'a Ctx,
    p: Payment,
    customer: Customer,
    invoice: Option<Invoice>,
    received_by: String,
}

/// `GET /payments/{id}`: the receipt, ready to print.
pub async fn receipt(
    State(state): State<AppState>,
    c: Ctx,
    Path(id): Path<String>,
) -> Result<Response, WebError> {
    c.require(Perm::ReadPayments)?;
    let p = payments::get(&state.db, &id)
        .await
        .map_err(|e| not_found(&c, e))?;
    let customer = customers::get(&state.db, &p.customer_id).await?;
    let invoice = match &p.invoice_id {
        Some(i) => Some(invoices::get(&state.db, i).await?),
        None => None,
    };
    let received_by = match &p.received_by {
        Some(a) => mikrobill_core::admins::get(&state.db, a)
            .await
            .map(|a| a.username)
            .unwrap_or_default(),
        None => p.gateway.clone().unwrap_or_default(),
    };
    Ok(c.render(&ReceiptPage {
        c: &c,
        p,
        customer,
        invoice,
        received_by,
    }))
}

/// Filters of the payment list.
#[derive(Debug, Default, Deserialize)]
pub struct PaymentQuery {
    customer: Option<String>,
    after: Option<String>,
}

#[derive(askama::Template)]
#[template(path = "admin/payments.html")]
struct ListPage<'a> {
    c: &'a Ctx,
    rows: Vec<Payment>,
    customers: HashMap<String, Customer>,
    pager: Pager,
}

impl ListPage<'_> {
    fn customer_name(&self, id: &str) -> String {
        self.customers
            .get(id)
            .map(|c| c.name.clone())
            .unwrap_or_default()
    }
}

/// `GET /payments`: newest first.
pub async fn list(
    State(state): State<AppState>,
    c: Ctx,
    Query(q): Query<PaymentQuery>,
) -> Result<Response, WebError> {
    c.require(Perm::ReadPayments)?;
    let after = opt(&q.after).unwrap_or_default();
    let cursor = match after.split_once(':') {
        Some((at, id)) => Some((
            at.parse::<i64>()
                .map_err(|_| WebError::BadRequest(c.lang, "after".into()))?,
            id.to_string(),
        )),
        None => None,
    };
    let f = PaymentFilter {
        customer_id: opt(&q.customer),
        ..PaymentFilter::default()
    };
    let mut rows = payments::list(&state.db, &f, cursor, PAGE_ROWS + 1).await?;
    let pager = Pager::split(
        &mut rows,
        &[("customer", q.customer.as_deref().unwrap_or(""))],
        &after,
        |p| format!("{}:{}", p.received_at, p.id),
    );
    let ids: Vec<String> = rows.iter().map(|p| p.customer_id.clone()).collect();
    let customers = customers::by_ids(&state.db, &ids).await?;
    Ok(c.render(&ListPage {
        c: &c,
        rows,
        customers,
        pager,
    }))
}
