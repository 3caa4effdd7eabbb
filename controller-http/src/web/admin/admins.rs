//! Admin users (list, create, change role, disable, reset password), resellers' balances
//! (the cash desk credits them), and API tokens (everyone's own; all of them for roles that
//! read admins). A token's secret is shown once, on the page that created it.

use super::ctx::Ctx;
use super::ctx::not_found;
use super::error::WebError;
use super::form::Form;
use super::form::NoFields;
use super::form_values::{self, opt};
use super::lookups;
use crate::server::AppState;
use crate::web::pager::{PAGE_ROWS, Pager};
use axum::extract::{Path, Query, State};
use axum::response::Response;
use mikrobill_core::admins::{self, Admin, AdminPatch, NewAdmin};
use mikrobill_core::auth::roles::ALL_ROLES;
use mikrobill_core::auth::tokens::{self, ApiTokenInfo};
use mikrobill_core::auth::{Perm, Role};
use serde::Deserialize;

/// `?after=`.
#[derive(Debug, Default, Deserialize)]
pub struct AfterQuery {
    after: Option<String>,
}

#[derive(askama::Template)]
#[template(path = "admin/admins.html")]
struct ListPage<'a> {
    c: &'a Ctx,
    rows: Vec<Admin>,
    pager: Pager,
    roles: [Role; 5],
}

/// `GET /admins`.
pub async fn list(
    State(state): State<AppState>,
    c: Ctx,
    Query(q): Query<AfterQuery>,
) -> Result<Response, WebError> {
    c.require(Perm::ReadAdmins)?;
    let after = opt(&q.after).unwrap_or_default();
    let mut rows = admins::list(&state.db, None, &after, PAGE_ROWS + 1).await?;
    let pager = Pager::split(&mut rows, &[], &after, |a| a.username.clone());
    Ok(c.render(&ListPage {
        c: &c,
        rows,
        pager,
        roles: ALL_ROLES,
    }))
}

fn role(s: &str) -> Result<Role, String> {
    s.parse::<Role>()
}

/// The new-admin form.
#[derive(Debug, Deserialize)]
pub struct NewAdminFields {
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
    role: String,
    display_name: Option<String>,
}

/// `POST /admins`.
pub async fn create(
    State(state): State<AppState>,
    c: Ctx,
    form: Form<NewAdminFields>,
) -> Result<Response, WebError> {
    c.require(Perm::WriteAdmins)?;
    let f = form.fields().map_err(|e| WebError::BadRequest(c.lang, e))?;
    let new = NewAdmin {
        username: f.username,
        password: f.password,
        role: role(&f.role).map_err(|e| WebError::BadRequest(c.lang, e))?,
        display_name: opt(&f.display_name),
    };
    let result = admins::create(&state.db, &c.actor(), new).await;
    Ok(c.outcome(
        result,
        |a| format!("/admins/{}", a.id),
        c.t("admin.created"),
        "/admins",
    ))
}

#[derive(askama::Template)]
#[template(path = "admin/admin.html")]
struct DetailPage<'a> {
    c: &'a Ctx,
    a: Admin,
    roles: [Role; 5],
}

/// `GET /admins/{id}`.
pub async fn detail(
    State(state): State<AppState>,
    c: Ctx,
    Path(id): Path<String>,
) -> Result<Response, WebError> {
    c.require(Perm::ReadAdmins)?;
    let a = admins::get(&state.db, &id)
        .await
        .map_err(|e| not_found(&c, e))?;
    Ok(c.render(&DetailPage {
        c: &c,
        a,
        roles: ALL_ROLES,
    }))
}

/// The edit form; an empty password keeps the current one.
#[derive(Debug, Deserialize)]
pub struct EditFields {
    role: String,
    display_name: Option<String>,
    disabled: Option<String>,
    password: Option<String>,
}

/// `POST /admins/{id}`: a new role, password or disabling ends the user's sessions.
pub async fn update(
    State(state): State<AppState>,
    c: Ctx,
    Path(id): Path<String>,
    form: Form<EditFields>,
) -> Result<Response, WebError> {
    c.require(Perm::WriteAdmins)?;
    let f = form.fields().map_err(|e| WebError::BadRequest(c.lang, e))?;
    let before = admins::get(&state.db, &id)
        .await
        .map_err(|e| not_found(&c, e))?;
    let new_role = role(&f.role).map_err(|e| WebError::BadRequest(c.lang, e))?;
    let disabled = f.disabled.is_some();
    let patch = AdminPatch {
        role: (new_role != before.role).then_some(new_role),
        display_name: Some(f.display_name.unwrap_or_default()),
        disabled: (disabled != before.disabled).then_some(disabled),
        password: opt(&f.password),
    };
    let back = format!("/admins/{id}");
    let result = admins::update(&state.db, &c.actor(), &id, patch).await;
    state.tokens.clear();
    Ok(c.outcome(result, |_| back.clone(), c.t("saved"), &back))
}

#[derive(askama::Template)]
#[template(path = "admin/resellers.html")]
struct ResellersPage<'a> {
    c: &'a Ctx,
    rows: Vec<Admin>,
}

/// `GET /resellers`: balances and the credit form.
pub async fn resellers(State(state): State<AppState>, c: Ctx) -> Result<Response, WebError> {
    c.require(Perm::ManageResellerBalance)?;
    let rows = lookups::resellers(&state.db).await?;
    Ok(c.render(&ResellersPage { c: &c, rows }))
}

/// The credit form.
#[derive(Debug, Deserialize)]
pub struct CreditFields {
    amount: Option<String>,
    note: Option<String>,
}

/// `POST /resellers/{id}/credit`: the reseller paid; their balance grows.
pub async fn credit(
    State(state): State<AppState>,
    c: Ctx,
    Path(id): Path<String>,
    form: Form<CreditFields>,
) -> Result<Response, WebError> {
    c.require(Perm::ManageResellerBalance)?;
    let f = form.fields().map_err(|e| WebError::BadRequest(c.lang, e))?;
    let amount = c
        .money_input()
        .parse(&f.amount, "amount")
        .map_err(|e| WebError::BadRequest(c.lang, e))?
        .unwrap_or(0);
    let result = admins::credit_reseller(&state.db, &c.actor(), &id, amount, opt(&f.note)).await;
    Ok(c.outcome(
        result,
        |_| "/resellers".into(),
        c.t("reseller.credited"),
        "/resellers",
    ))
}

#[derive(askama::Template)]
#[template(path = "admin/tokens.html")]
struct TokensPage<'a> {
    c: &'a Ctx,
    rows: Vec<ApiTokenInfo>,
    created: Option<(ApiTokenInfo, String)>,
}

async fn tokens_page(
    state: &AppState,
    c: &Ctx,
    created: Option<(ApiTokenInfo, String)>,
) -> Result<Response, WebError> {
    let owner = (!c.can(Perm::ReadAdmins)).then_some(c.principal.admin_id.as_str());
    let rows = tokens::list_api_tokens(&state.db, owner)
        .await
        .map_err(token_error)?;
    Ok(c.render(&TokensPage { c, rows, created }))
}

fn token_error(e: tokens::TokenError) -> WebError {
    match e {
        tokens::TokenError::Db(e) => WebError::Db(e),
        tokens::TokenError::Invalid => WebError::NotFound(crate::web::Lang::default()),
    }
}

/// `GET /tokens`.
pub async fn list_tokens(State(state): State<AppState>, c: Ctx) -> Result<Response, WebError> {
    tokens_page(&state, &c, None).await
}

/// The new-token form.
#[derive(Debug, Deserialize)]
pub struct TokenFields {
    #[serde(default)]
    name: String,
    expires_in_days: Option<String>,
}

/// `POST /tokens`: a token acting as the signed-in admin; the secret is shown once.
pub async fn create_token(
    State(state): State<AppState>,
    c: Ctx,
    form: Form<TokenFields>,
) -> Result<Response, WebError> {
    let f = form.fields().map_err(|e| WebError::BadRequest(c.lang, e))?;
    let name = match mikrobill_core::error::required_text("name", &f.name, 100) {
        Ok(n) => n,
        Err(e) => return Ok(c.outcome(Err::<(), _>(e), |_| String::new(), "", "/tokens")),
    };
    let days = form_values::number(&f.expires_in_days, "expires_in_days")
        .map_err(|e| WebError::BadRequest(c.lang, e))?;
    let expires_at = match days {
        Some(d) if !(1..=3650).contains(&d) => {
            return Err(WebError::BadRequest(
                c.lang,
                "expires_in_days: must be between 1 and 3650".into(),
            ));
        }
        Some(d) => Some(mikrobill_core::db::now_ms() + d * 86_400_000),
        None => None,
    };
    let (token, secret) = tokens::create_api_token(
        &state.db,
        &c.actor(),
        &c.principal.admin_id,
        &name,
        expires_at,
    )
    .await
    .map_err(token_error)?;
    tokens_page(&state, &c, Some((token, secret))).await
}

/// `POST /tokens/{id}/revoke`: one's own, or anyone's with the admin permission.
pub async fn revoke_token(
    State(state): State<AppState>,
    c: Ctx,
    Path(id): Path<String>,
    _form: Form<NoFields>,
) -> Result<Response, WebError> {
    let token = tokens::api_token(&state.db, &id)
        .await
        .map_err(token_error)?
        .ok_or(WebError::NotFound(c.lang))?;
    if token.admin_id != c.principal.admin_id {
        c.require(Perm::WriteAdmins)?;
    }
    if tokens::revoke_api_token(&state.db, &c.actor(), &id)
        .await
        .map_err(token_error)?
    {
        state.tokens.clear();
    }
    Ok(c.done("/tokens", c.t("token.revoked")))
}
