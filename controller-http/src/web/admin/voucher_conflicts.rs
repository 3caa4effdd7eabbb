//! Voucher conflicts: offline double use found when records from several sites arrived,
//! newest first, with the sites, the sessions, how much over and what the policy did.

use super::ctx::Ctx;
use super::error::WebError;
use super::form_values::opt;
use crate::server::AppState;
use crate::web::pager::{PAGE_ROWS, Pager};
use axum::extract::{Query, State};
use axum::response::Response;
use mikrobill_core::auth::Perm;
use mikrobill_core::vouchers::conflict::ConflictKind;
use mikrobill_core::vouchers::conflicts::{self, ConflictFilter, ConflictRecord, Resolution};
use serde::Deserialize;
use std::collections::HashMap;

#[derive(askama::Template)]
#[template(path = "admin/voucher_conflicts.html")]
struct ConflictsPage<'a> {
    c: &'a Ctx,
    rows: Vec<ConflictRecord>,
    sites: HashMap<String, String>,
    code: String,
    kind: String,
    kinds: [ConflictKind; 3],
    pager: Pager,
}

impl ConflictsPage<'_> {
    fn site_names(&self, ids: &[String]) -> String {
        ids.iter()
            .map(|id| self.sites.get(id).cloned().unwrap_or_else(|| id.clone()))
            .collect::<Vec<_>>()
            .join(", ")
    }

    fn kind_text(&self, k: &ConflictKind) -> &'static str {
        self.c.t(match k {
            ConflictKind::OverBudget => "conflict.over_budget",
            ConflictKind::TooManyDevices => "conflict.too_many_devices",
            ConflictKind::MacLock => "conflict.mac_lock",
        })
    }

    fn over(&self, r: &ConflictRecord) -> String {
        let mut parts = Vec::new();
        if r.over_secs > 0 {
            parts.push(super::form_values::duration(r.over_secs));
        }
        if r.over_bytes > 0 {
            parts.push(mikrobill_core::locale::format_bytes(
                r.over_bytes,
                self.c.lang,
            ));
        }
        if r.over_devices > 0 {
            parts.push(format!(
                "{} {}",
                r.over_devices,
                self.c.t("conflict.devices")
            ));
        }
        parts.join(" · ")
    }

    fn resolution(&self, r: &Resolution) -> &'static str {
        self.c.t(match r {
            Resolution::Closed => "conflict.closed",
            Resolution::Accepted => "conflict.accepted",
        })
    }
}

/// `?code=&kind=&after=`.
#[derive(Debug, Default, Deserialize)]
pub struct ConflictQuery {
    code: Option<String>,
    kind: Option<String>,
    after: Option<String>,
}

/// `GET /voucher-conflicts`.
pub async fn list(
    State(state): State<AppState>,
    c: Ctx,
    Query(q): Query<ConflictQuery>,
) -> Result<Response, WebError> {
    c.require(Perm::ReadVouchers)?;
    let after = opt(&q.after).unwrap_or_default();
    let code = opt(&q.code).unwrap_or_default();
    let kind = opt(&q.kind)
        .and_then(|k| ConflictKind::parse(&k))
        .map(|k| k.as_str().to_string())
        .unwrap_or_default();
    let filter = ConflictFilter {
        voucher_code: (!code.is_empty()).then(|| code.clone()),
        kind: ConflictKind::parse(&kind),
        site_id: None,
    };
    let mut rows = conflicts::list(&state.db, &filter, &after, PAGE_ROWS + 1).await?;
    let pager = Pager::split(
        &mut rows,
        &[("code", &code), ("kind", &kind)],
        &after,
        ConflictRecord::key,
    );
    Ok(c.render(&ConflictsPage {
        c: &c,
        rows,
        sites: super::lookups::site_names(&state.db).await?,
        code,
        kind,
        kinds: ConflictKind::ALL,
        pager,
    }))
}
