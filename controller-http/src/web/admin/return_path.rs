//! Where a page may send the browser back to: paths on this site only.

use axum::http::{HeaderMap, header};

/// The path (and query) of the `Referer`, when it is a page of this site; `/` otherwise.
pub fn referer_path(headers: &HeaderMap) -> String {
    let Some(referer) = headers.get(header::REFERER).and_then(|v| v.to_str().ok()) else {
        return "/".into();
    };
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let rest = referer.split_once("://").map(|(_, r)| r).unwrap_or("");
    match rest.split_once('/') {
        Some((h, path)) if h.eq_ignore_ascii_case(host) => local_path(Some(&format!("/{path}"))),
        _ => "/".into(),
    }
}

/// A safe local redirect target: a path on this site, never `//host` or a URL. Browsers drop
/// tabs and newlines when they parse a URL (`/\t/evil` becomes `//evil`), so only visible
/// ASCII is accepted.
pub fn local_path(p: Option<&str>) -> String {
    match p {
        Some(p)
            if p.starts_with('/')
                && !p.starts_with("//")
                && !p.contains('\\')
                && p.bytes().all(|b| b.is_ascii_graphic()) =>
        {
            p.into()
        }
        _ => "/".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn redirect_targets_stay_on_this_site() {
        assert_eq!(local_path(Some("/\t/evil.example")), "/");
        assert_eq!(local_path(Some("/\n/evil.example")), "/");
        assert_eq!(local_path(Some("/ /evil.example")), "/");
        assert_eq!(
            local_path(Some("/vouchers?status=new")),
            "/vouchers?status=new"
        );
        for bad in [
            "//evil.example/x",
            "https://evil.example/",
            "/\\evil",
            "vouchers",
        ] {
            assert_eq!(local_path(Some(bad)), "/", "{bad}");
        }
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_static("billing.lan"));
        assert_eq!(referer_path(&h), "/");
        h.insert(
            header::REFERER,
            HeaderValue::from_static("http://billing.lan/customers/7?tab=1"),
        );
        assert_eq!(referer_path(&h), "/customers/7?tab=1");
        h.insert(
            header::REFERER,
            HeaderValue::from_static("http://evil.example/customers"),
        );
        assert_eq!(referer_path(&h), "/");
    }
}
