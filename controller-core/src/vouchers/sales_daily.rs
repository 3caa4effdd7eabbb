//! The voucher sales summary (`voucher_sales_daily`): vouchers sold per local day, site, plan,
//! reseller and batch, counted and priced, written in the transaction that sells them (the
//! cash desk, a batch sold to or bought by a reseller, a voucher paid online) and filed under
//! the day at the offset in force then. Voucher sales reports read it instead of every sold
//! voucher.

use crate::db::data_steps::voucher_sales_daily_fill_sql as fill_sql;
use crate::db::{Db, DbError};

/// Adds voucher `code`, just sold, to the summary inside the caller's transaction.
pub(crate) async fn add_code(conn: &mut sqlx::AnyConnection, code: &str) -> Result<(), DbError> {
    let offset = crate::db::billing_utc_offset(conn).await?;
    sqlx::query(sqlx::AssertSqlSafe(fill_sql(offset, "code = $1")))
        .bind(code)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Adds the vouchers of `batch_id` sold to `reseller_id` at `sold_at` (the ones a batch sale
/// or purchase just sold; vouchers of the batch sold before at the desk have another time
/// and no reseller) inside the caller's transaction.
pub(crate) async fn add_batch(
    conn: &mut sqlx::AnyConnection,
    batch_id: &str,
    reseller_id: &str,
    sold_at: i64,
) -> Result<(), DbError> {
    let offset = crate::db::billing_utc_offset(conn).await?;
    sqlx::query(sqlx::AssertSqlSafe(fill_sql(
        offset,
        "batch_id = $1 AND sold_to = $2 AND sold_at = $3",
    )))
    .bind(batch_id)
    .bind(reseller_id)
    .bind(sold_at)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Rebuilds the summary from the vouchers at the operator's current offset, in one
/// transaction (after sales were moved in time by SQL, as the demo's history does).
pub async fn rebuild(db: &Db) -> Result<(), DbError> {
    let mut tx = db.begin().await?;
    let offset = crate::db::billing_utc_offset(&mut tx).await?;
    sqlx::query("DELETE FROM voucher_sales_daily")
        .execute(&mut *tx)
        .await?;
    sqlx::query(sqlx::AssertSqlSafe(fill_sql(offset, "true")))
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}
