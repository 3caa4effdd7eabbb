//! Login (with the authenticator code of an account that has two-factor sign-in), token
//! refresh, logout, the caller's own profile, password and two-factor enrolment.

use crate::api::extract::{Body, Caller};
use crate::server::AppState;
use crate::server::client_ip::ClientAddr;
use crate::server::problem::{ApiResult, Problem};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use mikrobill_core::admin_login::{self, LoginOutcome, Via};
use mikrobill_core::admin_totp::{self, Enrolment, TotpStatus};
use mikrobill_core::admins::{self, Admin};
use mikrobill_core::auth::tokens::{self, TokenKind, TokenPair};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Routes of this module.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(login))
        .routes(routes!(refresh))
        .routes(routes!(logout))
        .routes(routes!(me))
        .routes(routes!(change_password))
        .routes(routes!(totp_status))
        .routes(routes!(totp_enrol))
        .routes(routes!(totp_confirm))
        .routes(routes!(totp_disable))
}

/// Credentials for a login.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    /// Login name.
    pub username: String,
    /// Password.
    pub password: String,
    /// The authenticator app's current six-digit code; required when the account has
    /// two-factor sign-in (`totp_required` without it, `totp_invalid` when wrong or reused).
    #[serde(default)]
    pub totp_code: Option<String>,
}

/// A new token pair.
#[derive(Debug, Serialize, ToSchema)]
pub struct TokenResponse {
    /// Send as `Authorization: Bearer <access_token>`.
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: &'static str,
    /// Seconds until the access token expires.
    pub expires_in: i64,
    /// Trade for a new pair at `POST /auth/refresh`; works once.
    pub refresh_token: String,
    /// Seconds until the refresh token expires.
    pub refresh_expires_in: i64,
    /// Who logged in.
    pub admin: Admin,
    /// The role requires two-factor sign-in and the account has none yet: until it enrols
    /// (`POST /auth/totp/enrolment`, then `/auth/totp/confirm`) these tokens are refused
    /// (403 `totp_enrolment_required`) everywhere but `/auth/me`, `/auth/logout` and
    /// `/auth/totp*`.
    pub totp_enrolment_required: bool,
}

fn token_response(pair: TokenPair, admin: Admin, enrolment_required: bool) -> TokenResponse {
    let now = mikrobill_core::db::now_ms();
    TokenResponse {
        totp_enrolment_required: enrolment_required,
        access_token: pair.access_token,
        token_type: "Bearer",
        expires_in: (pair.access_expires_at - now) / 1000,
        refresh_token: pair.refresh_token,
        refresh_expires_in: (pair.refresh_expires_at - now) / 1000,
        admin,
    }
}

/// Logs in with username and password, and the authenticator code of an account with
/// two-factor sign-in (401 `totp_required` without it, 401 `totp_invalid` when it is wrong,
/// stale or used before: each code works once). Failed attempts lock one address out of one account
/// (and an address that fails too often out of all); an account under attack answers more
/// slowly but is never locked for everyone. A locked caller gets 429 with `Retry-After`.
/// Every success and failure is in the audit log.
#[utoipa::path(post, path = "/auth/login", tag = "auth", request_body = LoginRequest,
    responses((status = 200, body = TokenResponse), (status = 401, body = Problem), (status = 429, body = Problem)))]
async fn login(
    State(state): State<AppState>,
    ClientAddr(addr): ClientAddr,
    body: Body<LoginRequest>,
) -> ApiResult<Json<TokenResponse>> {
    let req = body.into_inner()?;
    let outcome = admin_login::login(
        &state.db,
        &req.username,
        &req.password,
        req.totp_code.as_deref(),
        addr,
        Via::Api,
    )
    .await?;
    match outcome {
        LoginOutcome::Success(admin) => {
            let pair = tokens::login(&state.db, &admin.id).await?;
            let principal = tokens::authenticate(&state.db, &pair.access_token).await?;
            Ok(Json(token_response(
                pair,
                admin,
                principal.totp_enrolment_only,
            )))
        }
        LoginOutcome::CodeRequired(_) => Err(Problem::new(
            StatusCode::UNAUTHORIZED,
            "totp_required",
            "this account signs in with an authenticator code: send it as `totp_code`",
        )),
        LoginOutcome::CodeInvalid => Err(Problem::new(
            StatusCode::UNAUTHORIZED,
            "totp_invalid",
            "the authenticator code is wrong, expired or was used already",
        )),
        LoginOutcome::Failed => Err(Problem::unauthenticated(
            "wrong username or password, or the account is disabled",
        )),
        LoginOutcome::Locked(wait) => {
            let mut p = Problem::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_attempts",
                "too many failed logins from this address; try again later",
            );
            p.retry_after = Some((wait.as_millis() as u64).div_ceil(1000).max(1));
            Err(p)
        }
    }
}

/// A refresh token to trade.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefreshRequest {
    /// The refresh token from the last login or refresh.
    pub refresh_token: String,
}

/// Trades a refresh token for a new pair. Each refresh token works once; presenting a used
/// one revokes the whole login session.
#[utoipa::path(post, path = "/auth/refresh", tag = "auth", request_body = RefreshRequest,
    responses((status = 200, body = TokenResponse), (status = 401, body = Problem)))]
async fn refresh(
    State(state): State<AppState>,
    body: Body<RefreshRequest>,
) -> ApiResult<Json<TokenResponse>> {
    let req = body.into_inner()?;
    let pair = tokens::refresh(&state.db, &req.refresh_token).await?;
    let principal = tokens::authenticate(&state.db, &pair.access_token).await?;
    let admin = admins::get(&state.db, &principal.admin_id).await?;
    Ok(Json(token_response(
        pair,
        admin,
        principal.totp_enrolment_only,
    )))
}

/// Ends the caller's login session (its access and refresh tokens).
#[utoipa::path(post, path = "/auth/logout", tag = "auth", security(("bearer" = [])),
    responses((status = 204), (status = 401, body = Problem)))]
async fn logout(State(state): State<AppState>, caller: Caller) -> ApiResult<StatusCode> {
    if caller.principal.token_kind == TokenKind::Access {
        tokens::logout(&state.db, &caller.principal.token_id).await?;
        state.tokens.clear();
    }
    Ok(StatusCode::NO_CONTENT)
}

/// The caller's own account.
#[utoipa::path(get, path = "/auth/me", tag = "auth", security(("bearer" = [])),
    responses((status = 200, body = Admin), (status = 401, body = Problem)))]
async fn me(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<Admin>> {
    Ok(Json(
        admins::get(&state.db, &caller.principal.admin_id).await?,
    ))
}

/// A password change.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordChange {
    /// The current password.
    pub current_password: String,
    /// The new password (at least 10 characters).
    pub new_password: String,
}

/// Changes the caller's password; every session and token of the account ends.
#[utoipa::path(post, path = "/auth/password", tag = "auth", security(("bearer" = [])), request_body = PasswordChange,
    responses((status = 204), (status = 401, body = Problem), (status = 422, body = Problem)))]
async fn change_password(
    State(state): State<AppState>,
    caller: Caller,
    body: Body<PasswordChange>,
) -> ApiResult<StatusCode> {
    let req = body.into_inner()?;
    admins::change_own_password(
        &state.db,
        &caller.actor(),
        &caller.principal.admin_id,
        &req.current_password,
        &req.new_password,
    )
    .await?;
    state.tokens.clear();
    Ok(StatusCode::NO_CONTENT)
}

/// The caller's two-factor sign-in: on, pending confirmation, required by the role.
#[utoipa::path(get, path = "/auth/totp", tag = "auth", security(("bearer" = [])),
    responses((status = 200, body = TotpStatus), (status = 401, body = Problem)))]
async fn totp_status(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<TotpStatus>> {
    let admin = admins::get(&state.db, &caller.principal.admin_id).await?;
    Ok(Json(admin_totp::status(&state.db, &admin).await?))
}

/// The current password, to start an enrolment.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EnrolRequest {
    /// The caller's current password.
    pub current_password: String,
}

/// Starts two-factor enrolment: a new secret and its `otpauth://` URI for an authenticator
/// app, shown this once. Sign-ins need codes only after `POST /auth/totp/confirm`.
#[utoipa::path(post, path = "/auth/totp/enrolment", tag = "auth", security(("bearer" = [])), request_body = EnrolRequest,
    responses((status = 201, body = Enrolment), (status = 401, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn totp_enrol(
    State(state): State<AppState>,
    caller: Caller,
    body: Body<EnrolRequest>,
) -> ApiResult<(StatusCode, Json<Enrolment>)> {
    let req = body.into_inner()?;
    let enrolment = admin_totp::start_enrolment(
        &state.db,
        &caller.actor(),
        &caller.principal.admin_id,
        &req.current_password,
    )
    .await?;
    Ok((StatusCode::CREATED, Json(enrolment)))
}

/// A code from the authenticator app.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CodeRequest {
    /// The six digits the app shows now.
    pub code: String,
}

/// Confirms the pending enrolment with the app's current code; from now on every sign-in of
/// the account needs a code.
#[utoipa::path(post, path = "/auth/totp/confirm", tag = "auth", security(("bearer" = [])), request_body = CodeRequest,
    responses((status = 200, body = TotpStatus), (status = 401, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn totp_confirm(
    State(state): State<AppState>,
    caller: Caller,
    body: Body<CodeRequest>,
) -> ApiResult<Json<TotpStatus>> {
    let req = body.into_inner()?;
    let status = admin_totp::confirm(
        &state.db,
        &caller.actor(),
        &caller.principal.admin_id,
        &req.code,
    )
    .await?;
    // A caller limited to enrolment is limited no more.
    state.tokens.clear();
    Ok(Json(status))
}

/// The password and a current code, to turn two-factor sign-in off.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DisableRequest {
    /// The caller's current password.
    pub current_password: String,
    /// The six digits the app shows now.
    pub code: String,
}

/// Turns the caller's two-factor sign-in off (409 `totp_enforced` when the role requires it).
#[utoipa::path(post, path = "/auth/totp/disable", tag = "auth", security(("bearer" = [])), request_body = DisableRequest,
    responses((status = 204), (status = 401, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn totp_disable(
    State(state): State<AppState>,
    caller: Caller,
    body: Body<DisableRequest>,
) -> ApiResult<StatusCode> {
    let req = body.into_inner()?;
    admin_totp::disable(
        &state.db,
        &caller.actor(),
        &caller.principal.admin_id,
        &req.current_password,
        &req.code,
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}
