//! Plan pages: the list (kind filter, archived shown on request) with the new-plan form for
//! roles that may set prices, and archiving.

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
use mikrobill_core::plans::{self, PlanInfo, PlanInput, PlanKind};
use serde::Deserialize;

/// `?kind=&archived=&after=`.
#[derive(Debug, Default, Deserialize)]
pub struct PlanQuery {
    kind: Option<String>,
    archived: Option<String>,
    after: Option<String>,
}

#[derive(askama::Template)]
#[template(path = "admin/plans.html")]
struct ListPage<'a> {
    c: &'a Ctx,
    rows: Vec<PlanInfo>,
    f: PlanQuery,
    pager: Pager,
}

impl ListPage<'_> {
    fn limits(&self, p: &PlanInfo) -> String {
        let mut parts = Vec::new();
        if let Some(r) = &p.rate_limit {
            parts.push(r.clone());
        }
        if let Some(v) = p.validity_secs {
            parts.push(format!(
                "{} {}",
                self.c.t("plan.validity"),
                form_values::duration(v)
            ));
        }
        if let Some(t) = p.time_limit_secs {
            parts.push(format!(
                "{} {}",
                self.c.t("plan.time_limit"),
                form_values::duration(t)
            ));
        }
        if let Some(d) = p.data_limit_bytes {
            parts.push(format!("{} MB", d / 1_000_000));
        }
        parts.join(" · ")
    }

    fn kind_selected(&self, k: &str) -> bool {
        self.f.kind.as_deref() == Some(k)
    }
}

fn kind(s: &str) -> Option<PlanKind> {
    match s {
        "hotspot" => Some(PlanKind::Hotspot),
        "pppoe" => Some(PlanKind::Pppoe),
        _ => None,
    }
}

/// `GET /plans`.
pub async fn list(
    State(state): State<AppState>,
    c: Ctx,
    Query(f): Query<PlanQuery>,
) -> Result<Response, WebError> {
    c.require(Perm::ReadPlans)?;
    let k = opt(&f.kind).and_then(|s| kind(&s));
    let archived = opt(&f.archived).is_some();
    let after = opt(&f.after).unwrap_or_default();
    let mut rows = plans::list(&state.db, k, archived, &after, PAGE_ROWS + 1).await?;
    let fields = [
        ("kind", f.kind.as_deref().unwrap_or("")),
        ("archived", f.archived.as_deref().unwrap_or("")),
    ];
    let pager = Pager::split(&mut rows, &fields, &after, |p| p.name.clone());
    Ok(c.render(&ListPage {
        c: &c,
        rows,
        f,
        pager,
    }))
}

/// The plan form's fields (new and edit); durations as `1d 2h 30m`, data in MB.
#[derive(Debug, Deserialize)]
pub struct PlanFields {
    #[serde(default)]
    name: String,
    kind: String,
    price: Option<String>,
    rate_limit: Option<String>,
    validity: Option<String>,
    time_limit: Option<String>,
    data_limit_mb: Option<String>,
    fup_rate_limit: Option<String>,
    shared_users: Option<String>,
    interim_interval: Option<String>,
    router_group: Option<String>,
    address_list: Option<String>,
    isolation_profile: Option<String>,
    /// A checkbox: present ("1") when ticked.
    mac_lock: Option<String>,
}

fn input_from(f: PlanFields, money: super::form_values::MoneyInput) -> Result<PlanInput, String> {
    let small = |v: Option<i64>, field: &str| -> Result<Option<u32>, String> {
        v.map(|n| u32::try_from(n).map_err(|_| format!("{field}: out of range")))
            .transpose()
    };
    let interim = form_values::parse_duration(&f.interim_interval, "interim_interval")?
        .map(|s| u32::try_from(s).map_err(|_| "interim_interval: out of range".to_string()))
        .transpose()?;
    Ok(PlanInput {
        name: f.name,
        kind: kind(&f.kind).ok_or("kind: hotspot or pppoe")?,
        price: money.parse(&f.price, "price")?.unwrap_or(0),
        rate_limit: opt(&f.rate_limit),
        time_limit_secs: form_values::parse_duration(&f.time_limit, "time_limit")?,
        data_limit_bytes: form_values::number(&f.data_limit_mb, "data_limit_mb")?
            .map(|mb| {
                u64::try_from(mb)
                    .ok()
                    .and_then(|mb| mb.checked_mul(1_000_000))
                    .ok_or_else(|| "data_limit_mb: out of range".to_string())
            })
            .transpose()?,
        validity_secs: form_values::parse_duration(&f.validity, "validity")?,
        shared_users: small(
            form_values::number(&f.shared_users, "shared_users")?,
            "shared_users",
        )?,
        interim_interval_secs: interim,
        router_group: opt(&f.router_group),
        address_list: opt(&f.address_list),
        isolation_profile: opt(&f.isolation_profile),
        mac_lock: f.mac_lock.is_some_and(|v| !v.is_empty()),
        fup_rate_limit: opt(&f.fup_rate_limit),
    })
}

#[derive(askama::Template)]
#[template(path = "admin/plan.html")]
struct PlanPage<'a> {
    c: &'a Ctx,
    p: PlanInfo,
}

impl PlanPage<'_> {
    fn dur(&self, v: &Option<i64>) -> String {
        v.map(form_values::duration).unwrap_or_default()
    }

    fn mb(&self) -> String {
        self.p
            .data_limit_bytes
            .map(|b| (b / 1_000_000).to_string())
            .unwrap_or_default()
    }
}

/// `GET /plans/{id}`: the plan, with the edit form for roles that set prices.
pub async fn detail(
    State(state): State<AppState>,
    c: Ctx,
    Path(id): Path<String>,
) -> Result<Response, WebError> {
    c.require(Perm::ReadPlans)?;
    let p = plans::get(&state.db, &id)
        .await
        .map_err(|e| super::ctx::not_found(&c, e))?;
    Ok(c.render(&PlanPage { c: &c, p }))
}

/// `POST /plans/{id}`: saves every field (the domain re-syncs the plan to the sites).
pub async fn update(
    State(state): State<AppState>,
    c: Ctx,
    Path(id): Path<String>,
    form: Form<PlanFields>,
) -> Result<Response, WebError> {
    c.require(Perm::WritePlans)?;
    let input = form
        .fields()
        .and_then(|f| input_from(f, c.money_input()))
        .map_err(|e| WebError::BadRequest(c.lang, e))?;
    let back = format!("/plans/{id}");
    let result = plans::update(&state.db, &c.actor(), &id, input).await;
    Ok(c.outcome(result, |_| back.clone(), c.t("saved"), &back))
}

/// `POST /plans`.
pub async fn create(
    State(state): State<AppState>,
    c: Ctx,
    form: Form<PlanFields>,
) -> Result<Response, WebError> {
    c.require(Perm::WritePlans)?;
    let input = form
        .fields()
        .and_then(|f| input_from(f, c.money_input()))
        .map_err(|e| WebError::BadRequest(c.lang, e))?;
    let result = plans::create_from(&state.db, &c.actor(), input).await;
    Ok(c.outcome(result, |_| "/plans".into(), c.t("plan.created"), "/plans"))
}

/// `POST /plans/{id}/archive` and `/plans/{id}/restore`.
pub async fn archive(
    State(state): State<AppState>,
    c: Ctx,
    Path((id, action)): Path<(String, String)>,
    _form: Form<NoFields>,
) -> Result<Response, WebError> {
    c.require(Perm::WritePlans)?;
    let archived = match action.as_str() {
        "archive" => true,
        "restore" => false,
        _ => return Err(WebError::NotFound(c.lang)),
    };
    let result = plans::set_archived(&state.db, &c.actor(), &id, archived).await;
    Ok(c.outcome(
        result,
        |_| "/plans?archived=1".into(),
        c.t("saved"),
        "/plans",
    ))
}
