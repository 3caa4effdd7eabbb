//! Scheduled jobs: each job's last run and holder, and running one now (the same lease the
//! scheduler takes, so a job never runs twice at once).

use super::ctx::Ctx;
use super::error::WebError;
use super::form::Form;
use super::form::NoFields;
use crate::server::AppState;
use axum::extract::{Path, State};
use axum::response::Response;
use mikrobill_core::auth::Perm;
use mikrobill_core::jobs::{self, Job};
use mikrobill_core::lease::{self, JobState};

#[derive(askama::Template)]
#[template(path = "admin/jobs.html")]
struct JobsPage<'a> {
    c: &'a Ctx,
    states: Vec<JobState>,
    jobs: [Job; jobs::ALL_JOBS.len()],
}

impl JobsPage<'_> {
    fn state(&self, job: &Job) -> Option<&JobState> {
        self.states.iter().find(|s| s.name == job.name())
    }
}

/// `GET /jobs`.
pub async fn list(State(state): State<AppState>, c: Ctx) -> Result<Response, WebError> {
    c.require(Perm::RunJobs)?;
    let states = lease::states(&state.db).await?;
    Ok(c.render(&JobsPage {
        c: &c,
        states,
        jobs: jobs::ALL_JOBS,
    }))
}

/// `POST /jobs/{name}/run`.
pub async fn run(
    State(state): State<AppState>,
    c: Ctx,
    Path(name): Path<String>,
    _form: Form<NoFields>,
) -> Result<Response, WebError> {
    c.require(Perm::RunJobs)?;
    let job = Job::from_name(&name).ok_or(WebError::NotFound(c.lang))?;
    let holder = format!("web:{}", c.principal.username);
    let result = jobs::run_once(&state.db, job, &holder).await;
    let message = match &result {
        Ok(o) if o.ran => format!("{} {}: {}", job.name(), c.t("job.changed"), o.changed),
        Ok(_) => c.t("job.busy").to_string(),
        Err(_) => String::new(),
    };
    Ok(c.outcome(result, |_| "/jobs".into(), &message, "/jobs"))
}
