//! Voucher lookup without login: a hotspot subscriber types their code and sees what is left.
//! Codes are short secrets, so unknown codes are counted per address and an address that
//! guesses too often is locked out for the throttle window.

use super::format::Fmt;
use super::{Ctx, Layout, PageResult, PortalError, lock_minutes};
use crate::server::AppState;
use askama::Template;
use axum::extract::State;
use axum::extract::rejection::FormRejection;
use axum::http::StatusCode;
use mikrobill_core::auth::throttle;
use mikrobill_core::portal::usage::{self, VoucherBalance};
use serde::Deserialize;

/// Unknown codes one address may try within the throttle window.
pub(super) const MAX_MISSES: i64 = 10;

/// What the page shows about a found voucher.
struct BalanceView {
    code: String,
    plan: String,
    status: &'static str,
    time_left: String,
    data_left: String,
    first_used: Option<String>,
    valid_until: Option<String>,
}

#[derive(Template)]
#[template(path = "portal/voucher.html")]
struct VoucherPage {
    layout: Layout,
    code: String,
    balance: Option<BalanceView>,
    error: Option<String>,
}

fn view(f: &Fmt, b: &VoucherBalance) -> BalanceView {
    BalanceView {
        code: b.code.clone(),
        plan: b.plan_name.clone(),
        status: if b.throttled {
            f.t.v_throttled
        } else {
            f.voucher_state(b.status)
        },
        time_left: match b.time_left_secs {
            Some(s) => f.duration(s),
            None => f.t.unlimited.to_string(),
        },
        data_left: match b.data_left_bytes {
            Some(d) => f.bytes(d),
            None => f.t.unlimited.to_string(),
        },
        first_used: b.activated_at.map(|a| f.date_time(a)),
        valid_until: b.valid_until.map(|v| f.date_time(v)),
    }
}

fn show(
    ctx: &Ctx,
    code: String,
    balance: Option<BalanceView>,
    error: Option<String>,
) -> PageResult {
    ctx.render_form(|layout| VoucherPage {
        layout,
        code,
        balance,
        error,
    })
}

/// The lookup form.
pub(super) async fn form(ctx: Ctx) -> PageResult {
    show(&ctx, String::new(), None, None)
}

/// The lookup form's fields.
#[derive(Debug, Deserialize)]
pub(super) struct LookupForm {
    csrf: String,
    code: String,
}

/// Looks a code up.
pub(super) async fn lookup(
    State(state): State<AppState>,
    ctx: Ctx,
    form: Result<axum::Form<LookupForm>, FormRejection>,
) -> PageResult {
    let axum::Form(form) = form.map_err(|_| PortalError::BadRequest)?;
    ctx.check_form_token(&form.csrf)?;
    let keys = [(format!("voucher-lookup:{}", ctx.addr_key()), MAX_MISSES)];
    if let Some(wait) = throttle::gate_keys(&state.db, &keys).await? {
        return Err(PortalError::Throttled(
            lock_minutes(wait.as_millis() as i64),
        ));
    }
    let code = form.code.trim().to_string();
    match usage::voucher_balance(&state.db, &code).await? {
        Some(b) => {
            throttle::give_back(&state.db, &keys).await?;
            let f = Fmt {
                t: ctx.t,
                settings: mikrobill_core::settings::billing(&state.db).await?,
            };
            show(&ctx, code, Some(view(&f, &b)), None)
        }
        None => {
            throttle::lock_reached(&state.db, &keys).await?;
            let mut res = show(&ctx, code, None, Some(ctx.t.voucher_not_found.to_string()))?;
            *res.status_mut() = StatusCode::NOT_FOUND;
            Ok(res)
        }
    }
}
