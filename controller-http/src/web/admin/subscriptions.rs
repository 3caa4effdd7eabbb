//! PPPoE subscription pages: the list (status, site, customer and username-prefix filters;
//! keyset pages) and one subscription with its invoices, where an operator isolates,
//! re-activates, changes the plan or terminates it.

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
use mikrobill_core::billing::invoices::{self, Invoice, InvoiceFilter};
use mikrobill_core::customers::{self, Customer};
use mikrobill_core::plans::{PlanInfo, PlanKind};
use mikrobill_core::subscriptions::{
    self, Subscription, SubscriptionFilter, SubscriptionInput, SubscriptionStatus,
};
use serde::Deserialize;
use std::collections::HashMap;

/// Every status, for the filter.
pub const STATUSES: [SubscriptionStatus; 3] = SubscriptionStatus::ALL;

/// Filters of the list.
#[derive(Debug, Default, Deserialize)]
pub struct SubscriptionQuery {
    status: Option<String>,
    site: Option<String>,
    customer: Option<String>,
    q: Option<String>,
    after: Option<String>,
}

#[derive(askama::Template)]
#[template(path = "admin/subscriptions.html")]
struct ListPage<'a> {
    c: &'a Ctx,
    rows: Vec<Subscription>,
    customers: HashMap<String, Customer>,
    plans: HashMap<String, PlanInfo>,
    sites: HashMap<String, String>,
    site_list: Vec<(String, String)>,
    f: SubscriptionQuery,
    pager: Pager,
    statuses: [SubscriptionStatus; 3],
}

impl ListPage<'_> {
    fn plan_name(&self, id: &str) -> String {
        self.plans
            .get(id)
            .map(|p| p.name.clone())
            .unwrap_or_default()
    }

    fn customer_name(&self, id: &str) -> String {
        self.customers
            .get(id)
            .map(|c| c.name.clone())
            .unwrap_or_default()
    }

    fn site_name(&self, id: &str) -> String {
        self.sites.get(id).cloned().unwrap_or_default()
    }

    fn selected(&self, field: &Option<String>, value: &str) -> bool {
        field.as_deref() == Some(value)
    }
}

/// The CSS class of a status pill.
pub fn status_class(s: &SubscriptionStatus) -> &'static str {
    match s {
        SubscriptionStatus::Active => "ok",
        SubscriptionStatus::Isolated => "bad",
        SubscriptionStatus::Terminated => "muted",
    }
}

/// `GET /subscriptions`.
pub async fn list(
    State(state): State<AppState>,
    c: Ctx,
    Query(f): Query<SubscriptionQuery>,
) -> Result<Response, WebError> {
    c.require(Perm::ReadSubscriptions)?;
    let status = match opt(&f.status) {
        Some(s) => Some(
            STATUSES
                .into_iter()
                .find(|st| st.as_str() == s)
                .ok_or_else(|| WebError::BadRequest(c.lang, "status".into()))?,
        ),
        None => None,
    };
    let filter = SubscriptionFilter {
        customer_id: opt(&f.customer),
        site_id: opt(&f.site),
        status,
        q: opt(&f.q),
    };
    let after = opt(&f.after).unwrap_or_default();
    let mut rows = subscriptions::list(&state.db, &filter, &after, PAGE_ROWS + 1).await?;
    let fields = [
        ("status", f.status.as_deref().unwrap_or("")),
        ("site", f.site.as_deref().unwrap_or("")),
        ("customer", f.customer.as_deref().unwrap_or("")),
        ("q", f.q.as_deref().unwrap_or("")),
    ];
    let pager = Pager::split(&mut rows, &fields, &after, |s| s.username.clone());
    let ids: Vec<String> = rows.iter().map(|s| s.customer_id.clone()).collect();
    let customers = customers::by_ids(&state.db, &ids).await?;
    let site_list = lookups::live_sites(&state.db)
        .await?
        .into_iter()
        .map(|s| (s.id, s.name))
        .collect();
    Ok(c.render(&ListPage {
        c: &c,
        rows,
        customers,
        plans: lookups::by_id(&lookups::plans(&state.db, Some(PlanKind::Pppoe)).await?),
        sites: lookups::site_names(&state.db).await?,
        site_list,
        f,
        pager,
        statuses: STATUSES,
    }))
}

#[derive(askama::Template)]
#[template(path = "admin/subscription.html")]
struct DetailPage<'a> {
    c: &'a Ctx,
    s: Subscription,
    customer: Customer,
    plan: String,
    site: String,
    plans: Vec<PlanInfo>,
    invoices: Vec<Invoice>,
    commands: Vec<mikrobill_core::commands::QueuedCommand>,
}

/// `GET /subscriptions/{id}`.
pub async fn detail(
    State(state): State<AppState>,
    c: Ctx,
    Path(id): Path<String>,
) -> Result<Response, WebError> {
    c.require(Perm::ReadSubscriptions)?;
    let s = subscriptions::get(&state.db, &id)
        .await
        .map_err(|e| not_found(&c, e))?;
    let customer = customers::get(&state.db, &s.customer_id).await?;
    let all_plans = lookups::plans(&state.db, Some(PlanKind::Pppoe)).await?;
    let plan = all_plans
        .iter()
        .find(|p| p.id == s.plan_id)
        .map(|p| p.name.clone())
        .unwrap_or_default();
    let site = lookups::site_names(&state.db)
        .await?
        .get(&s.site_id)
        .cloned()
        .unwrap_or_default();
    let invoices = if c.can(Perm::ReadInvoices) {
        let f = InvoiceFilter {
            subscription_id: Some(s.id.clone()),
            ..InvoiceFilter::default()
        };
        invoices::list(&state.db, &f, "", 24).await?
    } else {
        Vec::new()
    };
    let plans = all_plans
        .into_iter()
        .filter(|p| !p.archived && p.id != s.plan_id)
        .collect();
    let commands = if c.can(Perm::ReadSites) {
        let f = mikrobill_core::commands::CommandFilter {
            subscription_id: Some(s.id.clone()),
            ..Default::default()
        };
        mikrobill_core::commands::list(&state.db, &f, None, 10).await?
    } else {
        Vec::new()
    };
    Ok(c.render(&DetailPage {
        c: &c,
        s,
        customer,
        plan,
        site,
        plans,
        invoices,
        commands,
    }))
}

/// `POST /subscriptions/{id}/{action}` for isolate, reactivate and terminate.
pub async fn action(
    State(state): State<AppState>,
    c: Ctx,
    Path((id, action)): Path<(String, String)>,
    _form: Form<NoFields>,
) -> Result<Response, WebError> {
    c.require(Perm::WriteSubscriptions)?;
    let actor = c.actor();
    let (result, ok) = match action.as_str() {
        "isolate" => (
            subscriptions::isolate(&state.db, &actor, &id).await,
            "sub.isolated",
        ),
        "reactivate" => (
            subscriptions::reactivate(&state.db, &actor, &id).await,
            "sub.reactivated",
        ),
        "terminate" => (
            subscriptions::terminate(&state.db, &actor, &id).await,
            "sub.terminated",
        ),
        "kick" => {
            let back = format!("/subscriptions/{id}");
            let sub = subscriptions::get(&state.db, &id)
                .await
                .map_err(|e| not_found(&c, e))?;
            let command = mikrobill_protocol::messages::Command::Disconnect {
                username: sub.username.clone(),
            };
            let result = mikrobill_core::commands::queue_manual(
                &state.db,
                &actor,
                &sub.site_id,
                Some(&sub.id),
                command,
                None,
            )
            .await;
            return Ok(c.outcome(result, |_| back.clone(), c.t("command.queued"), &back));
        }
        _ => return Err(WebError::NotFound(c.lang)),
    };
    let back = format!("/subscriptions/{id}");
    Ok(c.outcome(result, |_| back.clone(), c.t(ok), &back))
}

/// The plan change form.
#[derive(Debug, Deserialize)]
pub struct PlanFields {
    plan_id: String,
}

/// `POST /subscriptions/{id}/plan`: the domain prorates and re-speeds the live session.
pub async fn change_plan(
    State(state): State<AppState>,
    c: Ctx,
    Path(id): Path<String>,
    form: Form<PlanFields>,
) -> Result<Response, WebError> {
    c.require(Perm::WriteSubscriptions)?;
    let f = form.fields().map_err(|e| WebError::BadRequest(c.lang, e))?;
    let back = format!("/subscriptions/{id}");
    let result = subscriptions::change_plan(&state.db, &c.actor(), &id, &f.plan_id).await;
    Ok(c.outcome(result, |_| back.clone(), c.t("sub.plan_changed"), &back))
}

/// The new-subscription form (on the customer's page).
#[derive(Debug, Deserialize)]
pub struct NewFields {
    customer_id: String,
    plan_id: String,
    site_id: String,
    #[serde(default)]
    username: String,
    password: Option<String>,
    static_ip: Option<String>,
    billing_day: Option<String>,
    start_date: Option<String>,
    bill_from: Option<String>,
}

/// `POST /subscriptions`: the domain invoices the first cycle and syncs the account to
/// its site.
pub async fn create(
    State(state): State<AppState>,
    c: Ctx,
    form: Form<NewFields>,
) -> Result<Response, WebError> {
    c.require(Perm::WriteSubscriptions)?;
    let f = form.fields().map_err(|e| WebError::BadRequest(c.lang, e))?;
    let back = format!("/customers/{}", f.customer_id);
    let billing_day = match form_values::number(&f.billing_day, "billing_day") {
        Ok(d) => d.map(|d| u8::try_from(d).unwrap_or(u8::MAX)),
        Err(e) => {
            return Ok(c.redirect_with(
                &back,
                super::flash::Flash {
                    kind: "error",
                    text: e,
                },
            ));
        }
    };
    let input = SubscriptionInput {
        customer_id: f.customer_id.clone(),
        plan_id: f.plan_id,
        site_id: f.site_id,
        username: f.username.trim().to_string(),
        password: opt(&f.password),
        static_ip: opt(&f.static_ip),
        billing_day,
        start_date: opt(&f.start_date),
        bill_from: opt(&f.bill_from),
        due_days: None,
        grace_days: None,
    };
    let result = subscriptions::create(&state.db, &c.actor(), input).await;
    Ok(c.outcome(
        result,
        |s| format!("/subscriptions/{}", s.id),
        c.t("sub.created"),
        &back,
    ))
}
