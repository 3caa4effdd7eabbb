//! The audit log: every write through the API or the CLI records who did what, when, and
//! the record before and after (secrets redacted), in the same transaction as the change.

use crate::db::{DbError, now_ms};
use serde::Serialize;
use sqlx::Row;

/// Who made a change.
#[derive(Debug, Clone)]
pub struct Actor {
    /// The admin user, or `None` for the CLI and the scheduler.
    pub id: Option<String>,
    /// A name to show: the admin's username, `cli`, `scheduler`, or a gateway's name.
    pub name: String,
    /// The client address, for API calls.
    pub addr: Option<String>,
}

impl Actor {
    /// The operator at the command line.
    pub fn cli() -> Actor {
        Actor {
            id: None,
            name: "cli".into(),
            addr: None,
        }
    }

    /// The controller itself (scheduled jobs, gateway webhooks).
    pub fn system(name: &str) -> Actor {
        Actor {
            id: None,
            name: name.into(),
            addr: None,
        }
    }
}

/// One audit entry as read back.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct AuditEntry {
    /// Sequence number; larger is newer.
    pub id: i64,
    /// When (unix ms, UTC).
    pub at: i64,
    /// Admin user id, when a user acted.
    pub actor_id: Option<String>,
    /// Who acted.
    pub actor_name: String,
    /// What was done, e.g. `customer.update`.
    pub action: String,
    /// Kind of record changed.
    pub entity: String,
    /// Which record.
    pub entity_id: Option<String>,
    /// The record before the change (none for a creation); any JSON value.
    pub before: Option<serde_json::Value>,
    /// The record after the change (none for a deletion); any JSON value.
    pub after: Option<serde_json::Value>,
    /// The client address.
    pub remote_addr: Option<String>,
}

/// Records one change inside the caller's transaction.
pub async fn record<B: Serialize, A: Serialize>(
    conn: &mut sqlx::AnyConnection,
    actor: &Actor,
    action: &str,
    entity: &str,
    entity_id: Option<&str>,
    before: Option<&B>,
    after: Option<&A>,
) -> Result<(), DbError> {
    sqlx::query(
        "INSERT INTO audit_log (at, actor_id, actor_name, action, entity, entity_id, before_json, after_json, remote_addr) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(now_ms())
    .bind(actor.id.as_deref())
    .bind(&actor.name)
    .bind(action)
    .bind(entity)
    .bind(entity_id)
    // Snapshots are whole records; a PPPoE password or a channel token in them must not
    // outlive the change in a log every auditor can read.
    .bind(before.map(|b| crate::secrets::redact(b).to_string()))
    .bind(after.map(|a| crate::secrets::redact(a).to_string()))
    .bind(actor.addr.as_deref())
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Records a change that was committed on its own (enrollment tokens, API tokens), where no
/// transaction spans the change and its record.
pub async fn record_alone<B: Serialize, A: Serialize>(
    db: &crate::db::Db,
    actor: &Actor,
    action: &str,
    entity: &str,
    entity_id: Option<&str>,
    before: Option<&B>,
    after: Option<&A>,
) -> Result<(), DbError> {
    let mut conn = db.pool.acquire().await?;
    record(&mut conn, actor, action, entity, entity_id, before, after).await
}

/// Filters for [`list`].
#[derive(Debug, Default, Clone)]
pub struct AuditFilter {
    /// Only this kind of record.
    pub entity: Option<String>,
    /// Only this record.
    pub entity_id: Option<String>,
    /// Only this admin user.
    pub actor_id: Option<String>,
    /// Only entries older than this id (paging backwards).
    pub before_id: Option<i64>,
}

/// Audit entries, newest first.
pub async fn list(
    db: &crate::db::Db,
    f: &AuditFilter,
    limit: u32,
) -> Result<Vec<AuditEntry>, DbError> {
    let rows = sqlx::query(
        "SELECT id, at, actor_id, actor_name, action, entity, entity_id, before_json, after_json, remote_addr \
         FROM audit_log WHERE (CAST($1 AS TEXT) IS NULL OR entity = $1) AND (CAST($2 AS TEXT) IS NULL OR entity_id = $2) \
         AND (CAST($3 AS TEXT) IS NULL OR actor_id = $3) AND id < $4 ORDER BY id DESC LIMIT $5",
    )
    .bind(f.entity.as_deref())
    .bind(f.entity_id.as_deref())
    .bind(f.actor_id.as_deref())
    .bind(f.before_id.unwrap_or(i64::MAX))
    .bind(limit as i64)
    .fetch_all(&db.pool)
    .await?;
    let parse = |s: Option<String>| s.and_then(|s| serde_json::from_str(&s).ok());
    rows.iter()
        .map(|r| {
            Ok(AuditEntry {
                id: r.try_get("id")?,
                at: r.try_get("at")?,
                actor_id: r.try_get("actor_id")?,
                actor_name: r.try_get("actor_name")?,
                action: r.try_get("action")?,
                entity: r.try_get("entity")?,
                entity_id: r.try_get("entity_id")?,
                before: parse(r.try_get("before_json")?),
                after: parse(r.try_get("after_json")?),
                remote_addr: r.try_get("remote_addr")?,
            })
        })
        .collect::<Result<_, sqlx::Error>>()
        .map_err(DbError::from)
}
