//! Buying through the gateway: a voucher for anyone on the hotspot (no account needed), a
//! wallet top-up for a signed-in customer. Both open an order and send the buyer to the
//! order's own page, which links to the gateway, refreshes itself while the payment is
//! pending and shows the voucher code once the gateway's webhook settled it
//! (`portal::orders`). Opening orders calls the gateway, so it is throttled per address.

use super::format::Fmt;
use super::{Ctx, Layout, PageResult, PortalError, lock_minutes, render};
use crate::server::AppState;
use askama::Template;
use axum::extract::rejection::FormRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect};
use mikrobill_core::auth::throttle;
use mikrobill_core::error::DomainError;
use mikrobill_core::portal::orders::{self, Opened, OrderKind};
use mikrobill_core::portal::payment_links::PayError;
use serde::Deserialize;

/// Orders one address may open within the throttle window.
const MAX_ORDERS: i64 = 20;

/// A plan offered on the purchase page.
struct Offer {
    id: String,
    name: String,
    price: String,
    limits: String,
}

#[derive(Template)]
#[template(path = "portal/buy.html")]
struct BuyPage {
    layout: Layout,
    available: bool,
    offers: Vec<Offer>,
    site: String,
    phone: String,
    error: Option<String>,
}

#[derive(Template)]
#[template(path = "portal/topup.html")]
struct TopupPage {
    layout: Layout,
    available: bool,
    amount: String,
    error: Option<String>,
}

#[derive(Template)]
#[template(path = "portal/order.html")]
struct OrderPage {
    layout: Layout,
    order_id: String,
    voucher: bool,
    amount: String,
    pay_url: String,
    paid: bool,
    code: Option<String>,
}

async fn fmt(state: &AppState, ctx: &Ctx) -> Result<Fmt, PortalError> {
    Ok(Fmt {
        t: ctx.t,
        settings: mikrobill_core::settings::billing(&state.db).await?,
    })
}

fn limits(f: &Fmt, p: &mikrobill_core::plans::PlanInfo) -> String {
    let mut parts = Vec::new();
    if let Some(t) = p.time_limit_secs {
        parts.push(f.duration(t));
    }
    if let Some(d) = p.data_limit_bytes {
        parts.push(f.bytes(d));
    }
    if let Some(v) = p.validity_secs {
        parts.push(format!("{} {}", f.t.valid_until, f.duration(v)));
    }
    if let Some(r) = &p.rate_limit {
        parts.push(r.clone());
    }
    parts.join(" · ")
}

/// `?site=` from a site's hotspot login page: the voucher is then valid there only.
#[derive(Debug, Default, Deserialize)]
pub(super) struct SiteQuery {
    site: Option<String>,
}

async fn buy_page(
    state: &AppState,
    ctx: &Ctx,
    site: String,
    phone: String,
    error: Option<String>,
) -> PageResult {
    let f = fmt(state, ctx).await?;
    let offers = orders::purchasable_plans(&state.db)
        .await?
        .iter()
        .map(|p| Offer {
            id: p.id.clone(),
            name: p.name.clone(),
            price: f.money(p.price),
            limits: limits(&f, p),
        })
        .collect();
    let available = state.gateways.links().is_some();
    ctx.render_form(|layout| BuyPage {
        layout,
        available,
        offers,
        site,
        phone,
        error,
    })
}

/// The purchase page.
pub(super) async fn buy_form(
    State(state): State<AppState>,
    ctx: Ctx,
    Query(q): Query<SiteQuery>,
) -> PageResult {
    buy_page(
        &state,
        &ctx,
        q.site.unwrap_or_default(),
        String::new(),
        None,
    )
    .await
}

/// The purchase form's fields.
#[derive(Debug, Deserialize)]
pub(super) struct BuyForm {
    csrf: String,
    plan_id: String,
    #[serde(default)]
    phone: String,
    #[serde(default)]
    site: String,
}

/// The gate every order passes: at most [`MAX_ORDERS`] per address per window.
async fn gate(state: &AppState, ctx: &Ctx) -> Result<[(String, i64); 1], PortalError> {
    let keys = [(format!("portal-order:{}", ctx.addr_key()), MAX_ORDERS)];
    if let Some(wait) = throttle::gate_keys(&state.db, &keys).await? {
        return Err(PortalError::Throttled(
            lock_minutes(wait.as_millis() as i64),
        ));
    }
    throttle::lock_reached(&state.db, &keys).await?;
    Ok(keys)
}

/// Why an order could not be opened, as a message on the form (and its status).
fn refusal(ctx: &Ctx, e: PayError) -> Result<(StatusCode, String), PortalError> {
    match e {
        PayError::Domain(DomainError::Invalid { message, .. }) => {
            Ok((StatusCode::UNPROCESSABLE_ENTITY, message))
        }
        PayError::Domain(e) => Err(e.into()),
        PayError::Gateway(e) => {
            tracing::warn!("portal order not opened: {e}");
            Ok((
                StatusCode::BAD_GATEWAY,
                ctx.t.gateway_unavailable.to_string(),
            ))
        }
    }
}

fn to_order_page(opened: &Opened) -> PageResult {
    Ok(Redirect::to(&orders::page_path(
        &opened.order.order_id,
        &opened.view_secret,
    ))
    .into_response())
}

/// Opens a voucher order.
pub(super) async fn buy(
    State(state): State<AppState>,
    ctx: Ctx,
    form: Result<axum::Form<BuyForm>, FormRejection>,
) -> PageResult {
    let axum::Form(form) = form.map_err(|_| PortalError::BadRequest)?;
    ctx.check_form_token(&form.csrf)?;
    let Some(gateway) = state.gateways.links() else {
        let mut res = buy_page(&state, &ctx, form.site, form.phone, None).await?;
        *res.status_mut() = StatusCode::CONFLICT;
        return Ok(res);
    };
    gate(&state, &ctx).await?;
    let site = Some(form.site.trim()).filter(|s| !s.is_empty());
    let customer = ctx.session.as_ref().map(|s| s.customer_id.as_str());
    match orders::open_voucher(
        &state.db,
        gateway.as_ref(),
        form.plan_id.trim(),
        site,
        Some(form.phone.clone()),
        customer,
    )
    .await
    {
        Ok(opened) => to_order_page(&opened),
        Err(e) => {
            let (status, message) = refusal(&ctx, e)?;
            let mut res = buy_page(&state, &ctx, form.site, form.phone, Some(message)).await?;
            *res.status_mut() = status;
            Ok(res)
        }
    }
}

/// The top-up page (signed in).
pub(super) async fn topup_form(State(state): State<AppState>, ctx: Ctx) -> PageResult {
    ctx.require_session()?;
    let available = state.gateways.links().is_some();
    ctx.render_form(|layout| TopupPage {
        layout,
        available,
        amount: String::new(),
        error: None,
    })
}

/// The top-up form's fields.
#[derive(Debug, Deserialize)]
pub(super) struct TopupForm {
    csrf: String,
    amount: String,
}

/// An amount typed in major units (`50000`, `50.000` or `50,000` for rupiah; `12.50` where
/// the currency has cents), in minor units.
fn parse_amount(text: &str, exponent: u32) -> Option<i64> {
    let t: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    if exponent == 0 {
        let digits: String = t.chars().filter(|c| !matches!(c, '.' | ',')).collect();
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        return digits.parse().ok();
    }
    mikrobill_core::payments::gateway::amount::parse_decimal(&t.replace(',', "."), exponent).ok()
}

/// Opens a top-up order.
pub(super) async fn topup(
    State(state): State<AppState>,
    ctx: Ctx,
    form: Result<axum::Form<TopupForm>, FormRejection>,
) -> PageResult {
    let axum::Form(form) = form.map_err(|_| PortalError::BadRequest)?;
    let session = ctx.require_session()?.clone();
    ctx.check_form_token(&form.csrf)?;
    let f = fmt(&state, &ctx).await?;
    let show = |error: String, status: StatusCode| -> PageResult {
        let mut res = ctx.render_form(|layout| TopupPage {
            layout,
            available: true,
            amount: form.amount.clone(),
            error: Some(error),
        })?;
        *res.status_mut() = status;
        Ok(res)
    };
    let Some(gateway) = state.gateways.links() else {
        return show(ctx.t.buy_unavailable.to_string(), StatusCode::CONFLICT);
    };
    let Some(amount) = parse_amount(&form.amount, f.settings.currency_exponent) else {
        return show(
            ctx.t.bad_request.to_string(),
            StatusCode::UNPROCESSABLE_ENTITY,
        );
    };
    gate(&state, &ctx).await?;
    match orders::open_topup(&state.db, gateway.as_ref(), &session.customer_id, amount).await {
        Ok(opened) => to_order_page(&opened),
        Err(e) => {
            let (status, message) = refusal(&ctx, e)?;
            show(message, status)
        }
    }
}

/// `?k=`: the order page's secret.
#[derive(Debug, Default, Deserialize)]
pub(super) struct OrderQuery {
    k: Option<String>,
}

/// An order's page.
pub(super) async fn order(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(order_id): Path<String>,
    Query(q): Query<OrderQuery>,
) -> PageResult {
    let secret = q.k.unwrap_or_default();
    let order = orders::view(&state.db, &order_id, &secret).await?;
    let f = fmt(&state, &ctx).await?;
    let csrf = ctx
        .session
        .as_ref()
        .map(|s| s.csrf.clone())
        .unwrap_or_default();
    let mut res = render(&OrderPage {
        layout: ctx.layout(&csrf),
        order_id: order.order_id.clone(),
        voucher: order.kind == OrderKind::Voucher,
        amount: f.money(order.amount),
        pay_url: order.redirect_url.clone(),
        paid: order.paid,
        code: order.voucher_code.clone(),
    })?;
    // The page holds a voucher code: never cached, never sent on as a referrer.
    let h = res.headers_mut();
    h.insert(
        axum::http::header::CACHE_CONTROL,
        axum::http::HeaderValue::from_static("no-store"),
    );
    h.insert(
        axum::http::header::REFERRER_POLICY,
        axum::http::HeaderValue::from_static("no-referrer"),
    );
    Ok(res)
}

#[cfg(test)]
mod tests {
    use super::parse_amount;

    #[test]
    fn amounts_are_read_as_people_type_them() {
        assert_eq!(parse_amount("50000", 0), Some(50_000));
        assert_eq!(parse_amount("50.000", 0), Some(50_000));
        assert_eq!(parse_amount(" 1,000,000 ", 0), Some(1_000_000));
        assert_eq!(parse_amount("12.50", 2), Some(1_250));
        assert_eq!(parse_amount("12,5", 2), Some(1_250));
        for bad in ["", "-5", "abc", "5e3"] {
            assert_eq!(parse_amount(bad, 0), None, "{bad}");
        }
    }
}
