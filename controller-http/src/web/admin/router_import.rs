//! Importing a site's router from the admin UI, the same steps as the API: a button on the
//! site page queues the read, the import's page shows the dry run once the agent answered
//! (every entry's outcome, skipped ones with their field and reason), and its two buttons
//! apply it, adopting or retiring the router's entries.

use super::ctx::Ctx;
use super::error::WebError;
use super::form::{Form, NoFields};
use crate::server::AppState;
use axum::extract::{Path, State};
use axum::response::Response;
use mikrobill_core::auth::Perm;
use mikrobill_core::db::now_ms;
use mikrobill_core::error::DomainError;
use mikrobill_core::importer::report::{Entry, Kind, Outcome};
use mikrobill_core::importer::router::{self, RouterImport};
use serde::Deserialize;

/// What an import needs: the permission to create every kind of record it creates.
pub const PERMS: [Perm; 5] = [
    Perm::WriteSites,
    Perm::WritePlans,
    Perm::WriteCustomers,
    Perm::WriteSubscriptions,
    Perm::WriteVouchers,
];

/// Whether the signed-in role may import a router.
pub fn can_import(c: &Ctx) -> bool {
    PERMS.iter().all(|p| c.can(*p))
}

fn require_import(c: &Ctx) -> Result<(), WebError> {
    for p in PERMS {
        c.require(p)?;
    }
    Ok(())
}

/// One report line as the page shows it.
struct Line {
    kind: &'static str,
    table: &'static str,
    name: String,
    outcome: &'static str,
    what: String,
    field: String,
}

impl Line {
    fn of(e: &Entry) -> Line {
        let (outcome, what, field) = match &e.outcome {
            Outcome::Created { what } => ("router_import.created", what.clone(), String::new()),
            Outcome::AlreadyImported => ("router_import.already", String::new(), String::new()),
            Outcome::Skipped { field, reason } => (
                "router_import.skipped",
                reason.clone(),
                field.clone().unwrap_or_default(),
            ),
        };
        Line {
            kind: e.kind.as_str(),
            table: e.source.table,
            name: e.source.name.clone().unwrap_or_else(|| e.source.id.clone()),
            outcome,
            what,
            field,
        }
    }
}

#[derive(askama::Template)]
#[template(path = "admin/router_import.html")]
struct ImportPage<'a> {
    c: &'a Ctx,
    site_id: String,
    import: RouterImport,
    counts: Vec<(&'static str, usize, usize, usize)>,
    lines: Vec<Line>,
}

fn not_found(c: &Ctx, e: DomainError) -> WebError {
    match e {
        DomainError::NotFound { .. } => WebError::NotFound(c.lang),
        other => other.into(),
    }
}

/// `POST /sites/{id}/router-import`: queues the read and opens the import's page.
pub async fn start(
    State(state): State<AppState>,
    c: Ctx,
    Path(id): Path<String>,
    form: Form<NoFields>,
) -> Result<Response, WebError> {
    require_import(&c)?;
    form.fields().map_err(|e| WebError::BadRequest(c.lang, e))?;
    let back = format!("/sites/{id}");
    let result = router::start(&state.db, &c.actor(), &id).await;
    Ok(c.outcome(
        result,
        |started| format!("/sites/{id}/router-import/{}", started.read.id),
        c.t("router_import.read_queued"),
        &back,
    ))
}

/// `GET /sites/{id}/router-import/{import}`: the read's state and the dry run.
pub async fn show(
    State(state): State<AppState>,
    c: Ctx,
    Path((id, import)): Path<(String, String)>,
) -> Result<Response, WebError> {
    require_import(&c)?;
    let import_id: i64 = import.parse().map_err(|_| WebError::NotFound(c.lang))?;
    let import = router::show(&state.db, &c.actor(), &id, import_id, now_ms())
        .await
        .map_err(|e| not_found(&c, e))?;
    let (counts, lines) = match &import.report {
        Some(report) => (
            Kind::ALL
                .iter()
                .map(|k| {
                    let n = report.counts(*k);
                    (k.as_str(), n.created, n.already_imported, n.skipped)
                })
                .filter(|(_, a, b, c)| a + b + c > 0)
                .collect(),
            report.entries.iter().map(Line::of).collect(),
        ),
        None => (Vec::new(), Vec::new()),
    };
    Ok(c.render(&ImportPage {
        c: &c,
        site_id: id,
        import,
        counts,
        lines,
    }))
}

/// The apply form: `adopt` or `retire`.
#[derive(Debug, Deserialize)]
pub struct ApplyFields {
    mode: String,
}

/// `POST /sites/{id}/router-import/{import}/apply`.
pub async fn apply(
    State(state): State<AppState>,
    c: Ctx,
    Path((id, import)): Path<(String, String)>,
    form: Form<ApplyFields>,
) -> Result<Response, WebError> {
    require_import(&c)?;
    let f = form.fields().map_err(|e| WebError::BadRequest(c.lang, e))?;
    let back = format!("/sites/{id}/router-import/{import}");
    let import_id: i64 = import.parse().map_err(|_| WebError::NotFound(c.lang))?;
    let result = match router::parse_mode(&f.mode) {
        Ok(mode) => router::apply(&state.db, &c.actor(), &id, import_id, mode, now_ms()).await,
        Err(e) => Err(e),
    };
    let result = result.map(|done| {
        let created = done.report.as_ref().map_or(0, |r| {
            r.entries
                .iter()
                .filter(|e| matches!(e.outcome, Outcome::Created { .. }))
                .count()
        });
        (created, done.take_over.map(|t| t.id))
    });
    let message = match &result {
        Ok((created, Some(take_over))) => format!(
            "{}: {created}; {} #{take_over}",
            c.t("router_import.applied"),
            c.t("router_import.take_over_queued")
        ),
        Ok((created, None)) => format!("{}: {created}", c.t("router_import.applied")),
        Err(_) => String::new(),
    };
    Ok(c.outcome(result, |_| format!("/sites/{id}"), &message, &back))
}
