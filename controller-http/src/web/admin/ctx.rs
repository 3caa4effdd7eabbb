//! The request context of every admin page: the signed-in admin (from the session cookie),
//! their language, the settings money and dates are shown with, the CSRF token for forms and
//! a one-shot flash message. The POST extractor is in `form.rs`, error pages in `error.rs`.

use super::error::WebError;
use super::flash::{FLASH_COOKIE, Flash};
use super::return_path::referer_path;
use super::session;
use super::texts;
use crate::server::AppState;
use crate::server::client_ip::client_addr;
use crate::web::{Lang, cookies, csrf, html};
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use mikrobill_core::audit::Actor;
use mikrobill_core::auth::{Perm, Principal};
use mikrobill_core::db::DbError;
use mikrobill_core::error::DomainError;
use mikrobill_core::locale::dates::local;
use mikrobill_core::settings::BillingSettings;
use std::borrow::Borrow;

/// The cookie that remembers the language a user switched to.
pub const LANG_COOKIE: &str = "mb_lang";
/// The cookie the login form's CSRF token is derived from (there is no session yet).
pub const PRE_COOKIE: &str = "mb_pre";

/// The pages an account that must enrol in two-factor sign-in may open before it has.
const ENROLMENT_PAGES: [&str; 4] = [
    "/account/totp",
    "/account/totp/enrol",
    "/account/totp/confirm",
    "/logout",
];

/// One entry of the navigation.
#[derive(Debug, Clone)]
pub struct NavItem {
    /// Where it leads.
    pub href: &'static str,
    /// Its text.
    pub label: &'static str,
    /// Whether it is the current section.
    pub current: bool,
}

/// What every admin page knows about its request.
#[derive(Debug, Clone)]
pub struct Ctx {
    /// The signed-in admin.
    pub principal: Principal,
    /// The client's address, for the audit log.
    pub addr: Option<std::net::IpAddr>,
    /// The language pages are rendered in.
    pub lang: Lang,
    /// The synchronizer token every form posts back.
    pub csrf: String,
    /// Currency, tax and company details.
    pub settings: BillingSettings,
    /// The message left by the previous form, if any.
    pub flash: Option<Flash>,
    /// Whether cookies get `Secure`.
    pub secure: bool,
    /// The request path (for the navigation).
    pub path: String,
    /// The path with its query, where forms on the page return to.
    pub here: String,
}

/// A navigation entry: path, text key, the permission that shows it.
type NavEntry = (&'static str, &'static str, Option<Perm>);

/// The navigation, grouped the way operators think of their work; a group without a title
/// is a plain link in the bar.
const NAV: &[(Option<&str>, &[NavEntry])] = &[
    (None, &[("/", "nav.dashboard", None)]),
    (
        Some("nav.sales"),
        &[
            ("/vouchers", "nav.vouchers", Some(Perm::ReadVouchers)),
            (
                "/voucher-conflicts",
                "nav.conflicts",
                Some(Perm::ReadVouchers),
            ),
            ("/shop", "nav.shop", Some(Perm::BuyVouchers)),
            (
                "/resellers",
                "reseller.title",
                Some(Perm::ManageResellerBalance),
            ),
            ("/cash", "nav.cash", Some(Perm::WritePayments)),
            ("/plans", "nav.plans", Some(Perm::ReadPlans)),
        ],
    ),
    (
        Some("nav.subscribers"),
        &[
            ("/customers", "nav.customers", Some(Perm::ReadCustomers)),
            (
                "/subscriptions",
                "nav.subscriptions",
                Some(Perm::ReadSubscriptions),
            ),
            ("/invoices", "nav.invoices", Some(Perm::ReadInvoices)),
            ("/payments", "nav.payments", Some(Perm::ReadPayments)),
        ],
    ),
    (
        Some("nav.network"),
        &[
            ("/sites", "nav.sites", Some(Perm::ReadSites)),
            ("/sites/groups", "group.title", Some(Perm::ReadSites)),
            ("/sessions", "nav.sessions", Some(Perm::ReadSites)),
        ],
    ),
    (
        None,
        &[("/reports", "nav.reports", Some(Perm::ReadPayments))],
    ),
    (
        Some("nav.system"),
        &[
            ("/admins", "nav.admins", Some(Perm::ReadAdmins)),
            ("/tokens", "token.title", None),
            ("/audit", "nav.audit", Some(Perm::ReadAudit)),
            ("/events", "event.title", Some(Perm::ReadAudit)),
            ("/webhooks", "webhook.title", Some(Perm::WriteSettings)),
            ("/jobs", "job.title", Some(Perm::RunJobs)),
            // Importing needs every write permission; only admins hold WritePlans.
            ("/imports", "import.title", Some(Perm::WritePlans)),
            // Also shown to a role that reads settings only (the section then opens on
            // templates).
            ("/notifications", "notify.title", Some(Perm::ReadCustomers)),
            ("/settings", "nav.settings", Some(Perm::ReadSettings)),
        ],
    ),
];

/// A group of the navigation.
#[derive(Debug, Clone)]
pub struct NavGroup {
    /// Its title; `None` for a plain link.
    pub label: Option<&'static str>,
    /// Its entries this admin may see.
    pub items: Vec<NavItem>,
    /// Whether the current page is in it.
    pub current: bool,
}

impl Ctx {
    /// Whether the admin's role grants `perm`.
    pub fn can(&self, perm: Perm) -> bool {
        self.principal.can(perm)
    }

    /// Fails with the 403 page unless the role grants `perm`.
    pub fn require(&self, perm: Perm) -> Result<(), WebError> {
        if self.can(perm) {
            Ok(())
        } else {
            Err(WebError::Forbidden(self.lang))
        }
    }

    /// The admin as an audit-log actor.
    pub fn actor(&self) -> Actor {
        Actor {
            id: Some(self.principal.admin_id.clone()),
            name: self.principal.username.clone(),
            addr: self.addr.map(|a| a.to_string()),
        }
    }

    /// A text of the catalog in the page's language.
    pub fn t(&self, key: &str) -> &'static str {
        texts::text(self.lang, key)
    }

    /// An amount as a form field's value on this page (read back by [`Ctx::money_input`]).
    pub fn money_value(&self, minor: impl Borrow<i64>) -> String {
        self.money_input().show(*minor.borrow())
    }

    /// How money typed on this page is read.
    pub fn money_input(&self) -> super::form_values::MoneyInput {
        super::form_values::MoneyInput {
            exponent: self.settings.currency_exponent,
            lang: self.lang,
        }
    }

    /// Money in the operator's currency, formatted for the page's language.
    pub fn money(&self, minor: impl Borrow<i64>) -> String {
        crate::web::format_money(
            *minor.borrow(),
            &self.settings.currency,
            self.settings.currency_exponent,
            self.lang,
        )
    }

    /// A timestamp as the operator's local date and time (`2026-11-24 17:05`).
    pub fn datetime(&self, ms: impl Borrow<i64>) -> String {
        local(*ms.borrow(), self.settings.utc_offset_minutes, true)
    }

    /// A timestamp as the operator's local date.
    pub fn date(&self, ms: impl Borrow<i64>) -> String {
        local(*ms.borrow(), self.settings.utc_offset_minutes, false)
    }

    /// An optional timestamp, or a dash.
    pub fn opt_datetime(&self, ms: impl Borrow<Option<i64>>) -> String {
        ms.borrow()
            .map(|m| self.datetime(m))
            .unwrap_or_else(|| "–".into())
    }

    /// The version assets are cached under.
    pub fn version(&self) -> &'static str {
        crate::web::assets::VERSION
    }

    /// The navigation groups and entries this admin may see; the current entry is the one
    /// whose path is the longest prefix of this page's (`/sites/groups` over `/sites`).
    pub fn nav(&self) -> Vec<NavGroup> {
        let visible = |(href, _, perm): &&NavEntry| {
            (perm.is_none_or(|p| self.can(p))
                || (*href == "/notifications" && self.can(Perm::ReadSettings)))
                && (*href != "/shop" || self.principal.role == mikrobill_core::auth::Role::Reseller)
        };
        let matches = |href: &str| {
            if href == "/" {
                self.path == "/"
            } else {
                self.path == href || self.path.starts_with(&format!("{href}/"))
            }
        };
        let current = NAV
            .iter()
            .flat_map(|(_, entries)| entries.iter())
            .filter(|(href, _, _)| matches(href))
            .map(|(href, _, _)| *href)
            .max_by_key(|href| href.len());
        NAV.iter()
            .map(|(label, entries)| {
                let items: Vec<NavItem> = entries
                    .iter()
                    .filter(visible)
                    .map(|(href, key, _)| NavItem {
                        href,
                        label: self.t(key),
                        current: current == Some(*href),
                    })
                    .collect();
                NavGroup {
                    label: label.map(|k| self.t(k)),
                    current: items.iter().any(|i| i.current),
                    items,
                }
            })
            .filter(|g| !g.items.is_empty())
            .collect()
    }

    /// The languages to switch to (all but the current one), with their links.
    pub fn other_langs(&self) -> Vec<(String, &'static str, &'static str)> {
        Lang::ALL
            .into_iter()
            .filter(|l| *l != self.lang)
            .map(|l| {
                (
                    format!(
                        "/lang/{}{}",
                        l.code(),
                        crate::web::pager::query(&[("back", &self.here)])
                    ),
                    l.code(),
                    texts::text(l, "lang.name"),
                )
            })
            .collect()
    }

    /// Renders a page; a shown flash message is cleared.
    pub fn render<T: askama::Template>(&self, page: &T) -> Response {
        let mut res = html::render(StatusCode::OK, page);
        if self.flash.is_some() {
            set_cookie(
                res.headers_mut(),
                &cookies::site_cookie(FLASH_COOKIE, "", Some(0), self.secure),
            );
        }
        res
    }

    /// A redirect after a successful form with a message for the next page.
    pub fn done(&self, to: &str, message: impl Into<String>) -> Response {
        self.redirect_with(
            to,
            Flash {
                kind: "ok",
                text: message.into(),
            },
        )
    }

    /// A redirect that carries `flash`.
    pub fn redirect_with(&self, to: &str, flash: Flash) -> Response {
        let mut res = html::see_other(to);
        set_cookie(
            res.headers_mut(),
            &cookies::site_cookie(FLASH_COOKIE, &flash.encode(), Some(60), self.secure),
        );
        res
    }

    /// The outcome of a form: on success a redirect to `to` with `ok`; a refused change
    /// (invalid field, conflict, not found) goes back to `back` with the reason; storage
    /// failures become the error page.
    pub fn outcome<T>(
        &self,
        result: Result<T, DomainError>,
        to: impl FnOnce(&T) -> String,
        ok: &str,
        back: &str,
    ) -> Response {
        match result {
            Ok(v) => self.done(&to(&v), ok),
            Err(DomainError::Db(e)) => WebError::Db(e).into_response(),
            Err(e) => self.redirect_with(
                back,
                Flash {
                    kind: "error",
                    text: e.to_string(),
                },
            ),
        }
    }
}

fn set_cookie(headers: &mut HeaderMap, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        headers.append(header::SET_COOKIE, v);
    }
}

/// The language of a request: the user's switch (cookie), else the operator's setting.
pub fn request_lang(headers: &HeaderMap, settings: &BillingSettings) -> Lang {
    cookies::cookie_value(headers, LANG_COOKIE)
        .and_then(|c| Lang::parse(&c))
        .unwrap_or(settings.language)
}

impl FromRequestParts<AppState> for Ctx {
    type Rejection = WebError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, WebError> {
        let settings = mikrobill_core::settings::billing(&state.db)
            .await
            .map_err(|e| match e {
                DomainError::Db(e) => WebError::Db(e),
                other => WebError::Db(DbError::Sqlx(sqlx::Error::Protocol(other.to_string()))),
            })?;
        let path = parts.uri.path().to_string();
        let here = parts
            .uri
            .path_and_query()
            .map(|p| p.as_str().to_string())
            .unwrap_or_else(|| path.clone());
        // After signing in again, a form's page is where to return, not its POST target.
        let back = if parts.method == axum::http::Method::GET {
            here.clone()
        } else {
            referer_path(&parts.headers)
        };
        let Some(secret) = cookies::cookie_value(&parts.headers, session::COOKIE) else {
            return Err(WebError::Login(back));
        };
        let Some(principal) = session::lookup(&state.db, &secret)
            .await
            .map_err(WebError::Db)?
        else {
            return Err(WebError::Login(back));
        };
        // An account whose role requires two-factor sign-in and that has none may only
        // enrol (or leave) until it has one.
        if principal.totp_enrolment_only && !ENROLMENT_PAGES.contains(&path.as_str()) {
            return Err(WebError::Enrol);
        }
        let flash =
            cookies::cookie_value(&parts.headers, FLASH_COOKIE).and_then(|v| Flash::decode(&v));
        Ok(Ctx {
            principal,
            addr: client_addr(parts),
            lang: request_lang(&parts.headers, &settings),
            csrf: csrf::token_for(&secret),
            settings,
            flash,
            secure: cookies::is_https(&parts.headers, state.secure_cookies),
            path,
            here,
        })
    }
}

/// A domain "not found" as this page's 404, other errors as usual.
pub fn not_found(c: &Ctx, e: mikrobill_core::error::DomainError) -> WebError {
    match e {
        mikrobill_core::error::DomainError::NotFound { .. } => WebError::NotFound(c.lang),
        other => other.into(),
    }
}
