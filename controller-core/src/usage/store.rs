//! Loads the highs of the sessions a fold's records name and stores what [`fold`] made of
//! them, inside the accounting fold's transaction (`accounting::fold`), so the usage ledger
//! (and its per-customer months, [`super::customers`]) moves exactly when the fold's marks do.

use super::fold::{Counters, DayUsage, Folded, Reading, SessionHigh, SessionKey, fold};
use crate::db::DbError;
use crate::db::params::{Params, rows_per_statement};
use mikrobill_protocol::accounting::{AccountingRecord, AcctStatus};
use sqlx::Row;
use std::collections::{BTreeMap, HashMap};

/// Sessions named per query (a batch of 500 records names at most 500).
const CHUNK: usize = 1000;

/// One site's records in an ingest group, from one or several of its batches, in any order.
#[derive(Debug)]
pub struct SiteRecords<'a> {
    /// The site the agent's certificate names.
    pub site_id: &'a str,
    /// Its records in the group.
    pub records: Vec<&'a AccountingRecord>,
}

/// The readings in a batch: Start, Interim-Update and Stop of named accounts.
pub fn readings(records: &[&AccountingRecord]) -> Vec<Reading> {
    records
        .iter()
        .filter(|r| {
            matches!(
                r.status,
                AcctStatus::Start | AcctStatus::InterimUpdate | AcctStatus::Stop
            ) && !r.username.is_empty()
        })
        .map(|r| Reading {
            key: SessionKey {
                nas: r.nas_identifier.clone(),
                session: r.session_id.clone(),
            },
            username: r.username.clone(),
            at: r.event_time_ms,
            counters: Counters {
                // Validation has already refused counters beyond i64.
                secs: r.session_time_secs as i64,
                bytes_in: r.input_octets as i64,
                bytes_out: r.output_octets as i64,
            },
        })
        .collect()
}

/// Folds a group's records into the ledger inside `tx`, which holds the sites' folded marks
/// (`accounting::fold`), so no other fold credits the same growth: each site's
/// sessions, days and months, then the months of accounts and customers over every site of the
/// group in one pass, so rows shared between sites are written once and in key order.
pub async fn apply(
    tx: &mut sqlx::AnyConnection,
    sites: &[SiteRecords<'_>],
    offset_min: i32,
) -> Result<(), DbError> {
    let mut months: BTreeMap<(i64, String), DayUsage> = BTreeMap::new();
    for site in sites {
        let readings = readings(&site.records);
        if readings.is_empty() {
            continue;
        }
        let known = load(tx, site.site_id, &readings).await?;
        let folded = fold(&known, &readings, offset_min);
        let site_months = store(
            tx,
            site.site_id,
            &folded,
            &places(&site.records),
            offset_min,
        )
        .await?;
        for (month, user, u) in site_months {
            let m = months.entry((month, user.to_string())).or_default();
            m.used.add(u.used);
            m.sessions += u.sessions;
        }
    }
    if months.is_empty() {
        return Ok(());
    }
    let months: Vec<_> = months
        .iter()
        .map(|((t, user), u)| (*t, user.as_str(), *u))
        .collect();
    // Per customer and per account, for rankings over whole months.
    super::customers::add_months(tx, &months).await?;
    add_account_months(tx, &months).await
}

/// Where a session is and whether it ended, as a batch tells: kept beside its highs for the
/// live session list, outside the pure fold because it adds no usage.
#[derive(Debug, Default)]
struct Place {
    stopped_at: Option<i64>,
    nas_ip: Option<String>,
    framed_ip: Option<String>,
    calling_station_id: Option<String>,
}

fn places(records: &[&AccountingRecord]) -> HashMap<SessionKey, Place> {
    let mut out: HashMap<SessionKey, Place> = HashMap::new();
    for r in records {
        let p = out
            .entry(SessionKey {
                nas: r.nas_identifier.clone(),
                session: r.session_id.clone(),
            })
            .or_default();
        if r.status == AcctStatus::Stop {
            p.stopped_at = Some(
                p.stopped_at
                    .map_or(r.event_time_ms, |t| t.min(r.event_time_ms)),
            );
        }
        // Any record's address will do: they do not change within a session.
        p.nas_ip = p.nas_ip.take().or(r.nas_ip.map(|ip| ip.to_string()));
        p.framed_ip = p.framed_ip.take().or(r.framed_ip.map(|ip| ip.to_string()));
        p.calling_station_id = p
            .calling_station_id
            .take()
            .or_else(|| r.calling_station_id.clone());
    }
    out
}

async fn load(
    tx: &mut sqlx::AnyConnection,
    site_id: &str,
    readings: &[Reading],
) -> Result<HashMap<SessionKey, SessionHigh>, DbError> {
    let mut ids: Vec<&str> = readings.iter().map(|r| r.key.session.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    let mut known = HashMap::new();
    for chunk in ids.chunks(CHUNK) {
        let mut p = Params::of(tx);
        let sql = format!(
            "SELECT nas_identifier, session_id, username, session_time_secs, input_octets, \
             output_octets, first_at, last_at FROM usage_sessions \
             WHERE site_id = {} AND session_id IN ({})",
            p.one(),
            p.list(chunk.len())
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(site_id.to_string());
        for id in chunk {
            q = q.bind(id.to_string());
        }
        for row in q.fetch_all(&mut *tx).await? {
            known.insert(
                SessionKey {
                    nas: row.try_get("nas_identifier")?,
                    session: row.try_get("session_id")?,
                },
                SessionHigh {
                    username: row.try_get("username")?,
                    counters: Counters {
                        secs: row.try_get("session_time_secs")?,
                        bytes_in: row.try_get("input_octets")?,
                        bytes_out: row.try_get("output_octets")?,
                    },
                    first_at: row.try_get("first_at")?,
                    last_at: row.try_get("last_at")?,
                },
            );
        }
    }
    Ok(known)
}

/// Stores one site's folded sessions, days, months and site days; returns its months for the
/// group's account and customer months.
async fn store<'f>(
    tx: &mut sqlx::AnyConnection,
    site_id: &str,
    f: &'f Folded,
    places: &HashMap<SessionKey, Place>,
    offset_min: i32,
) -> Result<Vec<(i64, &'f str, DayUsage)>, DbError> {
    let sessions: Vec<_> = f.sessions.iter().collect();
    let none = Place::default();
    for chunk in sessions.chunks(rows_per_statement(13)) {
        // A session once stopped stays stopped, whatever order its records arrive in.
        let sql = format!(
            "INSERT INTO usage_sessions (site_id, nas_identifier, session_id, username, \
             session_time_secs, input_octets, output_octets, first_at, last_at, stopped_at, \
             nas_ip, framed_ip, calling_station_id) VALUES {} \
             ON CONFLICT (site_id, session_id, nas_identifier) DO UPDATE SET \
             session_time_secs = excluded.session_time_secs, input_octets = excluded.input_octets, \
             output_octets = excluded.output_octets, first_at = excluded.first_at, \
             last_at = excluded.last_at, \
             stopped_at = COALESCE(usage_sessions.stopped_at, excluded.stopped_at), \
             nas_ip = COALESCE(excluded.nas_ip, usage_sessions.nas_ip), \
             framed_ip = COALESCE(excluded.framed_ip, usage_sessions.framed_ip), \
             calling_station_id = COALESCE(excluded.calling_station_id, usage_sessions.calling_station_id)",
            Params::of(tx).rows(chunk.len(), 13)
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for (k, h) in chunk {
            let p = places.get(k).unwrap_or(&none);
            q = q
                .bind(site_id.to_string())
                .bind(k.nas.clone())
                .bind(k.session.clone())
                .bind(h.username.clone())
                .bind(h.counters.secs)
                .bind(h.counters.bytes_in)
                .bind(h.counters.bytes_out)
                .bind(h.first_at)
                .bind(h.last_at)
                .bind(p.stopped_at)
                .bind(p.nas_ip.clone())
                .bind(p.framed_ip.clone())
                .bind(p.calling_station_id.clone());
        }
        q.execute(&mut *tx).await?;
    }
    let days: Vec<_> = f
        .days
        .iter()
        .map(|((t, user), u)| (*t, user.as_str(), *u))
        .collect();
    add_usage(tx, "usage_daily", "day", site_id, &days).await?;
    // The same growth per local month, for rankings over whole months.
    let mut months: BTreeMap<(i64, &str), DayUsage> = BTreeMap::new();
    for (day, user, u) in &days {
        let m = months
            .entry((crate::stats::local_month_start(*day, offset_min), user))
            .or_default();
        m.used.add(u.used);
        m.sessions += u.sessions;
    }
    let months: Vec<_> = months
        .into_iter()
        .map(|((t, user), u)| (t, user, u))
        .collect();
    add_usage(tx, "usage_monthly", "month", site_id, &months).await?;
    // And per site and day, for site rankings and the chart of all usage.
    let mut site_days: BTreeMap<i64, DayUsage> = BTreeMap::new();
    for (day, _, u) in &days {
        let d = site_days.entry(*day).or_default();
        d.used.add(u.used);
        d.sessions += u.sessions;
    }
    add_site_days(tx, site_id, &site_days).await?;
    Ok(months)
}

/// Adds a batch's `(month start, account, usage)` rows to `usage_account_monthly`, whose
/// rows are the account's months over every site.
async fn add_account_months(
    tx: &mut sqlx::AnyConnection,
    months: &[(i64, &str, DayUsage)],
) -> Result<(), DbError> {
    // Two sites' batches may name the same accounts: rows go in key order, so on PostgreSQL
    // both lock them in the same order instead of deadlocking.
    let mut rows: Vec<_> = months.iter().collect();
    rows.sort_by(|a, b| (a.1, a.0).cmp(&(b.1, b.0)));
    for chunk in rows.chunks(rows_per_statement(7)) {
        let sql = format!(
            "INSERT INTO usage_account_monthly (username, month, session_time_secs, input_octets, \
             output_octets, sessions, octets) VALUES {} ON CONFLICT (username, month) DO UPDATE SET \
             session_time_secs = usage_account_monthly.session_time_secs + excluded.session_time_secs, \
             input_octets = usage_account_monthly.input_octets + excluded.input_octets, \
             output_octets = usage_account_monthly.output_octets + excluded.output_octets, \
             sessions = usage_account_monthly.sessions + excluded.sessions, \
             octets = usage_account_monthly.octets + excluded.octets",
            Params::of(tx).rows(chunk.len(), 7)
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for (month, user, u) in chunk {
            q = q
                .bind(user.to_string())
                .bind(*month)
                .bind(u.used.secs)
                .bind(u.used.bytes_in)
                .bind(u.used.bytes_out)
                .bind(u.sessions)
                .bind(u.used.bytes_in.saturating_add(u.used.bytes_out));
        }
        q.execute(&mut *tx).await?;
    }
    Ok(())
}

/// Adds one site's usage per local day to `usage_site_daily`.
async fn add_site_days(
    tx: &mut sqlx::AnyConnection,
    site_id: &str,
    days: &BTreeMap<i64, DayUsage>,
) -> Result<(), DbError> {
    let rows: Vec<_> = days.iter().collect();
    for chunk in rows.chunks(rows_per_statement(6)) {
        let sql = format!(
            "INSERT INTO usage_site_daily (day, site_id, session_time_secs, input_octets, \
             output_octets, sessions) VALUES {} ON CONFLICT (day, site_id) DO UPDATE SET \
             session_time_secs = usage_site_daily.session_time_secs + excluded.session_time_secs, \
             input_octets = usage_site_daily.input_octets + excluded.input_octets, \
             output_octets = usage_site_daily.output_octets + excluded.output_octets, \
             sessions = usage_site_daily.sessions + excluded.sessions",
            Params::of(tx).rows(chunk.len(), 6)
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for (day, u) in chunk {
            q = q
                .bind(**day)
                .bind(site_id.to_string())
                .bind(u.used.secs)
                .bind(u.used.bytes_in)
                .bind(u.used.bytes_out)
                .bind(u.sessions);
        }
        q.execute(&mut *tx).await?;
    }
    Ok(())
}

/// Adds `(period start, account, usage)` rows of one site to a usage summary (`usage_daily`
/// by `day`, `usage_monthly` by `month`): the same columns, summed on conflict.
async fn add_usage(
    tx: &mut sqlx::AnyConnection,
    table: &str,
    period: &str,
    site_id: &str,
    rows: &[(i64, &str, DayUsage)],
) -> Result<(), DbError> {
    for chunk in rows.chunks(rows_per_statement(7)) {
        let sql = format!(
            "INSERT INTO {table} ({period}, site_id, username, session_time_secs, input_octets, \
             output_octets, sessions) VALUES {} ON CONFLICT ({period}, site_id, username) DO UPDATE SET \
             session_time_secs = {table}.session_time_secs + excluded.session_time_secs, \
             input_octets = {table}.input_octets + excluded.input_octets, \
             output_octets = {table}.output_octets + excluded.output_octets, \
             sessions = {table}.sessions + excluded.sessions",
            Params::of(tx).rows(chunk.len(), 7)
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for (period_start, user, u) in chunk {
            q = q
                .bind(*period_start)
                .bind(site_id.to_string())
                .bind(user.to_string())
                .bind(u.used.secs)
                .bind(u.used.bytes_in)
                .bind(u.used.bytes_out)
                .bind(u.sessions);
        }
        q.execute(&mut *tx).await?;
    }
    Ok(())
}
