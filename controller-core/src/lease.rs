//! Leases: a row per job or worker in the database. A replica runs a job only while it holds the
//! unexpired lease, so several controllers on one PostgreSQL never run a job twice at once.

use crate::db::{Db, DbError, now_ms};
use sqlx::Row;

/// Tries to take (or extend) the lease of `job` for `ttl_ms`; true when this holder has it.
pub async fn acquire(db: &Db, job: &str, holder: &str, ttl_ms: i64) -> Result<bool, DbError> {
    let now = now_ms();
    sqlx::query("INSERT INTO job_leases (name, holder, expires_at) VALUES ($1, NULL, 0) ON CONFLICT (name) DO NOTHING")
        .bind(job)
        .execute(&db.pool)
        .await?;
    // One conditional UPDATE decides: the row lock makes concurrent claimants agree.
    let n = sqlx::query(
        "UPDATE job_leases SET holder = $1, expires_at = $2 WHERE name = $3 AND (expires_at < $4 OR holder = $1)",
    )
    .bind(holder)
    .bind(now + ttl_ms)
    .bind(job)
    .bind(now)
    .execute(&db.pool)
    .await?
    .rows_affected();
    Ok(n == 1)
}

/// Records a run's outcome and lets the lease go.
pub async fn release(db: &Db, job: &str, holder: &str, outcome: &str) -> Result<(), DbError> {
    sqlx::query("UPDATE job_leases SET holder = NULL, expires_at = 0, last_run_at = $1, last_outcome = $2 WHERE name = $3 AND holder = $4")
        .bind(now_ms())
        .bind(outcome)
        .bind(job)
        .bind(holder)
        .execute(&db.pool)
        .await?;
    Ok(())
}

/// A job's lease row as reported by the API.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct JobState {
    /// Job name.
    pub name: String,
    /// Replica holding the lease now, if running.
    pub holder: Option<String>,
    /// Last finished run (unix ms).
    pub last_run_at: Option<i64>,
    /// What the last run did, or its error.
    pub last_outcome: Option<String>,
}

/// Every job's state.
pub async fn states(db: &Db) -> Result<Vec<JobState>, DbError> {
    let now = now_ms();
    let rows = sqlx::query(
        "SELECT name, holder, expires_at, last_run_at, last_outcome FROM job_leases ORDER BY name",
    )
    .fetch_all(&db.pool)
    .await?;
    rows.iter()
        .map(|r| {
            let expires: i64 = r.try_get("expires_at")?;
            Ok(JobState {
                name: r.try_get("name")?,
                holder: if expires > now {
                    r.try_get("holder")?
                } else {
                    None
                },
                last_run_at: r.try_get("last_run_at")?,
                last_outcome: r.try_get("last_outcome")?,
            })
        })
        .collect::<Result<_, sqlx::Error>>()
        .map_err(DbError::from)
}
