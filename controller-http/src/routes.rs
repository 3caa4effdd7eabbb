//! The whole HTTP router: `/health`, `/ready`, `/metrics`, the admin REST API under
//! `/api/v1` (OpenAPI at `/api/v1/openapi.json`, a readable reference at `/api/v1/docs`), the
//! customer portal under `/portal` and the admin web UI at `/`. The only module that knows
//! both front ends.

use crate::api::{docs, metrics, v1};
use crate::server::AppState;
use crate::server::problem;
use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use serde_json::json;
use std::sync::Arc;

/// Builds the whole HTTP router.
pub fn router(state: AppState) -> Router {
    // The recorder exists before the first request is measured.
    metrics::handle();
    let (v1, openapi) = v1::router().split_for_parts();
    let openapi = Arc::new(docs::finish(openapi));
    Router::new()
        .route("/health", get(health))
        .route("/ready", get(ready))
        .route("/metrics", get(metrics::render_with_token))
        .nest(
            "/api/v1",
            v1.merge(docs::router(openapi))
                .layer(axum::middleware::from_fn(api_headers)),
        )
        .nest("/portal", crate::web::portal::router(state.clone()))
        .merge(crate::web::admin::router())
        .fallback(fallback)
        // Before any extractor: a NUL would reach the database otherwise.
        .layer(axum::middleware::from_fn(
            crate::server::nul_guard::reject_nul,
        ))
        .layer(axum::middleware::from_fn(metrics::track))
        .layer(axum::middleware::from_fn(crate::server::trace::http_span))
        .with_state(state)
}

/// The router of the separate metrics listener: `/metrics` only, no token.
pub fn metrics_router(state: AppState) -> Router {
    metrics::handle();
    Router::new()
        .route("/metrics", get(metrics::render))
        .with_state(state)
}

/// Headers every `/api/v1` answer carries: no content sniffing, and no caching unless the
/// handler chose otherwise (tokens, customer data and money must not sit in a proxy's or a
/// browser's cache).
async fn api_headers(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::http::{HeaderValue, header};
    let mut response = next.run(request).await;
    let h = response.headers_mut();
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    response
}

/// Unknown paths: problem details for the API and machines, an HTML page for browsers.
async fn fallback(
    uri: axum::http::Uri,
    headers: axum::http::HeaderMap,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let wants_html = headers
        .get_all(axum::http::header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.contains("text/html"));
    if wants_html && !uri.path().starts_with("/api/") {
        crate::web::admin::error::WebError::NotFound(crate::web::Lang::default()).into_response()
    } else {
        problem::Problem::not_found("no such endpoint").into_response()
    }
}

/// Liveness: the process serves HTTP.
async fn health() -> Json<serde_json::Value> {
    Json(json!({ "status": "ok", "version": env!("CARGO_PKG_VERSION") }))
}

/// Readiness: the database answers and every migration this binary knows is applied.
async fn ready(State(state): State<AppState>) -> (StatusCode, Json<serde_json::Value>) {
    match state.db.migrations_applied().await {
        Ok(true) => (StatusCode::OK, Json(json!({ "status": "ready" }))),
        Ok(false) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "status": "migrations pending" })),
        ),
        Err(e) => {
            tracing::warn!("readiness check failed: {e}");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({ "status": "database unavailable" })),
            )
        }
    }
}
