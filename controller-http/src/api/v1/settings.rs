//! Billing settings, the security settings (which roles must use two-factor sign-in) and the
//! company logo of the hotspot pages.

use crate::api::extract::{Body, Caller};
use crate::server::AppState;
use crate::server::problem::{ApiResult, Problem};
use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use mikrobill_core::admin_totp::{self, SecuritySettings};
use mikrobill_core::auth::Perm;
use mikrobill_core::logo::{self, LogoInfo};
use mikrobill_core::settings::{self, BillingSettings};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Routes of this module.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_billing, put_billing))
        .routes(routes!(get_security, put_security))
        .routes(routes!(get_logo, put_logo, delete_logo))
}

/// The billing settings in effect.
#[utoipa::path(get, path = "/settings/billing", tag = "settings", security(("bearer" = [])),
    responses((status = 200, body = BillingSettings), (status = 403, body = Problem)))]
async fn get_billing(
    State(state): State<AppState>,
    caller: Caller,
) -> ApiResult<Json<BillingSettings>> {
    caller.require(Perm::ReadSettings)?;
    Ok(Json(settings::billing(&state.db).await?))
}

/// Replaces the billing settings (tax, currency, timezone, terms, company); they apply to
/// invoices issued from now on.
#[utoipa::path(put, path = "/settings/billing", tag = "settings", security(("bearer" = [])), request_body = BillingSettings,
    responses((status = 200, body = BillingSettings), (status = 403, body = Problem), (status = 422, body = Problem)))]
async fn put_billing(
    State(state): State<AppState>,
    caller: Caller,
    body: Body<BillingSettings>,
) -> ApiResult<Json<BillingSettings>> {
    caller.require(Perm::WriteSettings)?;
    let new = body.into_inner()?;
    Ok(Json(
        settings::save_billing(&state.db, &caller.actor(), new).await?,
    ))
}

/// Which roles must sign in with an authenticator code (admins only: it decides who can get in).
#[utoipa::path(get, path = "/settings/security", tag = "settings", security(("bearer" = [])),
    responses((status = 200, body = SecuritySettings), (status = 403, body = Problem)))]
async fn get_security(
    State(state): State<AppState>,
    caller: Caller,
) -> ApiResult<Json<SecuritySettings>> {
    caller.require(Perm::WriteAdmins)?;
    Ok(Json(admin_totp::security_settings(&state.db).await?))
}

/// Sets the roles that must sign in with a code. Their accounts without an authenticator may
/// then only enrol (their tokens answer 403 `totp_enrolment_required` elsewhere).
#[utoipa::path(put, path = "/settings/security", tag = "settings", security(("bearer" = [])), request_body = SecuritySettings,
    responses((status = 200, body = SecuritySettings), (status = 403, body = Problem), (status = 422, body = Problem)))]
async fn put_security(
    State(state): State<AppState>,
    caller: Caller,
    body: Body<SecuritySettings>,
) -> ApiResult<Json<SecuritySettings>> {
    caller.require(Perm::WriteAdmins)?;
    let new = body.into_inner()?;
    let saved = admin_totp::set_security_settings(&state.db, &caller.actor(), new).await?;
    // Cached callers of a newly enforced role are limited from their next request on.
    state.tokens.clear();
    Ok(Json(saved))
}

/// The company logo the hotspot pages show, as the image file.
#[utoipa::path(get, path = "/settings/logo", tag = "settings", security(("bearer" = [])),
    responses((status = 200, content_type = "image/png", description = "The logo (PNG, JPEG, GIF or WebP)"), (status = 403, body = Problem), (status = 404, body = Problem)))]
async fn get_logo(State(state): State<AppState>, caller: Caller) -> ApiResult<Response> {
    caller.require(Perm::ReadSettings)?;
    let logo = logo::get(&state.db)
        .await?
        .ok_or_else(|| Problem::not_found("no logo was uploaded"))?;
    Ok(([(header::CONTENT_TYPE, logo.content_type)], logo.bytes).into_response())
}

/// Replaces the company logo with the image sent as the body (PNG, JPEG, GIF or WebP, at
/// most 64 KiB); the hotspot pages carry it from their next download or upload.
#[utoipa::path(put, path = "/settings/logo", tag = "settings", security(("bearer" = [])),
    request_body(content = Vec<u8>, content_type = "image/png", description = "The image file"),
    responses((status = 200, body = LogoInfo), (status = 403, body = Problem), (status = 413, body = Problem), (status = 422, body = Problem)))]
async fn put_logo(
    State(state): State<AppState>,
    caller: Caller,
    body: axum::body::Body,
) -> ApiResult<Json<LogoInfo>> {
    caller.require(Perm::WriteSettings)?;
    let bytes = axum::body::to_bytes(body, logo::MAX_BYTES)
        .await
        .map_err(|_| {
            Problem::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "too_large",
                format!("the logo is larger than {} KiB", logo::MAX_BYTES / 1024),
            )
        })?;
    let new = logo::Logo::parse(bytes.to_vec())?;
    Ok(Json(logo::set(&state.db, &caller.actor(), &new).await?))
}

/// Removes the company logo; the hotspot pages show the company's initials again.
#[utoipa::path(delete, path = "/settings/logo", tag = "settings", security(("bearer" = [])),
    responses((status = 204), (status = 403, body = Problem), (status = 404, body = Problem)))]
async fn delete_logo(State(state): State<AppState>, caller: Caller) -> ApiResult<StatusCode> {
    caller.require(Perm::WriteSettings)?;
    if logo::clear(&state.db, &caller.actor()).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(Problem::not_found("no logo was uploaded"))
    }
}
