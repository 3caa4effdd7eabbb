//! Service plans (the spine keeps to what the agent cache needs; billing fields grow later).

use crate::db::{Db, DbError, now_ms};
use crate::sync_log;
use mikrobill_protocol::items::{Item, Plan};
use mikrobill_protocol::messages::ChangeOp;
use sqlx::Row;

/// Columns read by [`from_row`].
pub const COLUMNS: &str = "id, name, rate_limit, time_limit_secs, data_limit_bytes, validity_secs, shared_users, interim_interval_secs, router_group, address_list";

/// Errors of plan operations.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    /// Storage failed.
    #[error(transparent)]
    Db(#[from] DbError),
    /// The name is taken.
    #[error("a plan named {0:?} already exists")]
    Exists(String),
    /// No such plan.
    #[error("no plan named {0:?}")]
    NotFound(String),
    /// A field is not acceptable.
    #[error("invalid plan: {0}")]
    Invalid(String),
}

impl From<sqlx::Error> for PlanError {
    fn from(e: sqlx::Error) -> Self {
        PlanError::Db(DbError::Sqlx(e))
    }
}

fn opt_u64(row: &sqlx::any::AnyRow, col: &str) -> Result<Option<u64>, sqlx::Error> {
    Ok(row.try_get::<Option<i64>, _>(col)?.map(|v| v.max(0) as u64))
}

/// Builds a plan from a row selected with [`COLUMNS`].
pub fn from_row(row: &sqlx::any::AnyRow) -> Result<Plan, sqlx::Error> {
    Ok(Plan {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        rate_limit: row.try_get("rate_limit")?,
        time_limit_secs: opt_u64(row, "time_limit_secs")?,
        data_limit_bytes: opt_u64(row, "data_limit_bytes")?,
        validity_secs: opt_u64(row, "validity_secs")?,
        shared_users: row
            .try_get::<i64, _>("shared_users")?
            .clamp(1, u32::MAX as i64) as u32,
        interim_interval_secs: opt_u64(row, "interim_interval_secs")?
            .map(|v| v.min(u32::MAX as u64) as u32),
        router_group: row.try_get("router_group")?,
        address_list: row.try_get("address_list")?,
    })
}

/// Checks a Mikrotik-Rate-Limit string's basic `rx/tx` shape, e.g. `512k/2M`.
pub fn valid_rate_limit(s: &str) -> bool {
    let first = s.split_whitespace().next().unwrap_or("");
    let mut parts = first.split('/');
    let ok = |p: Option<&str>| {
        p.is_some_and(|p| {
            let digits = p.trim_end_matches(['k', 'K', 'M', 'G']);
            !digits.is_empty()
                && digits.chars().all(|c| c.is_ascii_digit())
                && p.len() - digits.len() <= 1
        })
    };
    ok(parts.next()) && ok(parts.next()) && parts.next().is_none()
}

/// Creates a plan and announces it to every site.
pub async fn create(db: &Db, mut plan: Plan, price: i64) -> Result<Plan, PlanError> {
    if plan.name.trim().is_empty() || plan.name.len() > 64 {
        return Err(PlanError::Invalid("name must be 1-64 characters".into()));
    }
    if let Some(r) = &plan.rate_limit
        && !valid_rate_limit(r)
    {
        return Err(PlanError::Invalid(format!(
            "rate limit {r:?} is not of the form rx/tx, e.g. 2M/10M"
        )));
    }
    if plan.shared_users == 0 {
        return Err(PlanError::Invalid("shared users must be at least 1".into()));
    }
    if price < 0 {
        return Err(PlanError::Invalid("price cannot be negative".into()));
    }
    plan.id = uuid::Uuid::new_v4().to_string();
    let as_i64 = |v: Option<u64>| v.map(|v| v.min(i64::MAX as u64) as i64);
    let mut tx = db.pool.begin().await?;
    let res = sqlx::query(
        "INSERT INTO plans (id, name, price, rate_limit, time_limit_secs, data_limit_bytes, validity_secs, shared_users, interim_interval_secs, router_group, address_list, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) ON CONFLICT (name) DO NOTHING",
    )
    .bind(&plan.id)
    .bind(&plan.name)
    .bind(price)
    .bind(&plan.rate_limit)
    .bind(as_i64(plan.time_limit_secs))
    .bind(as_i64(plan.data_limit_bytes))
    .bind(as_i64(plan.validity_secs))
    .bind(plan.shared_users as i64)
    .bind(plan.interim_interval_secs.map(|v| v as i64))
    .bind(&plan.router_group)
    .bind(&plan.address_list)
    .bind(now_ms())
    .execute(&mut *tx)
    .await?;
    if res.rows_affected() == 0 {
        return Err(PlanError::Exists(plan.name));
    }
    sync_log::append(&mut tx, None, &[ChangeOp::Upsert(Item::Plan(plan.clone()))]).await?;
    tx.commit().await?;
    Ok(plan)
}

/// Looks a plan up by name.
pub async fn by_name(db: &Db, name: &str) -> Result<Plan, PlanError> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM plans WHERE name = $1"
    )))
    .bind(name)
    .fetch_optional(&db.pool)
    .await?
    .ok_or_else(|| PlanError::NotFound(name.to_string()))?;
    Ok(from_row(&row)?)
}

#[cfg(test)]
mod tests {
    use super::valid_rate_limit;

    #[test]
    fn rate_limits() {
        assert!(valid_rate_limit("512k/2M"));
        assert!(valid_rate_limit("2M/10M 4M/20M 1M/5M 8"));
        assert!(!valid_rate_limit("fast"));
        assert!(!valid_rate_limit("2M"));
        assert!(!valid_rate_limit("2MM/1M"));
    }
}
