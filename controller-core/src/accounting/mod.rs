//! Accounting ingest: batches from agents become ledger rows exactly once.

use crate::db::{Db, DbError, now_ms};
use crate::vouchers::State;
use crate::vouchers::lifecycle::{self, Event};
use mikrobill_protocol::accounting::{AccountingRecord, AcctStatus};
use mikrobill_protocol::items::Item;
use mikrobill_protocol::messages::ChangeOp;
use mikrobill_protocol::messages::MAX_ACCOUNTING_BATCH;
use sqlx::Row;

pub mod writer;

/// Longest text field accepted (RADIUS attributes hold at most 253 octets).
const MAX_TEXT: usize = 253;

/// Errors of ingest.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// Storage failed; nothing was committed, the agent should retry.
    #[error(transparent)]
    Db(#[from] DbError),
    /// The batch is malformed; retrying it will not help.
    #[error("invalid accounting batch: {0}")]
    Invalid(String),
    /// More is queued than the controller stores before the agent's reply timeout; nothing
    /// was stored, the agent should send again after a pause.
    #[error("the controller is busy: {queued} accounting records wait to be stored")]
    Busy {
        /// Records queued in the batch's lane when it was refused.
        queued: usize,
    },
}

impl From<sqlx::Error> for IngestError {
    fn from(e: sqlx::Error) -> Self {
        IngestError::Db(DbError::Sqlx(e))
    }
}

/// Outcome of one ingested batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IngestOutcome {
    /// Rows newly stored.
    pub inserted: u32,
    /// Records already stored by an earlier delivery.
    pub duplicates: u32,
}

fn validate(records: &[AccountingRecord]) -> Result<(), IngestError> {
    if records.len() > MAX_ACCOUNTING_BATCH {
        return Err(IngestError::Invalid(format!(
            "{} records exceed the batch limit of {MAX_ACCOUNTING_BATCH}",
            records.len()
        )));
    }
    for r in records {
        for (field, value) in [
            ("nas_identifier", &r.nas_identifier),
            ("session_id", &r.session_id),
            ("username", &r.username),
        ] {
            if value.len() > MAX_TEXT {
                return Err(IngestError::Invalid(format!(
                    "record {}: {field} longer than {MAX_TEXT} bytes",
                    r.id.to_hex()
                )));
            }
        }
        if r.calling_station_id
            .as_ref()
            .is_some_and(|c| c.len() > MAX_TEXT)
        {
            return Err(IngestError::Invalid(format!(
                "record {}: calling_station_id too long",
                r.id.to_hex()
            )));
        }
        let counters = [
            r.session_time_secs,
            r.input_octets,
            r.output_octets,
            r.input_packets,
            r.output_packets,
        ];
        if counters.iter().any(|&c| c > i64::MAX as u64) {
            return Err(IngestError::Invalid(format!(
                "record {}: counter out of range",
                r.id.to_hex()
            )));
        }
    }
    Ok(())
}

/// Serialises this process's SQLite ingests (see [`ingest_group`]).
static SQLITE_INGEST: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// One agent's batch: the site its certificate names and the records it sent.
#[derive(Debug, Clone, Copy)]
pub struct Batch<'a> {
    /// The site the batch comes from.
    pub site_id: &'a str,
    /// Its records.
    pub records: &'a [AccountingRecord],
}

/// Stores a batch for `site_id` in one transaction; records seen before are skipped.
pub async fn ingest(
    db: &Db,
    site_id: &str,
    records: &[AccountingRecord],
) -> Result<IngestOutcome, IngestError> {
    let outcomes = ingest_group(db, &[Batch { site_id, records }]).await?;
    Ok(outcomes[0])
}

/// Stores several batches, of one site or many, in one transaction, and returns each one's
/// outcome in order; records seen before (in an earlier transaction or an earlier batch of the
/// group) are skipped. Nothing is stored if any part fails. The usage ledger folds the group as
/// a whole, so a session's readings in several batches cost one row write instead of one each,
/// and the commit (a log write and, on SQLite, the pages it dirtied) is paid once.
pub async fn ingest_group(
    db: &Db,
    batches: &[Batch<'_>],
) -> Result<Vec<IngestOutcome>, IngestError> {
    for batch in batches {
        validate(batch.records)?;
    }
    let now = now_ms();
    // Usage is credited to the operator's local days.
    let billing = crate::settings::billing(db).await.map_err(|e| match e {
        // The agent retries: its records are fine, the settings could not be read.
        crate::error::DomainError::Db(db) => IngestError::Db(db),
        other => IngestError::Db(DbError::Sqlx(sqlx::Error::Protocol(other.to_string()))),
    })?;
    let offset_min = billing.utc_offset_minutes;
    let mut by_site: std::collections::BTreeMap<&str, Vec<&AccountingRecord>> =
        std::collections::BTreeMap::new();
    for batch in batches {
        by_site
            .entry(batch.site_id)
            .or_default()
            .extend(batch.records.iter());
    }
    let sites: Vec<crate::usage::store::SiteRecords<'_>> = by_site
        .into_iter()
        .map(|(site_id, records)| crate::usage::store::SiteRecords { site_id, records })
        .collect();
    let site_ids: Vec<&str> = sites.iter().map(|s| s.site_id).collect();
    // SQLite has one writer: groups queue here in arrival order rather than in SQLite's busy
    // handler, which sleeps and retries and left the writer idle between them (four sites at
    // once ingested half as fast as one).
    let _one_writer = match db.backend {
        crate::db::Backend::Sqlite => Some(SQLITE_INGEST.lock().await),
        crate::db::Backend::Postgres => None,
    };
    let mut tx = db.begin().await?;
    crate::usage::store::lock_sites(&mut tx, db.backend, &site_ids).await?;
    let mut outcomes = Vec::with_capacity(batches.len());
    for batch in batches {
        let inserted = insert_records(&mut tx, db.backend, batch, now).await?;
        outcomes.push(IngestOutcome {
            inserted,
            duplicates: batch.records.len() as u32 - inserted,
        });
    }
    crate::usage::store::apply(&mut tx, &sites, offset_min).await?;
    let first_uses: Vec<(&str, std::collections::BTreeMap<&str, i64>)> = sites
        .iter()
        .map(|s| (s.site_id, first_use(&s.records)))
        .collect();
    let mut codes: Vec<&str> = first_uses
        .iter()
        .flat_map(|(_, f)| f.keys().copied())
        .collect();
    codes.sort_unstable();
    codes.dedup();
    crate::vouchers::metered::lock(&mut tx, db.backend, &codes).await?;
    let mut changes = Vec::new();
    for (site_id, first_use) in &first_uses {
        changes.extend(activate_vouchers(&mut tx, site_id, first_use).await?);
    }
    changes.extend(
        crate::vouchers::metered::apply(&mut tx, &codes, billing.voucher_conflict_policy, now)
            .await?,
    );
    // Every voucher row is written before the change log is locked, the order all voucher
    // writers follow, so two writers never wait on each other's locks.
    crate::vouchers::sync(&mut tx, changes).await?;
    tx.commit().await?;
    Ok(outcomes)
}

/// Inserts one batch's records, skipping those stored before; returns how many were new.
async fn insert_records(
    tx: &mut sqlx::AnyConnection,
    backend: crate::db::Backend,
    batch: &Batch<'_>,
    now: i64,
) -> Result<u32, IngestError> {
    let mut inserted = 0u64;
    for chunk in batch
        .records
        .chunks(crate::db::params::rows_per_statement(17))
    {
        let sql = format!(
            "INSERT INTO accounting_records (site_id, record_id, nas_identifier, nas_ip, session_id, username, status, \
             event_time, session_time_secs, input_octets, output_octets, input_packets, output_packets, terminate_cause, \
             framed_ip, calling_station_id, received_at) VALUES {} ON CONFLICT (site_id, record_id) DO NOTHING",
            crate::db::params::Params::new(backend).rows(chunk.len(), 17)
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for r in chunk {
            q = q
                .bind(batch.site_id.to_string())
                .bind(r.id.to_hex())
                .bind(r.nas_identifier.clone())
                .bind(r.nas_ip.map(|ip| ip.to_string()))
                .bind(r.session_id.clone())
                .bind(r.username.clone())
                .bind(r.status.as_str())
                .bind(r.event_time_ms)
                .bind(r.session_time_secs as i64)
                .bind(r.input_octets as i64)
                .bind(r.output_octets as i64)
                .bind(r.input_packets as i64)
                .bind(r.output_packets as i64)
                .bind(r.terminate_cause.map(i64::from))
                .bind(r.framed_ip.map(|ip| ip.to_string()))
                .bind(r.calling_station_id.clone())
                .bind(now);
        }
        inserted += q.execute(&mut *tx).await?.rows_affected();
    }
    Ok(inserted as u32)
}

/// The earliest event of each account named by a usage reading in `records`, by name.
fn first_use<'a>(records: &[&'a AccountingRecord]) -> std::collections::BTreeMap<&'a str, i64> {
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
async fn activate_vouchers(
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
