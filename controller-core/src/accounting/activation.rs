//! Vouchers' first use, as a fold finds it: validity counts from the earliest use at any
//! site, so a voucher first used in the folded records becomes active from that moment, and
//! every site that holds it learns the same start.

use super::IngestError;
use crate::vouchers::State;
use crate::vouchers::lifecycle::{self, Event};
use mikrobill_protocol::accounting::{AccountingRecord, AcctStatus};
use mikrobill_protocol::items::Item;
use mikrobill_protocol::messages::ChangeOp;
use sqlx::Row;

/// The earliest event of each account named by a usage reading in `records`, by name.
pub(crate) fn first_use<'a>(
    records: &[&'a AccountingRecord],
) -> std::collections::BTreeMap<&'a str, i64> {
    let mut first_use: std::collections::BTreeMap<&str, i64> = std::collections::BTreeMap::new();
    for r in records {
        if matches!(
            r.status,
            AcctStatus::Start | AcctStatus::InterimUpdate | AcctStatus::Stop
        ) && !r.username.is_empty()
        {
            let t = first_use
                .entry(r.username.as_str())
                .or_insert(r.event_time_ms);
            *t = (*t).min(r.event_time_ms);
        }
    }
    first_use
}

/// What a voucher's first use becomes when a batch shows it used at `seen` (unix ms):
/// `Some` to store, `None` to keep what is stored. Validity counts from the earliest use at
/// any site, and sites that were cut off deliver in any order, so a later batch may bring an
/// earlier first use than the one stored.
pub fn first_use_to_store(stored: Option<i64>, seen: i64) -> Option<i64> {
    match stored {
        Some(at) if at <= seen => None,
        _ => Some(seen),
    }
}

/// Marks vouchers first used in these records as active from their first event (or moves an
/// active voucher's first use earlier, [`first_use_to_store`]), and returns the changes that
/// sync the new state to every site that holds them, so validity counts from one moment
/// everywhere. Only vouchers this site may use are touched, and only new or sold ones become
/// active: a revoked one used offline stays revoked.
pub(crate) async fn activate_vouchers(
    tx: &mut sqlx::AnyConnection,
    site_id: &str,
    first_use: &std::collections::BTreeMap<&str, i64>,
) -> Result<Vec<(crate::vouchers::Scope, ChangeOp)>, IngestError> {
    if first_use.is_empty() {
        return Ok(Vec::new());
    }
    let mut params = crate::db::params::Params::of(tx);
    let sql = format!(
        "SELECT code, activated_at FROM vouchers WHERE {} AND code IN ({})",
        crate::vouchers::usable_at_site_params(&mut params),
        params.list(first_use.len())
    );
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(site_id.to_string())
        .bind(site_id.to_string());
    for code in first_use.keys() {
        q = q.bind(code.to_string());
    }
    let mut due: Vec<(String, Option<i64>, i64)> = Vec::new();
    for row in q.fetch_all(&mut *tx).await? {
        let code: String = row.try_get("code")?;
        let stored: Option<i64> = row.try_get("activated_at")?;
        if let Some(at) = first_use_to_store(stored, first_use[code.as_str()]) {
            due.push((code, stored, at));
        }
    }
    let mut changes = Vec::new();
    for (code, stored, at) in due {
        let sql = match stored {
            None => format!(
                "UPDATE vouchers SET activated_at = $1, status = $2 WHERE code = $3 AND activated_at IS NULL \
                 AND {} RETURNING {}",
                lifecycle::applies_sql("status", Event::FirstUse),
                crate::vouchers::RECORD_COLUMNS
            ),
            // Only an active one: `metered::apply` decides next whether its validity ended
            // with the earlier start; an ended voucher stays as it ended.
            Some(_) => format!(
                "UPDATE vouchers SET activated_at = $1 WHERE code = $3 AND activated_at > $1 \
                 AND status = $2 RETURNING {}",
                crate::vouchers::RECORD_COLUMNS
            ),
        };
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(at)
            .bind(State::Active.as_str())
            .bind(&code)
            .fetch_all(&mut *tx)
            .await?
            .into_iter()
            .next();
        let Some(row) = row else { continue };
        let voucher = crate::vouchers::record_from_row(&row)?;
        changes.push((
            voucher.scope(),
            ChangeOp::Upsert(Item::Voucher(voucher.item())),
        ));
    }
    Ok(changes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Whatever order sites deliver their first uses in, the stored one ends as the
        /// earliest, and a later one never moves it.
        #[test]
        fn the_first_use_stored_is_the_earliest_delivered(
            seen in proptest::collection::vec(-1_000_000i64..1_000_000, 1..8),
        ) {
            let mut stored = None;
            for &at in &seen {
                let before = stored;
                if let Some(new) = first_use_to_store(stored, at) {
                    prop_assert!(before.is_none_or(|b| new < b));
                    stored = Some(new);
                }
            }
            prop_assert_eq!(stored, seen.iter().copied().min());
        }
    }
}
