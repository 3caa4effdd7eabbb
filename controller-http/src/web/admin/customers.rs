//! Customer pages: the searchable list (name, number, phone, e-mail; keyset pages), a new
//! customer form, and one customer with an edit form, links to their subscriptions,
//! invoices and payments, and their notification preferences.

use super::ctx::Ctx;
use super::ctx::not_found;
use super::error::WebError;
use super::form::Form;
use super::form_values::opt;
use super::payments::{Found, search};
use crate::server::AppState;
use crate::web::pager::{PAGE_ROWS, Pager};
use axum::extract::{Path, Query, State};
use axum::response::Response;
use mikrobill_core::auth::Perm;
use mikrobill_core::customers::{self, Customer, CustomerInput, CustomerPatch};
use serde::Deserialize;

/// `?q=&after=`.
#[derive(Debug, Default, Deserialize)]
pub struct CustomerQuery {
    q: Option<String>,
    after: Option<String>,
}

#[derive(askama::Template)]
#[template(path = "admin/customers.html")]
struct ListPage<'a> {
    c: &'a Ctx,
    rows: Vec<Found>,
    q: String,
    pager: Pager,
}

/// `GET /customers`.
pub async fn list(
    State(state): State<AppState>,
    c: Ctx,
    Query(f): Query<CustomerQuery>,
) -> Result<Response, WebError> {
    c.require(Perm::ReadCustomers)?;
    let q = opt(&f.q).unwrap_or_default();
    let after = opt(&f.after).unwrap_or_default();
    let mut rows = search(&state, &q, &after, PAGE_ROWS + 1).await?;
    let pager = Pager::split(&mut rows, &[("q", &q)], &after, |r| r.number.clone());
    Ok(c.render(&ListPage {
        c: &c,
        rows,
        q,
        pager,
    }))
}

/// The customer form's fields.
#[derive(Debug, Deserialize)]
pub struct CustomerFields {
    #[serde(default)]
    name: String,
    phone: Option<String>,
    email: Option<String>,
    address: Option<String>,
    notes: Option<String>,
}

/// `POST /customers`.
pub async fn create(
    State(state): State<AppState>,
    c: Ctx,
    form: Form<CustomerFields>,
) -> Result<Response, WebError> {
    c.require(Perm::WriteCustomers)?;
    let f = form.fields().map_err(|e| WebError::BadRequest(c.lang, e))?;
    let input = CustomerInput {
        name: f.name,
        phone: opt(&f.phone),
        email: opt(&f.email),
        address: opt(&f.address),
        notes: opt(&f.notes),
    };
    let result = customers::create(&state.db, &c.actor(), input).await;
    Ok(c.outcome(
        result,
        |cu| format!("/customers/{}", cu.id),
        c.t("customer.created"),
        "/customers",
    ))
}

#[derive(askama::Template)]
#[template(path = "admin/customer.html")]
struct DetailPage<'a> {
    c: &'a Ctx,
    cu: Customer,
    subs: Vec<mikrobill_core::subscriptions::Subscription>,
    plans: Vec<mikrobill_core::plans::PlanInfo>,
    sites: Vec<mikrobill_core::sites::Site>,
    notify: super::notifications::prefs::Section,
}

/// `GET /customers/{id}`.
pub async fn detail(
    State(state): State<AppState>,
    c: Ctx,
    Path(id): Path<String>,
) -> Result<Response, WebError> {
    c.require(Perm::ReadCustomers)?;
    let cu = customers::get(&state.db, &id)
        .await
        .map_err(|e| not_found(&c, e))?;
    let (plans, sites) = if c.can(Perm::WriteSubscriptions) {
        let plans = super::lookups::plans(&state.db, Some(mikrobill_core::plans::PlanKind::Pppoe))
            .await?
            .into_iter()
            .filter(|p| !p.archived)
            .collect();
        (plans, super::lookups::live_sites(&state.db).await?)
    } else {
        (Vec::new(), Vec::new())
    };
    let subs = if c.can(Perm::ReadSubscriptions) {
        let f = mikrobill_core::subscriptions::SubscriptionFilter {
            customer_id: Some(cu.id.clone()),
            ..Default::default()
        };
        mikrobill_core::subscriptions::list(&state.db, &f, "", 100).await?
    } else {
        Vec::new()
    };
    let notify = super::notifications::prefs::Section::load(&state, &cu.id).await?;
    Ok(c.render(&DetailPage {
        c: &c,
        cu,
        subs,
        plans,
        sites,
        notify,
    }))
}

/// `POST /customers/{id}`: saves the edit form (empty optional fields clear them).
pub async fn update(
    State(state): State<AppState>,
    c: Ctx,
    Path(id): Path<String>,
    form: Form<CustomerFields>,
) -> Result<Response, WebError> {
    c.require(Perm::WriteCustomers)?;
    let f = form.fields().map_err(|e| WebError::BadRequest(c.lang, e))?;
    let patch = CustomerPatch {
        name: Some(f.name),
        phone: Some(f.phone.unwrap_or_default()),
        email: Some(f.email.unwrap_or_default()),
        address: Some(f.address.unwrap_or_default()),
        notes: Some(f.notes.unwrap_or_default()),
    };
    let back = format!("/customers/{id}");
    let result = customers::update(&state.db, &c.actor(), &id, patch).await;
    Ok(c.outcome(result, |_| back.clone(), c.t("saved"), &back))
}
