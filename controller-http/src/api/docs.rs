//! The OpenAPI document (generated from the handlers' annotations) and a readable reference
//! page rendered from it on the server, so the docs need no script and no internet.

use crate::server::AppState;
use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::response::Html;
use axum::routing::get;
use std::fmt::Write;
use std::sync::Arc;
use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{
    Content, InfoBuilder, Object, OpenApi, Ref, RefOr, Response, ResponseBuilder, ServerBuilder,
    Type,
};

/// Adds the document-level parts (info, server, bearer scheme) to the collected paths.
pub fn finish(mut api: OpenApi) -> OpenApi {
    api.info = InfoBuilder::new()
        .title("MikroBill admin API")
        .version(env!("CARGO_PKG_VERSION"))
        .description(Some(
            "Billing, vouchers, PPPoE subscriptions, invoices, payments and sites. Authenticate with \
             `Authorization: Bearer <token>` (an access token from `POST /auth/login` or an API token). \
             Errors are `application/problem+json` with a `code` and, for validation errors, the `field`.",
        ))
        .build();
    api.servers = Some(vec![ServerBuilder::new().url("/api/v1").build()]);
    document_errors(&mut api);
    describe_responses(&mut api);
    let components = api.components.get_or_insert_with(Default::default);
    // Types that appear only in query parameters are referenced but not collected by the
    // route macros; register them so every reference resolves.
    {
        use utoipa::{PartialSchema, ToSchema};
        components.schemas.insert(
            mikrobill_core::events::EventKind::name().into_owned(),
            mikrobill_core::events::EventKind::schema(),
        );
        use mikrobill_core::reports::{
            Period, revenue::RevenueBy, usage::UsageBy, voucher_sales::SalesBy,
        };
        for (name, schema) in [
            (
                crate::api::v1::reports::Format::name(),
                crate::api::v1::reports::Format::schema(),
            ),
            (Period::name(), Period::schema()),
            (RevenueBy::name(), RevenueBy::schema()),
            (SalesBy::name(), SalesBy::schema()),
            (UsageBy::name(), UsageBy::schema()),
        ] {
            components.schemas.insert(name.into_owned(), schema);
        }
    }
    components.add_security_scheme(
        "bearer",
        SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
    );
    api
}

/// The errors any operation can answer besides those its annotation names: the extractors,
/// the listener and the rate limiter answer them before a handler runs, so listing them per
/// handler would be repeated on every annotation and forgotten on some. Every error is a
/// `Problem` served as `application/problem+json`.
fn document_errors(api: &mut OpenApi) {
    use utoipa::openapi::path::ParameterIn;
    for item in api.paths.paths.values_mut() {
        let ops = [
            &mut item.get,
            &mut item.post,
            &mut item.put,
            &mut item.patch,
            &mut item.delete,
        ];
        for op in ops.into_iter().flatten() {
            let secured = op.security.as_ref().is_some_and(|s| !s.is_empty());
            let has_body = op.request_body.is_some();
            let has_path = op.parameters.iter().flatten().any(|p| match p {
                RefOr::T(p) => p.parameter_in == ParameterIn::Path,
                RefOr::Ref(_) => false,
            });
            for (code, response) in op.responses.responses.iter_mut() {
                if let RefOr::T(r) = response
                    && code.starts_with(['4', '5'])
                    && let Some(content) = r.content.shift_remove("application/json")
                {
                    r.content.insert(PROBLEM_JSON.into(), content);
                }
            }
            let mut add = |code: u16, retry: bool| {
                op.responses
                    .responses
                    .entry(code.to_string())
                    .or_insert_with(|| RefOr::T(problem_response(code, retry)));
            };
            // A malformed query or path value.
            add(400, false);
            if secured {
                add(401, false);
                add(403, false);
            }
            if has_path {
                add(404, false);
            }
            if has_body {
                add(408, false);
                add(413, false);
                add(415, false);
            }
            // A value of the right type that the operation still refuses, with its field.
            if has_body || op.parameters.as_ref().is_some_and(|p| !p.is_empty()) {
                add(422, false);
            }
            // The rate limit applies to every token; logins have their own throttle.
            add(429, true);
            add(503, true);
        }
    }
}

/// The media type of every error body.
const PROBLEM_JSON: &str = "application/problem+json";

/// A documented error response: a `Problem`, with `Retry-After` where the client should wait.
fn problem_response(code: u16, retry: bool) -> Response {
    let reason = axum::http::StatusCode::from_u16(code)
        .ok()
        .and_then(|c| c.canonical_reason())
        .unwrap_or("Error");
    let mut r = ResponseBuilder::new().description(reason).content(
        PROBLEM_JSON,
        Content::new(Some(Ref::from_schema_name("Problem"))),
    );
    if retry {
        r = r.header(
            "Retry-After",
            HeaderBuilder::new()
                .schema(Some(Object::with_type(Type::Integer)))
                .description(Some("Seconds to wait before trying again."))
                .build(),
        );
    }
    r.build()
}

/// OpenAPI requires a description on every response; the handlers' annotations name status
/// and body only, so the status's reason phrase fills in.
fn describe_responses(api: &mut OpenApi) {
    for item in api.paths.paths.values_mut() {
        let ops = [
            &mut item.get,
            &mut item.post,
            &mut item.put,
            &mut item.patch,
            &mut item.delete,
        ];
        for op in ops.into_iter().flatten() {
            for (code, response) in op.responses.responses.iter_mut() {
                if let RefOr::T(r) = response
                    && r.description.is_empty()
                {
                    r.description = code
                        .parse::<u16>()
                        .ok()
                        .and_then(|c| axum::http::StatusCode::from_u16(c).ok())
                        .and_then(|c| c.canonical_reason())
                        .unwrap_or("Response")
                        .to_string();
                }
            }
        }
    }
}

/// `/openapi.json` and `/docs`.
pub fn router(api: Arc<OpenApi>) -> Router<AppState> {
    let json = api.clone();
    let html = Arc::new(render(&api));
    Router::new()
        .route(
            "/openapi.json",
            get(move |State(_): State<AppState>| {
                let json = json.clone();
                async move { Json((*json).clone()) }
            }),
        )
        .route(
            "/docs",
            get(move || {
                let html = html.clone();
                async move { Html((*html).clone()) }
            }),
        )
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Renders the reference page: every operation grouped by tag, with its parameters, body and
/// responses.
pub fn render(api: &OpenApi) -> String {
    let mut ops: Vec<(String, String, String, &utoipa::openapi::path::Operation)> = Vec::new();
    for (path, item) in api.paths.paths.iter() {
        let methods = [
            ("GET", &item.get),
            ("POST", &item.post),
            ("PUT", &item.put),
            ("PATCH", &item.patch),
            ("DELETE", &item.delete),
        ];
        for (method, op) in methods {
            if let Some(op) = op {
                let tag = op
                    .tags
                    .as_ref()
                    .and_then(|t| t.first().cloned())
                    .unwrap_or_default();
                ops.push((tag, path.clone(), method.to_string(), op));
            }
        }
    }
    ops.sort_by(|a, b| (&a.0, &a.1, &a.2).cmp(&(&b.0, &b.1, &b.2)));
    let mut out = String::from(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>MikroBill API reference</title><style>body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;line-height:1.4}\
         code{background:#f3f3f3;padding:0 .2rem}section{border-top:1px solid #ddd;padding:.5rem 0}.m{font-weight:bold;display:inline-block;min-width:4.5rem}\
         table{border-collapse:collapse}td,th{border:1px solid #ddd;padding:.2rem .5rem;text-align:left}</style></head><body>",
    );
    let _ = write!(
        out,
        "<h1>{}</h1><p>Version {}. Base path <code>/api/v1</code>. Machine-readable: <a href=\"openapi.json\">openapi.json</a>.</p>",
        esc(&api.info.title),
        esc(&api.info.version)
    );
    if let Some(d) = &api.info.description {
        let _ = write!(out, "<p>{}</p>", esc(d));
    }
    let mut current_tag = None;
    for (tag, path, method, op) in ops {
        if current_tag.as_ref() != Some(&tag) {
            let _ = write!(out, "<h2 id=\"{0}\">{0}</h2>", esc(&tag));
            current_tag = Some(tag);
        }
        let _ = write!(
            out,
            "<section><h3><span class=\"m\">{}</span><code>{}</code></h3>",
            method,
            esc(path.as_str())
        );
        if let Some(s) = &op.summary {
            let _ = write!(out, "<p>{}</p>", esc(s));
        }
        if let Some(d) = &op.description {
            let _ = write!(out, "<p>{}</p>", esc(d));
        }
        if let Some(params) = &op.parameters
            && !params.is_empty()
        {
            out.push_str("<table><tr><th>parameter</th><th>in</th><th>required</th><th>description</th></tr>");
            for p in params.iter().filter_map(|p| match p {
                utoipa::openapi::RefOr::T(p) => Some(p),
                utoipa::openapi::RefOr::Ref(_) => None,
            }) {
                let _ = write!(
                    out,
                    "<tr><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td></tr>",
                    esc(&p.name),
                    match p.parameter_in {
                        utoipa::openapi::path::ParameterIn::Path => "path",
                        utoipa::openapi::path::ParameterIn::Query
                        | utoipa::openapi::path::ParameterIn::QueryString => "query",
                        utoipa::openapi::path::ParameterIn::Header => "header",
                        utoipa::openapi::path::ParameterIn::Cookie => "cookie",
                    },
                    matches!(p.required, utoipa::openapi::Required::True),
                    esc(p.description.as_deref().unwrap_or(""))
                );
            }
            out.push_str("</table>");
        }
        if op.request_body.is_some() {
            out.push_str("<p>Request body: JSON (see the schema in openapi.json).</p>");
        }
        out.push_str("<p>Responses: ");
        let codes: Vec<String> = op
            .responses
            .responses
            .keys()
            .map(|k| format!("<code>{}</code>", esc(k)))
            .collect();
        out.push_str(&codes.join(", "));
        out.push_str("</p></section>");
    }
    out.push_str("</body></html>");
    out
}
