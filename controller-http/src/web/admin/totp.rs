//! Two-factor sign-in in the admin UI: the account's own page to enrol (QR code, the key
//! grouped for typing, the `otpauth://` URI), confirm and turn it off, and an administrator's
//! reset of another account. Everything goes through `mikrobill_core::admin_totp`, as the
//! API does; the code step of the login is in `auth.rs`.

use super::ctx::{Ctx, not_found};
use super::error::WebError;
use super::flash::Flash;
use super::form::{Form, NoFields};
use crate::server::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use mikrobill_core::admin_totp::{self, Enrolment, TotpStatus};
use mikrobill_core::admins;
use mikrobill_core::auth::Perm;
use mikrobill_core::auth::totp::Secret;
use mikrobill_core::error::DomainError;
use serde::Deserialize;

/// An enrolment as the page shows it.
struct Shown {
    qr: String,
    grouped: String,
    uri: String,
}

#[derive(askama::Template)]
#[template(path = "admin/totp.html")]
struct TotpPage<'a> {
    c: &'a Ctx,
    status: TotpStatus,
    enrolment: Option<Shown>,
    error: Option<&'static str>,
}

fn shown(c: &Ctx, e: &Enrolment) -> Shown {
    let grouped = Secret::from_base32(&e.secret)
        .map(|s| s.grouped())
        .unwrap_or_else(|| e.secret.clone());
    Shown {
        qr: super::print::qr_svg(&e.otpauth_uri, c.t("totp.qr")).unwrap_or_default(),
        grouped,
        uri: e.otpauth_uri.clone(),
    }
}

async fn render(
    state: &AppState,
    c: &Ctx,
    enrolment: Option<&Enrolment>,
    error: Option<&'static str>,
    code: StatusCode,
) -> Result<Response, WebError> {
    let admin = admins::get(&state.db, &c.principal.admin_id).await?;
    let status = admin_totp::status(&state.db, &admin).await?;
    let mut res = c.render(&TotpPage {
        c,
        status,
        enrolment: enrolment.map(|e| shown(c, e)),
        error,
    });
    *res.status_mut() = code;
    // The page may show a secret: no cache may keep it.
    res.headers_mut().insert(
        axum::http::header::CACHE_CONTROL,
        axum::http::HeaderValue::from_static("no-store"),
    );
    Ok(res)
}

/// `GET /account/totp`: the account's two-factor state (never a secret).
pub async fn page(State(state): State<AppState>, c: Ctx) -> Result<Response, WebError> {
    render(&state, &c, None, None, StatusCode::OK).await
}

/// The enrolment form.
#[derive(Debug, Deserialize)]
pub struct EnrolFields {
    #[serde(default)]
    current_password: String,
}

/// `POST /account/totp/enrol`: a new secret, shown on this answer only.
pub async fn enrol(
    State(state): State<AppState>,
    c: Ctx,
    form: Form<EnrolFields>,
) -> Result<Response, WebError> {
    let f = form.fields().map_err(|e| WebError::BadRequest(c.lang, e))?;
    match admin_totp::start_enrolment(
        &state.db,
        &c.actor(),
        &c.principal.admin_id,
        &f.current_password,
    )
    .await
    {
        Ok(e) => render(&state, &c, Some(&e), None, StatusCode::OK).await,
        Err(e) => Ok(refused(&c, e)),
    }
}

fn refused(c: &Ctx, e: DomainError) -> Response {
    match e {
        DomainError::Db(e) => WebError::Db(e).into_response(),
        other => c.redirect_with(
            "/account/totp",
            Flash {
                kind: "error",
                text: other.to_string(),
            },
        ),
    }
}

/// A code from the app.
#[derive(Debug, Deserialize)]
pub struct CodeFields {
    #[serde(default)]
    code: String,
}

/// `POST /account/totp/confirm`: on with the app's first code; a wrong code shows the
/// pending secret again so the holder can retry without starting over.
pub async fn confirm(
    State(state): State<AppState>,
    c: Ctx,
    form: Form<CodeFields>,
) -> Result<Response, WebError> {
    let f = form.fields().map_err(|e| WebError::BadRequest(c.lang, e))?;
    match admin_totp::confirm(&state.db, &c.actor(), &c.principal.admin_id, &f.code).await {
        Ok(_) => {
            state.tokens.clear();
            Ok(c.done("/account/totp", c.t("totp.enabled")))
        }
        Err(DomainError::Invalid { .. }) => {
            let admin = admins::get(&state.db, &c.principal.admin_id).await?;
            let pending = admin_totp::pending_enrolment(&state.db, &admin).await?;
            render(
                &state,
                &c,
                pending.as_ref(),
                Some("totp.wrong_code"),
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await
        }
        Err(e) => Ok(refused(&c, e)),
    }
}

/// The turn-off form.
#[derive(Debug, Deserialize)]
pub struct DisableFields {
    #[serde(default)]
    current_password: String,
    #[serde(default)]
    code: String,
}

/// `POST /account/totp/disable`: off with the password and a current code.
pub async fn disable(
    State(state): State<AppState>,
    c: Ctx,
    form: Form<DisableFields>,
) -> Result<Response, WebError> {
    let f = form.fields().map_err(|e| WebError::BadRequest(c.lang, e))?;
    let result = admin_totp::disable(
        &state.db,
        &c.actor(),
        &c.principal.admin_id,
        &f.current_password,
        &f.code,
    )
    .await;
    Ok(c.outcome(
        result,
        |_| "/account/totp".into(),
        c.t("totp.disabled"),
        "/account/totp",
    ))
}

/// `POST /admins/{id}/totp/reset`: removes the account's authenticator and ends its sessions.
pub async fn reset(
    State(state): State<AppState>,
    c: Ctx,
    Path(id): Path<String>,
    _form: Form<NoFields>,
) -> Result<Response, WebError> {
    c.require(Perm::WriteAdmins)?;
    let admin = admin_totp::reset(&state.db, &c.actor(), &id)
        .await
        .map_err(|e| not_found(&c, e))?;
    state.tokens.clear();
    Ok(c.done(&format!("/admins/{}", admin.id), c.t("totp.reset_done")))
}
