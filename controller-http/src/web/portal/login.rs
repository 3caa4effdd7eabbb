//! Logging in and out. Failed logins are throttled per customer and per address, under keys
//! of their own so a subscriber can never lock an admin account or the other way round.

use super::{Ctx, Layout, PageResult, PortalError, SESSION_COOKIE, lock_minutes, see_other};
use crate::server::AppState;
use askama::Template;
use axum::extract::State;
use axum::extract::rejection::FormRejection;
use axum::http::header;
use axum::response::IntoResponse;
use mikrobill_core::auth::throttle;
use mikrobill_core::portal::codes;
use mikrobill_core::portal::credentials::{self, Login};
use mikrobill_core::portal::sessions;
use serde::Deserialize;

#[derive(Template)]
#[template(path = "portal/login.html")]
struct LoginPage {
    layout: Layout,
    identifier: String,
    error: Option<String>,
}

/// The login form.
pub(super) async fn form(ctx: Ctx) -> PageResult {
    if ctx.session.is_some() {
        return Ok(see_other("/portal"));
    }
    show(&ctx, String::new(), None)
}

fn show(ctx: &Ctx, identifier: String, error: Option<String>) -> PageResult {
    ctx.render_form(|layout| LoginPage {
        layout,
        identifier,
        error,
    })
}

/// The login form's fields.
#[derive(Debug, Deserialize)]
pub(super) struct LoginForm {
    csrf: String,
    identifier: String,
    password: String,
}

/// Checks the login and opens a session.
pub(super) async fn submit(
    State(state): State<AppState>,
    ctx: Ctx,
    form: Result<axum::Form<LoginForm>, FormRejection>,
) -> PageResult {
    let axum::Form(form) = form.map_err(|_| PortalError::BadRequest)?;
    ctx.check_form_token(&form.csrf)?;
    // Nobody's number or password is this long; hashing megabytes would only burn CPU.
    if form.identifier.len() > 100 || form.password.len() > 1024 {
        return Err(PortalError::BadRequest);
    }
    let identifier = form.identifier.trim().to_string();
    let login = Login::Password {
        identifier: identifier.clone(),
        password: form.password,
    };
    attempt(&state, &ctx, login, |ctx| {
        show(ctx, identifier, Some(ctx.t.login_failed.to_string()))
    })
    .await
}

/// Checks a login under the throttle and opens a session; a failure counts against the
/// customer and the address and shows `failed`'s page with 401.
async fn attempt(
    state: &AppState,
    ctx: &Ctx,
    login: Login,
    failed: impl FnOnce(&Ctx) -> PageResult,
) -> PageResult {
    let identifier = match &login {
        Login::Password { identifier, .. } | Login::Code { identifier, .. } => identifier.clone(),
    };
    // The same customer is one throttling account whether named by number or by phone.
    let account = match credentials::find_customer(&state.db, &identifier).await? {
        Some(c) => c.id,
        None => identifier,
    };
    // Keyed like an admin's: one address is locked out of one customer, while the customer
    // is only slowed down, so nobody elsewhere can lock a customer out of the portal.
    let keys = throttle::LoginKeys::portal(&account, &ctx.addr_key());
    match throttle::gate(&state.db, &keys).await? {
        throttle::Gate::Locked(wait) => {
            return Err(PortalError::Throttled(
                lock_minutes(wait.as_millis() as i64),
            ));
        }
        throttle::Gate::Open(delay) => tokio::time::sleep(delay).await,
    }
    let Some(customer) = credentials::verify(&state.db, &login).await? else {
        throttle::login_failed(&state.db, &keys).await?;
        tracing::info!(addr = %ctx.addr_key(), "portal login failed");
        let mut res = failed(ctx)?;
        *res.status_mut() = axum::http::StatusCode::UNAUTHORIZED;
        return Ok(res);
    };
    throttle::login_succeeded(&state.db, &keys).await?;
    open_session(state, ctx, &customer).await
}

/// Opens a session for a customer who proved who they are, and goes to the overview.
async fn open_session(
    state: &AppState,
    ctx: &Ctx,
    customer: &mikrobill_core::customers::Customer,
) -> PageResult {
    let (secret, session) = sessions::create(&state.db, &customer.id).await?;
    tracing::info!(customer = %customer.number, "portal login");
    let max_age = (session.expires_at - mikrobill_core::db::now_ms()) / 1000;
    let mut res = see_other("/portal");
    res.headers_mut().append(
        header::SET_COOKIE,
        ctx.cookie(SESSION_COOKIE, &secret, max_age),
    );
    Ok(res)
}

#[derive(Template)]
#[template(path = "portal/login_code.html")]
struct CodePage {
    layout: Layout,
    identifier: String,
    error: Option<String>,
}

fn show_code(ctx: &Ctx, identifier: String, error: Option<String>) -> PageResult {
    ctx.render_form(|layout| CodePage {
        layout,
        identifier,
        error,
    })
}

/// The code request form's fields.
#[derive(Debug, Deserialize)]
pub(super) struct CodeRequestForm {
    csrf: String,
    identifier: String,
}

/// Sends a one-time code to the customer's contacts. The answer is the same whether or not
/// the identifier names a customer, so the form cannot be used to find out who is one.
pub(super) async fn request_code(
    State(state): State<AppState>,
    ctx: Ctx,
    form: Result<axum::Form<CodeRequestForm>, FormRejection>,
) -> PageResult {
    let axum::Form(form) = form.map_err(|_| PortalError::BadRequest)?;
    ctx.check_form_token(&form.csrf)?;
    if form.identifier.len() > 100 {
        return Err(PortalError::BadRequest);
    }
    // Every request counts against the address, so nobody can flood customers with codes.
    let keys = [(
        format!("portal-code-addr:{}", ctx.addr_key()),
        throttle::ADDRESS_MAX_FAILURES,
    )];
    if let Some(wait) = throttle::gate_keys(&state.db, &keys).await? {
        return Err(PortalError::Throttled(
            lock_minutes(wait.as_millis() as i64),
        ));
    }
    throttle::lock_reached(&state.db, &keys).await?;
    let identifier = form.identifier.trim().to_string();
    if let Some(customer) = credentials::find_customer(&state.db, &identifier).await? {
        let outcome = codes::request(&state.db, &customer).await?;
        tracing::info!(customer = %customer.number, ?outcome, "portal login code requested");
    }
    show_code(&ctx, identifier, None)
}

/// The code login form's fields.
#[derive(Debug, Deserialize)]
pub(super) struct CodeLoginForm {
    csrf: String,
    identifier: String,
    code: String,
}

/// Checks a one-time code and opens a session; throttled like a password login.
pub(super) async fn submit_code(
    State(state): State<AppState>,
    ctx: Ctx,
    form: Result<axum::Form<CodeLoginForm>, FormRejection>,
) -> PageResult {
    let axum::Form(form) = form.map_err(|_| PortalError::BadRequest)?;
    ctx.check_form_token(&form.csrf)?;
    if form.identifier.len() > 100 || form.code.len() > 16 {
        return Err(PortalError::BadRequest);
    }
    let identifier = form.identifier.trim().to_string();
    let login = Login::Code {
        identifier: identifier.clone(),
        code: form.code,
    };
    attempt(&state, &ctx, login, |ctx| {
        show_code(ctx, identifier, Some(ctx.t.code_failed.to_string()))
    })
    .await
}

/// The logout form's field.
#[derive(Debug, Deserialize)]
pub(super) struct LogoutForm {
    csrf: String,
}

/// Ends the session and clears its cookie.
pub(super) async fn logout(
    State(state): State<AppState>,
    ctx: Ctx,
    form: Result<axum::Form<LogoutForm>, FormRejection>,
) -> PageResult {
    let axum::Form(form) = form.map_err(|_| PortalError::BadRequest)?;
    if ctx.session.is_none() {
        return Ok(see_other("/portal/login"));
    }
    ctx.check_form_token(&form.csrf)?;
    if let Some(secret) = &ctx.secret {
        sessions::end(&state.db, secret).await?;
    }
    let mut res = see_other("/portal/login");
    res.headers_mut()
        .append(header::SET_COOKIE, ctx.cookie(SESSION_COOKIE, "", 0));
    Ok(res.into_response())
}
