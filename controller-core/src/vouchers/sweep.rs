//! The expiry sweep: active vouchers whose validity has run out become expired, and the
//! agents learn it, so a voucher cannot outlive its validity at a site that never saw the
//! session that started it.

use super::lifecycle::{self, Event};
use super::{RECORD_COLUMNS, record_from_row, sync};
use crate::audit::{self, Actor};
use crate::db::Db;
use crate::error::DomainResult;
use mikrobill_protocol::items::Item;
use mikrobill_protocol::messages::ChangeOp;
use serde::Serialize;

/// Vouchers expired per transaction: keeps each one short, so agents' syncs and other
/// writers are not held up by a large backlog.
pub const CHUNK: i64 = 500;

/// Marks active vouchers whose validity has passed at `now_ms` (the plan's validity after
/// first use, or the voucher's own `expires_at`) expired and syncs them out, in chunks of
/// [`CHUNK`]; returns how many expired.
pub async fn expire_due(db: &Db, now_ms: i64) -> DomainResult<u64> {
    let actor = Actor::system("expiry-sweep");
    let mut total = 0u64;
    loop {
        let mut tx = db.begin().await?;
        // One statement selects and updates, so SQLite takes its write lock before reading.
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE vouchers SET status = 'expired' WHERE {} AND code IN ( \
               SELECT v.code FROM vouchers v JOIN plans p ON p.id = v.plan_id \
               WHERE {} AND {} \
               ORDER BY v.code LIMIT $2) \
             RETURNING {RECORD_COLUMNS}",
            lifecycle::applies_sql("status", Event::Expire),
            lifecycle::applies_sql("v.status", Event::Expire),
            super::usage_state::expired_sql("v", "p", "$1")
        )))
        .bind(now_ms)
        .bind(CHUNK)
        .fetch_all(&mut *tx)
        .await?;
        if rows.is_empty() {
            return Ok(total);
        }
        let mut codes = Vec::with_capacity(rows.len());
        let mut changes = Vec::with_capacity(rows.len());
        for row in &rows {
            let v = record_from_row(row)?;
            codes.push(v.code.clone());
            changes.push((v.scope(), ChangeOp::Upsert(Item::Voucher(v.item()))));
        }
        sync(&mut tx, changes).await?;
        #[derive(Serialize)]
        struct Expired<'a> {
            count: usize,
            codes: &'a [String],
        }
        audit::record(
            &mut tx,
            &actor,
            "voucher.expire",
            "voucher",
            None,
            None::<&()>,
            Some(&Expired {
                count: codes.len(),
                codes: &codes,
            }),
        )
        .await?;
        tx.commit().await?;
        total += rows.len() as u64;
        if (rows.len() as i64) < CHUNK {
            return Ok(total);
        }
    }
}
