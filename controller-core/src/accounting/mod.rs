//! Accounting ingest: batches from agents are stored durably ([`store_group`]), then folded
//! into the usage ledger exactly once ([`fold`]).

use crate::db::{Db, DbError, now_ms};
use mikrobill_protocol::accounting::AccountingRecord;
use mikrobill_protocol::messages::MAX_ACCOUNTING_BATCH;

mod activation;
pub mod fold;
pub mod folder;
pub mod writer;

pub use activation::first_use_to_store;

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

/// Serialises this process's SQLite writers of accounting, stores and folds ([`sqlite_writer`]).
static SQLITE_INGEST: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// One agent's batch: the site its certificate names and the records it sent.
#[derive(Debug, Clone, Copy)]
pub struct Batch<'a> {
    /// The site the batch comes from.
    pub site_id: &'a str,
    /// Its records.
    pub records: &'a [AccountingRecord],
}

/// Stores a batch for `site_id` and folds it into the usage ledger before returning; records
/// seen before are skipped. For callers that read the ledger next (the demo's history, tests);
/// the edge stores through [`writer::Ingester`], which folds in the background.
pub async fn ingest(
    db: &Db,
    site_id: &str,
    records: &[AccountingRecord],
) -> Result<IngestOutcome, IngestError> {
    let outcomes = ingest_group(db, &[Batch { site_id, records }]).await?;
    Ok(outcomes[0])
}

/// [`store_group`], then folds until nothing stored is left unfolded ([`fold::fold_until_current`]).
pub async fn ingest_group(
    db: &Db,
    batches: &[Batch<'_>],
) -> Result<Vec<IngestOutcome>, IngestError> {
    let outcomes = store_group(db, batches).await?;
    fold::fold_until_current(db).await?;
    Ok(outcomes)
}

/// Stores several batches, of one site or many, in one transaction, and returns each one's
/// outcome in order; records seen before (in an earlier transaction or an earlier batch of the
/// group) are skipped unless they carry higher counters ([`insert_records`]). Nothing is
/// stored if any part fails. Once this returns the records are
/// durable and the agent may forget them; the usage ledger learns of them in a later fold
/// ([`fold`]), which writes a session's readings from many groups as one row.
pub async fn store_group(
    db: &Db,
    batches: &[Batch<'_>],
) -> Result<Vec<IngestOutcome>, IngestError> {
    for batch in batches {
        validate(batch.records)?;
    }
    let now = now_ms();
    let mut site_ids: Vec<&str> = batches.iter().map(|b| b.site_id).collect();
    site_ids.sort_unstable();
    site_ids.dedup();
    // SQLite has one writer: stores and folds queue here in arrival order rather than in
    // SQLite's busy handler, which sleeps and retries and left the writer idle between them
    // (four sites at once ingested half as fast as one).
    let _one_writer = sqlite_writer(db).await;
    let mut tx = db.begin().await?;
    // Numbering a site's group takes its row: the site's groups commit in the order of their
    // numbers, and taken in site order two groups naming the same sites wait, never deadlock.
    let mut seqs = std::collections::HashMap::with_capacity(site_ids.len());
    for site_id in site_ids {
        // RETURNING is read to the end (`fetch_all`): see tests/tests/returning_statements.rs.
        let seq: i64 = sqlx::query_scalar(
            "INSERT INTO accounting_stored (site_id, seq) VALUES ($1, 1) ON CONFLICT (site_id) \
             DO UPDATE SET seq = accounting_stored.seq + 1 RETURNING seq",
        )
        .bind(site_id)
        .fetch_all(&mut *tx)
        .await?
        .into_iter()
        .next()
        .ok_or_else(|| IngestError::Db(DbError::Sqlx(sqlx::Error::RowNotFound)))?;
        if seq == 1 {
            // The site's first group: its folded mark starts before it.
            sqlx::query(
                "INSERT INTO accounting_folded (site_id, seq) VALUES ($1, 0) \
                 ON CONFLICT (site_id) DO NOTHING",
            )
            .bind(site_id)
            .execute(&mut *tx)
            .await?;
        }
        seqs.insert(site_id, seq);
    }
    let mut outcomes = Vec::with_capacity(batches.len());
    for batch in batches {
        let inserted = insert_records(&mut tx, db.backend, batch, seqs[batch.site_id], now).await?;
        outcomes.push(IngestOutcome {
            inserted,
            duplicates: batch.records.len() as u32 - inserted,
        });
    }
    tx.commit().await?;
    Ok(outcomes)
}

/// Holds SQLite's one writer for this process (`None` on PostgreSQL).
pub(crate) async fn sqlite_writer(db: &Db) -> Option<tokio::sync::MutexGuard<'static, ()>> {
    match db.backend {
        crate::db::Backend::Sqlite => Some(SQLITE_INGEST.lock().await),
        crate::db::Backend::Postgres => None,
    }
}

/// Inserts one batch's records as part of the site's group `seq`; returns how many rows it
/// wrote. A record stored before is skipped, unless this copy carries higher counters (a NAS
/// that repeats a session time with more octets): then its stored row takes them and moves to
/// group `seq`, so the fold raises the session's highs as it would have for a new record.
async fn insert_records(
    tx: &mut sqlx::AnyConnection,
    backend: crate::db::Backend,
    batch: &Batch<'_>,
    seq: i64,
    now: i64,
) -> Result<u32, IngestError> {
    let max = match backend {
        crate::db::Backend::Sqlite => "MAX",
        crate::db::Backend::Postgres => "GREATEST",
    };
    let records = distinct(batch.records);
    let mut inserted = 0u64;
    for chunk in records.chunks(crate::db::params::rows_per_statement(18)) {
        let sql = format!(
            "INSERT INTO accounting_records (site_id, record_id, nas_identifier, nas_ip, session_id, username, status, \
             event_time, session_time_secs, input_octets, output_octets, input_packets, output_packets, terminate_cause, \
             framed_ip, calling_station_id, received_at, stored_seq) VALUES {} \
             ON CONFLICT (site_id, record_id) DO UPDATE SET \
             session_time_secs = {max}(accounting_records.session_time_secs, excluded.session_time_secs), \
             input_octets = {max}(accounting_records.input_octets, excluded.input_octets), \
             output_octets = {max}(accounting_records.output_octets, excluded.output_octets), \
             input_packets = {max}(accounting_records.input_packets, excluded.input_packets), \
             output_packets = {max}(accounting_records.output_packets, excluded.output_packets), \
             event_time = excluded.event_time, received_at = excluded.received_at, \
             stored_seq = excluded.stored_seq \
             WHERE excluded.session_time_secs > accounting_records.session_time_secs \
             OR excluded.input_octets > accounting_records.input_octets \
             OR excluded.output_octets > accounting_records.output_octets",
            crate::db::params::Params::new(backend).rows(chunk.len(), 18)
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
                .bind(now)
                .bind(seq);
        }
        inserted += q.execute(&mut *tx).await?.rows_affected();
    }
    Ok(inserted as u32)
}

/// A batch's records with each id once: PostgreSQL refuses an upsert that writes one row
/// twice. A repeated id keeps its first record with each counter at its highest.
fn distinct(records: &[AccountingRecord]) -> std::borrow::Cow<'_, [AccountingRecord]> {
    let mut seen = std::collections::HashMap::with_capacity(records.len());
    let mut repeats = false;
    for (i, r) in records.iter().enumerate() {
        repeats |= seen.insert(r.id, i).is_some();
    }
    if !repeats {
        return std::borrow::Cow::Borrowed(records);
    }
    let mut out: Vec<AccountingRecord> = Vec::with_capacity(seen.len());
    let mut at: std::collections::HashMap<_, usize> = std::collections::HashMap::new();
    for r in records {
        match at.get(&r.id) {
            Some(&i) => {
                let kept = &mut out[i];
                kept.session_time_secs = kept.session_time_secs.max(r.session_time_secs);
                kept.input_octets = kept.input_octets.max(r.input_octets);
                kept.output_octets = kept.output_octets.max(r.output_octets);
                kept.input_packets = kept.input_packets.max(r.input_packets);
                kept.output_packets = kept.output_packets.max(r.output_packets);
            }
            None => {
                at.insert(r.id, out.len());
                out.push(r.clone());
            }
        }
    }
    std::borrow::Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use mikrobill_protocol::accounting::{AcctStatus, RecordId};

    fn reading(session: &str, secs: u64, octets: u64) -> AccountingRecord {
        AccountingRecord {
            id: RecordId::derive("nas", session, AcctStatus::InterimUpdate, secs),
            nas_identifier: "nas".into(),
            nas_ip: None,
            session_id: session.into(),
            username: "u".into(),
            status: AcctStatus::InterimUpdate,
            event_time_ms: 1,
            session_time_secs: secs,
            input_octets: octets,
            output_octets: octets / 2,
            input_packets: 1,
            output_packets: 1,
            terminate_cause: None,
            framed_ip: None,
            calling_station_id: None,
        }
    }

    #[test]
    fn a_repeated_id_is_written_once_with_its_highest_counters() {
        let plain = vec![reading("a", 60, 10), reading("b", 60, 10)];
        assert!(matches!(distinct(&plain), std::borrow::Cow::Borrowed(_)));
        let repeated = vec![
            reading("a", 60, 10),
            reading("b", 60, 5),
            reading("a", 60, 30),
            reading("a", 60, 20),
        ];
        let out = distinct(&repeated);
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].id, repeated[0].id);
        assert_eq!((out[0].input_octets, out[0].output_octets), (30, 15));
        assert_eq!(out[1].input_octets, 5);
    }
}
