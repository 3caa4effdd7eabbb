//! [`Form`], the POST body extractor of admin pages that refuses forged requests, and the
//! CSRF check it shares with the login form.

use super::ctx::LANG_COOKIE;
use super::error::WebError;
use super::session;
use crate::web::{Lang, cookies, csrf};
use axum::extract::{FromRequest, Request};
use axum::http::HeaderMap;
use serde::de::DeserializeOwned;

/// A form body (`application/x-www-form-urlencoded`) of an admin page. The CSRF token and
/// the origin are checked before anything else; the fields themselves are parsed when the
/// handler asks, after it checked the role, so a role without the permission gets 403
/// whatever it sent.
#[derive(Debug)]
pub struct Form<T>(Result<T, String>);

impl<T> Form<T> {
    /// The parsed fields, or why they could not be parsed.
    pub fn fields(self) -> Result<T, String> {
        self.0
    }
}

#[derive(serde::Deserialize)]
struct TokenField {
    #[serde(rename = "_csrf", default)]
    csrf: String,
}

/// The CSRF check shared by [`Form`] and the login form: same origin, and the `_csrf`
/// field equals the token derived from the cookie `cookie_name`.
pub fn check_csrf(headers: &HeaderMap, body: &[u8], cookie_name: &str) -> bool {
    if !csrf::same_origin(headers) {
        return false;
    }
    let Some(secret) = cookies::cookie_value(headers, cookie_name) else {
        return false;
    };
    let submitted = serde_urlencoded::from_bytes::<TokenField>(body)
        .map(|t| t.csrf)
        .unwrap_or_default();
    csrf::matches(&csrf::token_for(&secret), &submitted)
}

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Form<T> {
    type Rejection = WebError;

    async fn from_request(req: Request, state: &S) -> Result<Self, WebError> {
        let headers = req.headers().clone();
        let lang = cookies::cookie_value(&headers, LANG_COOKIE)
            .and_then(|c| Lang::parse(&c))
            .unwrap_or_default();
        let body = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(|_| WebError::BadRequest(lang, "unreadable body".into()))?;
        if !check_csrf(&headers, &body, session::COOKIE) {
            return Err(WebError::Csrf(lang));
        }
        Ok(Form(
            serde_urlencoded::from_bytes::<T>(&body).map_err(|e| e.to_string()),
        ))
    }
}

/// Fields of the forms that need nothing but the token.
#[derive(Debug, serde::Deserialize)]
pub struct NoFields {}
