//! Requests carrying a NUL character are refused at the door. PostgreSQL cannot store NUL in
//! text at all (SQLite can), so a NUL that reached a query would answer 500 on one backend and
//! store garbage on the other; no field of ours has a use for it. The URL (path and query) and
//! bodies (JSON, or anything else read as form text) are checked before any handler runs, and
//! the request answers 400. Uploads (images, multipart forms, the import routes) are left to
//! their readers, which refuse NUL where they read text.

use crate::server::body::{MAX_BODY_BYTES, is_upload_path};
use crate::server::problem::{Problem, body_problem};
use axum::extract::Request;
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// Whether a URL's path or query holds a NUL, raw or percent-encoded.
pub fn url_has_nul(path_and_query: &str) -> bool {
    path_and_query.contains('\0')
        || path_and_query
            .as_bytes()
            .windows(3)
            .any(|w| w[0] == b'%' && w[1] == b'0' && w[2] == b'0')
}

/// Whether a JSON text holds a NUL: raw, or as a `\u0000` escape (one not itself escaped by a
/// preceding backslash).
pub fn json_has_nul(body: &[u8]) -> bool {
    if body.contains(&0) {
        return true;
    }
    let mut backslashes = 0usize;
    for (i, &b) in body.iter().enumerate() {
        if b == b'\\' {
            backslashes += 1;
            continue;
        }
        if b == b'u' && backslashes % 2 == 1 && body[i + 1..].starts_with(b"0000") {
            return true;
        }
        backslashes = 0;
    }
    false
}

/// Whether a form body (`application/x-www-form-urlencoded`) holds a NUL.
pub fn form_has_nul(body: &[u8]) -> bool {
    body.contains(&0) || body.windows(3).any(|w| w == b"%00")
}

fn refused(what: &str) -> Response {
    Problem::bad_request(
        "nul_character",
        format!("the request {what} contains a NUL character, which no field accepts"),
    )
    .into_response()
}

/// Middleware: refuses a request whose URL or JSON/form body contains a NUL character.
pub async fn reject_nul(request: Request, next: Next) -> Response {
    let url = request
        .uri()
        .path_and_query()
        .map_or("", |p| p.as_str())
        .to_string();
    if url_has_nul(&url) {
        return refused("URL");
    }
    let content_type = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    let has_body = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .is_some_and(|v| v.as_bytes() != b"0")
        || request.headers().contains_key(header::TRANSFER_ENCODING);
    // Binary bodies (a logo, a multipart upload) may hold NUL bytes: the upload reader
    // refuses NUL in a multipart form's text fields, and the upload routes' handlers check
    // the files they read as text.
    let binary = content_type.starts_with("image/")
        || content_type.starts_with("multipart/form-data")
        || is_upload_path(request.uri().path());
    if !has_body || binary {
        return next.run(request).await;
    }
    // Any other body is read as form text: some extractors (the admin UI's forms) read a body
    // as a form whatever its Content-Type says.
    let check: fn(&[u8]) -> bool =
        if content_type.starts_with("application/json") || content_type.contains("+json") {
            json_has_nul
        } else {
            form_has_nul
        };
    let (parts, body) = request.into_parts();
    // The listener already bounds bodies; buffering here costs no more than the extractor would.
    let bytes = match axum::body::to_bytes(body, MAX_BODY_BYTES).await {
        Ok(b) => b,
        Err(e) => {
            let status = if std::error::Error::source(&e)
                .is_some_and(|s| s.is::<http_body_util::LengthLimitError>())
            {
                axum::http::StatusCode::PAYLOAD_TOO_LARGE
            } else {
                axum::http::StatusCode::BAD_REQUEST
            };
            return body_problem(&e, status, e.to_string()).into_response();
        }
    };
    if check(&bytes) {
        return refused("body");
    }
    next.run(Request::from_parts(parts, axum::body::Body::from(bytes)))
        .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn nul_is_found_however_it_is_written() {
        assert!(url_has_nul("/api/v1/subscriptions?q=%00abc"));
        assert!(url_has_nul("/api/v1/customers/%00"));
        assert!(!url_has_nul("/api/v1/customers?q=100%25"));
        assert!(!url_has_nul("/api/v1/customers?q=a%200"));
        assert!(json_has_nul(br#"{"name":"a\u0000b"}"#));
        assert!(json_has_nul(b"{\"name\":\"a\0b\"}"));
        assert!(
            json_has_nul(br#"{"name":"\\\u0000"}"#),
            "escaped backslash, then NUL"
        );
        assert!(
            !json_has_nul(br#"{"name":"\\u0000"}"#),
            "a literal backslash-u"
        );
        assert!(!json_has_nul(br#"{"name":"\u00e9","n":0}"#));
        assert!(form_has_nul(b"name=a%00b"));
        assert!(!form_has_nul(b"name=a%200"));
    }

    proptest! {
        /// The JSON check agrees with what a JSON parser reads.
        #[test]
        fn json_check_agrees_with_parsing(s in "[a-z\\\\\u{0}é\"0u]{0,12}") {
            let body = serde_json::to_vec(&serde_json::json!({ "v": s })).unwrap();
            prop_assert_eq!(json_has_nul(&body), s.contains('\0'));
        }
    }
}
