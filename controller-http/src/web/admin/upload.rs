//! Files sent from an admin page (`multipart/form-data`). The CSRF token must be the form's
//! first field and is checked, with the origin, before anything else is read, so a forged
//! request never makes the server take in an upload; each field is read with a bound.

use super::error::WebError;
use super::session;
use crate::web::{Lang, cookies, csrf};
use axum::extract::Multipart;
use axum::extract::multipart::{Field, MultipartRejection};
use axum::http::HeaderMap;
use std::collections::BTreeMap;

/// The longest text field taken (a name, a checkbox).
const MAX_TEXT_BYTES: usize = 4096;

/// What an upload form sent: its text fields and its one file.
#[derive(Debug, Default)]
pub struct Upload {
    /// Text fields by name (the token excluded).
    pub fields: BTreeMap<String, String>,
    /// The file's contents, when one was chosen.
    pub file: Option<Vec<u8>>,
}

/// Reads an upload form whose file may hold at most `max_file` bytes.
/// The extractor's rejection (not a multipart body) is taken here rather than by axum, so
/// that the handler's role check comes first.
pub async fn read(
    headers: &HeaderMap,
    multipart: Result<Multipart, MultipartRejection>,
    lang: Lang,
    max_file: usize,
) -> Result<Upload, WebError> {
    let bad = |what: String| WebError::BadRequest(lang, what);
    let mut multipart = multipart.map_err(|e| bad(e.body_text()))?;
    let unreadable = |e: axum::extract::multipart::MultipartError| bad(e.body_text());
    if !csrf::same_origin(headers) {
        return Err(WebError::Csrf(lang));
    }
    let secret = cookies::cookie_value(headers, session::COOKIE).ok_or(WebError::Csrf(lang))?;
    let Some(first) = multipart.next_field().await.map_err(unreadable)? else {
        return Err(WebError::Csrf(lang));
    };
    if first.name() != Some(csrf::FIELD) {
        return Err(WebError::Csrf(lang));
    }
    let token = bounded(first, MAX_TEXT_BYTES)
        .await
        .map_err(|_| WebError::Csrf(lang))?;
    if !csrf::matches(&csrf::token_for(&secret), &String::from_utf8_lossy(&token)) {
        return Err(WebError::Csrf(lang));
    }
    let mut upload = Upload::default();
    while let Some(field) = multipart.next_field().await.map_err(unreadable)? {
        let name = field.name().unwrap_or_default().to_string();
        if field.file_name().is_some() {
            if upload.file.is_some() {
                return Err(bad("send one file".into()));
            }
            let bytes = bounded(field, max_file).await.map_err(|e| match e {
                Bounded::TooLarge => bad(format!(
                    "the file is larger than {} MiB",
                    max_file / (1024 * 1024)
                )),
                Bounded::Read(e) => unreadable(e),
            })?;
            // A form sent without choosing a file still has the part, empty.
            upload.file = Some(bytes).filter(|b| !b.is_empty());
        } else {
            let bytes = bounded(field, MAX_TEXT_BYTES).await.map_err(|e| match e {
                Bounded::TooLarge => bad(format!("the field {name} is too long")),
                Bounded::Read(e) => unreadable(e),
            })?;
            let text = String::from_utf8(bytes)
                .ok()
                .filter(|t| !t.contains('\0'))
                .ok_or_else(|| bad(format!("the field {name} is not text")))?;
            upload.fields.insert(name, text);
        }
    }
    Ok(upload)
}

enum Bounded {
    TooLarge,
    Read(axum::extract::multipart::MultipartError),
}

/// A field's bytes, refused as soon as they pass `max`.
async fn bounded(mut field: Field<'_>, max: usize) -> Result<Vec<u8>, Bounded> {
    let mut out = Vec::new();
    while let Some(chunk) = field.chunk().await.map_err(Bounded::Read)? {
        if out.len() + chunk.len() > max {
            return Err(Bounded::TooLarge);
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}
