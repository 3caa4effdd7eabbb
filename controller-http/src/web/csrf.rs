//! Cross-site request forgery defences for HTML forms: a synchronizer token derived from the
//! session secret (so it needs no storage and dies with the session), compared in constant
//! time, and an `Origin`/`Sec-Fetch-Site` check that refuses POSTs a browser marks as
//! coming from another site.

use axum::http::HeaderMap;
use axum::http::header;
use sha2::{Digest, Sha256};

/// The name of the hidden form field that carries the token.
pub const FIELD: &str = "_csrf";

/// The token for a session whose cookie holds `session_secret`. Deriving it with a domain
/// separator means knowing the token tells nothing about the cookie.
pub fn token_for(session_secret: &str) -> String {
    let mut h = Sha256::new();
    h.update(b"mikrobill csrf v1\0");
    h.update(session_secret.as_bytes());
    hex::encode(h.finalize())
}

/// A fresh random token (128 bits, hex), for forms shown before a login (kept in a cookie).
pub fn new_token() -> String {
    use rand::RngCore;
    let mut bytes = [0u8; 16];
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// Whether `submitted` equals `expected`, without an early exit that would leak how many
/// characters matched; an empty expectation (no token was issued) never matches.
pub fn matches(expected: &str, submitted: &str) -> bool {
    let (a, b) = (expected.as_bytes(), submitted.as_bytes());
    if a.is_empty() || a.len() != b.len() {
        return false;
    }
    std::hint::black_box(a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y))) == 0
}

/// Whether the browser says the request comes from our own origin. Requests without
/// `Origin` (older browsers, non-browser clients) pass here and rely on the token.
pub fn same_origin(headers: &HeaderMap) -> bool {
    if let Some(site) = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok())
        && !matches!(site, "same-origin" | "none")
    {
        return false;
    }
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return true;
    };
    let origin_host = origin.split_once("://").map(|(_, rest)| rest).unwrap_or("");
    // Behind a reverse proxy the browser's host arrives as `X-Forwarded-Host` when the
    // proxy rewrites `Host`.
    [header::HOST.as_str(), "x-forwarded-host"]
        .into_iter()
        .filter_map(|name| headers.get(name).and_then(|v| v.to_str().ok()))
        .flat_map(|v| v.split(','))
        .any(|host| origin_host.eq_ignore_ascii_case(host.trim()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn tokens_are_per_session_and_compared_exactly() {
        let a = token_for("secret-a");
        assert_eq!(a, token_for("secret-a"));
        assert_ne!(a, token_for("secret-b"));
        assert!(matches(&a, &a));
        assert!(!matches(&a, &a[1..]));
        assert!(!matches(&a, &token_for("secret-b")));
        assert!(!matches("", ""));
        let fresh = new_token();
        assert_eq!(fresh.len(), 32);
        assert_ne!(fresh, new_token());
    }

    #[test]
    fn cross_site_posts_are_refused() {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_static("billing.lan:8080"));
        assert!(same_origin(&h));
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("http://billing.lan:8080"),
        );
        assert!(same_origin(&h));
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("http://evil.example"),
        );
        assert!(!same_origin(&h));
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("http://billing.lan:8080"),
        );
        h.insert("sec-fetch-site", HeaderValue::from_static("cross-site"));
        assert!(!same_origin(&h));
    }

    #[test]
    fn a_proxy_may_pass_the_browser_host_as_forwarded_host() {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_static("127.0.0.1:8080"));
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("https://billing.example.net"),
        );
        assert!(!same_origin(&h));
        h.insert(
            "x-forwarded-host",
            HeaderValue::from_static("billing.example.net"),
        );
        assert!(same_origin(&h));
    }
}
