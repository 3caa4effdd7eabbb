//! The revenue ledger: every amount of money the business takes (customer and gateway
//! payments, vouchers sold at the cash desk, resellers' top-ups), written in the transaction
//! that takes it, so figures and reports add up one table. Credit moved from a balance onto
//! an invoice and a reseller's purchases from its balance are not new money and never
//! appear here.

use crate::db::DbError;

/// Where money came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// A customer's or a gateway's payment (the reference is the payment id).
    Payment,
    /// A voucher sold at the cash desk (the reference is its code).
    VoucherSale,
    /// A reseller topped up its balance (the reference is a fresh id).
    ResellerTopUp,
}

impl Source {
    /// Storage name.
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Payment => "payment",
            Source::VoucherSale => "voucher_sale",
            Source::ResellerTopUp => "reseller_top_up",
        }
    }
}

/// One amount taken.
#[derive(Debug, Clone)]
pub struct Entry<'a> {
    /// Where it came from.
    pub source: Source,
    /// What it records (payment id, voucher code, top-up id).
    pub reference: &'a str,
    /// Minor units.
    pub amount: i64,
    /// When (unix ms).
    pub received_at: i64,
    /// How it was paid (`cash`, `transfer`, `gateway`), when known.
    pub method: Option<&'a str>,
    /// The plan sold, for voucher sales.
    pub plan_id: Option<&'a str>,
    /// The site, for voucher sales scoped to one.
    pub site_id: Option<&'a str>,
    /// The reseller, for top-ups.
    pub reseller_id: Option<&'a str>,
}

/// Records an amount taken, inside the caller's transaction; a second write of the same
/// (source, reference) changes nothing.
pub async fn record(conn: &mut sqlx::AnyConnection, e: &Entry<'_>) -> Result<(), DbError> {
    sqlx::query(
        "INSERT INTO revenue (source, reference, amount, received_at, method, plan_id, site_id, reseller_id) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (source, reference) DO NOTHING",
    )
    .bind(e.source.as_str())
    .bind(e.reference)
    .bind(e.amount)
    .bind(e.received_at)
    .bind(e.method)
    .bind(e.plan_id)
    .bind(e.site_id)
    .bind(e.reseller_id)
    .execute(&mut *conn)
    .await?;
    Ok(())
}
