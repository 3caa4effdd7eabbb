//! The admin web UI at `/` of the API listener: server-rendered pages over the same domain
//! functions the `/api/v1` handlers call, one module per page group. Every page resolves the
//! session into a [`ctx::Ctx`] and checks the role's permission as the API does; every POST
//! passes the CSRF check of [`form::Form`] and records its audit entry through the domain.
//! Shared pieces (cookies, CSRF, HTML headers, pagination, charts) are in `crate::web`.

pub mod admins;
pub mod audit;
pub mod auth;
pub mod ctx;
pub mod customers;
pub mod dashboard;
pub mod drift;
pub mod error;
pub mod flash;
pub mod form;
pub mod form_values;
pub mod groups;
pub mod imports;
pub mod invoices;
pub mod jobs;
pub mod lookups;
pub mod notifications;
pub mod payments;
pub mod plans;
pub mod print;
pub mod reports;
pub mod return_path;
pub mod router_import;
pub mod session;
pub mod sessions;
pub mod settings;
pub mod sites;
pub mod subscriptions;
pub mod texts;
pub mod totp;
pub mod upload;
pub mod voucher_conflicts;
pub mod vouchers;
pub mod webhooks;

use crate::server::AppState;
use crate::web::assets;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};

/// Every admin page.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(dashboard::page))
        .route("/login", get(auth::login_form).post(auth::login))
        .route("/login/totp", get(auth::code_form).post(auth::code))
        .route("/logout", post(auth::logout))
        .route("/account/totp", get(totp::page))
        .route("/account/totp/enrol", post(totp::enrol))
        .route("/account/totp/confirm", post(totp::confirm))
        .route("/account/totp/disable", post(totp::disable))
        .route("/admins/{id}/totp/reset", post(totp::reset))
        .route("/settings/security", post(settings::save_security))
        .route(
            "/account/password",
            get(auth::password_form).post(auth::change_password),
        )
        .route("/lang/{code}", get(auth::switch_lang))
        .route("/vouchers", get(vouchers::list))
        .route("/shop", get(vouchers::shop).post(vouchers::buy))
        .route(
            "/subscriptions",
            get(subscriptions::list).post(subscriptions::create),
        )
        .route("/subscriptions/{id}", get(subscriptions::detail))
        .route("/subscriptions/{id}/plan", post(subscriptions::change_plan))
        .route("/subscriptions/{id}/{action}", post(subscriptions::action))
        .route("/cash", get(payments::desk))
        .route("/cash/pay", post(payments::pay))
        .route("/payments", get(payments::list))
        .route("/payments/{id}", get(payments::receipt))
        .route("/invoices", get(invoices::list))
        .route("/invoices/{id}", get(invoices::show))
        .route("/invoices/{id}/void", post(invoices::void))
        .route("/customers", get(customers::list).post(customers::create))
        .route(
            "/customers/{id}",
            get(customers::detail).post(customers::update),
        )
        .route(
            "/customers/{id}/notifications",
            post(notifications::prefs::save),
        )
        .route("/notifications", get(notifications::list))
        .route(
            "/notifications/templates",
            get(notifications::templates::page).post(notifications::templates::save),
        )
        .route(
            "/notifications/templates/reset",
            post(notifications::templates::reset),
        )
        .route(
            "/notifications/channels",
            get(notifications::channels::list).post(notifications::channels::create),
        )
        .route(
            "/notifications/channels/{id}",
            get(notifications::channels::edit).post(notifications::channels::update),
        )
        .route(
            "/notifications/settings",
            post(notifications::channels::save_settings),
        )
        .route("/notifications/{id}", get(notifications::detail))
        .route("/notifications/{id}/retry", post(notifications::retry))
        .route("/plans", get(plans::list).post(plans::create))
        .route("/plans/{id}", get(plans::detail).post(plans::update))
        .route("/plans/{id}/{action}", post(plans::archive))
        .route("/sites", get(sites::list).post(sites::create))
        .route("/sites/groups", get(groups::list).post(groups::create))
        .route("/sites/groups/{id}/{action}", post(groups::member))
        .route("/sites/{id}", get(sites::detail))
        .route("/sites/{id}/token", post(sites::new_token))
        .route("/sites/{id}/revoke", post(sites::revoke))
        .route("/sites/{id}/commands", post(sites::command))
        .route("/sites/{id}/drift/repair", post(drift::repair))
        .route("/sites/{id}/hotspot.zip", get(sites::hotspot_zip))
        .route("/sites/{id}/router-import", post(router_import::start))
        .route(
            "/sites/{id}/router-import/{import}",
            get(router_import::show),
        )
        .route(
            "/sites/{id}/router-import/{import}/apply",
            post(router_import::apply),
        )
        .route("/sessions", get(sessions::list))
        .route("/voucher-conflicts", get(voucher_conflicts::list))
        .route("/sessions/kick", post(sessions::kick))
        .route("/admins", get(admins::list).post(admins::create))
        .route("/admins/{id}", get(admins::detail).post(admins::update))
        .route("/resellers", get(admins::resellers))
        .route("/resellers/{id}/credit", post(admins::credit))
        .route(
            "/tokens",
            get(admins::list_tokens).post(admins::create_token),
        )
        .route("/tokens/{id}/revoke", post(admins::revoke_token))
        .route("/audit", get(audit::list))
        .route("/reports", get(reports::page))
        .route("/reports/csv", get(reports::download))
        .route("/exports/{name}", get(reports::export))
        .route("/events", get(webhooks::events))
        .route(
            "/events/parked/{consumer}/{event_id}/retry",
            post(webhooks::retry_parked),
        )
        .route("/webhooks", get(webhooks::list).post(webhooks::create))
        .route("/webhooks/{id}", get(webhooks::deliveries))
        .route("/webhooks/{id}/deactivate", post(webhooks::deactivate))
        .route("/webhooks/{id}/replay", post(webhooks::replay))
        .route("/jobs", get(jobs::list))
        .route(
            "/imports",
            get(imports::page)
                .post(imports::run)
                // The dump and the form's other fields.
                .layer(DefaultBodyLimit::max(crate::server::body::MAX_UPLOAD_BYTES)),
        )
        .route("/jobs/{name}/run", post(jobs::run))
        .route("/settings", get(settings::page).post(settings::save))
        .route(
            "/settings/logo",
            get(settings::logo_image).post(settings::upload_logo),
        )
        .route("/settings/logo/remove", post(settings::remove_logo))
        .route(
            "/vouchers/batches",
            get(vouchers::batches).post(vouchers::create_batch),
        )
        .route("/vouchers/batches/new", get(vouchers::new_batch))
        .route("/vouchers/batches/{id}", get(vouchers::batch_detail))
        .route("/vouchers/batches/{id}/print", get(print::sheet))
        .route(
            "/vouchers/batches/{id}/revoke",
            post(vouchers::revoke_batch),
        )
        .route("/vouchers/batches/{id}/sell", post(vouchers::sell_batch))
        .route("/vouchers/{code}/revoke", post(vouchers::revoke_voucher))
        .route("/vouchers/{code}/sell", post(vouchers::sell_voucher))
        .route(
            "/assets/admin.css",
            get(|| async { assets::serve(assets::ADMIN_CSS, "text/css; charset=utf-8") }),
        )
        .route(
            "/assets/admin.js",
            get(|| async { assets::serve(assets::ADMIN_JS, "text/javascript; charset=utf-8") }),
        )
}
