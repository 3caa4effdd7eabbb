//! Login, token refresh, logout, the caller's own profile and password.

use crate::api::extract::{Body, Caller};
use crate::server::AppState;
use crate::server::client_ip::ClientAddr;
use crate::server::problem::{ApiResult, Problem};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use mikrobill_core::admin_login::{self, LoginOutcome, Via};
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
}

/// Credentials for a login.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    /// Login name.
    pub username: String,
    /// Password.
    pub password: String,
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
}

fn token_response(pair: TokenPair, admin: Admin) -> TokenResponse {
    let now = mikrobill_core::db::now_ms();
    TokenResponse {
        access_token: pair.access_token,
        token_type: "Bearer",
        expires_in: (pair.access_expires_at - now) / 1000,
        refresh_token: pair.refresh_token,
        refresh_expires_in: (pair.refresh_expires_at - now) / 1000,
        admin,
    }
}

/// Logs in with username and password. Failed attempts lock one address out of one account
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
    match admin_login::login(&state.db, &req.username, &req.password, addr, Via::Api).await? {
        LoginOutcome::Success(admin) => {
            let pair = tokens::login(&state.db, &admin.id).await?;
            Ok(Json(token_response(pair, admin)))
        }
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
    Ok(Json(token_response(pair, admin)))
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
