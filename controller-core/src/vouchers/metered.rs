//! Vouchers judged on their fleet-wide use, inside the ingest transaction: the vouchers a
//! batch names get the usage the ledger (`usage_sessions`) holds for their code at every site
//! (in total and split by site, with the open sessions and the bound device: [`fleet`]), and
//! the state [`usage_state::decide`] gives them, so a voucher used up across several sites
//! ends everywhere.

use super::conflict::{self, Allowance};
use super::conflicts::{self, ConflictPolicy};
use super::fleet::{self, LedgerSession};
use super::lifecycle::{self, State};
use super::usage_state::{self, Limits, Used};
use super::{RECORD_COLUMNS, Scope, record_from_row};
use crate::audit::{self, Actor};
use crate::db::params::Params;
use crate::db::{Backend, DbError};
use crate::usage::online::DEFAULT_INTERIM_SECS;
use mikrobill_protocol::items::Item;
use mikrobill_protocol::messages::ChangeOp;
use sqlx::Row;
use std::collections::HashMap;

/// Codes per statement (a batch of 500 records names at most 500).
const CHUNK: usize = 1000;

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
            Params::of(tx).list(chunk.len())
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for code in chunk {
            q = q.bind(code.to_string());
        }
        q.fetch_all(&mut *tx).await?;
    }
    Ok(())
}

/// Stores the ledger's totals, their split by site with the sessions open at each, the bound
/// device of a MAC-locked voucher, and the decided state of every voucher among `codes`
/// (sorted, distinct) whose row differs from them; audits state changes and returns the
/// changes the agents must learn. The ledger only grows and replays add nothing to it, so a
/// replayed batch finds nothing to change; a Start or Stop changes the open sessions, so the
/// other sites learn of it with the next sync push. Two queries read a whole chunk of codes.
///
/// Offline double use is detected from the same sessions ([`conflict::detect`]); a conflict
/// not recorded before is stored, reported (`voucher.conflict` event, audit) and, under
/// [`ConflictPolicy::Close`], ends the voucher as exhausted everywhere and disconnects its
/// open sessions at every site.
pub async fn apply(
    tx: &mut sqlx::AnyConnection,
    codes: &[&str],
    policy: ConflictPolicy,
    now: i64,
) -> Result<Vec<(Scope, ChangeOp)>, DbError> {
    let mut changes = Vec::new();
    for chunk in codes.chunks(CHUNK) {
        let sessions = ledger_sessions(tx, chunk).await?;
        let sql = format!(
            "SELECT v.code, v.status, v.activated_at, v.expires_at, v.used_time_secs, v.used_bytes, \
             v.fleet_usage, v.bound_mac, p.time_limit_secs, p.data_limit_bytes, p.validity_secs, \
             p.interim_interval_secs, p.mac_lock, p.shared_users, p.fup_rate_limit \
             FROM vouchers v JOIN plans p ON p.id = v.plan_id WHERE v.code IN ({}) ORDER BY v.code",
            Params::of(tx).list(chunk.len())
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for code in chunk {
            q = q.bind(code.to_string());
        }
        let rows = q.fetch_all(&mut *tx).await?;
        let mut updates = Vec::with_capacity(rows.len());
        for row in rows {
            let code: String = row.try_get("code")?;
            let Some(of_code) = sessions.get(&code) else {
                continue;
            };
            let from: State = super::parse_status(&row.try_get::<String, _>("status")?)?.into();
            let stored = Used {
                secs: row.try_get("used_time_secs")?,
                bytes: row.try_get("used_bytes")?,
            };
            let interim = row
                .try_get::<Option<i64>, _>("interim_interval_secs")?
                .unwrap_or(DEFAULT_INTERIM_SECS);
            let summary = fleet::summarize(of_code, interim, now);
            let fair_usage = row
                .try_get::<Option<String>, _>("fup_rate_limit")?
                .is_some();
            let allowance = Allowance {
                time_secs: row.try_get("time_limit_secs")?,
                // Under fair usage data beyond the limit is allowed (slowly): no budget.
                data_bytes: if fair_usage {
                    None
                } else {
                    row.try_get("data_limit_bytes")?
                },
                shared_users: row.try_get("shared_users")?,
                mac_lock: row.try_get::<i64, _>("mac_lock")? != 0,
            };
            let found = conflict::detect(&allowance, of_code, interim, now);
            let new = conflicts::record(tx, &code, &found, policy, now).await?;
            for c in &new {
                audit::record(
                    &mut *tx,
                    &Actor::system("accounting"),
                    "voucher.conflict",
                    "voucher",
                    Some(&code),
                    None::<&()>,
                    Some(c),
                )
                .await?;
                crate::events::emit(
                    &mut *tx,
                    crate::events::EventKind::VoucherConflict,
                    crate::events::Refs::default(),
                    c,
                )
                .await?;
            }
            let close = policy == ConflictPolicy::Close && !new.is_empty();
            if close {
                // Every site with a session still open is told to end it; the status below
                // refuses the next login everywhere.
                for site in summary
                    .sites
                    .iter()
                    .filter(|s| !s.open_last_seen_ms.is_empty())
                {
                    crate::commands::enqueue(
                        &mut *tx,
                        &site.site_id,
                        &mikrobill_protocol::messages::Command::Disconnect {
                            username: code.clone(),
                        },
                        None,
                        "accounting",
                        crate::commands::DEFAULT_TTL_MS,
                    )
                    .await?;
                }
            }
            let used = summary.used;
            let sites = fleet::encode_sites(&summary.sites);
            let bound_mac = if row.try_get::<i64, _>("mac_lock")? != 0 {
                summary.first_mac
            } else {
                None
            };
            let limits = Limits {
                time_secs: row.try_get("time_limit_secs")?,
                data_bytes: row.try_get("data_limit_bytes")?,
                validity_secs: row.try_get("validity_secs")?,
                fair_usage,
            };
            let to = usage_state::decide(
                from,
                &limits,
                used,
                row.try_get("activated_at")?,
                row.try_get("expires_at")?,
                now,
            )
            .or_else(|| {
                close
                    .then(|| lifecycle::next(from, lifecycle::Event::Exhaust))
                    .flatten()
            });
            if to.is_none()
                && used == stored
                && sites == row.try_get::<Option<String>, _>("fleet_usage")?
                && bound_mac == row.try_get::<Option<String>, _>("bound_mac")?
            {
                continue;
            }
            updates.push(Update {
                code,
                from,
                to: to.unwrap_or(from),
                stored,
                used,
                sites,
                bound_mac,
            });
        }
        for part in updates.chunks(crate::db::params::rows_per_statement(7)) {
            changes.extend(write(tx, part).await?);
        }
    }
    Ok(changes)
}

/// A voucher's new usage and state, written only if its state is still `from`.
struct Update {
    code: String,
    from: State,
    to: State,
    stored: Used,
    used: Used,
    sites: Option<String>,
    bound_mac: Option<String>,
}

/// Writes `updates` in one statement (a voucher per VALUES row; one UPDATE each was half of an
/// ingest's time), audits the state changes and returns the changes for the agents. A voucher
/// whose state moved meanwhile (revoked by an operator) is left as it is.
async fn write(
    tx: &mut sqlx::AnyConnection,
    updates: &[Update],
) -> Result<Vec<(Scope, ChangeOp)>, DbError> {
    if updates.is_empty() {
        return Ok(Vec::new());
    }
    let mut p = crate::db::params::Params::of(tx);
    let sql = format!(
        "WITH v (v_code, v_from, v_secs, v_bytes, v_status, v_fleet, v_mac) AS (VALUES {}) \
         UPDATE vouchers SET used_time_secs = v.v_secs, used_bytes = v.v_bytes, status = v.v_status, \
         fleet_usage = v.v_fleet, bound_mac = v.v_mac \
         FROM v WHERE vouchers.code = v.v_code AND vouchers.status = v.v_from \
         RETURNING {RECORD_COLUMNS}",
        p.rows(updates.len(), 7)
    );
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
    for u in updates {
        q = q
            .bind(u.code.clone())
            .bind(u.from.as_str())
            .bind(u.used.secs)
            .bind(u.used.bytes)
            .bind(u.to.as_str())
            .bind(u.sites.clone())
            .bind(u.bound_mac.clone());
    }
    let mut written = q
        .fetch_all(&mut *tx)
        .await?
        .iter()
        .map(record_from_row)
        .collect::<Result<Vec<_>, _>>()?;
    written.sort_by(|a, b| a.code.cmp(&b.code));
    let by_code: HashMap<&str, &Update> = updates.iter().map(|u| (u.code.as_str(), u)).collect();
    let mut changes = Vec::with_capacity(written.len());
    for after in written {
        let Some(u) = by_code.get(after.code.as_str()) else {
            continue;
        };
        if u.to != u.from {
            let mut before = after.clone();
            before.status = u.from;
            before.used_time_secs = u.stored.secs;
            before.used_bytes = u.stored.bytes;
            let action = if u.to == State::Exhausted {
                "voucher.exhaust"
            } else {
                "voucher.expire"
            };
            audit::record(
                &mut *tx,
                &Actor::system("accounting"),
                action,
                "voucher",
                Some(&after.code),
                Some(&before),
                Some(&after),
            )
            .await?;
        }
        // A revoked voucher is gone from every cache; usage must not bring it back.
        if u.to != State::Revoked {
            changes.push((after.scope(), ChangeOp::Upsert(Item::Voucher(after.item()))));
        }
    }
    Ok(changes)
}

/// The ledger sessions of `codes`, by code.
async fn ledger_sessions(
    tx: &mut sqlx::AnyConnection,
    codes: &[&str],
) -> Result<HashMap<String, Vec<LedgerSession>>, DbError> {
    let sql = format!(
        "SELECT username, site_id, session_id, nas_identifier, first_at, last_at, stopped_at, session_time_secs, \
         input_octets, output_octets, calling_station_id FROM usage_sessions \
         WHERE username IN ({})",
        Params::of(tx).list(codes.len())
    );
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
    for code in codes {
        q = q.bind(code.to_string());
    }
    let mut out: HashMap<String, Vec<LedgerSession>> = HashMap::new();
    for row in q.fetch_all(&mut *tx).await? {
        let bytes_in: i64 = row.try_get("input_octets")?;
        let bytes_out: i64 = row.try_get("output_octets")?;
        out.entry(row.try_get("username")?)
            .or_default()
            .push(LedgerSession {
                site_id: row.try_get("site_id")?,
                session_id: row.try_get("session_id")?,
                nas_identifier: row.try_get("nas_identifier")?,
                first_at: row.try_get("first_at")?,
                last_at: row.try_get("last_at")?,
                stopped: row.try_get::<Option<i64>, _>("stopped_at")?.is_some(),
                secs: row.try_get("session_time_secs")?,
                bytes: bytes_in.saturating_add(bytes_out),
                calling_station_id: row.try_get("calling_station_id")?,
            });
    }
    Ok(out)
}
