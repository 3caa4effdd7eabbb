//! Site pages: the list with online state and last contact, enrolling a new site (the
//! one-time token and the technician's command are shown once, never stored), a new token
//! for an existing site, revocation, the router state the agent last reported, and the
//! site's branded hotspot pages (a zip download, or an upload to the router by the agent),
//! and the router's drift (see `drift.rs`).

use super::ctx::Ctx;
use super::error::WebError;
use super::form::Form;
use super::form::NoFields;
use super::form_values::{self, opt};
use crate::server::AppState;
use crate::web::pager::{PAGE_ROWS, Pager};
use axum::extract::{Path, Query, State};
use axum::response::Response;
use mikrobill_core::auth::Perm;
use mikrobill_core::site_drift::{self, DriftStatus};
use mikrobill_core::sites::{self, IssuedToken, Site};
use serde::Deserialize;

#[derive(askama::Template)]
#[template(path = "admin/sites.html")]
struct ListPage<'a> {
    c: &'a Ctx,
    rows: Vec<Site>,
    pager: Pager,
    drift: std::collections::HashMap<String, (DriftStatus, i64)>,
}

impl ListPage<'_> {
    /// A site's drift status and number of findings (unknown until its agent reports).
    fn drift_of(&self, site_id: &str) -> (DriftStatus, i64) {
        self.drift
            .get(site_id)
            .copied()
            .unwrap_or((DriftStatus::Unknown, 0))
    }
}

/// `?after=`.
#[derive(Debug, Default, Deserialize)]
pub struct SiteQuery {
    after: Option<String>,
}

/// `GET /sites`.
pub async fn list(
    State(state): State<AppState>,
    c: Ctx,
    Query(q): Query<SiteQuery>,
) -> Result<Response, WebError> {
    c.require(Perm::ReadSites)?;
    let after = opt(&q.after).unwrap_or_default();
    let mut rows = sites::list_page(&state.db, &after, PAGE_ROWS + 1).await?;
    let pager = Pager::split(&mut rows, &[], &after, |s| s.name.clone());
    let drift = site_drift::statuses(&state.db).await?;
    Ok(c.render(&ListPage {
        c: &c,
        rows,
        pager,
        drift,
    }))
}

#[derive(askama::Template)]
#[template(path = "admin/site_token.html")]
struct TokenPage<'a> {
    c: &'a Ctx,
    site: Site,
    issued: IssuedToken,
}

/// The new-site form.
#[derive(Debug, Deserialize)]
pub struct SiteFields {
    #[serde(default)]
    name: String,
    token_hours: Option<String>,
}

fn hours(v: &Option<String>) -> Result<Option<u32>, String> {
    form_values::number(v, "token_ttl_hours")?
        .map(|h| u32::try_from(h).map_err(|_| "token_ttl_hours: out of range".to_string()))
        .transpose()
}

fn edge_unknown(c: &Ctx) -> WebError {
    WebError::BadRequest(c.lang, c.t("site.edge_unknown").into())
}

/// `POST /sites`: creates the site and shows its enrollment token once.
pub async fn create(
    State(state): State<AppState>,
    c: Ctx,
    form: Form<SiteFields>,
) -> Result<Response, WebError> {
    c.require(Perm::WriteSites)?;
    let f = form.fields().map_err(|e| WebError::BadRequest(c.lang, e))?;
    let ttl = hours(&f.token_hours).map_err(|e| WebError::BadRequest(c.lang, e))?;
    if let Some(h) = ttl
        && !(1..=720).contains(&h)
    {
        return Err(WebError::BadRequest(
            c.lang,
            "token_ttl_hours: must be between 1 and 720".into(),
        ));
    }
    let site = match sites::create(&state.db, &c.actor(), f.name.trim()).await {
        Ok(s) => s,
        Err(sites::SiteError::Db(e)) => return Err(WebError::Db(e)),
        Err(e) => {
            return Ok(c.redirect_with(
                "/sites",
                super::flash::Flash {
                    kind: "error",
                    text: e.to_string(),
                },
            ));
        }
    };
    let issued = sites::issue_for_technician(
        &state.db,
        &c.actor(),
        &site.id,
        state.enrollment_fingerprint(),
        ttl,
    )
    .await?
    .ok_or_else(|| edge_unknown(&c))?;
    Ok(c.render(&TokenPage {
        c: &c,
        site,
        issued,
    }))
}

/// The new-token form.
#[derive(Debug, Deserialize)]
pub struct TokenFields {
    token_hours: Option<String>,
}

/// `POST /sites/{id}/token`: a fresh token for re-installing an agent.
pub async fn new_token(
    State(state): State<AppState>,
    c: Ctx,
    Path(id): Path<String>,
    form: Form<TokenFields>,
) -> Result<Response, WebError> {
    c.require(Perm::WriteSites)?;
    let f = form.fields().map_err(|e| WebError::BadRequest(c.lang, e))?;
    let ttl = hours(&f.token_hours).map_err(|e| WebError::BadRequest(c.lang, e))?;
    let site = sites::by_id(&state.db, &id).await?;
    if site.revoked_at.is_some() {
        return Err(WebError::BadRequest(c.lang, c.t("site.is_revoked").into()));
    }
    let back = format!("/sites/{id}");
    let issued = match sites::issue_for_technician(
        &state.db,
        &c.actor(),
        &site.id,
        state.enrollment_fingerprint(),
        ttl,
    )
    .await
    {
        Ok(Some(i)) => i,
        Ok(None) => return Err(edge_unknown(&c)),
        Err(e) => return Ok(c.outcome(Err::<(), _>(e), |_| String::new(), "", &back)),
    };
    Ok(c.render(&TokenPage {
        c: &c,
        site,
        issued,
    }))
}

/// `POST /sites/{id}/revoke`.
pub async fn revoke(
    State(state): State<AppState>,
    c: Ctx,
    Path(id): Path<String>,
    _form: Form<NoFields>,
) -> Result<Response, WebError> {
    c.require(Perm::WriteSites)?;
    let before = sites::by_id(&state.db, &id).await?;
    sites::revoke(&state.db, &c.actor(), &before.name).await?;
    Ok(c.done(&format!("/sites/{id}"), c.t("site.revoked")))
}

/// The router state as the page shows it.
pub struct RouterView {
    /// Whether the RouterOS API answered.
    pub reachable: bool,
    /// Label/value pairs.
    pub facts: Vec<(&'static str, String)>,
}

fn router_view(c: &Ctx, r: &serde_json::Value) -> RouterView {
    let s = |k: &str| r.get(k).and_then(|v| v.as_str()).map(str::to_string);
    let n = |k: &str| r.get(k).and_then(|v| v.as_i64());
    let mut facts = Vec::new();
    let mut push = |label: &'static str, v: Option<String>| {
        if let Some(v) = v {
            facts.push((label, v));
        }
    };
    push("router.identity", s("identity"));
    push("router.board", s("board"));
    push("router.version", s("version"));
    push("router.cpu", n("cpu_load").map(|v| format!("{v} %")));
    push(
        "router.memory",
        n("free_memory")
            .zip(n("total_memory"))
            .map(|(f, t)| format!("{} / {} MB", f / 1_048_576, t / 1_048_576)),
    );
    push("router.uptime", n("uptime_secs").map(form_values::duration));
    push("router.hotspot", n("hotspot_active").map(|v| v.to_string()));
    push("router.ppp", n("ppp_active").map(|v| v.to_string()));
    push("router.error", s("last_error"));
    push("router.checked", n("checked_at_ms").map(|m| c.datetime(m)));
    RouterView {
        reachable: r
            .get("reachable")
            .and_then(|v| v.as_bool())
            .unwrap_or(false),
        facts,
    }
}

#[derive(askama::Template)]
#[template(path = "admin/site.html")]
struct DetailPage<'a> {
    c: &'a Ctx,
    site: Site,
    router: Option<RouterView>,
    commands: Vec<mikrobill_core::commands::QueuedCommand>,
    can_import: bool,
    drift: mikrobill_core::site_drift::SiteDrift,
}

/// `GET /sites/{id}`.
pub async fn detail(
    State(state): State<AppState>,
    c: Ctx,
    Path(id): Path<String>,
) -> Result<Response, WebError> {
    c.require(Perm::ReadSites)?;
    let site = sites::by_id(&state.db, &id).await.map_err(|e| match e {
        sites::SiteError::NotFound(_) => WebError::NotFound(c.lang),
        other => other.into(),
    })?;
    let router = site.router.as_ref().map(|r| router_view(&c, r));
    let f = mikrobill_core::commands::CommandFilter {
        site_id: Some(site.id.clone()),
        ..Default::default()
    };
    let commands = mikrobill_core::commands::list(&state.db, &f, None, 20).await?;
    let drift = super::drift::for_site(&state, &site.id).await?;
    Ok(c.render(&DetailPage {
        c: &c,
        site,
        router,
        commands,
        can_import: super::router_import::can_import(&c),
        drift,
    }))
}

/// The site's branding and rendered hotspot files.
async fn hotspot_files(
    state: &AppState,
    c: &Ctx,
    site_id: &str,
) -> Result<
    (
        crate::hotspot_pages::Branding,
        Vec<mikrobill_protocol::messages::HotspotFile>,
    ),
    WebError,
> {
    let branding = crate::hotspot_pages::branding(state, site_id)
        .await
        .map_err(|e| match e {
            mikrobill_core::error::DomainError::NotFound { .. } => WebError::NotFound(c.lang),
            other => other.into(),
        })?;
    let files = crate::hotspot_pages::render(&branding)
        .map_err(|e| WebError::BadRequest(c.lang, e.to_string()))?;
    Ok((branding, files))
}

/// `GET /sites/{id}/hotspot.zip`: the site's hotspot directory to install by hand.
pub async fn hotspot_zip(
    State(state): State<AppState>,
    c: Ctx,
    Path(id): Path<String>,
) -> Result<Response, WebError> {
    c.require(Perm::WriteSites)?;
    let (branding, files) = hotspot_files(&state, &c, &id).await?;
    let zip = crate::hotspot_pages::zip(&files)
        .map_err(|e| WebError::BadRequest(c.lang, e.to_string()))?;
    Ok(crate::hotspot_pages::attachment(
        &crate::hotspot_pages::zip_name(&branding.site_name),
        zip,
    ))
}

/// The manual command form: re-apply the router setup, end one account's sessions, or
/// upload the hotspot pages.
#[derive(Debug, Deserialize)]
pub struct CommandFields {
    command: String,
    username: Option<String>,
}

/// `POST /sites/{id}/commands`: queued for the site's agent, delivered when it is online.
pub async fn command(
    State(state): State<AppState>,
    c: Ctx,
    Path(id): Path<String>,
    form: Form<CommandFields>,
) -> Result<Response, WebError> {
    c.require(Perm::WriteSites)?;
    let f = form.fields().map_err(|e| WebError::BadRequest(c.lang, e))?;
    let command = match f.command.as_str() {
        "resync_router" => mikrobill_protocol::messages::Command::ResyncRouter,
        "install_hotspot_pages" => mikrobill_protocol::messages::Command::InstallHotspotPages {
            files: hotspot_files(&state, &c, &id).await?.1,
        },
        "disconnect" => mikrobill_protocol::messages::Command::Disconnect {
            username: opt(&f.username).unwrap_or_default(),
        },
        _ => return Err(WebError::BadRequest(c.lang, "command".into())),
    };
    let back = format!("/sites/{id}");
    if let mikrobill_protocol::messages::Command::Disconnect { username } = &command
        && username.is_empty()
    {
        return Ok(c.redirect_with(
            &back,
            super::flash::Flash {
                kind: "error",
                text: "username: is required".into(),
            },
        ));
    }
    let result =
        mikrobill_core::commands::queue_manual(&state.db, &c.actor(), &id, None, command, None)
            .await;
    Ok(c.outcome(result, |_| back.clone(), c.t("command.queued"), &back))
}
