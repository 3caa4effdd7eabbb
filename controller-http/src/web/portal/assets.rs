//! The stylesheet (embedded in the binary) and the language switch.

use super::{Ctx, LANG_COOKIE, PageResult, PortalError, see_other};
use crate::web::Lang;
use axum::extract::{Path, Query};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

/// The stylesheet, also inlined into downloaded invoices.
pub(super) const STYLESHEET: &str = include_str!("../../../templates/portal/portal.css");

/// The portal's stylesheet.
pub(super) async fn stylesheet() -> Response {
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
pub(super) struct Back {
    back: Option<String>,
}

/// Remembers the chosen language for a year and goes back to the page it was chosen on.
pub(super) async fn switch_language(
    ctx: Ctx,
    Path(code): Path<String>,
    Query(q): Query<Back>,
    headers: HeaderMap,
) -> PageResult {
    let lang = Lang::parse(&code).ok_or(PortalError::NotFound)?;
    let referer = headers.get(header::REFERER).and_then(|v| v.to_str().ok());
    let mut res = see_other(&return_target(q.back.as_deref(), referer));
    res.headers_mut().append(
        header::SET_COOKIE,
        ctx.cookie(LANG_COOKIE, lang.code(), 365 * 86_400),
    );
    Ok(res)
}

/// Where the language switch sends the browser back to: the `back` parameter the layout
/// writes, else the page the link was clicked on (`Referer`), with its query, as long as it is
/// a portal page; anything else is the portal's home.
pub(super) fn return_target(back: Option<&str>, referer: Option<&str>) -> String {
    back.and_then(portal_path)
        .or_else(|| referer.and_then(referer_path).and_then(portal_path))
        .unwrap_or_else(|| "/portal".to_string())
}

/// The path and query of a `Referer` URL (the host is dropped: only local paths are used).
fn referer_path(referer: &str) -> Option<&str> {
    let rest = referer
        .strip_prefix("https://")
        .or_else(|| referer.strip_prefix("http://"))?;
    Some(&rest[rest.find('/')?..])
}

/// A portal page to go back to, or `None` when `p` could lead anywhere else (the switch must
/// not become an open redirect).
fn portal_path(p: &str) -> Option<String> {
    let (path, query) = match p.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (p, None),
    };
    let portal = path == "/portal" || path.starts_with("/portal/");
    if !portal
        || path.contains("//")
        || path.contains("/..")
        || !p.bytes().all(|c| c.is_ascii_graphic())
        || p.contains('\\')
        || path.starts_with("/portal/lang/")
    {
        return None;
    }
    // A page rendered by a form's POST is shown again by the GET it came from.
    let path = match path.strip_suffix("/pay") {
        Some(invoice) => invoice,
        None if path.starts_with("/portal/login/") => "/portal/login",
        None if path == "/portal/logout" || path == "/portal/telegram" => "/portal",
        None => path,
    };
    Some(match query {
        Some(q) if !q.is_empty() => format!("{path}?{q}"),
        _ => path.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn the_switch_returns_to_the_page_and_its_query() {
        let t = |b: &str| return_target(Some(b), None);
        assert_eq!(t("/portal/invoices?page=2"), "/portal/invoices?page=2");
        assert_eq!(t("/portal/voucher?code=AB12"), "/portal/voucher?code=AB12");
        assert_eq!(t("/portal/invoices/inv1/pay"), "/portal/invoices/inv1");
        assert_eq!(t("/portal/logout"), "/portal");
        assert_eq!(t("/portal/login/code/verify"), "/portal/login");
        assert_eq!(t("/portal/login"), "/portal/login");
        assert_eq!(t("/portal"), "/portal");
        assert_eq!(
            return_target(None, Some("https://isp.example/portal/usage?days=30")),
            "/portal/usage?days=30"
        );
        assert_eq!(
            return_target(Some("//evil.example"), Some("http://x/portal/invoices")),
            "/portal/invoices",
            "a bad back falls back to the page the link was on"
        );
    }

    #[test]
    fn nothing_outside_the_portal_is_a_target() {
        for bad in [
            "//evil.example/",
            "https://evil.example/portal",
            "/portalx",
            "/portal//evil.example",
            "/portal/../api/v1/customers",
            "/portal/\\evil",
            "/portal/lang/en",
            "/admin",
            "",
        ] {
            assert_eq!(return_target(Some(bad), None), "/portal", "{bad}");
        }
        assert_eq!(
            return_target(None, Some("https://evil.example/")),
            "/portal"
        );
        assert_eq!(return_target(None, Some("javascript:alert(1)")), "/portal");
    }

    /// Inputs that mostly look like portal paths (with dots, slashes, backslashes and queries),
    /// so the checks are reached, plus anything at all.
    fn near_portal() -> impl Strategy<Value = String> {
        prop_oneof![
            "/portal[/.\\\\?a-z%0-9:]{0,24}",
            "(https?://[a-z.]{1,12})?/portal[/.?a-z]{0,16}",
            "[ -~]{0,40}",
        ]
    }

    proptest! {
        #[test]
        fn every_target_is_a_local_portal_page(back in near_portal(), referer in near_portal()) {
            let t = return_target(Some(&back), Some(&referer));
            let path = t.split_once('?').map_or(t.as_str(), |(p, _)| p);
            prop_assert!(path == "/portal" || path.starts_with("/portal/"), "{t}");
            prop_assert!(!path.contains("//") && !path.contains("/.."), "{t}");
            prop_assert!(!t.contains('\\') && t.bytes().all(|c| c.is_ascii_graphic()), "{t}");
        }
    }
}
