//! Limits on request bodies shared by the listener, which enforces them, and the problem
//! documents and guards that explain them: the size cap and the timeout's error.

use std::time::Duration;

/// The largest request body any handler reads (axum's default limit, which the router
/// keeps); a body declared larger is refused before it is read.
pub const MAX_BODY_BYTES: usize = 2 * 1024 * 1024;

/// The largest upload (a PHPNuxBill dump with its form's other fields) taken by the routes
/// [`limit_for`] names.
pub const MAX_UPLOAD_BYTES: usize = 64 * 1024 * 1024 + 64 * 1024;

/// The body limit of a path: uploads of another system's database are larger than any form
/// or JSON document. Their handlers bound what they read and refuse NUL themselves.
pub fn limit_for(path: &str) -> usize {
    if is_upload_path(path) {
        MAX_UPLOAD_BYTES
    } else {
        MAX_BODY_BYTES
    }
}

/// Whether a path takes uploads larger than [`MAX_BODY_BYTES`].
pub fn is_upload_path(path: &str) -> bool {
    path == "/imports" || path.starts_with("/api/v1/imports/")
}

/// The error a request body gives when it did not arrive within the body timeout.
#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive within {0:?}")]
pub struct BodyTimeout(Duration);

impl BodyTimeout {
    /// The body timeout of `limit` ran out.
    pub fn after(limit: Duration) -> BodyTimeout {
        BodyTimeout(limit)
    }
}

/// Whether `error` (or what caused it) is a request body that ran out of time.
pub fn is_body_timeout(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut current = Some(error);
    while let Some(e) = current {
        if e.is::<BodyTimeout>() {
            return true;
        }
        current = e.source();
    }
    false
}
