//! Request extractors that answer in problem details: the authenticated caller, JSON bodies
//! and query strings.

use crate::server::AppState;
use crate::server::client_ip::client_addr;
use crate::server::problem::Problem;
use crate::server::problem::body_problem;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header;
use axum::http::request::Parts;
use mikrobill_core::audit::Actor;
use mikrobill_core::auth::{Perm, Principal};
use serde::de::DeserializeOwned;
use std::net::IpAddr;

/// The authenticated caller of an `/api/v1` endpoint.
#[derive(Debug, Clone)]
pub struct Caller {
    /// Who is calling, with which role.
    pub principal: Principal,
    /// The client's address.
    pub addr: Option<IpAddr>,
}

impl Caller {
    /// Fails with 403 unless the caller's role grants `perm`.
    pub fn require(&self, perm: Perm) -> Result<(), Problem> {
        if self.principal.can(perm) {
            Ok(())
        } else {
            Err(Problem::forbidden())
        }
    }

    /// Whether the caller's role grants `perm`.
    pub fn can(&self, perm: Perm) -> bool {
        self.principal.can(perm)
    }

    /// The caller as an audit-log actor.
    pub fn actor(&self) -> Actor {
        Actor {
            id: Some(self.principal.admin_id.clone()),
            name: self.principal.username.clone(),
            addr: self.addr.map(|a| a.to_string()),
        }
    }
}

/// Paths (below `/api/v1`) a caller whose role requires two-factor sign-in may use before it
/// has enrolled.
pub const ENROLMENT_PATHS: [&str; 5] = [
    "/auth/me",
    "/auth/logout",
    "/auth/totp",
    "/auth/totp/enrolment",
    "/auth/totp/confirm",
];

/// The request's path below `/api/v1` (a nested router sees it stripped, or not, by version).
fn api_path(parts: &Parts) -> &str {
    let full = parts
        .extensions
        .get::<axum::extract::OriginalUri>()
        .map_or(parts.uri.path(), |o| o.0.path());
    full.strip_prefix("/api/v1").unwrap_or(full)
}

/// The bearer token of a request, if it has one.
pub fn bearer(parts: &Parts) -> Option<&str> {
    let value = parts.headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Problem> {
        let token = bearer(parts).ok_or_else(|| {
            Problem::unauthenticated(
                "send an access or API token as `Authorization: Bearer <token>`",
            )
        })?;
        let principal = state.tokens.authenticate(&state.db, token).await?;
        // An account whose role requires two-factor sign-in and that has none may only
        // enrol: its login is half a login until then.
        if principal.totp_enrolment_only && !ENROLMENT_PATHS.contains(&api_path(parts)) {
            return Err(Problem::new(
                axum::http::StatusCode::FORBIDDEN,
                "totp_enrolment_required",
                "your role requires two-factor sign-in: enrol at POST /api/v1/auth/totp/enrolment first",
            ));
        }
        if let Err(wait) = state.rate_limiter.check(
            &principal.token_id,
            principal.role,
            std::time::Instant::now(),
        ) {
            let mut p = Problem::new(
                axum::http::StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                format!(
                    "too many requests for a {} token; slow down",
                    principal.role.as_str()
                ),
            );
            p.retry_after = Some(wait.as_secs_f64().ceil().max(1.0) as u64);
            return Err(p);
        }
        Ok(Caller {
            principal,
            addr: client_addr(parts),
        })
    }
}

/// A JSON body, parsed when the handler asks for it: authorization is checked first, so a
/// caller without the right role gets 403 whatever it sent, and parse errors become 400
/// problems naming the field.
#[derive(Debug)]
pub struct Body<T>(Result<T, Problem>);

impl<T> Body<T> {
    /// The parsed body, or the problem that explains why it could not be parsed.
    pub fn into_inner(self) -> Result<T, Problem> {
        self.0
    }
}

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Body<T> {
    type Rejection = std::convert::Infallible;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        Ok(Body(
            axum::Json::<T>::from_request(req, state)
                .await
                .map(|axum::Json(v)| v)
                .map_err(json_problem),
        ))
    }
}

fn json_problem(rejection: JsonRejection) -> Problem {
    match rejection {
        JsonRejection::JsonDataError(e) => {
            // axum reports `path.to.field: what is wrong`; the path is the field.
            let text = e.body_text();
            let detail = text
                .strip_prefix("Failed to deserialize the JSON body into the target type: ")
                .unwrap_or(&text)
                .to_string();
            let mut p = Problem::bad_request("invalid_body", detail.clone());
            if let Some((field, _)) = detail.split_once(": ")
                && !field.contains(' ')
            {
                p.field = Some(field.to_string());
            } else if let Some(rest) = detail.strip_prefix("missing field `") {
                p.field = rest.split('`').next().map(str::to_string);
            }
            p
        }
        JsonRejection::JsonSyntaxError(e) => Problem::bad_request("malformed_json", e.body_text()),
        JsonRejection::MissingJsonContentType(_) => Problem::new(
            axum::http::StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send the body as `Content-Type: application/json`",
        ),
        other => body_problem(&other, other.status(), other.body_text()),
    }
}

/// A query string whose parse errors become 400 problems.
#[derive(Debug, Clone, Copy, Default)]
pub struct Query<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Query<T> {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Problem> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(v)) => Ok(Query(v)),
            Err(QueryRejection::FailedToDeserializeQueryString(e)) => {
                let text = e.body_text();
                let detail = text
                    .strip_prefix("Failed to deserialize query string: ")
                    .unwrap_or(&text)
                    .to_string();
                let mut p = Problem::bad_request("invalid_query", detail.clone());
                if let Some((field, _)) = detail.split_once(": ")
                    && !field.contains(' ')
                {
                    p.field = Some(field.to_string());
                }
                Err(p)
            }
            Err(other) => Err(Problem::bad_request("invalid_query", other.body_text())),
        }
    }
}
