//! Operator settings for billing: tax, currency, timezone, default terms, company details.
//! Stored as one JSON document in the `settings` table so every replica reads the same.

use crate::audit::{self, Actor};
use crate::db::Db;
use crate::error::{DomainError, DomainResult};
use crate::tax::TaxRule;
use serde::{Deserialize, Serialize};

const KEY: &str = "billing";

/// The login page MikroTik's hotspot serves by default, with the voucher filled in.
pub const DEFAULT_LOGIN_URL: &str = "http://hotspot.lan/login?username={code}&password={password}";

/// Billing settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct BillingSettings {
    /// Tax rate in basis points (1100 = 11 %).
    pub tax_rate_bp: u32,
    /// Whether prices include tax.
    pub tax_inclusive: bool,
    /// ISO 4217 currency code.
    pub currency: String,
    /// Decimal places of the ledger's minor unit (0 for IDR as billed in Indonesia).
    pub currency_exponent: u32,
    /// The operator's UTC offset in minutes (420 = WIB); billing days are local dates.
    pub utc_offset_minutes: i32,
    /// Days after a cycle starts that its invoice is due.
    pub default_due_days: u32,
    /// Days after the due date before an unpaid subscription is isolated.
    pub default_grace_days: u32,
    /// Company name printed on invoices and vouchers.
    pub company_name: String,
    /// Company address printed on invoices and receipts.
    pub company_address: String,
    /// Company phone printed on invoices, receipts and vouchers.
    pub company_phone: String,
    /// The language the admin UI speaks unless a user switches.
    pub language: crate::locale::Lang,
    /// The hotspot login URL printed as each voucher's QR code; `{code}` and `{password}`
    /// are replaced by the voucher's (URL-encoded).
    pub hotspot_login_url: String,
    /// What happens to a voucher whose records from several sites show it used beyond its
    /// plan (offline double use): `close` its remaining budget everywhere, or `accept` it.
    pub voucher_conflict_policy: crate::vouchers::conflicts::ConflictPolicy,
}

impl Default for BillingSettings {
    fn default() -> Self {
        BillingSettings {
            tax_rate_bp: crate::tax::DEFAULT_TAX.rate_bp,
            tax_inclusive: crate::tax::DEFAULT_TAX.inclusive,
            currency: "IDR".into(),
            currency_exponent: 0,
            utc_offset_minutes: 420,
            default_due_days: 7,
            default_grace_days: 3,
            company_name: "MikroBill ISP".into(),
            company_address: String::new(),
            company_phone: String::new(),
            language: crate::locale::Lang::Id,
            hotspot_login_url: DEFAULT_LOGIN_URL.into(),
            voucher_conflict_policy: Default::default(),
        }
    }
}

impl BillingSettings {
    /// The hotspot login URL for one voucher.
    pub fn login_url(&self, code: &str, password: Option<&str>) -> String {
        let enc = |v: &str| {
            serde_urlencoded::to_string([("", v)])
                .map(|s| s[1..].to_string())
                .unwrap_or_default()
        };
        self.hotspot_login_url
            .replace("{code}", &enc(code))
            .replace("{password}", &enc(password.unwrap_or(code)))
    }

    /// The tax rule in effect.
    pub fn tax(&self) -> TaxRule {
        TaxRule {
            rate_bp: self.tax_rate_bp,
            inclusive: self.tax_inclusive,
        }
    }

    fn check(&self) -> DomainResult<()> {
        if self.tax_rate_bp > 10_000 {
            return Err(DomainError::invalid(
                "tax_rate_bp",
                "must be between 0 and 10000 (100 %)",
            ));
        }
        if self.currency.len() != 3 || !self.currency.chars().all(|c| c.is_ascii_uppercase()) {
            return Err(DomainError::invalid(
                "currency",
                "must be an ISO 4217 code such as IDR",
            ));
        }
        if self.currency_exponent > 4 {
            return Err(DomainError::invalid(
                "currency_exponent",
                "must be between 0 and 4",
            ));
        }
        if !(-720..=840).contains(&self.utc_offset_minutes) {
            return Err(DomainError::invalid(
                "utc_offset_minutes",
                "must be between -720 and 840",
            ));
        }
        if self.default_due_days > 60 {
            return Err(DomainError::invalid(
                "default_due_days",
                "must be at most 60",
            ));
        }
        if self.default_grace_days > 60 {
            return Err(DomainError::invalid(
                "default_grace_days",
                "must be at most 60",
            ));
        }
        crate::error::required_text("company_name", &self.company_name, 200)?;
        if self.company_address.chars().count() > 500 {
            return Err(DomainError::invalid(
                "company_address",
                "must be at most 500 characters",
            ));
        }
        if self.company_phone.chars().count() > 50 {
            return Err(DomainError::invalid(
                "company_phone",
                "must be at most 50 characters",
            ));
        }
        let url = &self.hotspot_login_url;
        if !(url.starts_with("http://") || url.starts_with("https://"))
            || !url.contains("{code}")
            || url.chars().count() > 300
        {
            return Err(DomainError::invalid(
                "hotspot_login_url",
                "must be an http(s) URL of at most 300 characters containing {code}",
            ));
        }
        Ok(())
    }
}

/// The billing settings in effect (defaults until an admin saves some).
pub async fn billing(db: &Db) -> DomainResult<BillingSettings> {
    load(db, KEY).await
}

/// The billing settings as the caller's transaction sees them.
pub(crate) async fn billing_in(conn: &mut sqlx::AnyConnection) -> DomainResult<BillingSettings> {
    load_in(conn, KEY).await
}

/// A settings document by key, or its defaults until an admin saves one.
pub(crate) async fn load<T: serde::de::DeserializeOwned + Default>(
    db: &Db,
    key: &str,
) -> DomainResult<T> {
    parse(key, db.setting(key).await?)
}

/// [`load`] inside the caller's transaction. A transaction must read through its own
/// connection: on SQLite it holds the write lock, and waiting for a second pooled connection
/// while every other one waits for that lock stalls all writers until the busy timeout.
pub(crate) async fn load_in<T: serde::de::DeserializeOwned + Default>(
    conn: &mut sqlx::AnyConnection,
    key: &str,
) -> DomainResult<T> {
    let value: Option<String> = sqlx::query_scalar("SELECT value FROM settings WHERE key = $1")
        .bind(key)
        .fetch_optional(&mut *conn)
        .await?;
    parse(key, value)
}

fn parse<T: serde::de::DeserializeOwned + Default>(
    key: &str,
    stored: Option<String>,
) -> DomainResult<T> {
    match stored {
        Some(json) => serde_json::from_str(&json).map_err(|e| {
            DomainError::Db(crate::db::DbError::Sqlx(sqlx::Error::Decode(
                format!("stored {key} settings are corrupt: {e}").into(),
            )))
        }),
        None => Ok(T::default()),
    }
}

/// Replaces a settings document inside the caller's transaction, with its audit entry.
pub(crate) async fn store<T: Serialize>(
    conn: &mut sqlx::AnyConnection,
    actor: &Actor,
    key: &str,
    before: &T,
    new: &T,
) -> DomainResult<()> {
    sqlx::query("INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value")
        .bind(key)
        .bind(serde_json::to_string(new).expect("settings serialize"))
        .execute(&mut *conn)
        .await?;
    audit::record(
        conn,
        actor,
        "settings.update",
        "settings",
        Some(key),
        Some(before),
        Some(new),
    )
    .await?;
    Ok(())
}

/// Saves new billing settings; they apply to invoices issued from now on.
pub async fn save_billing(
    db: &Db,
    actor: &Actor,
    new: BillingSettings,
) -> DomainResult<BillingSettings> {
    new.check()?;
    let before = billing(db).await?;
    let mut tx = db.begin().await?;
    store(&mut tx, actor, KEY, &before, &new).await?;
    tx.commit().await?;
    Ok(new)
}
