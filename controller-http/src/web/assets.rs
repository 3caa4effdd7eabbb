//! Static assets compiled into the binary: the stylesheet (screen, phone and print) and a
//! small script that only adds conveniences (print buttons, confirmations); every flow
//! works without it.

use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

/// What asset URLs carry (`?v=`), so a new release is not served an old cached file.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The admin stylesheet.
pub const ADMIN_CSS: &str = include_str!("../../assets/admin.css");
/// The admin script.
pub const ADMIN_JS: &str = include_str!("../../assets/admin.js");

/// An asset response, cacheable for a day (the URL carries the version).
pub fn serve(body: &'static str, content_type: &'static str) -> Response {
    let mut res = body.into_response();
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=86400"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    res
}
