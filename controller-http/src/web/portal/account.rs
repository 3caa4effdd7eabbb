//! The subscriber's home page: subscriptions with this cycle's usage, invoices, payments.

use super::format::Fmt;
use super::{Ctx, Layout, PageResult, PortalError, render};
use crate::server::AppState;
use askama::Template;
use axum::extract::State;
use axum::response::IntoResponse;
use mikrobill_core::portal::{account, usage};

/// One subscription row.
struct SubscriptionRow {
    username: String,
    plan: String,
    status: &'static str,
    cycle: String,
    sessions: i64,
    online: String,
    downloaded: String,
    uploaded: String,
}

/// One invoice row.
struct InvoiceRow {
    id: String,
    number: String,
    issued: String,
    due: String,
    total: String,
    status: &'static str,
    unpaid: bool,
}

/// One payment row.
struct PaymentRow {
    date: String,
    amount: String,
    method: &'static str,
}

#[derive(Template)]
#[template(path = "portal/home.html")]
struct HomePage {
    layout: Layout,
    name: String,
    number: String,
    credit: Option<String>,
    subscriptions: Vec<SubscriptionRow>,
    invoices: Vec<InvoiceRow>,
    payments: Vec<PaymentRow>,
    /// Whether the customer's Telegram chat is linked.
    telegram_linked: bool,
    /// Whether a bot can link it.
    telegram_available: bool,
}

/// The overview of the logged-in subscriber.
pub(super) async fn home(State(state): State<AppState>, ctx: Ctx) -> PageResult {
    let session = ctx.require_session()?;
    let settings = mikrobill_core::settings::billing(&state.db).await?;
    let offset = settings.utc_offset_minutes;
    let f = Fmt { t: ctx.t, settings };
    let o = account::overview(&state.db, &session.customer_id).await?;
    let mut subscriptions = Vec::new();
    for s in &o.subscriptions {
        let c = usage::current_cycle(&state.db, &s.subscription, offset).await?;
        subscriptions.push(SubscriptionRow {
            username: s.subscription.username.clone(),
            plan: s.plan_name.clone(),
            status: f.subscription_status(s.subscription.status),
            cycle: f.period(c.cycle_start, c.cycle_end),
            sessions: c.usage.sessions,
            online: f.duration(c.usage.online_secs),
            downloaded: f.bytes(c.usage.download_bytes),
            uploaded: f.bytes(c.usage.upload_bytes),
        });
    }
    let invoices = o
        .invoices
        .iter()
        .map(|i| InvoiceRow {
            id: i.id.clone(),
            number: i.number.clone(),
            issued: f.date(i.issued_at),
            due: f.date(i.due_at),
            total: f.money(i.total),
            status: f.invoice_status(i.status),
            unpaid: i.outstanding() > 0,
        })
        .collect();
    let payments = o
        .payments
        .iter()
        .map(|p| PaymentRow {
            date: f.date(p.received_at),
            amount: f.money(p.amount),
            method: f.payment_method(p.method),
        })
        .collect();
    render(&HomePage {
        layout: ctx.layout(&session.csrf),
        name: o.customer.name.clone(),
        number: o.customer.number.clone(),
        credit: (o.customer.balance > 0).then(|| f.money(o.customer.balance)),
        subscriptions,
        invoices,
        payments,
        telegram_linked: mikrobill_core::notify::prefs::get(&state.db, &session.customer_id)
            .await?
            .telegram_chat_id
            .is_some(),
        telegram_available: mikrobill_core::notify::telegram_link::linking_channel(&state.db)
            .await?
            .is_some(),
    })
}

/// The Telegram link form's field.
#[derive(Debug, serde::Deserialize)]
pub(super) struct LinkForm {
    csrf: String,
}

/// Sends the subscriber to the bot with a one-time start token that links their chat.
pub(super) async fn link_telegram(
    State(state): State<AppState>,
    ctx: Ctx,
    form: Result<axum::Form<LinkForm>, axum::extract::rejection::FormRejection>,
) -> PageResult {
    let axum::Form(form) = form.map_err(|_| PortalError::BadRequest)?;
    let session = ctx.require_session()?;
    ctx.check_form_token(&form.csrf)?;
    match mikrobill_core::notify::telegram_link::start(&state.db, &session.customer_id).await? {
        Some(url) => Ok(axum::response::Redirect::to(&url).into_response()),
        None => Err(PortalError::NotFound),
    }
}
