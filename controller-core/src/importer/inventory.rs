//! What an agent read from its router for an import (the answer to `ReadRouterAccounts`),
//! stored with the command's result so the dry run and the apply read the same entries.

use crate::db::DbError;
use crate::error::{DomainError, DomainResult};
use mikrobill_protocol::inventory::RouterAccounts;
use sqlx::Row;

/// Stores a read inside the transaction that completes its command.
pub async fn store(
    conn: &mut sqlx::AnyConnection,
    command_id: i64,
    site_id: &str,
    accounts: &RouterAccounts,
) -> Result<(), DbError> {
    let json = serde_json::to_string(accounts).map_err(|e| {
        DbError::Sqlx(sqlx::Error::Encode(
            format!("router accounts of command {command_id}: {e}").into(),
        ))
    })?;
    sqlx::query(
        "INSERT INTO router_inventories (command_id, site_id, accounts, read_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (command_id) DO NOTHING",
    )
    .bind(command_id)
    .bind(site_id)
    .bind(json)
    .bind(crate::db::now_ms())
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// A stored read of `site_id` and when it was read; `None` while the agent has not answered.
pub async fn load(
    conn: &mut sqlx::AnyConnection,
    command_id: i64,
    site_id: &str,
) -> DomainResult<Option<(RouterAccounts, i64)>> {
    let row = sqlx::query(
        "SELECT accounts, read_at FROM router_inventories WHERE command_id = $1 AND site_id = $2",
    )
    .bind(command_id)
    .bind(site_id)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(row) = row else { return Ok(None) };
    let json: String = row.try_get("accounts")?;
    let accounts = serde_json::from_str(&json).map_err(|e| {
        DomainError::Db(DbError::Sqlx(sqlx::Error::Decode(
            format!("stored router accounts of command {command_id}: {e}").into(),
        )))
    })?;
    Ok(Some((accounts, row.try_get("read_at")?)))
}
