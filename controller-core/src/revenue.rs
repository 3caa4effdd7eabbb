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

/// Rebuilds the per-day summary from the ledger at the operator's current offset, in one
/// transaction (after rows were imported or moved in time by SQL, as the demo's history
/// does).
pub async fn rebuild_daily(db: &crate::db::Db) -> Result<(), DbError> {
    let mut tx = db.begin().await?;
    let offset = crate::db::billing_utc_offset(&mut tx).await?;
    sqlx::query("DELETE FROM revenue_daily")
        .execute(&mut *tx)
        .await?;
    sqlx::query(sqlx::AssertSqlSafe(
        crate::db::data_steps::revenue_daily_fill_sql(offset),
    ))
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Records an amount taken, inside the caller's transaction; a second write of the same
/// (source, reference) changes nothing.
pub async fn record(conn: &mut sqlx::AnyConnection, e: &Entry<'_>) -> Result<(), DbError> {
    let inserted = sqlx::query(
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
    .await?
    .rows_affected();
    if inserted == 0 {
        return Ok(());
    }
    // The day's sum moves in the same transaction, so the summary always adds up to the
    // ledger (reports and the dashboard read the summary).
    let offset = crate::db::billing_utc_offset(conn).await?;
    sqlx::query(
        "INSERT INTO revenue_daily (day, source, method, site_id, plan_id, reseller_id, count, amount) \
         VALUES ($1, $2, $3, $4, $5, $6, 1, $7) \
         ON CONFLICT (day, source, method, site_id, plan_id, reseller_id) \
         DO UPDATE SET count = revenue_daily.count + 1, amount = revenue_daily.amount + excluded.amount",
    )
    .bind(crate::stats::local_day_start(e.received_at, offset))
    .bind(e.source.as_str())
    .bind(e.method.unwrap_or(""))
    .bind(e.site_id.unwrap_or(""))
    .bind(e.plan_id.unwrap_or(""))
    .bind(e.reseller_id.unwrap_or(""))
    .bind(e.amount)
    .execute(&mut *conn)
    .await?;
    Ok(())
}
