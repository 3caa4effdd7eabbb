//! Operator settings for billing: tax, currency, timezone, default terms, company details.
//! Stored as one JSON document in the `settings` table so every replica reads the same.

use crate::audit::{self, Actor};
use crate::billing::tax::TaxRule;
use crate::db::Db;
use crate::error::{DomainError, DomainResult};
use serde::{Deserialize, Serialize};

const KEY: &str = "billing";

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
}

impl Default for BillingSettings {
    fn default() -> Self {
        BillingSettings {
            tax_rate_bp: crate::billing::tax::DEFAULT_TAX.rate_bp,
            tax_inclusive: crate::billing::tax::DEFAULT_TAX.inclusive,
            currency: "IDR".into(),
            currency_exponent: 0,
            utc_offset_minutes: 420,
            default_due_days: 7,
            default_grace_days: 3,
            company_name: "MikroBill ISP".into(),
        }
    }
}

impl BillingSettings {
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
        Ok(())
    }
}

/// The billing settings in effect (defaults until an admin saves some).
pub async fn billing(db: &Db) -> DomainResult<BillingSettings> {
    load(db, KEY).await
}

/// A settings document by key, or its defaults until an admin saves one.
pub(crate) async fn load<T: serde::de::DeserializeOwned + Default>(
    db: &Db,
    key: &str,
) -> DomainResult<T> {
    match db.setting(key).await? {
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
