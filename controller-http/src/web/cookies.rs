//! Reading request cookies and writing `Set-Cookie` headers with the attributes a session
//! cookie needs (HttpOnly, SameSite, Secure behind TLS, a path and a lifetime).

use axum::http::{HeaderMap, HeaderValue, header};

/// The value of cookie `name` in the request, if sent (the first one when repeated).
pub fn cookie_value(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v.trim_matches('"').to_string())
}

/// Whether the client reached us over HTTPS: directly configured as such, or through a
/// TLS-terminating proxy that says so.
pub fn is_https(headers: &HeaderMap, behind_tls: bool) -> bool {
    behind_tls
        || headers
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("https"))
}

/// How a cookie is set.
#[derive(Debug, Clone, Copy)]
pub struct CookieOptions<'a> {
    /// The path it is sent to.
    pub path: &'a str,
    /// Lifetime in seconds; 0 deletes the cookie.
    pub max_age_secs: i64,
    /// Hidden from scripts.
    pub http_only: bool,
    /// Only sent over HTTPS.
    pub secure: bool,
    /// `Strict` or `Lax`.
    pub same_site: &'a str,
}

/// A `Set-Cookie` value. `value` must be a token (hex, base64url, a language code).
pub fn set_cookie(name: &str, value: &str, o: CookieOptions<'_>) -> HeaderValue {
    let mut s = format!(
        "{name}={value}; Path={}; Max-Age={}; SameSite={}",
        o.path, o.max_age_secs, o.same_site
    );
    if o.http_only {
        s.push_str("; HttpOnly");
    }
    if o.secure {
        s.push_str("; Secure");
    }
    HeaderValue::from_str(&s).unwrap_or_else(|_| HeaderValue::from_static("invalid=; Max-Age=0"))
}

/// A `Set-Cookie` value for a cookie of the whole site (the admin UI's): HttpOnly,
/// `SameSite=Lax`, path `/`, `Secure` behind TLS; `max_age_secs` of `None` makes a
/// browser-session cookie, `Some(0)` deletes it.
///
/// Lax rather than Strict so that following a link to the UI from elsewhere (an e-mail)
/// lands logged in; every state change is a POST, which Lax never sends cross-site, and
/// POSTs carry a CSRF token besides.
pub fn site_cookie(name: &str, value: &str, max_age_secs: Option<i64>, secure: bool) -> String {
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

    #[test]
    fn finds_cookies_among_several_headers() {
        let mut h = HeaderMap::new();
        h.append(header::COOKIE, HeaderValue::from_static("a=1; b=two"));
        h.append(header::COOKIE, HeaderValue::from_static("c=\"3\""));
        assert_eq!(cookie_value(&h, "b").as_deref(), Some("two"));
        assert_eq!(cookie_value(&h, "c").as_deref(), Some("3"));
        assert_eq!(cookie_value(&h, "d"), None);
        assert_eq!(cookie_value(&h, "tw"), None);
    }

    #[test]
    fn attributes() {
        let o = CookieOptions {
            path: "/portal",
            max_age_secs: 60,
            http_only: true,
            secure: true,
            same_site: "Lax",
        };
        assert_eq!(
            set_cookie("s", "abc", o).to_str().unwrap(),
            "s=abc; Path=/portal; Max-Age=60; SameSite=Lax; HttpOnly; Secure"
        );
        let mut h = HeaderMap::new();
        assert!(!is_https(&h, false));
        assert!(is_https(&h, true));
        h.insert("x-forwarded-proto", HeaderValue::from_static("HTTPS"));
        assert!(is_https(&h, false));
    }

    #[test]
    fn site_cookies_are_http_only_and_secure_behind_tls() {
        let c = site_cookie("s", "v", Some(0), true);
        assert!(c.contains("HttpOnly") && c.contains("SameSite=Lax") && c.ends_with("Secure"));
        assert!(!site_cookie("s", "v", None, false).contains("Secure"));
    }
}
