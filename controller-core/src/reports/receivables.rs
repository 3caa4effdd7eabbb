//! Receivables aging: what customers owe on unpaid invoices, by how long it is past due
//! (not yet due, 1-30, 31-60, 61-90, over 90 days). The bucket of an invoice is decided by
//! [`bucket`]; the SQL that groups thousands of invoices is generated from the same bounds.

use super::period::DAY_MS;
use crate::db::{Db, DbError};
use sqlx::Row;

/// Upper bounds, in days late, of the buckets after "not yet due"; the last bucket is open.
pub const BOUNDS_DAYS: [i64; 3] = [30, 60, 90];
/// How many buckets there are.
pub const BUCKETS: usize = BOUNDS_DAYS.len() + 2;
/// Bucket names, in order.
pub const BUCKET_NAMES: [&str; BUCKETS] = ["current", "1_30", "31_60", "61_90", "over_90"];

/// The bucket of an invoice due at `due_at`, at `now`: 0 while not past due, then by whole or
/// started days late (a day and a minute late is two days late).
pub fn bucket(due_at: i64, now: i64) -> usize {
    let late = now.saturating_sub(due_at);
    if late <= 0 {
        return 0;
    }
    let days = late.div_euclid(DAY_MS) + i64::from(late.rem_euclid(DAY_MS) != 0);
    1 + BOUNDS_DAYS.iter().take_while(|&&b| days > b).count()
}

/// SQL deciding [`bucket`] for `due_col` at the instant bound at `now_param`.
pub(crate) fn bucket_sql(due_col: &str, now_param: &str) -> String {
    let mut sql = format!("CASE WHEN {due_col} >= {now_param} THEN 0");
    for (i, b) in BOUNDS_DAYS.iter().enumerate() {
        sql.push_str(&format!(
            " WHEN {due_col} >= {now_param} - {} THEN {}",
            b * DAY_MS,
            i + 1
        ));
    }
    sql.push_str(&format!(" ELSE {} END", BUCKETS - 1));
    sql
}

/// One bucket's invoices.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct Bucket {
    /// `current`, `1_30`, `31_60`, `61_90` or `over_90`.
    pub name: String,
    /// Unpaid invoices in it.
    pub invoices: i64,
    /// What they still owe (minor units).
    pub amount: i64,
}

/// One customer's debt by bucket.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct CustomerAging {
    /// Customer id.
    pub customer_id: String,
    /// Customer number.
    pub number: String,
    /// Customer name.
    pub name: String,
    /// Owed per bucket, in [`BUCKET_NAMES`] order.
    pub amounts: Vec<i64>,
    /// Owed in all.
    pub total: i64,
}

/// The aging report at `now`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct Aging {
    /// When it was taken (unix ms).
    pub at: i64,
    /// Totals per bucket, in [`BUCKET_NAMES`] order.
    pub buckets: Vec<Bucket>,
    /// The customers who owe most, largest first.
    pub customers: Vec<CustomerAging>,
}

/// Aging at `now`, with the `top` customers who owe most.
pub async fn report(db: &Db, now: i64, top: u32) -> Result<Aging, DbError> {
    let b = bucket_sql("i.due_at", "$1");
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {b} AS b, COUNT(*) AS n, CAST(SUM(i.total - i.amount_paid) AS BIGINT) AS owed \
         FROM invoices i WHERE i.status = 'unpaid' GROUP BY {b}"
    )))
    .bind(now)
    .fetch_all(&db.pool)
    .await?;
    let mut buckets: Vec<Bucket> = BUCKET_NAMES
        .iter()
        .map(|n| Bucket {
            name: (*n).into(),
            ..Bucket::default()
        })
        .collect();
    for r in rows {
        let i: i64 = r.try_get("b")?;
        if let Some(slot) = buckets.get_mut(i as usize) {
            slot.invoices = r.try_get("n")?;
            slot.amount = r.try_get("owed")?;
        }
    }
    let per: Vec<String> = (0..BUCKETS)
        .map(|k| {
            format!("CAST(SUM(CASE WHEN {b} = {k} THEN i.total - i.amount_paid ELSE 0 END) AS BIGINT) AS b{k}")
        })
        .collect();
    let outer: Vec<String> = (0..BUCKETS).map(|k| format!("x.b{k}")).collect();
    // Unpaid invoices are summed per customer from the covering index alone
    // (`invoices_unpaid`); only the top customers are then looked up by id.
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT c.id, c.number, c.name, {}, x.owed FROM \
         (SELECT i.customer_id, {}, CAST(SUM(i.total - i.amount_paid) AS BIGINT) AS owed \
          FROM invoices i WHERE i.status = 'unpaid' GROUP BY i.customer_id \
          ORDER BY owed DESC, i.customer_id LIMIT $2) x \
         JOIN customers c ON c.id = x.customer_id ORDER BY x.owed DESC, c.number",
        outer.join(", "),
        per.join(", ")
    )))
    .bind(now)
    .bind(i64::from(top))
    .fetch_all(&db.pool)
    .await?;
    let mut customers = Vec::with_capacity(rows.len());
    for r in rows {
        let mut amounts = Vec::with_capacity(BUCKETS);
        for k in 0..BUCKETS {
            amounts.push(r.try_get(format!("b{k}").as_str())?);
        }
        customers.push(CustomerAging {
            customer_id: r.try_get("id")?,
            number: r.try_get("number")?,
            name: r.try_get("name")?,
            amounts,
            total: r.try_get("owed")?,
        });
    }
    Ok(Aging {
        at: now,
        buckets,
        customers,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn buckets_by_started_days_late() {
        let due = 1_000 * DAY_MS;
        assert_eq!(bucket(due, due), 0);
        assert_eq!(bucket(due, due - 1), 0);
        assert_eq!(bucket(due, due + 1), 1);
        assert_eq!(bucket(due, due + 30 * DAY_MS), 1);
        assert_eq!(bucket(due, due + 30 * DAY_MS + 1), 2);
        assert_eq!(bucket(due, due + 60 * DAY_MS), 2);
        assert_eq!(bucket(due, due + 90 * DAY_MS), 3);
        assert_eq!(bucket(due, due + 90 * DAY_MS + 1), 4);
        assert_eq!(bucket(i64::MIN, i64::MAX), 4);
    }

    proptest! {
        #[test]
        fn a_later_look_never_moves_an_invoice_to_a_younger_bucket(
            due in any::<i64>(), now in any::<i64>(), later in 0i64..1_000 * DAY_MS) {
            let b = bucket(due, now);
            prop_assert!(b < BUCKETS);
            prop_assert!(bucket(due, now.saturating_add(later)) >= b);
        }
    }
}
