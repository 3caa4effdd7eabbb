//! Site groups: vouchers scoped to a group work at every member site. The list with each
//! group's members, creating a group, and adding or removing a member (the domain syncs the
//! group's vouchers to or from the site).

use super::ctx::Ctx;
use super::ctx::not_found;
use super::error::WebError;
use super::form::Form;
use super::lookups;
use crate::server::AppState;
use axum::extract::{Path, State};
use axum::response::Response;
use mikrobill_core::auth::Perm;
use mikrobill_core::site_groups::{self, SiteGroup};
use mikrobill_core::sites::Site;
use serde::Deserialize;

#[derive(askama::Template)]
#[template(path = "admin/groups.html")]
struct GroupsPage<'a> {
    c: &'a Ctx,
    groups: Vec<SiteGroup>,
    sites: Vec<Site>,
}

/// `GET /sites/groups`.
pub async fn list(State(state): State<AppState>, c: Ctx) -> Result<Response, WebError> {
    c.require(Perm::ReadSites)?;
    let groups = site_groups::list(&state.db, "", 10_000).await?;
    let sites = lookups::live_sites(&state.db).await?;
    Ok(c.render(&GroupsPage {
        c: &c,
        groups,
        sites,
    }))
}

/// The new-group form.
#[derive(Debug, Deserialize)]
pub struct GroupFields {
    #[serde(default)]
    name: String,
}

/// `POST /sites/groups`.
pub async fn create(
    State(state): State<AppState>,
    c: Ctx,
    form: Form<GroupFields>,
) -> Result<Response, WebError> {
    c.require(Perm::WriteSites)?;
    let f = form.fields().map_err(|e| WebError::BadRequest(c.lang, e))?;
    let result = site_groups::create(&state.db, &c.actor(), f.name.trim()).await;
    Ok(c.outcome(
        result,
        |_| "/sites/groups".into(),
        c.t("group.created"),
        "/sites/groups",
    ))
}

/// The member form.
#[derive(Debug, Deserialize)]
pub struct MemberFields {
    site_id: String,
}

/// `POST /sites/groups/{id}/add` and `/remove`.
pub async fn member(
    State(state): State<AppState>,
    c: Ctx,
    Path((id, action)): Path<(String, String)>,
    form: Form<MemberFields>,
) -> Result<Response, WebError> {
    c.require(Perm::WriteSites)?;
    let f = form.fields().map_err(|e| WebError::BadRequest(c.lang, e))?;
    let actor = c.actor();
    let result = match action.as_str() {
        "add" => site_groups::add_site(&state.db, &actor, &id, &f.site_id).await,
        "remove" => site_groups::remove_site(&state.db, &actor, &id, &f.site_id).await,
        _ => return Err(WebError::NotFound(c.lang)),
    };
    if let Err(e @ mikrobill_core::error::DomainError::NotFound { .. }) = result {
        return Err(not_found(&c, e));
    }
    Ok(c.outcome(
        result,
        |_| "/sites/groups".into(),
        c.t("saved"),
        "/sites/groups",
    ))
}
