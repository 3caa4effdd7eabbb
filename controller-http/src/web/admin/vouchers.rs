//! Voucher pages: the voucher list (filters by batch, status, site, plan and code prefix;
//! keyset pages), batches (generate, detail, revoke, sell to a reseller) and single-voucher
//! revoke and sale. Printing is in `print.rs`.

use super::ctx::Ctx;
use super::ctx::not_found;
use super::error::WebError;
use super::form::Form;
use super::form::NoFields;
use super::form_values::{self, opt};
use super::lookups;
use crate::server::AppState;
use crate::web::pager::{PAGE_ROWS, Pager};
use axum::extract::{Path, Query, State};
use axum::response::Response;
use mikrobill_core::auth::Perm;
use mikrobill_core::plans::{PlanInfo, PlanKind};
use mikrobill_core::vouchers::batch::{
    self, Batch, BatchDetail, BatchFilter, BatchSpec, PasswordMode,
};
use mikrobill_core::vouchers::sale;
use mikrobill_core::vouchers::{
    self, ScopeKind, State as VoucherState, Viewer, VoucherFilter, VoucherRecord,
};
use serde::Deserialize;
use std::collections::HashMap;

/// Whose vouchers the admin sees: everything with the read permission, a reseller only its
/// own (anything else is "not found"), as the API decides.
pub fn viewer(c: &Ctx) -> Result<Viewer, WebError> {
    if c.can(Perm::ReadVouchers) {
        Ok(Viewer::All)
    } else if c.can(Perm::BuyVouchers) {
        Ok(Viewer::Reseller(c.principal.admin_id.clone()))
    } else {
        Err(WebError::Forbidden(c.lang))
    }
}

/// Every voucher state, for the filter.
pub const STATES: [VoucherState; 6] = [
    VoucherState::New,
    VoucherState::Sold,
    VoucherState::Active,
    VoucherState::Expired,
    VoucherState::Exhausted,
    VoucherState::Revoked,
];

fn parse_state(s: &str) -> Option<VoucherState> {
    STATES.into_iter().find(|st| st.as_str() == s)
}

/// Filters of the voucher list.
#[derive(Debug, Default, Deserialize)]
pub struct VoucherQuery {
    batch: Option<String>,
    status: Option<String>,
    site: Option<String>,
    plan: Option<String>,
    q: Option<String>,
    after: Option<String>,
}

#[derive(askama::Template)]
#[template(path = "admin/vouchers.html")]
struct VouchersPage<'a> {
    c: &'a Ctx,
    rows: Vec<VoucherRecord>,
    plans: HashMap<String, PlanInfo>,
    plan_list: Vec<PlanInfo>,
    sites: HashMap<String, String>,
    site_list: Vec<(String, String)>,
    f: VoucherQuery,
    pager: Pager,
    states: [VoucherState; 6],
}

impl VouchersPage<'_> {
    fn plan_name(&self, id: &str) -> String {
        self.plans
            .get(id)
            .map(|p| p.name.clone())
            .unwrap_or_else(|| id.into())
    }

    /// Online time and traffic as stored on the voucher: the fleet-wide totals ingest keeps
    /// from the usage ledger, the same numbers the API and the portal show.
    fn used(&self, v: &VoucherRecord) -> String {
        format!(
            "{} / {}",
            super::form_values::duration(v.used_time_secs),
            mikrobill_core::locale::format_bytes(v.used_bytes, self.c.lang)
        )
    }

    fn site_name(&self, v: &VoucherRecord) -> String {
        match (&v.site_id, v.scope) {
            (Some(id), _) => self.sites.get(id).cloned().unwrap_or_else(|| id.clone()),
            (None, ScopeKind::All) => self.c.t("scope.all").into(),
            (None, _) => self.c.t("scope.group").into(),
        }
    }

    fn selected(&self, field: &Option<String>, value: &str) -> bool {
        field.as_deref() == Some(value)
    }
}

/// `GET /vouchers`.
pub async fn list(
    State(state): State<AppState>,
    c: Ctx,
    Query(f): Query<VoucherQuery>,
) -> Result<Response, WebError> {
    c.require(Perm::ReadVouchers)?;
    let status = match opt(&f.status) {
        Some(s) => {
            Some(parse_state(&s).ok_or_else(|| WebError::BadRequest(c.lang, "status".into()))?)
        }
        None => None,
    };
    let filter = VoucherFilter {
        batch_id: opt(&f.batch),
        status,
        site_id: opt(&f.site),
        plan_id: opt(&f.plan),
        code_prefix: opt(&f.q),
    };
    let after = opt(&f.after).unwrap_or_default();
    let mut rows = vouchers::list(&state.db, &Viewer::All, &filter, &after, PAGE_ROWS + 1).await?;
    let fields = [
        ("batch", f.batch.as_deref().unwrap_or("")),
        ("status", f.status.as_deref().unwrap_or("")),
        ("site", f.site.as_deref().unwrap_or("")),
        ("plan", f.plan.as_deref().unwrap_or("")),
        ("q", f.q.as_deref().unwrap_or("")),
    ];
    let pager = Pager::split(&mut rows, &fields, &after, |v| v.code.clone());
    let plan_list = lookups::plans(&state.db, Some(PlanKind::Hotspot)).await?;
    let site_list: Vec<(String, String)> = lookups::live_sites(&state.db)
        .await?
        .into_iter()
        .map(|s| (s.id, s.name))
        .collect();
    Ok(c.render(&VouchersPage {
        c: &c,
        rows,
        plans: lookups::by_id(&plan_list),
        plan_list,
        sites: lookups::site_names(&state.db).await?,
        site_list,
        f,
        pager,
        states: STATES,
    }))
}

/// `?after=` of the batch list.
#[derive(Debug, Default, Deserialize)]
pub struct AfterQuery {
    after: Option<String>,
}

#[derive(askama::Template)]
#[template(path = "admin/batches.html")]
struct BatchesPage<'a> {
    c: &'a Ctx,
    rows: Vec<Batch>,
    plans: HashMap<String, PlanInfo>,
    pager: Pager,
}

impl BatchesPage<'_> {
    fn plan_name(&self, id: &str) -> String {
        self.plans
            .get(id)
            .map(|p| p.name.clone())
            .unwrap_or_else(|| id.into())
    }
}

/// `GET /vouchers/batches`.
pub async fn batches(
    State(state): State<AppState>,
    c: Ctx,
    Query(q): Query<AfterQuery>,
) -> Result<Response, WebError> {
    c.require(Perm::ReadVouchers)?;
    let after = opt(&q.after).unwrap_or_default();
    let mut rows = batch::list(
        &state.db,
        &Viewer::All,
        &BatchFilter::default(),
        &after,
        PAGE_ROWS + 1,
    )
    .await?;
    let pager = Pager::split(&mut rows, &[], &after, Batch::cursor);
    let plans = lookups::by_id(&lookups::plans(&state.db, None).await?);
    Ok(c.render(&BatchesPage {
        c: &c,
        rows,
        plans,
        pager,
    }))
}

#[derive(askama::Template)]
#[template(path = "admin/batch_new.html")]
struct NewBatchPage<'a> {
    c: &'a Ctx,
    plans: Vec<PlanInfo>,
    sites: Vec<mikrobill_core::sites::Site>,
    groups: Vec<mikrobill_core::site_groups::SiteGroup>,
}

/// `GET /vouchers/batches/new`.
pub async fn new_batch(State(state): State<AppState>, c: Ctx) -> Result<Response, WebError> {
    c.require(Perm::WriteVouchers)?;
    let plans = lookups::plans(&state.db, Some(PlanKind::Hotspot))
        .await?
        .into_iter()
        .filter(|p| !p.archived)
        .collect();
    let sites = lookups::live_sites(&state.db).await?;
    let groups = mikrobill_core::site_groups::list(&state.db, "", 10_000).await?;
    Ok(c.render(&NewBatchPage {
        c: &c,
        plans,
        sites,
        groups,
    }))
}

/// The batch form's fields.
#[derive(Debug, Deserialize)]
pub struct BatchFields {
    plan_id: String,
    count: Option<String>,
    scope: String,
    site_id: Option<String>,
    group_id: Option<String>,
    prefix: Option<String>,
    length: Option<String>,
    password_mode: Option<String>,
    price: Option<String>,
    note: Option<String>,
}

fn spec_from(f: BatchFields, money: super::form_values::MoneyInput) -> Result<BatchSpec, String> {
    let scope = match f.scope.as_str() {
        "site" => ScopeKind::Site,
        "group" => ScopeKind::Group,
        "all" => ScopeKind::All,
        other => return Err(format!("scope: unknown {other:?}")),
    };
    Ok(BatchSpec {
        plan_id: f.plan_id,
        count: form_values::number(&f.count, "count")?.unwrap_or(0),
        scope,
        site_id: if scope == ScopeKind::Site {
            opt(&f.site_id)
        } else {
            None
        },
        group_id: if scope == ScopeKind::Group {
            opt(&f.group_id)
        } else {
            None
        },
        prefix: opt(&f.prefix),
        length: form_values::number(&f.length, "length")?,
        password_mode: match f.password_mode.as_deref() {
            Some("separate") => Some(PasswordMode::Separate),
            _ => Some(PasswordMode::Code),
        },
        password_length: None,
        password_digits: false,
        price: money.parse(&f.price, "price")?,
        note: opt(&f.note),
    })
}

/// `POST /vouchers/batches`: generates a batch and opens it.
pub async fn create_batch(
    State(state): State<AppState>,
    c: Ctx,
    form: Form<BatchFields>,
) -> Result<Response, WebError> {
    c.require(Perm::WriteVouchers)?;
    let spec = form
        .fields()
        .and_then(|f| spec_from(f, c.money_input()))
        .map_err(|e| WebError::BadRequest(c.lang, e))?;
    let result = batch::generate(&state.db, &c.actor(), spec).await;
    Ok(c.outcome(
        result,
        |b| format!("/vouchers/batches/{}", b.id),
        c.t("batch.created"),
        "/vouchers/batches/new",
    ))
}

#[derive(askama::Template)]
#[template(path = "admin/batch.html")]
struct BatchPage<'a> {
    c: &'a Ctx,
    d: BatchDetail,
    plan: String,
    site: String,
    resellers: Vec<mikrobill_core::admins::Admin>,
}

/// `GET /vouchers/batches/{id}` (a reseller's own batches too).
pub async fn batch_detail(
    State(state): State<AppState>,
    c: Ctx,
    Path(id): Path<String>,
) -> Result<Response, WebError> {
    let v = viewer(&c)?;
    let d = batch::detail(&state.db, &v, &id)
        .await
        .map_err(|e| not_found(&c, e))?;
    let plans = lookups::by_id(&lookups::plans(&state.db, None).await?);
    let sites = lookups::site_names(&state.db).await?;
    let plan = plans
        .get(&d.batch.plan_id)
        .map(|p| p.name.clone())
        .unwrap_or_default();
    let site = match &d.batch.site_id {
        Some(s) => sites.get(s).cloned().unwrap_or_default(),
        None => c.t("scope.all").into(),
    };
    let resellers = if c.can(Perm::SellVouchers) {
        lookups::resellers(&state.db).await?
    } else {
        Vec::new()
    };
    Ok(c.render(&BatchPage {
        c: &c,
        d,
        plan,
        site,
        resellers,
    }))
}

/// `POST /vouchers/batches/{id}/revoke`.
pub async fn revoke_batch(
    State(state): State<AppState>,
    c: Ctx,
    Path(id): Path<String>,
    _form: Form<NoFields>,
) -> Result<Response, WebError> {
    c.require(Perm::WriteVouchers)?;
    let back = format!("/vouchers/batches/{id}");
    let result = batch::revoke(&state.db, &c.actor(), &id).await;
    Ok(c.outcome(result, |_| back.clone(), c.t("batch.revoked"), &back))
}

/// The sell-to-reseller form.
#[derive(Debug, Deserialize)]
pub struct SellBatchFields {
    reseller_id: String,
}

/// `POST /vouchers/batches/{id}/sell`: debits the reseller's balance for the batch.
pub async fn sell_batch(
    State(state): State<AppState>,
    c: Ctx,
    Path(id): Path<String>,
    form: Form<SellBatchFields>,
) -> Result<Response, WebError> {
    c.require(Perm::SellVouchers)?;
    let f = form.fields().map_err(|e| WebError::BadRequest(c.lang, e))?;
    let back = format!("/vouchers/batches/{id}");
    let result = sale::sell_batch(&state.db, &c.actor(), &id, &f.reseller_id).await;
    Ok(c.outcome(result, |_| back.clone(), c.t("batch.sold"), &back))
}

/// Where a single-voucher form returns to (the list with its filters).
#[derive(Debug, Deserialize)]
pub struct VoucherAction {
    back: Option<String>,
    price: Option<String>,
}

/// `POST /vouchers/{code}/revoke`.
pub async fn revoke_voucher(
    State(state): State<AppState>,
    c: Ctx,
    Path(code): Path<String>,
    form: Form<VoucherAction>,
) -> Result<Response, WebError> {
    c.require(Perm::WriteVouchers)?;
    let f = form.fields().map_err(|e| WebError::BadRequest(c.lang, e))?;
    let back = super::return_path::local_path(f.back.as_deref());
    let result = vouchers::revoke_voucher(&state.db, &c.actor(), &code).await;
    Ok(c.outcome(result, |_| back.clone(), c.t("voucher.revoked"), &back))
}

/// `POST /vouchers/{code}/sell`: a cash sale at the plan's price unless one is given.
pub async fn sell_voucher(
    State(state): State<AppState>,
    c: Ctx,
    Path(code): Path<String>,
    form: Form<VoucherAction>,
) -> Result<Response, WebError> {
    c.require(Perm::SellVouchers)?;
    let f = form.fields().map_err(|e| WebError::BadRequest(c.lang, e))?;
    let back = super::return_path::local_path(f.back.as_deref());
    let price = c
        .money_input()
        .parse(&f.price, "price")
        .map_err(|e| WebError::BadRequest(c.lang, e))?;
    let result = sale::sell_voucher(&state.db, &c.actor(), &code, price).await;
    Ok(c.outcome(result, |_| back.clone(), c.t("voucher.sold"), &back))
}

#[derive(askama::Template)]
#[template(path = "admin/shop.html")]
struct ShopPage<'a> {
    c: &'a Ctx,
    balance: i64,
    plans: Vec<PlanInfo>,
    sites: Vec<mikrobill_core::sites::Site>,
    batches: Vec<Batch>,
    names: HashMap<String, PlanInfo>,
    pager: Pager,
}

impl ShopPage<'_> {
    fn plan_name(&self, id: &str) -> String {
        self.names
            .get(id)
            .map(|p| p.name.clone())
            .unwrap_or_default()
    }
}

/// Only resellers buy from a balance (the domain refuses anyone else, admins included, who
/// generate batches instead), so the shop is theirs alone.
fn require_reseller(c: &Ctx) -> Result<(), WebError> {
    c.require(Perm::BuyVouchers)?;
    if c.principal.role == mikrobill_core::auth::Role::Reseller {
        Ok(())
    } else {
        Err(WebError::Forbidden(c.lang))
    }
}

/// `GET /shop`: a reseller's balance, the buy form and its own batches.
pub async fn shop(
    State(state): State<AppState>,
    c: Ctx,
    Query(q): Query<AfterQuery>,
) -> Result<Response, WebError> {
    require_reseller(&c)?;
    let me = mikrobill_core::admins::get(&state.db, &c.principal.admin_id).await?;
    let all_plans = lookups::plans(&state.db, Some(PlanKind::Hotspot)).await?;
    let names = lookups::by_id(&all_plans);
    let plans = all_plans.into_iter().filter(|p| !p.archived).collect();
    let after = opt(&q.after).unwrap_or_default();
    let mut batches = batch::list(
        &state.db,
        &Viewer::Reseller(c.principal.admin_id.clone()),
        &BatchFilter::default(),
        &after,
        PAGE_ROWS + 1,
    )
    .await?;
    let pager = Pager::split(&mut batches, &[], &after, Batch::cursor);
    Ok(c.render(&ShopPage {
        c: &c,
        balance: me.balance,
        plans,
        sites: lookups::live_sites(&state.db).await?,
        batches,
        names,
        pager,
    }))
}

/// `POST /shop`: the reseller buys a batch at the plan's price from its balance.
pub async fn buy(
    State(state): State<AppState>,
    c: Ctx,
    form: Form<BatchFields>,
) -> Result<Response, WebError> {
    require_reseller(&c)?;
    let mut spec = form
        .fields()
        .and_then(|f| spec_from(f, c.money_input()))
        .map_err(|e| WebError::BadRequest(c.lang, e))?;
    spec.price = None;
    let result = sale::buy(&state.db, &c.actor(), &c.principal.admin_id, spec).await;
    Ok(c.outcome(
        result,
        |s| format!("/vouchers/batches/{}", s.batch.id),
        c.t("shop.bought"),
        "/shop",
    ))
}
