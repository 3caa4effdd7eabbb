//! The stored subscription: its row, reads, the list and the static-address check.

use super::status::{IsolationReason, Standing, SubscriptionStatus};
use crate::db::Db;
use crate::error::{DomainError, DomainResult};
use serde::Serialize;
use sqlx::Row;

/// A PPPoE subscription.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Subscription {
    /// Stable id.
    pub id: String,
    /// The customer.
    pub customer_id: String,
    /// The PPPoE plan.
    pub plan_id: String,
    /// The site whose router serves it.
    pub site_id: String,
    /// PPPoE user name (unique).
    pub username: String,
    /// PPPoE password (operators need it to set up the CPE).
    pub password: String,
    /// Fixed address handed out, if any.
    pub static_ip: Option<String>,
    /// Day of month (1-28) a cycle starts.
    pub billing_day: i64,
    /// Days after a cycle starts that its invoice is due.
    pub due_days: i64,
    /// Days after the due date before isolation.
    pub grace_days: i64,
    /// Active, isolated or terminated.
    pub status: SubscriptionStatus,
    /// Why, while isolated.
    pub isolation_reason: Option<IsolationReason>,
    /// Start of the first cycle not invoiced yet (unix ms).
    pub next_cycle_at: i64,
    /// Service start (unix ms).
    pub started_at: i64,
    /// When it was isolated.
    pub isolated_at: Option<i64>,
    /// When it was terminated.
    pub terminated_at: Option<i64>,
    /// Creation time (unix ms).
    pub created_at: i64,
    /// Last change (unix ms).
    pub updated_at: i64,
}

const COLUMNS: &str = "id, customer_id, plan_id, site_id, username, password, static_ip, billing_day, due_days, grace_days, status, isolation_reason, next_cycle_at, started_at, isolated_at, terminated_at, created_at, updated_at";

fn from_row(r: &sqlx::any::AnyRow) -> Result<Subscription, sqlx::Error> {
    Ok(Subscription {
        id: r.try_get("id")?,
        customer_id: r.try_get("customer_id")?,
        plan_id: r.try_get("plan_id")?,
        site_id: r.try_get("site_id")?,
        username: r.try_get("username")?,
        password: r.try_get("password")?,
        static_ip: r.try_get("static_ip")?,
        billing_day: r.try_get("billing_day")?,
        due_days: r.try_get("due_days")?,
        grace_days: r.try_get("grace_days")?,
        status: {
            let status: String = r.try_get("status")?;
            SubscriptionStatus::parse(&status).ok_or_else(|| unknown("status", &status))?
        },
        isolation_reason: match r.try_get::<Option<String>, _>("isolation_reason")? {
            None => None,
            Some(reason) => Some(
                IsolationReason::parse(&reason)
                    .ok_or_else(|| unknown("isolation_reason", &reason))?,
            ),
        },
        next_cycle_at: r.try_get("next_cycle_at")?,
        started_at: r.try_get("started_at")?,
        isolated_at: r.try_get("isolated_at")?,
        terminated_at: r.try_get("terminated_at")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
    })
}

/// A stored value no release writes.
fn unknown(column: &str, value: &str) -> sqlx::Error {
    sqlx::Error::Decode(format!("unknown subscription {column} {value:?}").into())
}

impl Subscription {
    /// Its status with the isolation reason, as the transition table reads them.
    pub fn standing(&self) -> Standing {
        Standing {
            status: self.status,
            reason: self.isolation_reason,
        }
    }
}

/// Reads a subscription inside a transaction or on a connection.
pub async fn fetch(conn: &mut sqlx::AnyConnection, id: &str) -> DomainResult<Subscription> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM subscriptions WHERE id = $1"
    )))
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?
    .ok_or_else(|| DomainError::not_found("subscription", id))?;
    Ok(from_row(&row)?)
}

/// One subscription.
pub async fn get(db: &Db, id: &str) -> DomainResult<Subscription> {
    let mut conn = db.pool.acquire().await?;
    fetch(&mut conn, id).await
}

/// Whether another live subscription holds `ip`.
pub(super) async fn ip_taken(
    conn: &mut sqlx::AnyConnection,
    ip: &str,
    except: &str,
) -> DomainResult<bool> {
    Ok(sqlx::query("SELECT 1 AS x FROM subscriptions WHERE static_ip = $1 AND id <> $2 AND status <> 'terminated'")
        .bind(ip)
        .bind(except)
        .fetch_optional(&mut *conn)
        .await?
        .is_some())
}

/// Filters of the subscription list.
#[derive(Debug, Clone, Default)]
pub struct SubscriptionFilter {
    /// One customer's.
    pub customer_id: Option<String>,
    /// One site's.
    pub site_id: Option<String>,
    /// One status.
    pub status: Option<SubscriptionStatus>,
    /// User names starting with this.
    pub q: Option<String>,
}

/// Subscriptions ordered by user name after `after`.
pub async fn list(
    db: &Db,
    f: &SubscriptionFilter,
    after: &str,
    limit: u32,
) -> DomainResult<Vec<Subscription>> {
    let prefix =
        f.q.as_deref()
            .map(|q| format!("{}%", crate::db::escape_like(q)));
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM subscriptions WHERE username > $1 AND (CAST($2 AS TEXT) IS NULL OR customer_id = $2) \
         AND (CAST($3 AS TEXT) IS NULL OR site_id = $3) AND (CAST($4 AS TEXT) IS NULL OR status = $4) \
         AND (CAST($5 AS TEXT) IS NULL OR username LIKE $5 ESCAPE '\\') ORDER BY username LIMIT $6"
    )))
    .bind(after)
    .bind(f.customer_id.as_deref())
    .bind(f.site_id.as_deref())
    .bind(f.status.map(SubscriptionStatus::as_str))
    .bind(prefix)
    .bind(limit as i64)
    .fetch_all(&db.pool)
    .await?;
    Ok(rows.iter().map(from_row).collect::<Result<_, _>>()?)
}
