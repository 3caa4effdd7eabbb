//! Money onto one invoice: its paid amount grows, and it is marked paid once complete. Below
//! both `invoices` (whose credit on issue uses it through `credit`) and `payments`.

use crate::db::now_ms;
use crate::error::{DomainError, DomainResult};
use sqlx::Row;

/// Adds `amount` to an invoice's paid amount inside the caller's transaction; returns how
/// much was used (never more than what is outstanding) and marks it paid when complete.
pub async fn add_payment(
    conn: &mut sqlx::AnyConnection,
    invoice_id: &str,
    amount: i64,
) -> DomainResult<i64> {
    let outstanding: i64 =
        sqlx::query("SELECT total - amount_paid AS outstanding FROM invoices WHERE id = $1")
            .bind(invoice_id)
            .fetch_optional(&mut *conn)
            .await?
            .ok_or_else(|| DomainError::not_found("invoice", invoice_id))?
            .try_get("outstanding")?;
    let used = amount.min(outstanding).max(0);
    if used == 0 {
        return Ok(0);
    }
    sqlx::query(
        "UPDATE invoices SET amount_paid = amount_paid + $1, \
         status = CASE WHEN amount_paid + $1 >= total THEN 'paid' ELSE status END, \
         paid_at = CASE WHEN amount_paid + $1 >= total THEN $2 ELSE paid_at END WHERE id = $3",
    )
    .bind(used)
    .bind(now_ms())
    .bind(invoice_id)
    .execute(&mut *conn)
    .await?;
    Ok(used)
}
