//! The customer portal at `/portal`: server-rendered pages that work without JavaScript, in
//! Indonesian or English (the `Accept-Language` header, or the switch's cookie).
//!
//! Every request gets a [`Ctx`] (language, the subscriber's session if any, anti-forgery
//! token). Handlers fail with [`PortalError`]; the [`pages`] middleware turns that into a page
//! in the request's language and adds the security headers every portal answer carries.

mod account;
mod assets;
mod format;
mod invoice;
mod login;
mod shop;
mod texts;
mod voucher;

use crate::server::AppState;
use crate::web::cookies::{self, CookieOptions};
use crate::web::{Lang, csrf};
use askama::Template;
use axum::Router;
use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use mikrobill_core::db::DbError;
use mikrobill_core::error::DomainError;
use mikrobill_core::portal::sessions::{self, Session};
use std::net::IpAddr;
pub use texts::Texts;

/// Cookie holding the session secret.
pub const SESSION_COOKIE: &str = "mb_portal_session";
/// Cookie holding the anti-forgery token of forms shown before login.
pub const FORM_COOKIE: &str = "mb_portal_form";
/// Cookie holding the language chosen with the switch.
pub const LANG_COOKIE: &str = "mb_portal_lang";
/// Where every portal cookie is sent.
const COOKIE_PATH: &str = "/portal";

/// The portal's routes, to be nested at `/portal`.
pub fn router(state: AppState) -> Router<AppState> {
    Router::new()
        .route("/", get(account::home))
        .route("/login", get(login::form).post(login::submit))
        .route("/login/code", post(login::request_code))
        .route("/login/code/verify", post(login::submit_code))
        .route("/logout", post(login::logout))
        .route("/telegram", post(account::link_telegram))
        .route("/invoices/{id}", get(invoice::show))
        .route("/invoices/{id}/download", get(invoice::download))
        .route("/invoices/{id}/pay", post(invoice::pay))
        .route("/voucher", get(voucher::form).post(voucher::lookup))
        .route("/buy", get(shop::buy_form).post(shop::buy))
        .route("/topup", get(shop::topup_form).post(shop::topup))
        .route("/orders/{order_id}", get(shop::order))
        .route("/lang/{code}", get(assets::switch_language))
        .route("/assets/portal.css", get(assets::stylesheet))
        .fallback(|| async { PortalError::NotFound })
        .layer(axum::middleware::from_fn_with_state(state, pages))
}

/// Why a portal request did not get its page.
#[derive(Debug, Clone)]
pub enum PortalError {
    /// No such page or record (also another customer's record).
    NotFound,
    /// The form's anti-forgery token is missing or wrong.
    FormExpired,
    /// The request is malformed.
    BadRequest,
    /// Too many failed attempts; minutes until the lock ends.
    Throttled(i64),
    /// The page needs a login.
    LoginRequired,
    /// Something broke on our side (logged, never shown).
    Internal,
}

impl From<DomainError> for PortalError {
    fn from(e: DomainError) -> Self {
        match e {
            DomainError::NotFound { .. } => PortalError::NotFound,
            DomainError::Invalid { .. } => PortalError::BadRequest,
            other => {
                tracing::error!("portal request failed: {other}");
                PortalError::Internal
            }
        }
    }
}

impl From<DbError> for PortalError {
    fn from(e: DbError) -> Self {
        tracing::error!("portal request failed: {e}");
        PortalError::Internal
    }
}

impl IntoResponse for PortalError {
    fn into_response(self) -> Response {
        // The page is rendered by `pages`, which knows the request's language.
        let mut res = StatusCode::INTERNAL_SERVER_ERROR.into_response();
        res.extensions_mut().insert(self);
        res
    }
}

/// A page of the portal.
pub type PageResult = Result<Response, PortalError>;

/// The language for a request: the switch's cookie, then `Accept-Language`, then Indonesian.
pub fn request_lang(headers: &HeaderMap) -> Lang {
    cookies::cookie_value(headers, LANG_COOKIE)
        .and_then(|c| Lang::parse(&c))
        .or_else(|| {
            headers
                .get(header::ACCEPT_LANGUAGE)
                .and_then(|v| v.to_str().ok())
                .and_then(Lang::from_accept_language)
        })
        .unwrap_or_default()
}

/// What every portal handler knows about its request.
#[derive(Debug, Clone)]
pub struct Ctx {
    /// Texts in the request's language.
    pub t: &'static Texts,
    /// The subscriber's session, when logged in.
    pub session: Option<Session>,
    /// The session cookie's secret, when logged in (for logout).
    secret: Option<String>,
    /// The pre-login form token from its cookie.
    form_token: Option<String>,
    /// Whether cookies get `Secure`.
    pub https: bool,
    /// The client's address.
    pub addr: Option<IpAddr>,
    /// The request path and query, for the language switch to come back to.
    pub path: String,
}

impl FromRequestParts<AppState> for Ctx {
    type Rejection = PortalError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Ctx, PortalError> {
        let headers = &parts.headers;
        let secret = cookies::cookie_value(headers, SESSION_COOKIE);
        let session = match &secret {
            Some(s) => sessions::lookup(&state.db, s).await?,
            None => None,
        };
        Ok(Ctx {
            t: Texts::of(request_lang(headers)),
            secret: session.as_ref().and(secret),
            session,
            form_token: cookies::cookie_value(headers, FORM_COOKIE)
                .filter(|t| t.len() == 32 && t.bytes().all(|b| b.is_ascii_hexdigit())),
            https: cookies::is_https(headers, state.secure_cookies),
            addr: crate::server::client_ip::client_addr(parts),
            // The portal is nested at `/portal`, which strips the prefix from `parts.uri`; the
            // switch must come back to the URL the browser asked for.
            path: {
                let uri = parts
                    .extensions
                    .get::<axum::extract::OriginalUri>()
                    .map_or(&parts.uri, |o| &o.0);
                uri.path_and_query()
                    .map_or_else(|| uri.path().to_string(), |p| p.as_str().to_string())
            },
        })
    }
}

impl Ctx {
    /// The logged-in session, or a redirect to the login page.
    pub fn require_session(&self) -> Result<&Session, PortalError> {
        self.session.as_ref().ok_or(PortalError::LoginRequired)
    }

    /// The client's address as throttling keys name it.
    pub fn addr_key(&self) -> String {
        mikrobill_core::auth::throttle::address_key(self.addr)
    }

    /// The anti-forgery token forms on this page carry, and the cookie to set when a
    /// pre-login token has to be issued first.
    pub fn form_token(&self) -> (String, Option<HeaderValue>) {
        if let Some(s) = &self.session {
            return (s.csrf.clone(), None);
        }
        match &self.form_token {
            Some(t) => (t.clone(), None),
            None => {
                let t = csrf::new_token();
                let cookie = self.cookie(FORM_COOKIE, &t, 86_400);
                (t, Some(cookie))
            }
        }
    }

    /// Renders a page with a form: `page` gets the layout carrying the form's token, and the
    /// answer sets the pre-login token's cookie when one had to be issued.
    pub fn render_form<T: Template>(&self, page: impl FnOnce(Layout) -> T) -> PageResult {
        let (token, cookie) = self.form_token();
        let mut res = render(&page(self.layout(&token)))?;
        if let Some(c) = cookie {
            res.headers_mut().append(header::SET_COOKIE, c);
        }
        Ok(res)
    }

    /// Fails unless `submitted` is this request's anti-forgery token.
    pub fn check_form_token(&self, submitted: &str) -> Result<(), PortalError> {
        let expected = match &self.session {
            Some(s) => Some(s.csrf.as_str()),
            None => self.form_token.as_deref(),
        };
        match expected {
            Some(e) if csrf::matches(e, submitted) => Ok(()),
            _ => Err(PortalError::FormExpired),
        }
    }

    /// A portal cookie: HttpOnly, SameSite=Lax (the payer comes back from the gateway's
    /// page by a top-level link), Secure behind TLS.
    pub fn cookie(&self, name: &str, value: &str, max_age_secs: i64) -> HeaderValue {
        cookies::set_cookie(
            name,
            value,
            CookieOptions {
                path: COOKIE_PATH,
                max_age_secs,
                http_only: true,
                secure: self.https,
                same_site: "Lax",
            },
        )
    }

    /// What the layout of every page needs.
    pub fn layout(&self, csrf: &str) -> Layout {
        Layout {
            t: self.t,
            logged_in: self.session.is_some(),
            csrf: csrf.to_string(),
            back: form_urlencoded::byte_serialize(self.path.as_bytes()).collect(),
            languages: Lang::ALL
                .iter()
                .map(|l| LangLink {
                    code: l.code(),
                    name: match l {
                        Lang::Id => "Bahasa Indonesia",
                        Lang::En => "English",
                    },
                    current: *l == self.t.lang,
                })
                .collect(),
        }
    }
}

/// One entry of the language switch.
#[derive(Debug, Clone)]
pub struct LangLink {
    /// BCP 47 code.
    pub code: &'static str,
    /// The language's own name.
    pub name: &'static str,
    /// Whether the page is in it.
    pub current: bool,
}

/// What the shared layout shows: navigation, language switch, logout form.
#[derive(Debug, Clone)]
pub struct Layout {
    /// Texts.
    pub t: &'static Texts,
    /// Whether the navigation shows the logout button.
    pub logged_in: bool,
    /// The logout form's anti-forgery token.
    pub csrf: String,
    /// The page to come back to after switching language, URL-encoded for a query string.
    pub back: String,
    /// The language switch.
    pub languages: Vec<LangLink>,
}

/// A rendered page; never cached, since it may hold the subscriber's data.
pub fn render(page: &impl Template) -> PageResult {
    let body = page.render().map_err(|e| {
        tracing::error!("portal template failed: {e}");
        PortalError::Internal
    })?;
    Ok(Html(body).into_response())
}

/// A 303 to another portal page.
pub fn see_other(to: &str) -> Response {
    Redirect::to(to).into_response()
}

/// The message page errors are shown with.
#[derive(Template)]
#[template(path = "portal/message.html")]
struct MessagePage {
    layout: Layout,
    title: String,
    message: String,
}

/// Renders [`PortalError`]s in the request's language and adds the portal's headers.
async fn pages(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let lang = request_lang(req.headers());
    let https = cookies::is_https(req.headers(), state.secure_cookies);
    // Nested at `/portal`, the request's own URI lost that prefix; the error page's language
    // switch must come back to what the browser asked for.
    let path = req
        .extensions()
        .get::<axum::extract::OriginalUri>()
        .map_or(req.uri(), |o| &o.0)
        .path()
        .to_string();
    let mut res = next.run(req).await;
    if let Some(err) = res.extensions_mut().remove::<PortalError>() {
        res = error_page(err, lang, https, path);
    }
    let h = res.headers_mut();
    h.entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    // The portal runs no script at all.
    crate::web::html::security_headers(
        h,
        "default-src 'none'; style-src 'self'; img-src 'self'; frame-ancestors 'none'; base-uri 'none'",
    );
    res
}

fn error_page(err: PortalError, lang: Lang, https: bool, path: String) -> Response {
    let t = Texts::of(lang);
    let (status, message) = match &err {
        PortalError::LoginRequired => return see_other("/portal/login"),
        PortalError::NotFound => (StatusCode::NOT_FOUND, t.not_found.to_string()),
        PortalError::FormExpired => (StatusCode::FORBIDDEN, t.form_expired.to_string()),
        PortalError::BadRequest => (StatusCode::BAD_REQUEST, t.bad_request.to_string()),
        PortalError::Throttled(minutes) => (
            StatusCode::TOO_MANY_REQUESTS,
            format!("{} {}", t.too_many_attempts, t.try_again_in(*minutes)),
        ),
        PortalError::Internal => (
            StatusCode::INTERNAL_SERVER_ERROR,
            t.internal_error.to_string(),
        ),
    };
    // The error page has no session context: its navigation shows the public links only.
    let ctx = Ctx {
        t,
        session: None,
        secret: None,
        form_token: None,
        https,
        addr: None,
        path,
    };
    let page = MessagePage {
        layout: ctx.layout(""),
        title: t.portal.to_string(),
        message,
    };
    match render(&page) {
        Ok(mut res) => {
            *res.status_mut() = status;
            res
        }
        Err(_) => status.into_response(),
    }
}

/// Minutes, rounded up, of a throttle's remaining lock.
fn lock_minutes(ms: i64) -> i64 {
    (ms + 59_999) / 60_000
}
