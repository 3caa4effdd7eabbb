//! `/api/v1`: one module per resource; each exposes `routes()` with its OpenAPI-annotated
//! handlers.

pub mod admins;
pub mod audit;
pub mod auth;
pub mod ca;
pub mod commands;
pub mod customers;
pub mod events;
pub mod imports;
pub mod invoices;
pub mod jobs;
pub mod notifications;
pub mod payments;
pub mod plans;
pub mod reports;
pub mod router_import;
pub mod sessions;
pub mod settings;
pub mod site_drift;
pub mod site_groups;
pub mod sites;
pub mod subscriptions;
pub mod voucher_conflicts;
pub mod vouchers;

use crate::server::AppState;
use utoipa_axum::router::OpenApiRouter;

/// Every `/api/v1` route with its OpenAPI description.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .merge(auth::routes())
        .merge(admins::routes())
        .merge(audit::routes())
        .merge(customers::routes())
        .merge(plans::routes())
        .merge(sites::routes())
        .merge(site_drift::routes())
        .merge(subscriptions::routes())
        .merge(invoices::routes())
        .merge(payments::routes())
        .merge(settings::routes())
        .merge(jobs::routes())
        .merge(imports::routes())
        .merge(router_import::routes())
        .merge(commands::routes())
        .merge(events::routes())
        .merge(notifications::routes())
        .merge(site_groups::routes())
        .merge(vouchers::routes())
        .merge(voucher_conflicts::routes())
        .merge(reports::routes())
        .merge(sessions::routes())
        .merge(ca::routes())
}
