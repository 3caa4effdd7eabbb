//! Scheduled jobs: their state, and running one now.

use crate::api::extract::Caller;
use crate::server::AppState;
use crate::server::problem::{ApiResult, Problem};
use axum::Json;
use axum::extract::{Path, State};
use mikrobill_core::auth::Perm;
use mikrobill_core::jobs::{self, Job, RunOutcome};
use mikrobill_core::lease::{self, JobState};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Routes of this module.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_jobs))
        .routes(routes!(run_job))
}

/// Every job's last run and current holder.
#[utoipa::path(get, path = "/jobs", tag = "jobs", security(("bearer" = [])),
    responses((status = 200, body = Vec<JobState>), (status = 403, body = Problem)))]
async fn list_jobs(
    State(state): State<AppState>,
    caller: Caller,
) -> ApiResult<Json<Vec<JobState>>> {
    caller.require(Perm::RunJobs)?;
    Ok(Json(lease::states(&state.db).await?))
}

/// Runs a job now (`invoice-run`, `isolation-sweep`), unless another replica is running it.
#[utoipa::path(post, path = "/jobs/{name}/run", tag = "jobs", security(("bearer" = [])), params(("name" = String, Path, description = "job name")),
    responses((status = 200, body = RunOutcome), (status = 403, body = Problem), (status = 404, body = Problem)))]
async fn run_job(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> ApiResult<Json<RunOutcome>> {
    caller.require(Perm::RunJobs)?;
    let job =
        Job::from_name(&name).ok_or_else(|| Problem::not_found(format!("no job {name:?}")))?;
    let holder = format!("api:{}", caller.principal.username);
    Ok(Json(jobs::run_once(&state.db, job, &holder).await?))
}
