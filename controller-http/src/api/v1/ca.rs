//! The controller's CA rotation (admins only): its status, and the three steps the `ca`
//! command also runs (publish a new CA, activate it, retire the previous one), each audited
//! by the domain as the caller. Every replica's edge follows a step within a poll interval.

use crate::api::extract::{Caller, Query};
use crate::server::AppState;
use crate::server::problem::{ApiResult, Problem};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use mikrobill_core::auth::Perm;
use mikrobill_core::ca_rotation::{self, Rotation, RotationError};
use mikrobill_core::db::now_ms;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Routes of this module.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(status))
        .routes(routes!(rotate))
        .routes(routes!(activate))
        .routes(routes!(retire))
}

/// One CA rotation.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RotationView {
    /// `published`, `active` or `retired`.
    pub phase: &'static str,
    /// The new CA's SHA-256 fingerprint (hex).
    pub fingerprint: String,
    /// The previous CA's fingerprint (hex).
    pub previous_fingerprint: String,
    /// When it was published (UTC ms).
    pub published_at: i64,
    /// When the new CA began issuing.
    pub activated_at: Option<i64>,
    /// When the previous CA was retired.
    pub retired_at: Option<i64>,
    /// Sites still on the previous CA when its retirement was forced.
    pub forced_pending: i64,
}

impl From<Rotation> for RotationView {
    fn from(r: Rotation) -> RotationView {
        RotationView {
            phase: r.phase().as_str(),
            fingerprint: r.fingerprint,
            previous_fingerprint: r.previous_fingerprint,
            published_at: r.published_at,
            activated_at: r.activated_at,
            retired_at: r.retired_at,
            forced_pending: r.forced_pending,
        }
    }
}

/// The CA that issues now and the newest rotation.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CaStatus {
    /// The issuing CA's fingerprint (hex), which new enrollment tokens pin.
    pub issuing_fingerprint: String,
    /// The newest rotation, if there was one.
    pub rotation: Option<RotationView>,
    /// While a rotation is open: live sites whose agent still runs on the previous CA.
    pub sites_on_previous_ca: Option<i64>,
}

fn problem(e: RotationError) -> Problem {
    match e {
        RotationError::InProgress(_)
        | RotationError::NothingPublished
        | RotationError::AlreadyActive
        | RotationError::NotActive
        | RotationError::AgentsPending(_) => {
            Problem::new(StatusCode::CONFLICT, "conflict", e.to_string())
        }
        other => Problem::internal(&other),
    }
}

fn data_dir(state: &AppState) -> ApiResult<&std::path::Path> {
    state
        .data_dir
        .as_deref()
        .ok_or_else(|| Problem::internal(&"this server has no data directory for CA files"))
}

/// The issuing CA, the newest rotation and how many sites still need the previous CA.
#[utoipa::path(get, path = "/ca", tag = "ca", security(("bearer" = [])),
    responses((status = 200, body = CaStatus), (status = 403, body = Problem)))]
async fn status(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<CaStatus>> {
    caller.require(Perm::ManageCa)?;
    let set = ca_rotation::load(&state.db, data_dir(&state)?)
        .await
        .map_err(problem)?;
    let latest = ca_rotation::latest(&state.db).await.map_err(problem)?;
    let pending = match &latest {
        Some(r) if r.retired_at.is_none() => Some(
            ca_rotation::pending_agents(&state.db, &r.fingerprint, now_ms())
                .await
                .map_err(problem)?,
        ),
        _ => None,
    };
    Ok(Json(CaStatus {
        issuing_fingerprint: set.active.fingerprint_hex(),
        rotation: latest.map(RotationView::from),
        sites_on_previous_ca: pending,
    }))
}

/// Creates a new CA and publishes it: agents are sent it and trust both; the current CA
/// still issues.
#[utoipa::path(post, path = "/ca/rotate", tag = "ca", security(("bearer" = [])),
    responses((status = 201, body = RotationView), (status = 403, body = Problem), (status = 409, body = Problem)))]
async fn rotate(
    State(state): State<AppState>,
    caller: Caller,
) -> ApiResult<(StatusCode, Json<RotationView>)> {
    caller.require(Perm::ManageCa)?;
    let r = ca_rotation::publish(&state.db, data_dir(&state)?, &caller.actor(), now_ms())
        .await
        .map_err(problem)?;
    Ok((StatusCode::CREATED, Json(r.into())))
}

/// Makes the published CA the issuing one: the edge presents it and agents renew onto it.
#[utoipa::path(post, path = "/ca/activate", tag = "ca", security(("bearer" = [])),
    responses((status = 200, body = RotationView), (status = 403, body = Problem), (status = 409, body = Problem)))]
async fn activate(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<RotationView>> {
    caller.require(Perm::ManageCa)?;
    let r = ca_rotation::activate(&state.db, &caller.actor(), now_ms())
        .await
        .map_err(problem)?;
    Ok(Json(r.into()))
}

/// Whether to retire while sites still run on the previous CA.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RetireQuery {
    /// Retire anyway; those sites' agents must be enrolled again.
    pub force: Option<bool>,
}

/// Retires the previous CA: trusted no more, its certificates revoked. Refused (409) while
/// live sites still run on it, unless forced.
#[utoipa::path(post, path = "/ca/retire", tag = "ca", security(("bearer" = [])),
    params(RetireQuery),
    responses((status = 200, body = RotationView), (status = 403, body = Problem), (status = 409, body = Problem)))]
async fn retire(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<RetireQuery>,
) -> ApiResult<Json<RotationView>> {
    caller.require(Perm::ManageCa)?;
    let force = q.force.unwrap_or(false);
    let r = ca_rotation::retire(&state.db, &caller.actor(), force, now_ms())
        .await
        .map_err(problem)?;
    Ok(Json(r.into()))
}
