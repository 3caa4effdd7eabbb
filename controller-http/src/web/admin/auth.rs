//! Signing in (password, then the authenticator code on `/login/totp` for an account with
//! two-factor sign-in) and out, the admin's own password, and the language switch. Login is
//! the API's (`mikrobill_core::admin_login`): the same accounts, throttle, slowdown and audit
//! records.

use super::ctx::{self, Ctx, PRE_COOKIE};
use super::error::WebError;
use super::flash;
use super::form::{self, Form};
use super::return_path::local_path;
use super::session;
use super::texts;
use crate::server::AppState;
use crate::server::client_ip::ClientAddr;
use crate::web::{Lang, cookies, csrf, html};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use mikrobill_core::admin_login::{self, LoginOutcome, Via};
use mikrobill_core::admins;
use rand::RngCore;
use serde::Deserialize;

/// The login page.
#[derive(askama::Template)]
#[template(path = "admin/login.html")]
struct LoginPage {
    lang: Lang,
    csrf: String,
    next: String,
    error: Option<String>,
    username: String,
}

impl LoginPage {
    fn t(&self, key: &str) -> &'static str {
        texts::text(self.lang, key)
    }

    fn langs() -> [Lang; 2] {
        Lang::ALL
    }

    fn lang_name(l: &Lang) -> &'static str {
        texts::text(*l, "lang.name")
    }
}

/// `?next=` of the login page.
#[derive(Debug, Deserialize)]
pub struct NextQuery {
    next: Option<String>,
}

fn pre_secret(headers: &HeaderMap) -> (String, bool) {
    match cookies::cookie_value(headers, PRE_COOKIE) {
        Some(s) if s.len() >= 20 => (s, false),
        _ => {
            let mut bytes = [0u8; 24];
            rand::rng().fill_bytes(&mut bytes);
            (
                base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes),
                true,
            )
        }
    }
}

async fn login_lang(state: &AppState, headers: &HeaderMap) -> Lang {
    let settings = mikrobill_core::settings::billing(&state.db)
        .await
        .unwrap_or_default();
    ctx::request_lang(headers, &settings)
}

fn login_page(
    status: StatusCode,
    headers: &HeaderMap,
    lang: Lang,
    next: String,
    error: Option<String>,
    username: String,
) -> Response {
    let (pre, fresh) = pre_secret(headers);
    let mut res = html::render(
        status,
        &LoginPage {
            lang,
            csrf: csrf::token_for(&pre),
            next,
            error,
            username,
        },
    );
    if fresh {
        let c = cookies::site_cookie(PRE_COOKIE, &pre, None, cookies::is_https(headers, false));
        res.headers_mut().append(
            header::SET_COOKIE,
            HeaderValue::from_str(&c).expect("cookie"),
        );
    }
    res
}

/// `GET /login`.
pub async fn login_form(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<NextQuery>,
) -> Response {
    let lang = login_lang(&state, &headers).await;
    login_page(
        StatusCode::OK,
        &headers,
        lang,
        local_path(q.next.as_deref()),
        None,
        String::new(),
    )
}

/// The login form's fields.
#[derive(Debug, Deserialize)]
pub struct LoginFields {
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
    next: Option<String>,
}

/// `POST /login`: the throttle first, then the password, then a new session.
pub async fn login(
    State(state): State<AppState>,
    ClientAddr(addr): ClientAddr,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, WebError> {
    let lang = login_lang(&state, &headers).await;
    if !form::check_csrf(&headers, &body, PRE_COOKIE) {
        return Err(WebError::Csrf(lang));
    }
    let f: LoginFields = serde_urlencoded::from_bytes(&body)
        .map_err(|e| WebError::BadRequest(lang, e.to_string()))?;
    let next = local_path(f.next.as_deref());
    match admin_login::login(&state.db, &f.username, &f.password, None, addr, Via::Web).await? {
        LoginOutcome::Locked(_) => Ok(login_page(
            StatusCode::TOO_MANY_REQUESTS,
            &headers,
            lang,
            next,
            Some(texts::text(lang, "login.locked").into()),
            f.username,
        )),
        LoginOutcome::Success(admin) => signed_in(&state, &headers, &admin.id, &next).await,
        LoginOutcome::CodeRequired(admin) => {
            let token = admin_login::start_pending(&state.db, &admin.id).await?;
            let mut res = html::see_other(&format!(
                "/login/totp{}",
                crate::web::pager::query(&[("next", &next)])
            ));
            let secure = cookies::is_https(&headers, state.secure_cookies);
            let c = cookies::site_cookie(
                PENDING_COOKIE,
                &token,
                Some(admin_login::PENDING_TTL_MS / 1000),
                secure,
            );
            res.headers_mut().append(
                header::SET_COOKIE,
                HeaderValue::from_str(&c).expect("cookie"),
            );
            Ok(res)
        }
        LoginOutcome::Failed | LoginOutcome::CodeInvalid => Ok(login_page(
            StatusCode::UNAUTHORIZED,
            &headers,
            lang,
            next,
            Some(texts::text(lang, "login.failed").into()),
            f.username,
        )),
    }
}

/// The cookie holding a pending login's token between the password and the code.
pub const PENDING_COOKIE: &str = "mb_login2";

/// A new session for a signed-in admin: its cookie set, the login's cookies cleared.
async fn signed_in(
    state: &AppState,
    headers: &HeaderMap,
    admin_id: &str,
    next: &str,
) -> Result<Response, WebError> {
    let secret = session::start(&state.db, admin_id).await?;
    let mut res = html::see_other(next);
    let secure = cookies::is_https(headers, state.secure_cookies);
    let h = res.headers_mut();
    for c in [
        cookies::site_cookie(session::COOKIE, &secret, None, secure),
        cookies::site_cookie(PRE_COOKIE, "", Some(0), secure),
        cookies::site_cookie(PENDING_COOKIE, "", Some(0), secure),
    ] {
        h.append(
            header::SET_COOKIE,
            HeaderValue::from_str(&c).expect("cookie"),
        );
    }
    Ok(res)
}

/// The code page of a login.
#[derive(askama::Template)]
#[template(path = "admin/login_totp.html")]
struct CodePage {
    lang: Lang,
    csrf: String,
    next: String,
    error: Option<String>,
}

impl CodePage {
    fn t(&self, key: &str) -> &'static str {
        texts::text(self.lang, key)
    }
}

fn code_page(
    status: StatusCode,
    headers: &HeaderMap,
    lang: Lang,
    next: String,
    error: Option<String>,
) -> Response {
    // The password step set the cookie this form's token derives from; without it the post
    // fails the CSRF check and the login starts over.
    let pre = cookies::cookie_value(headers, PRE_COOKIE).unwrap_or_default();
    html::render(
        status,
        &CodePage {
            lang,
            csrf: csrf::token_for(&pre),
            next,
            error,
        },
    )
}

/// `GET /login/totp`: the code form, while a pending login lives (else back to `/login`).
pub async fn code_form(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<NextQuery>,
) -> Result<Response, WebError> {
    let next = local_path(q.next.as_deref());
    let live = match cookies::cookie_value(&headers, PENDING_COOKIE) {
        Some(token) => admin_login::pending_admin(&state.db, &token)
            .await?
            .is_some(),
        None => false,
    };
    if !live {
        return Ok(html::see_other(&format!(
            "/login{}",
            crate::web::pager::query(&[("next", &next)])
        )));
    }
    let lang = login_lang(&state, &headers).await;
    Ok(code_page(StatusCode::OK, &headers, lang, next, None))
}

/// The code form's fields.
#[derive(Debug, Deserialize)]
pub struct CodeFields {
    #[serde(default)]
    code: String,
    next: Option<String>,
}

/// `POST /login/totp`: the code of a pending login, under the login's throttle; a pending
/// login that expired or ran out of tries starts over at the password.
pub async fn code(
    State(state): State<AppState>,
    ClientAddr(addr): ClientAddr,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, WebError> {
    let lang = login_lang(&state, &headers).await;
    if !form::check_csrf(&headers, &body, PRE_COOKIE) {
        return Err(WebError::Csrf(lang));
    }
    let f: CodeFields = serde_urlencoded::from_bytes(&body)
        .map_err(|e| WebError::BadRequest(lang, e.to_string()))?;
    let next = local_path(f.next.as_deref());
    let token = cookies::cookie_value(&headers, PENDING_COOKIE).unwrap_or_default();
    match admin_login::login_pending(&state.db, &token, &f.code, addr).await? {
        LoginOutcome::Success(admin) => signed_in(&state, &headers, &admin.id, &next).await,
        LoginOutcome::CodeInvalid => Ok(code_page(
            StatusCode::UNAUTHORIZED,
            &headers,
            lang,
            next,
            Some(texts::text(lang, "login.totp_invalid").into()),
        )),
        LoginOutcome::Locked(_) => Ok(code_page(
            StatusCode::TOO_MANY_REQUESTS,
            &headers,
            lang,
            next,
            Some(texts::text(lang, "login.locked").into()),
        )),
        LoginOutcome::Failed | LoginOutcome::CodeRequired(_) => Ok(login_page(
            StatusCode::UNAUTHORIZED,
            &headers,
            lang,
            next,
            Some(texts::text(lang, "login.totp_expired").into()),
            String::new(),
        )),
    }
}

/// `POST /logout`: ends this session.
pub async fn logout(
    State(state): State<AppState>,
    c: Ctx,
    headers: HeaderMap,
    _form: Form<super::form::NoFields>,
) -> Result<Response, WebError> {
    if let Some(secret) = cookies::cookie_value(&headers, session::COOKIE) {
        session::end(&state.db, &secret).await?;
    }
    let mut res = html::see_other("/login");
    let cleared = cookies::site_cookie(session::COOKIE, "", Some(0), c.secure);
    res.headers_mut().append(
        header::SET_COOKIE,
        HeaderValue::from_str(&cleared).expect("cookie"),
    );
    Ok(res)
}

/// The password change page.
#[derive(askama::Template)]
#[template(path = "admin/password.html")]
struct PasswordPage<'a> {
    c: &'a Ctx,
}

/// `GET /account/password`.
pub async fn password_form(c: Ctx) -> Response {
    c.render(&PasswordPage { c: &c })
}

/// The password change form's fields.
#[derive(Debug, Deserialize)]
pub struct PasswordFields {
    #[serde(default)]
    current_password: String,
    #[serde(default)]
    new_password: String,
    #[serde(default)]
    confirm_password: String,
}

/// `POST /account/password`: every session and token of the account ends (the domain
/// revokes them); this browser gets a fresh session.
pub async fn change_password(
    State(state): State<AppState>,
    c: Ctx,
    form: Form<PasswordFields>,
) -> Result<Response, WebError> {
    let f = form.fields().map_err(|e| WebError::BadRequest(c.lang, e))?;
    if f.new_password != f.confirm_password {
        return Ok(c.redirect_with(
            "/account/password",
            flash::Flash {
                kind: "error",
                text: c.t("password.mismatch").into(),
            },
        ));
    }
    let result = admins::change_own_password(
        &state.db,
        &c.actor(),
        &c.principal.admin_id,
        &f.current_password,
        &f.new_password,
    )
    .await;
    state.tokens.clear();
    if result.is_err() {
        return Ok(c.outcome(result, |_| String::new(), "", "/account/password"));
    }
    let secret = session::start(&state.db, &c.principal.admin_id).await?;
    let mut res = c.done("/", c.t("password.changed"));
    let fresh = cookies::site_cookie(session::COOKIE, &secret, None, c.secure);
    res.headers_mut().append(
        header::SET_COOKIE,
        HeaderValue::from_str(&fresh).expect("cookie"),
    );
    Ok(res)
}

/// `?back=` of the language switch.
#[derive(Debug, Deserialize)]
pub struct BackQuery {
    back: Option<String>,
}

/// `GET /lang/{code}`: remembers the language for a year and goes back. A plain link, not
/// a form: it changes nothing but this browser's display.
pub async fn switch_lang(
    Path(code): Path<String>,
    headers: HeaderMap,
    Query(q): Query<BackQuery>,
) -> Response {
    let Some(lang) = Lang::parse(&code) else {
        return WebError::NotFound(Lang::default()).into_response();
    };
    let mut res = html::see_other(&local_path(q.back.as_deref()));
    let c = cookies::site_cookie(
        ctx::LANG_COOKIE,
        lang.code(),
        Some(365 * 86_400),
        cookies::is_https(&headers, false),
    );
    res.headers_mut().append(
        header::SET_COOKIE,
        HeaderValue::from_str(&c).expect("cookie"),
    );
    res
}
