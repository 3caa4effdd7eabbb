//! Folding stored accounting into the usage ledger: the records of every site's groups stored
//! since its last fold become session highs, days, months, customer months and voucher state,
//! and the site's folded mark moves past them, in one transaction, so every stored record is
//! folded exactly once whatever fails or runs twice.
//!
//! A fold holds up to [`FOLD_RECORDS`] records of many sites: a session's readings among them
//! cost one row of each kind instead of one per reading, so a drain after an outage (dozens
//! of readings per session) folds for less than its records one by one. Sites are locked
//! with `FOR UPDATE SKIP LOCKED` on PostgreSQL, so replicas folding at once share the sites
//! instead of waiting on each other.

use super::{IngestError, activation};
use crate::db::params::Params;
use crate::db::{Backend, Db, DbError, now_ms};
use crate::usage::store::SiteRecords;
use mikrobill_protocol::accounting::{AccountingRecord, AcctStatus, RecordId};
use sqlx::Row;
use std::collections::{BTreeMap, BTreeSet};

/// Most records one fold reads: large enough to hold several readings of every session of a
/// busy site, small enough to keep a fold's transaction well under a second here.
pub const FOLD_RECORDS: usize = 20_000;

/// What one fold did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FoldOutcome {
    /// Records folded into the ledger.
    pub records: u64,
    /// Sites whose folded mark moved.
    pub sites: u64,
    /// Whether sites were left pending (the budget ran out, or another fold held them).
    pub more: bool,
    /// The last site folded: the next fold starts after it, so no site waits behind the
    /// others' backlog.
    pub last_site: Option<String>,
}

/// A site with stored groups past its folded mark.
#[derive(Debug)]
struct Pending {
    site_id: String,
    /// The site's last stored group, as read at the start of the fold.
    stored: i64,
}

/// Folds what is stored and not yet folded, up to `max_records` records, starting with the
/// first pending site after `after` (and wrapping round).
pub async fn fold_pending(
    db: &Db,
    max_records: usize,
    after: Option<&str>,
) -> Result<FoldOutcome, IngestError> {
    fold(db, max_records, after, Sites::All).await
}

/// [`fold_pending`] leaving out the sites in `held` (those whose fold fails on its own, so
/// they do not hold back every other site's ledger).
pub async fn fold_pending_except(
    db: &Db,
    max_records: usize,
    after: Option<&str>,
    held: &BTreeSet<String>,
) -> Result<FoldOutcome, IngestError> {
    fold(db, max_records, after, Sites::Except(held)).await
}

/// Folds one site's pending records, up to `max_records` of them.
pub async fn fold_site(
    db: &Db,
    site_id: &str,
    max_records: usize,
) -> Result<FoldOutcome, IngestError> {
    fold(db, max_records, None, Sites::Only(site_id)).await
}

/// Which pending sites a fold takes.
enum Sites<'a> {
    /// Every pending site.
    All,
    /// Every pending site but these.
    Except(&'a BTreeSet<String>),
    /// One site, read alone: the folder tries every pending site this way after a failure.
    Only(&'a str),
}

async fn fold(
    db: &Db,
    max_records: usize,
    after: Option<&str>,
    sites: Sites<'_>,
) -> Result<FoldOutcome, IngestError> {
    let now = now_ms();
    // Usage is credited to the operator's local days.
    let billing = crate::settings::billing(db).await.map_err(|e| match e {
        crate::error::DomainError::Db(db) => IngestError::Db(db),
        other => IngestError::Db(DbError::Sqlx(sqlx::Error::Protocol(other.to_string()))),
    })?;
    let _one_writer = super::sqlite_writer(db).await;
    let mut tx = db.begin().await?;
    let only = match sites {
        Sites::Only(site) => Some(site),
        Sites::All | Sites::Except(_) => None,
    };
    let mut pending = pending(&mut tx, only).await?;
    if pending.is_empty() {
        if only.is_none() {
            metrics::gauge!("mikrobill_accounting_fold_pending_sites").set(0.0);
        }
        return Ok(FoldOutcome::default());
    }
    if let Sites::Except(held) = sites {
        pending.retain(|p| !held.contains(&p.site_id));
        if pending.is_empty() {
            return Ok(FoldOutcome::default());
        }
    }
    // Round robin: start after the last site folded.
    if let Some(after) = after {
        let split = pending.partition_point(|p| p.site_id.as_str() <= after);
        pending.rotate_left(split);
    }
    let mut out = FoldOutcome::default();
    let folded = lock(&mut tx, db.backend, &pending).await?;
    out.more = folded.len() < pending.len();
    let mut sites: Vec<(String, i64, Vec<AccountingRecord>)> = Vec::new();
    let mut budget = max_records.max(1);
    let mut cut_short = 0;
    for p in &pending {
        let Some(&mark) = folded.get(p.site_id.as_str()) else {
            continue;
        };
        if mark >= p.stored {
            continue;
        }
        if budget == 0 {
            out.more = true;
            break;
        }
        let (records, upto) = load(&mut tx, &p.site_id, mark, p.stored, budget).await?;
        if upto < p.stored {
            out.more = true;
            cut_short += 1;
        }
        budget = budget.saturating_sub(records.len());
        sites.push((p.site_id.clone(), upto, records));
    }
    if sites.is_empty() {
        return Ok(out);
    }
    let records: usize = sites.iter().map(|(_, _, r)| r.len()).sum();
    fold_into_ledger(&mut tx, &sites, &billing, now).await?;
    for (site_id, upto, _) in &sites {
        sqlx::query("UPDATE accounting_folded SET seq = $1 WHERE site_id = $2")
            .bind(*upto)
            .bind(site_id.as_str())
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    out.records = records as u64;
    out.sites = sites.len() as u64;
    out.last_site = sites.last().map(|(s, _, _)| s.clone());
    // Sites this fold did not finish, or did not reach: an estimate, another fold may be
    // finishing them meanwhile.
    let unfinished = cut_short + pending.len() - sites.len();
    metrics::gauge!("mikrobill_accounting_fold_pending_sites").set(unfinished as f64);
    metrics::counter!("mikrobill_accounting_folds_total").increment(1);
    metrics::counter!("mikrobill_accounting_folded_records_total").increment(out.records);
    Ok(out)
}

/// Folds until nothing stored is left unfolded, waiting out folds that other tasks or
/// replicas hold; for callers that read the ledger next.
pub async fn fold_until_current(db: &Db) -> Result<(), IngestError> {
    let mut cursor: Option<String> = None;
    loop {
        let out = fold_pending(db, FOLD_RECORDS, cursor.as_deref()).await?;
        if out.sites > 0 {
            cursor = out.last_site;
            continue;
        }
        if unfolded_sites(db).await? == 0 {
            return Ok(());
        }
        // Another fold holds the rest; it commits soon.
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

/// How many sites have stored records not yet folded (committed folds only): 0 once the
/// ledger holds everything stored.
pub async fn unfolded_sites(db: &Db) -> Result<usize, DbError> {
    Ok(unfolded_site_ids(db).await?.len())
}

/// The sites with stored records not yet folded (committed folds only), by id.
pub async fn unfolded_site_ids(db: &Db) -> Result<Vec<String>, DbError> {
    let mut conn = db.pool.acquire().await?;
    Ok(pending(&mut conn, None)
        .await?
        .into_iter()
        .map(|p| p.site_id)
        .collect())
}

/// The sites with stored groups past their folded mark, by site id (only `only`, if given).
async fn pending(
    conn: &mut sqlx::AnyConnection,
    only: Option<&str>,
) -> Result<Vec<Pending>, DbError> {
    let sql = format!(
        "SELECT s.site_id, s.seq FROM accounting_stored s \
         JOIN accounting_folded f ON f.site_id = s.site_id \
         WHERE s.seq > f.seq{} ORDER BY s.site_id",
        if only.is_some() {
            " AND s.site_id = $1"
        } else {
            ""
        }
    );
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
    if let Some(site) = only {
        q = q.bind(site);
    }
    let rows = q.fetch_all(&mut *conn).await?;
    rows.iter()
        .map(|row| {
            Ok(Pending {
                site_id: row.try_get("site_id")?,
                stored: row.try_get("seq")?,
            })
        })
        .collect()
}

/// Takes the folded marks of `pending` and returns them by site: on PostgreSQL only those no
/// other fold holds, in site order (the order every fold takes them in).
async fn lock(
    tx: &mut sqlx::AnyConnection,
    backend: Backend,
    pending: &[Pending],
) -> Result<BTreeMap<String, i64>, DbError> {
    let mut ids: Vec<&str> = pending.iter().map(|p| p.site_id.as_str()).collect();
    ids.sort_unstable();
    let mut marks = BTreeMap::new();
    for chunk in ids.chunks(1000) {
        let mut p = Params::new(backend);
        let sql = format!(
            "SELECT site_id, seq FROM accounting_folded WHERE site_id IN ({}) ORDER BY site_id{}",
            p.list(chunk.len()),
            match backend {
                Backend::Postgres => " FOR UPDATE SKIP LOCKED",
                Backend::Sqlite => "",
            }
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for id in chunk {
            q = q.bind(id.to_string());
        }
        for row in q.fetch_all(&mut *tx).await? {
            marks.insert(row.try_get("site_id")?, row.try_get("seq")?);
        }
    }
    Ok(marks)
}

/// Loads a site's records of the groups after `mark` up to `stored`, at most about `budget`
/// of them but always whole groups; returns them with the last group they complete.
async fn load(
    tx: &mut sqlx::AnyConnection,
    site_id: &str,
    mark: i64,
    stored: i64,
    budget: usize,
) -> Result<(Vec<AccountingRecord>, i64), DbError> {
    let mut records = select(tx, site_id, mark, stored, Some(budget)).await?;
    if records.len() < budget {
        // Every group up to `stored` is here (groups whose records were all stored before
        // hold none).
        return Ok((records.into_iter().map(|(r, _)| r).collect(), stored));
    }
    let last = records.last().map(|(_, seq)| *seq).unwrap_or(stored);
    let first = records.first().map(|(_, seq)| *seq).unwrap_or(stored);
    if first == last {
        // One group larger than the budget: take it whole.
        records = select(tx, site_id, last - 1, last, None).await?;
        return Ok((records.into_iter().map(|(r, _)| r).collect(), last));
    }
    // The last group may be cut short by the limit: it waits for the next fold.
    records.retain(|(_, seq)| *seq < last);
    Ok((records.into_iter().map(|(r, _)| r).collect(), last - 1))
}

/// A site's records of the groups in `(after, upto]`, in group order, with their group.
async fn select(
    tx: &mut sqlx::AnyConnection,
    site_id: &str,
    after: i64,
    upto: i64,
    limit: Option<usize>,
) -> Result<Vec<(AccountingRecord, i64)>, DbError> {
    let sql = format!(
        "SELECT record_id, nas_identifier, nas_ip, session_id, username, status, event_time, \
         session_time_secs, input_octets, output_octets, input_packets, output_packets, \
         terminate_cause, framed_ip, calling_station_id, stored_seq FROM accounting_records \
         WHERE site_id = $1 AND stored_seq > $2 AND stored_seq <= $3 ORDER BY stored_seq{}",
        if limit.is_some() { " LIMIT $4" } else { "" }
    );
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(site_id)
        .bind(after)
        .bind(upto);
    if let Some(limit) = limit {
        q = q.bind(limit as i64);
    }
    q.fetch_all(&mut *tx)
        .await?
        .iter()
        .map(|row| Ok((record_from_row(row)?, row.try_get("stored_seq")?)))
        .collect()
}

/// A stored record as the agent sent it. Ingest validated every field before storing it, so
/// a value that does not read back means the row was changed by hand: the fold stops with an
/// error instead of crediting wrong usage.
fn record_from_row(row: &sqlx::any::AnyRow) -> Result<AccountingRecord, DbError> {
    let bad = |what: &str| {
        DbError::Sqlx(sqlx::Error::Protocol(format!(
            "accounting record with an unreadable {what}"
        )))
    };
    let ip = |col: &str| -> Result<Option<std::net::Ipv4Addr>, DbError> {
        row.try_get::<Option<String>, _>(col)?
            .map(|s| s.parse().map_err(|_| bad(col)))
            .transpose()
    };
    let count = |col: &str| -> Result<u64, DbError> {
        u64::try_from(row.try_get::<i64, _>(col)?).map_err(|_| bad(col))
    };
    Ok(AccountingRecord {
        id: RecordId::from_hex(&row.try_get::<String, _>("record_id")?)
            .ok_or_else(|| bad("record_id"))?,
        nas_identifier: row.try_get("nas_identifier")?,
        nas_ip: ip("nas_ip")?,
        session_id: row.try_get("session_id")?,
        username: row.try_get("username")?,
        status: AcctStatus::from_name(&row.try_get::<String, _>("status")?)
            .ok_or_else(|| bad("status"))?,
        event_time_ms: row.try_get("event_time")?,
        session_time_secs: count("session_time_secs")?,
        input_octets: count("input_octets")?,
        output_octets: count("output_octets")?,
        input_packets: count("input_packets")?,
        output_packets: count("output_packets")?,
        terminate_cause: row
            .try_get::<Option<i64>, _>("terminate_cause")?
            .map(|c| u32::try_from(c).map_err(|_| bad("terminate_cause")))
            .transpose()?,
        framed_ip: ip("framed_ip")?,
        calling_station_id: row.try_get("calling_station_id")?,
    })
}

/// Writes what `sites`' records add to the ledger: usage, vouchers' first use and fleet-wide
/// state, and the sync of every voucher that changed.
async fn fold_into_ledger(
    tx: &mut sqlx::AnyConnection,
    sites: &[(String, i64, Vec<AccountingRecord>)],
    billing: &crate::settings::BillingSettings,
    now: i64,
) -> Result<(), IngestError> {
    let sites: Vec<SiteRecords<'_>> = sites
        .iter()
        .map(|(site_id, _, records)| SiteRecords {
            site_id,
            records: records.iter().collect(),
        })
        .collect();
    crate::usage::store::apply(tx, &sites, billing.utc_offset_minutes).await?;
    let first_uses: Vec<(&str, BTreeMap<&str, i64>)> = sites
        .iter()
        .map(|s| (s.site_id, activation::first_use(&s.records)))
        .collect();
    let mut codes: Vec<&str> = first_uses
        .iter()
        .flat_map(|(_, f)| f.keys().copied())
        .collect();
    codes.sort_unstable();
    codes.dedup();
    let backend = Backend::of(tx);
    crate::vouchers::metered::lock(tx, backend, &codes).await?;
    let mut changes = Vec::new();
    for (site_id, first_use) in &first_uses {
        changes.extend(activation::activate_vouchers(tx, site_id, first_use).await?);
    }
    changes.extend(
        crate::vouchers::metered::apply(tx, &codes, billing.voucher_conflict_policy, now).await?,
    );
    // Every voucher row is written before the change log is locked, the order all voucher
    // writers follow, so two writers never wait on each other's locks.
    crate::vouchers::sync(tx, changes).await?;
    Ok(())
}
