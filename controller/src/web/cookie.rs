//! Reading the `Cookie` header and writing `Set-Cookie` values for the front ends' cookies.

use axum::http::HeaderMap;
use axum::http::header;

/// The value of cookie `name` in the request, if sent.
pub fn get(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| {
            let (k, v) = pair.trim().split_once('=')?;
            (k == name).then(|| v.to_string())
        })
}

/// Whether the request reached us over HTTPS (directly or, as deployments put a reverse
/// proxy in front, as that proxy reports it), so cookies get the `Secure` attribute.
pub fn is_https(headers: &HeaderMap) -> bool {
    headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("https"))
}

/// A `Set-Cookie` value: HttpOnly, `SameSite=Lax`, path `/`, `Secure` behind TLS;
/// `max_age_secs` of `None` makes a browser-session cookie, `Some(0)` deletes it.
///
/// Lax rather than Strict so that following a link to the UI from elsewhere (an e-mail)
/// lands logged in; every state change is a POST, which Lax never sends cross-site, and
/// POSTs carry a CSRF token besides.
pub fn set(name: &str, value: &str, max_age_secs: Option<i64>, secure: bool) -> String {
    let mut c = format!("{name}={value}; Path=/; HttpOnly; SameSite=Lax");
    if let Some(age) = max_age_secs {
        c.push_str(&format!("; Max-Age={age}"));
    }
    if secure {
        c.push_str("; Secure");
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn finds_a_cookie_among_several_headers_and_pairs() {
        let mut h = HeaderMap::new();
        h.append(header::COOKIE, HeaderValue::from_static("a=1; mb_s=xyz"));
        h.append(header::COOKIE, HeaderValue::from_static("lang=en"));
        assert_eq!(get(&h, "mb_s").as_deref(), Some("xyz"));
        assert_eq!(get(&h, "lang").as_deref(), Some("en"));
        assert_eq!(get(&h, "mb"), None);
    }

    #[test]
    fn cookies_are_http_only_and_secure_behind_tls() {
        let c = set("s", "v", Some(0), true);
        assert!(c.contains("HttpOnly") && c.contains("SameSite=Lax") && c.ends_with("Secure"));
        assert!(!set("s", "v", None, false).contains("Secure"));
    }
}
