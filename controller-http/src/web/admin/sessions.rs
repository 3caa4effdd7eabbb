//! Online users: the live sessions the controller knows from accounting, by site, with a
//! kick per session that queues a `Disconnect` for the account on that session's site (the
//! same command path as a subscription's kick).

use super::ctx::Ctx;
use super::error::WebError;
use super::form::Form;
use super::form_values::opt;
use crate::server::AppState;
use crate::web::pager::{PAGE_ROWS, Pager};
use axum::extract::{Query, State};
use axum::response::Response;
use mikrobill_core::auth::Perm;
use mikrobill_core::db::now_ms;
use mikrobill_core::usage::online::{self, OnlineSession};
use serde::Deserialize;
use std::collections::HashMap;

#[derive(askama::Template)]
#[template(path = "admin/sessions.html")]
struct SessionsPage<'a> {
    c: &'a Ctx,
    rows: Vec<OnlineSession>,
    sites: HashMap<String, String>,
    site_list: Vec<(String, String)>,
    site: String,
    pager: Pager,
}

impl SessionsPage<'_> {
    fn site_name(&self, id: &str) -> String {
        self.sites.get(id).cloned().unwrap_or_else(|| id.into())
    }

    fn bytes(&self, n: &i64) -> String {
        mikrobill_core::locale::format_bytes(*n, self.c.lang)
    }

    fn uptime(&self, secs: &i64) -> String {
        super::form_values::duration(*secs)
    }
}

/// `?site=&after=`.
#[derive(Debug, Default, Deserialize)]
pub struct SessionQuery {
    site: Option<String>,
    after: Option<String>,
}

/// `GET /sessions`.
pub async fn list(
    State(state): State<AppState>,
    c: Ctx,
    Query(q): Query<SessionQuery>,
) -> Result<Response, WebError> {
    c.require(Perm::ReadSites)?;
    let after = opt(&q.after).unwrap_or_default();
    let site = opt(&q.site).unwrap_or_default();
    let mut rows = online::list(
        &state.db,
        (!site.is_empty()).then_some(site.as_str()),
        &after,
        PAGE_ROWS + 1,
        now_ms(),
    )
    .await?;
    let pager = Pager::split(&mut rows, &[("site", &site)], &after, OnlineSession::key);
    let site_list: Vec<(String, String)> = super::lookups::live_sites(&state.db)
        .await?
        .into_iter()
        .map(|s| (s.id, s.name))
        .collect();
    Ok(c.render(&SessionsPage {
        c: &c,
        rows,
        // Revoked sites too: their last sessions keep a name.
        sites: super::lookups::site_names(&state.db).await?,
        site_list,
        site,
        pager,
    }))
}

/// The kick button's fields.
#[derive(Debug, Deserialize)]
pub struct KickFields {
    site_id: String,
    username: String,
}

/// `POST /sessions/kick`: queues a disconnect of the account's sessions at that site.
pub async fn kick(
    State(state): State<AppState>,
    c: Ctx,
    form: Form<KickFields>,
) -> Result<Response, WebError> {
    c.require(Perm::WriteSites)?;
    let f = form.fields().map_err(|e| WebError::BadRequest(c.lang, e))?;
    let back = "/sessions".to_string();
    let command = mikrobill_protocol::messages::Command::Disconnect {
        username: f.username,
    };
    let result = mikrobill_core::commands::queue_manual(
        &state.db,
        &c.actor(),
        &f.site_id,
        None,
        command,
        None,
    )
    .await;
    Ok(c.outcome(result, |_| back.clone(), c.t("command.queued"), &back))
}
