//! Sites: list with online state, create with an enrollment token (one, or many at once),
//! new tokens, revoke, the branded hotspot pages as a zip and their upload to the router.

use crate::api::extract::{Body, Caller, Query};
use crate::api::page::{Page, PageQuery};
use crate::server::AppState;
use crate::server::problem::{ApiResult, Problem};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use mikrobill_core::auth::Perm;
use mikrobill_core::error::DomainError;
use mikrobill_core::sites::{self, Site};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Routes of this module.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_sites, create_site))
        .routes(routes!(create_sites_bulk))
        .routes(routes!(get_site))
        .routes(routes!(new_token))
        .routes(routes!(revoke_site))
        .routes(routes!(hotspot_pages, install_hotspot_pages))
}

/// Lists sites by name with online state and last-seen time.
#[utoipa::path(get, path = "/sites", tag = "sites", security(("bearer" = [])), params(PageQuery),
    responses((status = 200, body = Page<Site>), (status = 403, body = Problem)))]
async fn list_sites(
    State(state): State<AppState>,
    caller: Caller,
    Query(page): Query<PageQuery>,
) -> ApiResult<Json<Page<Site>>> {
    caller.require(Perm::ReadSites)?;
    let limit = page.limit()?;
    let items = sites::list_page(&state.db, &page.after()?, limit + 1)
        .await
        .map_err(DomainError::from)?;
    Ok(Json(Page::from_overfetch(items, limit, |s| s.name.clone())))
}

/// One site.
#[utoipa::path(get, path = "/sites/{id}", tag = "sites", security(("bearer" = [])), params(("id" = String, Path, description = "site id")),
    responses((status = 200, body = Site), (status = 403, body = Problem), (status = 404, body = Problem)))]
async fn get_site(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Site>> {
    caller.require(Perm::ReadSites)?;
    Ok(Json(
        sites::by_id(&state.db, &id)
            .await
            .map_err(DomainError::from)?,
    ))
}

/// A new site.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateSite {
    /// Unique name (1-64 letters, digits, `-`, `_`, `.`, spaces).
    pub name: String,
    /// Hours the enrollment token stays valid (default 24, at most 720).
    pub token_ttl_hours: Option<u32>,
}

/// Token lifetime.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenTtl {
    /// Hours the enrollment token stays valid (default 24, at most 720).
    pub token_ttl_hours: Option<u32>,
}

/// A site with a fresh one-time enrollment token.
#[derive(Debug, Serialize, ToSchema)]
pub struct Enrollment {
    /// The site.
    pub site: Site,
    /// The one-time token; shown once.
    pub token: String,
    /// When it expires (unix ms).
    pub expires_at: i64,
    /// What the technician runs beside the router.
    pub command: String,
}

async fn enrollment(
    state: &AppState,
    caller: &Caller,
    site: Site,
    ttl_hours: Option<u32>,
) -> ApiResult<Enrollment> {
    let issued = sites::issue_for_technician(
        &state.db,
        &caller.actor(),
        &site.id,
        state.enrollment_fingerprint(),
        ttl_hours,
    )
    .await?
    .ok_or_else(|| {
        Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "edge_unknown",
            "the controller's edge address is not known yet",
        )
    })?;
    Ok(Enrollment::new(site, issued))
}

impl Enrollment {
    fn new(site: Site, issued: sites::IssuedToken) -> Enrollment {
        Enrollment {
            site,
            token: issued.token,
            expires_at: issued.expires_at,
            command: issued.command,
        }
    }
}

/// Creates a site and returns its enrollment token and the technician's command.
#[utoipa::path(post, path = "/sites", tag = "sites", security(("bearer" = [])), request_body = CreateSite,
    responses((status = 201, body = Enrollment), (status = 403, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn create_site(
    State(state): State<AppState>,
    caller: Caller,
    body: Body<CreateSite>,
) -> ApiResult<(StatusCode, Json<Enrollment>)> {
    caller.require(Perm::WriteSites)?;
    let req = body.into_inner()?;
    if let Some(h) = req.token_ttl_hours
        && !(1..=720).contains(&h)
    {
        return Err(Problem::invalid(
            "token_ttl_hours",
            "must be between 1 and 720",
        ));
    }
    let site = sites::create(&state.db, &caller.actor(), &req.name)
        .await
        .map_err(DomainError::from)?;
    Ok((
        StatusCode::CREATED,
        Json(enrollment(&state, &caller, site, req.token_ttl_hours).await?),
    ))
}

/// Many sites at once.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BulkSites {
    /// Unique names (1-1000 of them), each as for one site.
    pub names: Vec<String>,
    /// Hours the enrollment tokens stay valid (default 24, at most 720).
    pub token_ttl_hours: Option<u32>,
}

/// The answer's format.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct BulkFormat {
    /// `json` (default) or `csv`: name, site_id, token, expires_at, command.
    pub format: Option<super::reports::Format>,
}

/// Enrollments of many new sites.
#[derive(Debug, Serialize, ToSchema)]
pub struct BulkEnrollments {
    /// One per name, in the order given.
    pub items: Vec<Enrollment>,
}

/// Creates many sites in one transaction, each with its enrollment token: a field team's
/// day of installs. A bad or taken name creates none of them and the problem names its entry.
#[utoipa::path(post, path = "/sites/bulk", tag = "sites", security(("bearer" = [])), params(BulkFormat), request_body = BulkSites,
    responses((status = 201, description = "The sites and their tokens: JSON, or CSV with `format=csv`", content((BulkEnrollments = "application/json"), (String = "text/csv"))),
        (status = 403, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem), (status = 503, body = Problem)))]
async fn create_sites_bulk(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<BulkFormat>,
    body: Body<BulkSites>,
) -> ApiResult<axum::response::Response> {
    use axum::response::IntoResponse;
    caller.require(Perm::WriteSites)?;
    let req = body.into_inner()?;
    use mikrobill_core::site_bulk;
    let ttl_ms = site_bulk::ttl_ms(req.token_ttl_hours)?;
    let addr = site_bulk::edge_addr(&state.db, None)
        .await?
        .ok_or_else(|| {
            Problem::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "edge_unknown",
                "the controller's edge address is not known yet",
            )
        })?;
    let created = site_bulk::create(
        &state.db,
        &caller.actor(),
        &req.names,
        &addr,
        state.enrollment_fingerprint(),
        ttl_ms,
    )
    .await?;
    let items: Vec<Enrollment> = created
        .into_iter()
        .map(|(site, issued)| Enrollment::new(site, issued))
        .collect();
    if q.format == Some(super::reports::Format::Csv) {
        let mut out = String::new();
        crate::csv::push_record(
            &mut out,
            ["name", "site_id", "token", "expires_at", "command"],
        );
        for e in &items {
            crate::csv::push_record(
                &mut out,
                [
                    e.site.name.as_str(),
                    e.site.id.as_str(),
                    e.token.as_str(),
                    &mikrobill_core::db::format_ms(e.expires_at),
                    e.command.as_str(),
                ],
            );
        }
        let mut res = crate::csv::response("site-tokens", out);
        *res.status_mut() = StatusCode::CREATED;
        // One-time tokens: never kept by a cache on the way.
        res.headers_mut().insert(
            axum::http::header::CACHE_CONTROL,
            axum::http::HeaderValue::from_static("no-store"),
        );
        return Ok(res);
    }
    Ok((StatusCode::CREATED, Json(BulkEnrollments { items })).into_response())
}

/// A new enrollment token for a site (agent reinstalled or replaced).
#[utoipa::path(post, path = "/sites/{id}/token", tag = "sites", security(("bearer" = [])), params(("id" = String, Path, description = "site id")), request_body = TokenTtl,
    responses((status = 201, body = Enrollment), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem)))]
async fn new_token(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    body: Body<TokenTtl>,
) -> ApiResult<(StatusCode, Json<Enrollment>)> {
    caller.require(Perm::WriteSites)?;
    let req = body.into_inner()?;
    let site = sites::by_id(&state.db, &id)
        .await
        .map_err(DomainError::from)?;
    if site.revoked_at.is_some() {
        return Err(Problem::new(
            StatusCode::CONFLICT,
            "revoked",
            "the site is revoked",
        ));
    }
    let e = enrollment(&state, &caller, site, req.token_ttl_hours).await?;
    Ok((StatusCode::CREATED, Json(e)))
}

/// Locks a site's agent out at once: its session closes and its certificates are refused.
#[utoipa::path(post, path = "/sites/{id}/revoke", tag = "sites", security(("bearer" = [])), params(("id" = String, Path, description = "site id")),
    responses((status = 200, body = Site), (status = 403, body = Problem), (status = 404, body = Problem)))]
async fn revoke_site(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Site>> {
    caller.require(Perm::WriteSites)?;
    let before = sites::by_id(&state.db, &id)
        .await
        .map_err(DomainError::from)?;
    let after = sites::revoke(&state.db, &caller.actor(), &before.name)
        .await
        .map_err(DomainError::from)?;
    Ok(Json(after))
}

/// The site's branded RouterOS hotspot directory (login, status, logout, error pages, a
/// stylesheet and a script) as a zip with one folder, `hotspot-mikrobill`.
#[utoipa::path(get, path = "/sites/{id}/hotspot-pages", tag = "sites", security(("bearer" = [])), params(("id" = String, Path, description = "site id")),
    responses((status = 200, content_type = "application/zip", body = Vec<u8>, description = "the zip, as an attachment"), (status = 403, body = Problem), (status = 404, body = Problem)))]
async fn hotspot_pages(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<axum::response::Response> {
    caller.require(Perm::WriteSites)?;
    let branding = crate::hotspot_pages::branding(&state, &id).await?;
    let files = crate::hotspot_pages::render(&branding).map_err(|e| Problem::internal(&e))?;
    let zip = crate::hotspot_pages::zip(&files).map_err(|e| Problem::internal(&e))?;
    Ok(crate::hotspot_pages::attachment(
        &crate::hotspot_pages::zip_name(&branding.site_name),
        zip,
    ))
}

/// Queues the upload of the site's hotspot pages to its router (RouterOS 7.9 or newer),
/// into the directory `hotspot-mikrobill` (`flash/hotspot-mikrobill` where the router keeps
/// its files under `flash`); the command's result says where they went or why not.
#[utoipa::path(post, path = "/sites/{id}/hotspot-pages", tag = "sites", security(("bearer" = [])), params(("id" = String, Path, description = "site id")),
    responses((status = 201, body = mikrobill_core::commands::QueuedCommand), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem)))]
async fn install_hotspot_pages(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<(StatusCode, Json<mikrobill_core::commands::QueuedCommand>)> {
    caller.require(Perm::WriteSites)?;
    let branding = crate::hotspot_pages::branding(&state, &id).await?;
    let files = crate::hotspot_pages::render(&branding).map_err(|e| Problem::internal(&e))?;
    let queued = mikrobill_core::commands::queue_manual(
        &state.db,
        &caller.actor(),
        &id,
        None,
        mikrobill_protocol::messages::Command::InstallHotspotPages { files },
        None,
    )
    .await?;
    Ok((StatusCode::CREATED, Json(queued)))
}
