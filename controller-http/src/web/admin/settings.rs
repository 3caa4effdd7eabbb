//! Settings: tax, currency, time zone, billing terms, company details, the UI's default
//! language and the hotspot login URL printed on vouchers. Saved through
//! `settings::save_billing`, which validates and audits. Administrators also see the security
//! section: which roles must use two-factor sign-in (`admin_totp::set_security_settings`),
//! and the company logo the hotspot pages show (`logo`).

use super::ctx::Ctx;
use super::error::WebError;
use super::form::{Form, NoFields};
use super::form_values::opt;
use super::upload;
use crate::server::AppState;
use crate::web::Lang;
use axum::extract::multipart::MultipartRejection;
use axum::extract::{Multipart, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use mikrobill_core::admin_totp::{self, SecuritySettings};
use mikrobill_core::auth::roles::ALL_ROLES;
use mikrobill_core::auth::{Perm, Role};
use mikrobill_core::error::DomainError;
use mikrobill_core::logo::{self, LogoInfo};
use mikrobill_core::settings::{self, BillingSettings};
use mikrobill_core::vouchers::conflicts::ConflictPolicy;
use serde::Deserialize;
use std::collections::HashMap;

#[derive(askama::Template)]
#[template(path = "admin/settings.html")]
struct SettingsPage<'a> {
    c: &'a Ctx,
    s: BillingSettings,
    langs: [Lang; 2],
    security: Option<SecuritySettings>,
    roles: [Role; 5],
    logo: Option<LogoInfo>,
    max_logo_kib: usize,
}

impl SettingsPage<'_> {
    fn lang_name(&self, l: &Lang) -> &'static str {
        super::texts::text(*l, "lang.name")
    }
}

/// `GET /settings`.
pub async fn page(State(state): State<AppState>, c: Ctx) -> Result<Response, WebError> {
    c.require(Perm::ReadSettings)?;
    let security = if c.can(Perm::WriteAdmins) {
        Some(admin_totp::security_settings(&state.db).await?)
    } else {
        None
    };
    Ok(c.render(&SettingsPage {
        c: &c,
        s: c.settings.clone(),
        langs: Lang::ALL,
        security,
        roles: ALL_ROLES,
        logo: logo::get(&state.db).await?.map(|l| l.info()),
        max_logo_kib: logo::MAX_BYTES / 1024,
    }))
}

/// `GET /settings/logo`: the uploaded logo, for the settings page's preview.
pub async fn logo_image(State(state): State<AppState>, c: Ctx) -> Result<Response, WebError> {
    c.require(Perm::ReadSettings)?;
    let logo = logo::get(&state.db)
        .await?
        .ok_or(WebError::NotFound(c.lang))?;
    Ok((
        [
            (header::CONTENT_TYPE, logo.content_type),
            (header::CACHE_CONTROL, "no-store"),
        ],
        logo.bytes,
    )
        .into_response())
}

/// `POST /settings/logo`: a new logo from the upload form.
pub async fn upload_logo(
    State(state): State<AppState>,
    c: Ctx,
    headers: HeaderMap,
    multipart: Result<Multipart, MultipartRejection>,
) -> Result<Response, WebError> {
    c.require(Perm::WriteSettings)?;
    // A little over the limit, so that a too large image is refused with the logo's reason.
    let upload = upload::read(&headers, multipart, c.lang, logo::MAX_BYTES + 1).await;
    let result = match upload {
        Ok(u) => match u.file {
            Some(file) => match logo::Logo::parse(file) {
                Ok(new) => logo::set(&state.db, &c.actor(), &new).await,
                Err(e) => Err(e),
            },
            None => Err(DomainError::invalid("logo", c.t("settings.logo_none"))),
        },
        Err(WebError::BadRequest(_, why)) => Err(DomainError::invalid("logo", why)),
        Err(e) => return Err(e),
    };
    Ok(c.outcome(
        result,
        |_| "/settings#logo".into(),
        c.t("saved"),
        "/settings#logo",
    ))
}

/// `POST /settings/logo/remove`: back to the company's initials.
pub async fn remove_logo(
    State(state): State<AppState>,
    c: Ctx,
    _form: Form<NoFields>,
) -> Result<Response, WebError> {
    c.require(Perm::WriteSettings)?;
    let result = logo::clear(&state.db, &c.actor()).await;
    Ok(c.outcome(
        result,
        |_| "/settings#logo".into(),
        c.t("saved"),
        "/settings#logo",
    ))
}

/// `POST /settings/security`: a ticked `totp_<role>` box makes that role sign in with a code.
pub async fn save_security(
    State(state): State<AppState>,
    c: Ctx,
    form: Form<HashMap<String, String>>,
) -> Result<Response, WebError> {
    c.require(Perm::WriteAdmins)?;
    let f = form.fields().map_err(|e| WebError::BadRequest(c.lang, e))?;
    let new = SecuritySettings {
        totp_required_roles: ALL_ROLES
            .into_iter()
            .filter(|r| f.contains_key(&format!("totp_{}", r.as_str())))
            .collect(),
    };
    let result = admin_totp::set_security_settings(&state.db, &c.actor(), new).await;
    state.tokens.clear();
    Ok(c.outcome(
        result,
        |_| "/settings#security".into(),
        c.t("saved"),
        "/settings",
    ))
}

/// The settings form.
#[derive(Debug, Deserialize)]
pub struct SettingsFields {
    tax_rate_bp: Option<String>,
    tax_inclusive: Option<String>,
    currency: Option<String>,
    currency_exponent: Option<String>,
    utc_offset_minutes: Option<String>,
    default_due_days: Option<String>,
    default_grace_days: Option<String>,
    #[serde(default)]
    company_name: String,
    #[serde(default)]
    company_address: String,
    #[serde(default)]
    company_phone: String,
    language: Option<String>,
    #[serde(default)]
    hotspot_login_url: String,
    voucher_conflict_policy: Option<String>,
}

fn parse(f: SettingsFields, old: &BillingSettings) -> Result<BillingSettings, String> {
    let num = |v: &Option<String>, field: &str| -> Result<Option<i64>, String> {
        match opt(v) {
            None => Ok(None),
            Some(s) => s
                .parse::<i64>()
                .map(Some)
                .map_err(|_| format!("{field}: not a whole number")),
        }
    };
    let unsigned = |v: Option<i64>, field: &str, old: u32| -> Result<u32, String> {
        v.map(|n| u32::try_from(n).map_err(|_| format!("{field}: out of range")))
            .transpose()
            .map(|n| n.unwrap_or(old))
    };
    Ok(BillingSettings {
        tax_rate_bp: unsigned(
            num(&f.tax_rate_bp, "tax_rate_bp")?,
            "tax_rate_bp",
            old.tax_rate_bp,
        )?,
        tax_inclusive: f.tax_inclusive.is_some(),
        currency: opt(&f.currency).unwrap_or_else(|| old.currency.clone()),
        currency_exponent: unsigned(
            num(&f.currency_exponent, "currency_exponent")?,
            "currency_exponent",
            old.currency_exponent,
        )?,
        utc_offset_minutes: num(&f.utc_offset_minutes, "utc_offset_minutes")?
            .map(|n| i32::try_from(n).map_err(|_| "utc_offset_minutes: out of range".to_string()))
            .transpose()?
            .unwrap_or(old.utc_offset_minutes),
        default_due_days: unsigned(
            num(&f.default_due_days, "default_due_days")?,
            "default_due_days",
            old.default_due_days,
        )?,
        default_grace_days: unsigned(
            num(&f.default_grace_days, "default_grace_days")?,
            "default_grace_days",
            old.default_grace_days,
        )?,
        company_name: f.company_name.trim().to_string(),
        company_address: f.company_address.trim().to_string(),
        company_phone: f.company_phone.trim().to_string(),
        language: f
            .language
            .as_deref()
            .and_then(Lang::parse)
            .unwrap_or(old.language),
        hotspot_login_url: f.hotspot_login_url.trim().to_string(),
        voucher_conflict_policy: match opt(&f.voucher_conflict_policy) {
            None => old.voucher_conflict_policy,
            Some(p) => ConflictPolicy::parse(&p)
                .ok_or_else(|| "voucher_conflict_policy: must be close or accept".to_string())?,
        },
    })
}

/// `POST /settings`.
pub async fn save(
    State(state): State<AppState>,
    c: Ctx,
    form: Form<SettingsFields>,
) -> Result<Response, WebError> {
    c.require(Perm::WriteSettings)?;
    let new = form
        .fields()
        .and_then(|f| parse(f, &c.settings))
        .map_err(|e| WebError::BadRequest(c.lang, e))?;
    let result = settings::save_billing(&state.db, &c.actor(), new).await;
    Ok(c.outcome(result, |_| "/settings".into(), c.t("saved"), "/settings"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blank_numbers_keep_the_old_values() {
        let old = BillingSettings::default();
        let f = SettingsFields {
            tax_rate_bp: Some(String::new()),
            tax_inclusive: None,
            currency: None,
            currency_exponent: None,
            utc_offset_minutes: Some("480".into()),
            default_due_days: None,
            default_grace_days: None,
            company_name: " Net Desa ".into(),
            company_address: String::new(),
            company_phone: String::new(),
            language: Some("en".into()),
            hotspot_login_url: old.hotspot_login_url.clone(),
            voucher_conflict_policy: Some("accept".into()),
        };
        let s = parse(f, &old).unwrap();
        assert_eq!(s.tax_rate_bp, old.tax_rate_bp);
        assert_eq!(s.utc_offset_minutes, 480);
        assert_eq!(s.company_name, "Net Desa");
        assert_eq!(s.language, Lang::En);
        assert!(!s.tax_inclusive);
        assert_eq!(s.voucher_conflict_policy, ConflictPolicy::Accept);
    }
}
