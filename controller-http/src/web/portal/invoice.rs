//! One invoice: a printable page (print styles hide the navigation), the same page as a
//! download, and the Pay button that sends the subscriber to the gateway's payment page.

use super::format::Fmt;
use super::{Ctx, Layout, PageResult, PortalError, render};
use crate::server::AppState;
use askama::Template;
use axum::extract::rejection::FormRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect};
use mikrobill_core::audit::Actor;
use mikrobill_core::billing::invoices::{Invoice, InvoiceStatus};
use mikrobill_core::customers::Customer;
use mikrobill_core::portal::account;
use mikrobill_core::portal::payment_links::{self, PayError};
use serde::Deserialize;

/// One printed line.
struct LineRow {
    description: String,
    amount: String,
}

#[derive(Template)]
#[template(path = "portal/invoice.html")]
struct InvoicePage {
    layout: Layout,
    company: String,
    id: String,
    number: String,
    status: &'static str,
    paid: bool,
    issued: String,
    due: String,
    period: Option<String>,
    customer_name: String,
    customer_number: String,
    customer_address: Option<String>,
    lines: Vec<LineRow>,
    subtotal: String,
    tax_label: String,
    tax: String,
    tax_inclusive: bool,
    total: String,
    amount_paid: String,
    amount_due: Option<String>,
    can_pay_online: bool,
    notice: Option<String>,
    /// Styles inside the page, for a downloaded copy that prints without the server.
    inline_css: Option<&'static str>,
}

fn page(
    ctx: &Ctx,
    f: &Fmt,
    inv: &Invoice,
    customer: &Customer,
    online: bool,
    notice: Option<String>,
) -> InvoicePage {
    let csrf = ctx
        .session
        .as_ref()
        .map(|s| s.csrf.clone())
        .unwrap_or_default();
    let due = inv.outstanding();
    InvoicePage {
        layout: ctx.layout(&csrf),
        company: f.settings.company_name.clone(),
        id: inv.id.clone(),
        number: inv.number.clone(),
        status: f.invoice_status(inv.status),
        paid: inv.status == InvoiceStatus::Paid,
        issued: f.date(inv.issued_at),
        due: f.date(inv.due_at),
        period: match (inv.period_start, inv.period_end) {
            (Some(s), Some(e)) => Some(f.period(s, e)),
            _ => None,
        },
        customer_name: customer.name.clone(),
        customer_number: customer.number.clone(),
        customer_address: customer.address.clone(),
        lines: inv
            .lines
            .iter()
            .map(|l| LineRow {
                description: l.description.clone(),
                amount: f.money(l.amount),
            })
            .collect(),
        subtotal: f.money(inv.subtotal),
        tax_label: format!("{} {}", f.t.tax, f.percent(inv.tax_rate_bp)),
        tax: f.money(inv.tax),
        tax_inclusive: inv.tax_inclusive,
        total: f.money(inv.total),
        amount_paid: f.money(inv.amount_paid),
        amount_due: (due > 0).then(|| f.money(due)),
        can_pay_online: online && due > 0,
        notice,
        inline_css: None,
    }
}

async fn load(
    state: &AppState,
    ctx: &Ctx,
    id: &str,
) -> Result<(Fmt, Invoice, Customer), PortalError> {
    let session = ctx.require_session()?;
    let inv = account::own_invoice(&state.db, &session.customer_id, id).await?;
    let customer = mikrobill_core::customers::get(&state.db, &session.customer_id).await?;
    let f = Fmt {
        t: ctx.t,
        settings: mikrobill_core::settings::billing(&state.db).await?,
    };
    Ok((f, inv, customer))
}

/// The invoice page.
pub(super) async fn show(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(id): Path<String>,
) -> PageResult {
    let (f, inv, customer) = load(&state, &ctx, &id).await?;
    let online = state.gateways.links().is_some();
    render(&page(&ctx, &f, &inv, &customer, online, None))
}

/// The invoice page as a file to keep.
pub(super) async fn download(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(id): Path<String>,
) -> PageResult {
    let (f, inv, customer) = load(&state, &ctx, &id).await?;
    let mut p = page(&ctx, &f, &inv, &customer, false, None);
    p.inline_css = Some(super::assets::STYLESHEET);
    let mut res = render(&p)?;
    // Invoice numbers are `INV-YYYY-NNNNNN`: safe in a header as they are.
    let disposition = format!("attachment; filename=\"{}.html\"", inv.number);
    if let Ok(v) = HeaderValue::from_str(&disposition) {
        res.headers_mut().insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(res)
}

/// The Pay button's field.
#[derive(Debug, Deserialize)]
pub(super) struct PayForm {
    csrf: String,
}

/// Creates (or reuses) a payment link and sends the subscriber there.
pub(super) async fn pay(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(id): Path<String>,
    form: Result<axum::Form<PayForm>, FormRejection>,
) -> PageResult {
    let axum::Form(form) = form.map_err(|_| PortalError::BadRequest)?;
    let session = ctx.require_session()?.clone();
    ctx.check_form_token(&form.csrf)?;
    let (f, inv, customer) = load(&state, &ctx, &id).await?;
    let Some(gateway) = state.gateways.links() else {
        let mut res = render(&page(&ctx, &f, &inv, &customer, false, None))?;
        *res.status_mut() = StatusCode::CONFLICT;
        return Ok(res);
    };
    let actor = Actor {
        id: None,
        name: format!("customer:{}", customer.number),
        addr: ctx.addr.map(|a| a.to_string()),
    };
    match payment_links::link_for_invoice(
        &state.db,
        gateway.as_ref(),
        &actor,
        &session.customer_id,
        &inv.id,
    )
    .await
    {
        Ok(link) => Ok(Redirect::to(&link.redirect_url).into_response()),
        Err(PayError::Domain(mikrobill_core::error::DomainError::Conflict { .. })) => {
            let notice = Some(f.t.nothing_to_pay.to_string());
            let mut res = render(&page(&ctx, &f, &inv, &customer, true, notice))?;
            *res.status_mut() = StatusCode::CONFLICT;
            Ok(res)
        }
        Err(PayError::Domain(e)) => Err(e.into()),
        Err(PayError::Gateway(e)) => {
            tracing::warn!(invoice = %inv.number, "payment link not created: {e}");
            let notice = Some(f.t.gateway_unavailable.to_string());
            let mut res = render(&page(&ctx, &f, &inv, &customer, true, notice))?;
            *res.status_mut() = StatusCode::BAD_GATEWAY;
            Ok(res)
        }
    }
}
