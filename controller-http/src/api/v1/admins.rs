//! Admin users, resellers' balance, and API tokens.

use crate::api::extract::{Body, Caller, Query};
use crate::api::page::{Page, PageQuery};
use crate::server::AppState;
use crate::server::problem::{ApiResult, Problem};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use mikrobill_core::admins::{self, Admin, AdminPatch, NewAdmin};
use mikrobill_core::auth::tokens::{self, ApiTokenInfo};
use mikrobill_core::auth::{Perm, Role};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Routes of this module.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_admins, create_admin))
        .routes(routes!(get_admin, update_admin))
        .routes(routes!(list_resellers))
        .routes(routes!(credit_reseller))
        .routes(routes!(list_tokens, create_token))
        .routes(routes!(revoke_token))
        .routes(routes!(reset_totp))
}

/// Removes an account's authenticator (a lost phone) and ends its sessions and tokens; it
/// signs in with its password again, or enrols anew when its role requires a code.
#[utoipa::path(delete, path = "/admins/{id}/totp", tag = "admins", security(("bearer" = [])),
    params(("id" = String, Path, description = "admin user id")),
    responses((status = 200, body = Admin), (status = 403, body = Problem), (status = 404, body = Problem)))]
async fn reset_totp(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Admin>> {
    caller.require(Perm::WriteAdmins)?;
    let admin = mikrobill_core::admin_totp::reset(&state.db, &caller.actor(), &id).await?;
    state.tokens.clear();
    Ok(Json(admin))
}

/// Filters of the admin list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AdminFilter {
    /// Only this role.
    pub role: Option<Role>,
}

/// Lists admin users by username.
#[utoipa::path(get, path = "/admins", tag = "admins", security(("bearer" = [])), params(AdminFilter, PageQuery),
    responses((status = 200, body = Page<Admin>), (status = 403, body = Problem)))]
async fn list_admins(
    State(state): State<AppState>,
    caller: Caller,
    Query(f): Query<AdminFilter>,
    Query(page): Query<PageQuery>,
) -> ApiResult<Json<Page<Admin>>> {
    caller.require(Perm::ReadAdmins)?;
    let limit = page.limit()?;
    let items = admins::list(&state.db, f.role, &page.after()?, limit + 1).await?;
    Ok(Json(Page::from_overfetch(items, limit, |a| {
        a.username.clone()
    })))
}

/// A new admin user.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateAdmin {
    /// Login name (3-64 letters, digits, `.`, `_`, `-`, `@`).
    pub username: String,
    /// Password (at least 10 characters).
    pub password: String,
    /// Role.
    pub role: Role,
    /// Name to show.
    pub display_name: Option<String>,
}

/// Creates an admin user.
#[utoipa::path(post, path = "/admins", tag = "admins", security(("bearer" = [])), request_body = CreateAdmin,
    responses((status = 201, body = Admin), (status = 403, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn create_admin(
    State(state): State<AppState>,
    caller: Caller,
    body: Body<CreateAdmin>,
) -> ApiResult<(StatusCode, Json<Admin>)> {
    caller.require(Perm::WriteAdmins)?;
    let req = body.into_inner()?;
    let admin = admins::create(
        &state.db,
        &caller.actor(),
        NewAdmin {
            username: req.username,
            password: req.password,
            role: req.role,
            display_name: req.display_name,
        },
    )
    .await?;
    Ok((StatusCode::CREATED, Json(admin)))
}

/// One admin user (any caller may read their own).
#[utoipa::path(get, path = "/admins/{id}", tag = "admins", security(("bearer" = [])), params(("id" = String, Path, description = "admin id")),
    responses((status = 200, body = Admin), (status = 403, body = Problem), (status = 404, body = Problem)))]
async fn get_admin(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Admin>> {
    if id != caller.principal.admin_id {
        caller.require(Perm::ReadAdmins)?;
    }
    Ok(Json(admins::get(&state.db, &id).await?))
}

/// Changes to an admin user; absent fields stay as they are.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateAdmin {
    /// New role.
    pub role: Option<Role>,
    /// New display name ("" clears it).
    pub display_name: Option<String>,
    /// Disable (true) or re-enable (false).
    pub disabled: Option<bool>,
    /// A new password set by an admin.
    pub password: Option<String>,
}

/// Changes an admin user. A new role, a new password or disabling ends their sessions.
#[utoipa::path(patch, path = "/admins/{id}", tag = "admins", security(("bearer" = [])), params(("id" = String, Path, description = "admin id")), request_body = UpdateAdmin,
    responses((status = 200, body = Admin), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn update_admin(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    body: Body<UpdateAdmin>,
) -> ApiResult<Json<Admin>> {
    caller.require(Perm::WriteAdmins)?;
    let req = body.into_inner()?;
    let admin = admins::update(
        &state.db,
        &caller.actor(),
        &id,
        AdminPatch {
            role: req.role,
            display_name: req.display_name,
            disabled: req.disabled,
            password: req.password,
        },
    )
    .await?;
    state.tokens.clear();
    Ok(Json(admin))
}

/// Lists resellers with their balance.
#[utoipa::path(get, path = "/resellers", tag = "admins", security(("bearer" = [])), params(PageQuery),
    responses((status = 200, body = Page<Admin>), (status = 403, body = Problem)))]
async fn list_resellers(
    State(state): State<AppState>,
    caller: Caller,
    Query(page): Query<PageQuery>,
) -> ApiResult<Json<Page<Admin>>> {
    caller.require(Perm::ManageResellerBalance)?;
    let limit = page.limit()?;
    let items = admins::list(&state.db, Some(Role::Reseller), &page.after()?, limit + 1).await?;
    Ok(Json(Page::from_overfetch(items, limit, |a| {
        a.username.clone()
    })))
}

/// Money a reseller paid in.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Credit {
    /// Amount in minor units (positive).
    pub amount: i64,
    /// Receipt number or remark.
    pub note: Option<String>,
}

/// Credits a reseller's balance (the reseller paid the cashier).
#[utoipa::path(post, path = "/resellers/{id}/credit", tag = "admins", security(("bearer" = [])), params(("id" = String, Path, description = "reseller's admin id")), request_body = Credit,
    responses((status = 200, body = Admin), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn credit_reseller(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    body: Body<Credit>,
) -> ApiResult<Json<Admin>> {
    caller.require(Perm::ManageResellerBalance)?;
    let req = body.into_inner()?;
    Ok(Json(
        admins::credit_reseller(&state.db, &caller.actor(), &id, req.amount, req.note).await?,
    ))
}

/// Which tokens to list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TokenFilter {
    /// Every user's tokens (needs the admin role); the caller's own otherwise.
    #[serde(default)]
    pub all: bool,
}

/// Lists API tokens (never their secrets).
#[utoipa::path(get, path = "/tokens", tag = "admins", security(("bearer" = [])), params(TokenFilter),
    responses((status = 200, body = Vec<ApiTokenInfo>), (status = 403, body = Problem)))]
async fn list_tokens(
    State(state): State<AppState>,
    caller: Caller,
    Query(f): Query<TokenFilter>,
) -> ApiResult<Json<Vec<ApiTokenInfo>>> {
    let owner = if f.all {
        caller.require(Perm::ReadAdmins)?;
        None
    } else {
        Some(caller.principal.admin_id.as_str())
    };
    Ok(Json(tokens::list_api_tokens(&state.db, owner).await?))
}

/// A new API token.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateToken {
    /// What it is for, e.g. `shop integration`.
    pub name: String,
    /// Days until it expires; never when absent.
    pub expires_in_days: Option<u32>,
}

/// A created API token; the secret is shown this once.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedToken {
    /// The stored token.
    pub token: ApiTokenInfo,
    /// Send as `Authorization: Bearer <secret>`; not retrievable later.
    pub secret: String,
}

/// Creates an API token acting as the caller, with the caller's role.
#[utoipa::path(post, path = "/tokens", tag = "admins", security(("bearer" = [])), request_body = CreateToken,
    responses((status = 201, body = CreatedToken), (status = 422, body = Problem)))]
async fn create_token(
    State(state): State<AppState>,
    caller: Caller,
    body: Body<CreateToken>,
) -> ApiResult<(StatusCode, Json<CreatedToken>)> {
    let req = body.into_inner()?;
    let name = mikrobill_core::error::required_text("name", &req.name, 100)?;
    let expires_at = match req.expires_in_days {
        Some(0) | Some(3651..) => {
            return Err(Problem::invalid(
                "expires_in_days",
                "must be between 1 and 3650",
            ));
        }
        Some(d) => Some(mikrobill_core::db::now_ms() + d as i64 * 86_400_000),
        None => None,
    };
    let (token, secret) = tokens::create_api_token(
        &state.db,
        &caller.actor(),
        &caller.principal.admin_id,
        &name,
        expires_at,
    )
    .await?;
    Ok((StatusCode::CREATED, Json(CreatedToken { token, secret })))
}

/// Revokes an API token (one's own, or anyone's with the admin role).
#[utoipa::path(delete, path = "/tokens/{id}", tag = "admins", security(("bearer" = [])), params(("id" = String, Path, description = "token id")),
    responses((status = 204), (status = 403, body = Problem), (status = 404, body = Problem)))]
async fn revoke_token(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let token = tokens::api_token(&state.db, &id)
        .await?
        .ok_or_else(|| Problem::not_found(format!("no API token {id:?}")))?;
    if token.admin_id != caller.principal.admin_id {
        caller.require(Perm::WriteAdmins)?;
    }
    if !tokens::revoke_api_token(&state.db, &caller.actor(), &id).await? {
        return Err(Problem::not_found(format!(
            "API token {id:?} is already revoked"
        )));
    }
    state.tokens.clear();
    Ok(StatusCode::NO_CONTENT)
}
