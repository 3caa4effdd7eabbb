//! The audit log: newest first, filtered by entity, record id or actor, paged by entry id.

use super::ctx::Ctx;
use super::error::WebError;
use super::form_values::opt;
use crate::server::AppState;
use crate::web::pager::{PAGE_ROWS, Pager};
use axum::extract::{Query, State};
use axum::response::Response;
use mikrobill_core::audit::{self, AuditEntry, AuditFilter};
use mikrobill_core::auth::Perm;
use serde::Deserialize;

/// Filters.
#[derive(Debug, Default, Deserialize)]
pub struct AuditQuery {
    entity: Option<String>,
    entity_id: Option<String>,
    actor: Option<String>,
    after: Option<String>,
}

#[derive(askama::Template)]
#[template(path = "admin/audit.html")]
struct AuditPage<'a> {
    c: &'a Ctx,
    rows: Vec<AuditEntry>,
    f: AuditQuery,
    pager: Pager,
}

impl AuditPage<'_> {
    fn change(&self, e: &AuditEntry) -> String {
        let short = |v: &Option<serde_json::Value>| {
            v.as_ref()
                .map(|v| {
                    let s = v.to_string();
                    if s.chars().count() > 160 {
                        format!("{}…", s.chars().take(160).collect::<String>())
                    } else {
                        s
                    }
                })
                .unwrap_or_default()
        };
        match (&e.before, &e.after) {
            (Some(_), Some(_)) => format!("{} → {}", short(&e.before), short(&e.after)),
            (None, Some(_)) => short(&e.after),
            (Some(_), None) => short(&e.before),
            (None, None) => String::new(),
        }
    }
}

/// `GET /audit`.
pub async fn list(
    State(state): State<AppState>,
    c: Ctx,
    Query(f): Query<AuditQuery>,
) -> Result<Response, WebError> {
    c.require(Perm::ReadAudit)?;
    let after = opt(&f.after).unwrap_or_default();
    let before_id = if after.is_empty() {
        None
    } else {
        Some(
            after
                .parse::<i64>()
                .map_err(|_| WebError::BadRequest(c.lang, "after".into()))?,
        )
    };
    let filter = AuditFilter {
        entity: opt(&f.entity),
        entity_id: opt(&f.entity_id),
        actor_id: opt(&f.actor),
        before_id,
    };
    let mut rows = audit::list(&state.db, &filter, PAGE_ROWS + 1).await?;
    let fields = [
        ("entity", f.entity.as_deref().unwrap_or("")),
        ("entity_id", f.entity_id.as_deref().unwrap_or("")),
        ("actor", f.actor.as_deref().unwrap_or("")),
    ];
    let pager = Pager::split(&mut rows, &fields, &after, |e| e.id.to_string());
    Ok(c.render(&AuditPage {
        c: &c,
        rows,
        f,
        pager,
    }))
}
