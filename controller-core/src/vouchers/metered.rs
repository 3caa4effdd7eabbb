//! Vouchers judged on their fleet-wide use, inside the ingest transaction: the vouchers a
//! batch names get the usage the ledger (`usage_sessions`) holds for their code at every site,
//! and the state [`usage_state::decide`] gives them, so a voucher used up across several sites
//! ends everywhere.

use super::lifecycle::State;
use super::usage_state::{self, Limits, Used};
use super::{RECORD_COLUMNS, Scope, record_from_row};
use crate::audit::{self, Actor};
use crate::db::{Backend, DbError};
use mikrobill_protocol::items::Item;
use mikrobill_protocol::messages::ChangeOp;
use sqlx::Row;

/// Codes per statement: bound parameters stay well under SQLite's limit.
const CHUNK: usize = 400;

fn marks(n: usize) -> String {
    (1..=n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Locks the voucher rows of `codes` (PostgreSQL; SQLite's write lock already serialises
/// ingests). Taken before any voucher row is written and before the change log's lock, the
/// order every voucher writer follows, so an ingest of another site that names the same
/// voucher waits here, and its totals, read after this transaction commits, include ours.
pub async fn lock(
    tx: &mut sqlx::AnyConnection,
    backend: Backend,
    codes: &[&str],
) -> Result<(), DbError> {
    if backend != Backend::Postgres {
        return Ok(());
    }
    for chunk in codes.chunks(CHUNK) {
        let sql = format!(
            "SELECT code FROM vouchers WHERE code IN ({}) ORDER BY code FOR UPDATE",
            marks(chunk.len())
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for code in chunk {
            q = q.bind(code.to_string());
        }
        q.fetch_all(&mut *tx).await?;
    }
    Ok(())
}

/// Stores the ledger's totals and the decided state of every voucher among `codes` (sorted,
/// distinct) whose row differs from them, audits state changes, and returns the changes the
/// agents must learn. The ledger only grows and replays add nothing to it, so a replayed batch
/// finds nothing to change. One grouped query reads the totals of a whole batch.
pub async fn apply(
    tx: &mut sqlx::AnyConnection,
    codes: &[&str],
    now: i64,
) -> Result<Vec<(Scope, ChangeOp)>, DbError> {
    let mut changes = Vec::new();
    for chunk in codes.chunks(CHUNK) {
        let sql = format!(
            "SELECT v.code, v.status, v.activated_at, v.expires_at, v.used_time_secs, v.used_bytes, \
             p.time_limit_secs, p.data_limit_bytes, p.validity_secs, u.secs, u.bytes \
             FROM vouchers v JOIN plans p ON p.id = v.plan_id JOIN ( \
               SELECT username, CAST(SUM(session_time_secs) AS BIGINT) AS secs, \
               CAST(SUM(input_octets + output_octets) AS BIGINT) AS bytes \
               FROM usage_sessions WHERE username IN ({}) GROUP BY username) u \
             ON u.username = v.code ORDER BY v.code",
            marks(chunk.len())
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for code in chunk {
            q = q.bind(code.to_string());
        }
        let rows = q.fetch_all(&mut *tx).await?;
        for row in rows {
            let code: String = row.try_get("code")?;
            let from: State = super::parse_status(&row.try_get::<String, _>("status")?)?.into();
            let stored = Used {
                secs: row.try_get("used_time_secs")?,
                bytes: row.try_get("used_bytes")?,
            };
            let used = Used {
                secs: row.try_get("secs")?,
                bytes: row.try_get("bytes")?,
            };
            let limits = Limits {
                time_secs: row.try_get("time_limit_secs")?,
                data_bytes: row.try_get("data_limit_bytes")?,
                validity_secs: row.try_get("validity_secs")?,
            };
            let to = usage_state::decide(
                from,
                &limits,
                used,
                row.try_get("activated_at")?,
                row.try_get("expires_at")?,
                now,
            );
            if to.is_none() && used == stored {
                continue;
            }
            let to = to.unwrap_or(from);
            let Some(after) = sqlx::query(sqlx::AssertSqlSafe(format!(
                "UPDATE vouchers SET used_time_secs = $1, used_bytes = $2, status = $3 \
                 WHERE code = $4 AND status = $5 RETURNING {RECORD_COLUMNS}"
            )))
            .bind(used.secs)
            .bind(used.bytes)
            .bind(to.as_str())
            .bind(&code)
            .bind(from.as_str())
            .fetch_all(&mut *tx)
            .await?
            .into_iter()
            .next() else {
                continue;
            };
            let after = record_from_row(&after)?;
            if to != from {
                let mut before = after.clone();
                before.status = from;
                before.used_time_secs = stored.secs;
                before.used_bytes = stored.bytes;
                let action = if to == State::Exhausted {
                    "voucher.exhaust"
                } else {
                    "voucher.expire"
                };
                audit::record(
                    &mut *tx,
                    &Actor::system("accounting"),
                    action,
                    "voucher",
                    Some(&code),
                    Some(&before),
                    Some(&after),
                )
                .await?;
            }
            // A revoked voucher is gone from every cache; usage must not bring it back.
            if to != State::Revoked {
                changes.push((after.scope(), ChangeOp::Upsert(Item::Voucher(after.item()))));
            }
        }
    }
    Ok(changes)
}
