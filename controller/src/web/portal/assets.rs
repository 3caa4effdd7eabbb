//! The stylesheet (embedded in the binary) and the language switch.

use super::{Ctx, LANG_COOKIE, PageResult, PortalError, see_other};
use crate::web::Lang;
use axum::extract::{Path, Query};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

/// The stylesheet, also inlined into downloaded invoices.
pub const STYLESHEET: &str = include_str!("../../../templates/portal/portal.css");

/// The portal's stylesheet.
pub async fn stylesheet() -> Response {
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/css; charset=utf-8"),
            ),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=3600"),
            ),
        ],
        STYLESHEET,
    )
        .into_response()
}

/// Where to go after switching.
#[derive(Debug, Deserialize)]
pub struct Back {
    back: Option<String>,
}

/// Remembers the chosen language for a year and goes back to the page it was chosen on.
pub async fn switch_language(
    ctx: Ctx,
    Path(code): Path<String>,
    Query(q): Query<Back>,
) -> PageResult {
    let lang = Lang::parse(&code).ok_or(PortalError::NotFound)?;
    // Only portal paths: the switch must not become an open redirect.
    let back = q
        .back
        .filter(|b| {
            b.starts_with("/portal")
                && !b.contains("//")
                && !b.contains('\\')
                && b.bytes().all(|c| c.is_ascii_graphic())
        })
        // A page rendered by a form's POST is shown again by its GET.
        .map(|b| match b.strip_suffix("/pay") {
            Some(invoice) => invoice.to_string(),
            None if b == "/portal/logout" => "/portal".to_string(),
            None => b,
        })
        .unwrap_or_else(|| "/portal".to_string());
    let mut res = see_other(&back);
    res.headers_mut().append(
        header::SET_COOKIE,
        ctx.cookie(LANG_COOKIE, lang.code(), 365 * 86_400),
    );
    Ok(res)
}
