//! Voucher batches and vouchers: generation, printing, selling, resellers buying, revoking.
//! Staff with the read permission see everything; a reseller sees only what it owns, and
//! anything else answers 404.

use crate::api::extract::{Body, Caller, Query};
use crate::api::page::{Page, PageQuery};
use crate::server::AppState;
use crate::server::problem::{ApiResult, Problem};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use mikrobill_core::auth::Perm;
use mikrobill_core::vouchers::batch::{
    self, Batch, BatchDetail, BatchFilter, BatchRevoked, BatchSpec, PasswordMode,
};
use mikrobill_core::vouchers::sale::{self, BatchSale};
use mikrobill_core::vouchers::{
    self, ScopeKind, State as VoucherState, Viewer, VoucherFilter, VoucherRecord,
};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Routes of this module.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_batches, create_batch))
        .routes(routes!(get_batch))
        .routes(routes!(batch_vouchers))
        .routes(routes!(sell_batch))
        .routes(routes!(revoke_batch))
        .routes(routes!(buy_batch))
        .routes(routes!(list_vouchers))
        .routes(routes!(get_voucher))
        .routes(routes!(sell_voucher))
        .routes(routes!(revoke_voucher))
}

/// What the caller may see: everything with the read permission, its own as a reseller.
fn viewer(caller: &Caller) -> Result<Viewer, Problem> {
    if caller.can(Perm::ReadVouchers) {
        Ok(Viewer::All)
    } else if caller.can(Perm::BuyVouchers) {
        Ok(Viewer::Reseller(caller.principal.admin_id.clone()))
    } else {
        Err(Problem::forbidden())
    }
}

/// Generates a batch of new vouchers (codes from an unambiguous alphabet) and syncs them to
/// the sites of its scope. The answer does not carry the codes: page through
/// `/voucher-batches/{id}/vouchers`.
#[utoipa::path(post, path = "/voucher-batches", tag = "vouchers", security(("bearer" = [])), request_body = BatchSpec,
    responses((status = 201, body = Batch), (status = 403, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn create_batch(
    State(state): State<AppState>,
    caller: Caller,
    body: Body<BatchSpec>,
) -> ApiResult<(StatusCode, Json<Batch>)> {
    caller.require(Perm::WriteVouchers)?;
    let spec = body.into_inner()?;
    let batch = batch::generate(&state.db, &caller.actor(), spec).await?;
    Ok((StatusCode::CREATED, Json(batch)))
}

/// A batch a reseller buys for itself; the price is the plan's.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BuyBatch {
    /// A hotspot plan.
    pub plan_id: String,
    /// Number of vouchers (1-100000).
    pub count: i64,
    /// Where the vouchers can be used.
    pub scope: ScopeKind,
    /// The site, with scope `site`.
    pub site_id: Option<String>,
    /// The site group, with scope `group`.
    pub group_id: Option<String>,
    /// Fixed start of every code: up to 16 of A-Z, 0-9 and `-`.
    pub prefix: Option<String>,
    /// Length of the random part (4-16, default 8).
    pub length: Option<i64>,
    /// `code` (default) or `separate`.
    pub password_mode: Option<PasswordMode>,
    /// Separate passwords' length (4-16, default 6).
    pub password_length: Option<i64>,
    /// Separate passwords of digits only.
    #[serde(default)]
    pub password_digits: bool,
    /// Remark.
    pub note: Option<String>,
}

/// A reseller buys a new batch: `count x plan price` is debited from its balance in the
/// same transaction that creates the vouchers, already sold to it.
#[utoipa::path(post, path = "/reseller/voucher-batches", tag = "vouchers", security(("bearer" = [])), request_body = BuyBatch,
    responses((status = 201, body = BatchSale), (status = 403, body = Problem), (status = 409, body = Problem, description = "insufficient_balance or not_reseller"), (status = 422, body = Problem)))]
async fn buy_batch(
    State(state): State<AppState>,
    caller: Caller,
    body: Body<BuyBatch>,
) -> ApiResult<(StatusCode, Json<BatchSale>)> {
    caller.require(Perm::BuyVouchers)?;
    let req = body.into_inner()?;
    let spec = BatchSpec {
        plan_id: req.plan_id,
        count: req.count,
        scope: req.scope,
        site_id: req.site_id,
        group_id: req.group_id,
        prefix: req.prefix,
        length: req.length,
        password_mode: req.password_mode,
        password_length: req.password_length,
        password_digits: req.password_digits,
        price: None,
        note: req.note,
    };
    let sale = sale::buy(&state.db, &caller.actor(), &caller.principal.admin_id, spec).await?;
    Ok((StatusCode::CREATED, Json(sale)))
}

/// Filters of the batch list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct BatchQuery {
    /// Only this plan's batches.
    pub plan_id: Option<String>,
    /// Only this reseller's batches.
    pub owner_id: Option<String>,
}

/// Lists batches, newest first (a reseller sees its own only).
#[utoipa::path(get, path = "/voucher-batches", tag = "vouchers", security(("bearer" = [])), params(BatchQuery, PageQuery),
    responses((status = 200, body = Page<Batch>), (status = 403, body = Problem), (status = 422, body = Problem)))]
async fn list_batches(
    State(state): State<AppState>,
    caller: Caller,
    Query(f): Query<BatchQuery>,
    Query(page): Query<PageQuery>,
) -> ApiResult<Json<Page<Batch>>> {
    let viewer = viewer(&caller)?;
    let limit = page.limit()?;
    let filter = BatchFilter {
        plan_id: f.plan_id,
        owner_id: f.owner_id,
    };
    let items = batch::list(&state.db, &viewer, &filter, &page.after()?, limit + 1).await?;
    Ok(Json(Page::from_overfetch(items, limit, Batch::cursor)))
}

/// One batch with its vouchers counted by state.
#[utoipa::path(get, path = "/voucher-batches/{id}", tag = "vouchers", security(("bearer" = [])),
    params(("id" = String, Path, description = "batch id")),
    responses((status = 200, body = BatchDetail), (status = 403, body = Problem), (status = 404, body = Problem)))]
async fn get_batch(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<BatchDetail>> {
    let viewer = viewer(&caller)?;
    Ok(Json(batch::detail(&state.db, &viewer, &id).await?))
}

/// A batch's vouchers with codes and passwords, by code, for printing.
#[utoipa::path(get, path = "/voucher-batches/{id}/vouchers", tag = "vouchers", security(("bearer" = [])),
    params(("id" = String, Path, description = "batch id"), PageQuery),
    responses((status = 200, body = Page<VoucherRecord>), (status = 403, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem)))]
async fn batch_vouchers(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Query(page): Query<PageQuery>,
) -> ApiResult<Json<Page<VoucherRecord>>> {
    let viewer = viewer(&caller)?;
    let limit = page.limit()?;
    batch::get(&state.db, &viewer, &id).await?;
    let filter = VoucherFilter {
        batch_id: Some(id),
        ..VoucherFilter::default()
    };
    let items = vouchers::list(&state.db, &viewer, &filter, &page.after()?, limit + 1).await?;
    Ok(Json(Page::from_overfetch(items, limit, |v| v.code.clone())))
}

/// The buyer of a batch.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SellBatch {
    /// The reseller's admin id.
    pub reseller_id: String,
}

/// Sells a batch's unsold vouchers to a reseller: `unsold x batch price` is debited from
/// its balance in the same transaction; with too little balance nothing changes.
#[utoipa::path(post, path = "/voucher-batches/{id}/sell", tag = "vouchers", security(("bearer" = [])),
    params(("id" = String, Path, description = "batch id")), request_body = SellBatch,
    responses((status = 200, body = BatchSale), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem, description = "insufficient_balance or invalid_state"), (status = 422, body = Problem)))]
async fn sell_batch(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    body: Body<SellBatch>,
) -> ApiResult<Json<BatchSale>> {
    caller.require(Perm::SellVouchers)?;
    let req = body.into_inner()?;
    Ok(Json(
        sale::sell_batch(&state.db, &caller.actor(), &id, &req.reseller_id).await?,
    ))
}

/// Revokes a batch's new and sold vouchers; active ones keep running.
#[utoipa::path(post, path = "/voucher-batches/{id}/revoke", tag = "vouchers", security(("bearer" = [])),
    params(("id" = String, Path, description = "batch id")),
    responses((status = 200, body = BatchRevoked), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem)))]
async fn revoke_batch(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<BatchRevoked>> {
    caller.require(Perm::WriteVouchers)?;
    Ok(Json(batch::revoke(&state.db, &caller.actor(), &id).await?))
}

/// Filters of the voucher list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct VoucherQuery {
    /// Only this batch's.
    pub batch_id: Option<String>,
    /// Only vouchers in this state.
    pub status: Option<VoucherState>,
    /// Only vouchers usable at this site (its own, its groups', every site's).
    pub site_id: Option<String>,
    /// Only this plan's.
    pub plan_id: Option<String>,
    /// Only codes starting with this.
    pub q: Option<String>,
}

/// Lists vouchers by code (a reseller sees those sold to it only).
#[utoipa::path(get, path = "/vouchers", tag = "vouchers", security(("bearer" = [])), params(VoucherQuery, PageQuery),
    responses((status = 200, body = Page<VoucherRecord>), (status = 403, body = Problem), (status = 422, body = Problem)))]
async fn list_vouchers(
    State(state): State<AppState>,
    caller: Caller,
    Query(f): Query<VoucherQuery>,
    Query(page): Query<PageQuery>,
) -> ApiResult<Json<Page<VoucherRecord>>> {
    let viewer = viewer(&caller)?;
    let limit = page.limit()?;
    let filter = VoucherFilter {
        batch_id: f.batch_id,
        status: f.status,
        site_id: f.site_id,
        plan_id: f.plan_id,
        code_prefix: f.q.filter(|q| !q.is_empty()),
    };
    let items = vouchers::list(&state.db, &viewer, &filter, &page.after()?, limit + 1).await?;
    Ok(Json(Page::from_overfetch(items, limit, |v| v.code.clone())))
}

/// One voucher.
#[utoipa::path(get, path = "/vouchers/{code}", tag = "vouchers", security(("bearer" = [])),
    params(("code" = String, Path, description = "voucher code")),
    responses((status = 200, body = VoucherRecord), (status = 403, body = Problem), (status = 404, body = Problem)))]
async fn get_voucher(
    State(state): State<AppState>,
    caller: Caller,
    Path(code): Path<String>,
) -> ApiResult<Json<VoucherRecord>> {
    let viewer = viewer(&caller)?;
    Ok(Json(vouchers::get(&state.db, &viewer, &code).await?))
}

/// A cash sale of one voucher.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SellVoucher {
    /// Price charged, minor units; the voucher's price when absent.
    pub price: Option<i64>,
}

/// Marks a new voucher sold.
#[utoipa::path(post, path = "/vouchers/{code}/sell", tag = "vouchers", security(("bearer" = [])),
    params(("code" = String, Path, description = "voucher code")), request_body = SellVoucher,
    responses((status = 200, body = VoucherRecord), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn sell_voucher(
    State(state): State<AppState>,
    caller: Caller,
    Path(code): Path<String>,
    body: Body<SellVoucher>,
) -> ApiResult<Json<VoucherRecord>> {
    caller.require(Perm::SellVouchers)?;
    let req = body.into_inner()?;
    Ok(Json(
        sale::sell_voucher(&state.db, &caller.actor(), &code, req.price).await?,
    ))
}

/// Revokes a new, sold or active voucher; it disappears from the agents' caches.
#[utoipa::path(post, path = "/vouchers/{code}/revoke", tag = "vouchers", security(("bearer" = [])),
    params(("code" = String, Path, description = "voucher code")),
    responses((status = 200, body = VoucherRecord), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem)))]
async fn revoke_voucher(
    State(state): State<AppState>,
    caller: Caller,
    Path(code): Path<String>,
) -> ApiResult<Json<VoucherRecord>> {
    caller.require(Perm::WriteVouchers)?;
    Ok(Json(
        vouchers::revoke_voucher(&state.db, &caller.actor(), &code).await?,
    ))
}
