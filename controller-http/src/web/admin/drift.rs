//! Router drift on the site pages: the status pill of the site list, the findings and recent
//! reports of the site's page, and the repair button (a full reconciliation that writes the
//! router's RADIUS/AAA settings back), posted like every router command.

use super::ctx::Ctx;
use super::error::WebError;
use super::form::{Form, NoFields};
use crate::server::AppState;
use axum::extract::{Path, State};
use axum::response::Response;
use mikrobill_core::auth::Perm;
use mikrobill_core::site_drift::{self, DriftStatus, Finding, SiteDrift};

/// Reports shown on the site's page.
const HISTORY_ROWS: u32 = 10;

/// The text key of a status.
pub fn status_key(status: &DriftStatus) -> &'static str {
    match status {
        DriftStatus::Unknown => "drift.unknown",
        DriftStatus::Clean => "drift.clean",
        DriftStatus::Drifted => "drift.drifted",
    }
}

/// The pill class of a status.
pub fn status_class(status: &DriftStatus) -> &'static str {
    match status {
        DriftStatus::Unknown => "muted",
        DriftStatus::Clean => "ok",
        DriftStatus::Drifted => "bad",
    }
}

/// The text key of a finding's kind.
pub fn kind_key(kind: &str) -> &'static str {
    match kind {
        "changed_by_hand" => "drift.changed_by_hand",
        "removed_by_hand" => "drift.removed_by_hand",
        "shadowed_by_unmanaged" => "drift.shadowed_by_unmanaged",
        "aaa_changed" => "drift.aaa_changed",
        _ => "drift.unknown",
    }
}

/// A finding's properties as one line: `rate-limit: 1M/2M → 9M/9M`.
pub fn properties(f: &Finding) -> String {
    f.properties
        .iter()
        .map(|p| {
            format!(
                "{}: {} → {}",
                p.name,
                p.old.as_deref().unwrap_or("–"),
                p.new.as_deref().unwrap_or("–")
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// A site's drift as its page shows it.
pub async fn for_site(state: &AppState, site_id: &str) -> Result<SiteDrift, WebError> {
    Ok(site_drift::status(&state.db, site_id, HISTORY_ROWS).await?)
}

/// `POST /sites/{id}/drift/repair`: queues the repair for the site's agent.
pub async fn repair(
    State(state): State<AppState>,
    c: Ctx,
    Path(id): Path<String>,
    _form: Form<NoFields>,
) -> Result<Response, WebError> {
    c.require(Perm::WriteSites)?;
    let back = format!("/sites/{id}");
    let result = site_drift::queue_repair(&state.db, &c.actor(), &id).await;
    Ok(c.outcome(result, |_| back.clone(), c.t("drift.repair_queued"), &back))
}
