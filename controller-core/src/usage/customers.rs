//! The per-customer monthly summary (`usage_customer_monthly`): usage_monthly mapped to
//! customers through `subscriptions.username`, so ranking customers reads one row per
//! customer instead of every account's month. Ingest adds a batch's months here in the same
//! transaction as `usage_monthly`; the triggers of migration 0027 refile a customer when one
//! of its subscriptions is created, deleted, renamed or moved, so the summary always equals
//! the join the reports made before it existed.

use super::fold::DayUsage;
use crate::db::params::{Params, rows_per_statement};
use crate::db::{Backend, DbError};

/// Adds `(month start, account, usage)` rows to their accounts' customers in one statement per
/// 8,192 values (one for any batch an agent sends); accounts no subscription holds (vouchers)
/// add nothing.
pub(crate) async fn add_months(
    tx: &mut sqlx::AnyConnection,
    months: &[(i64, &str, DayUsage)],
) -> Result<(), DbError> {
    let backend = Backend::of(tx);
    // On PostgreSQL the subscriptions read are share-locked: a rename or move of one waits
    // for this ingest to commit (its refile then sees this batch in usage_monthly), and this
    // ingest waits for a rename in flight (and then files by the new mapping), so a batch is
    // never counted under both customers or lost between them. SQLite's write lock already
    // serialises the two.
    let lock = match backend {
        Backend::Postgres => " FOR SHARE",
        Backend::Sqlite => "",
    };
    for chunk in months.chunks(rows_per_statement(6)) {
        // Rows come out ordered by key, so two sites' ingests of one customer lock its rows
        // in the same order. `WHERE true` keeps SQLite from reading ON CONFLICT as a join's ON.
        let sql = format!(
            "WITH v (month, username, secs, bin, bout, n) AS (VALUES {}) \
             INSERT INTO usage_customer_monthly (customer_id, month, session_time_secs, \
             input_octets, output_octets, sessions, octets) \
             SELECT s.customer_id, v.month, SUM(v.secs), SUM(v.bin), SUM(v.bout), SUM(v.n), \
             SUM(v.bin + v.bout) FROM v JOIN (SELECT username, customer_id FROM subscriptions \
             WHERE username IN (SELECT username FROM v){lock}) s ON s.username = v.username \
             WHERE true GROUP BY s.customer_id, v.month ORDER BY s.customer_id, v.month \
             ON CONFLICT (customer_id, month) DO UPDATE SET \
             session_time_secs = usage_customer_monthly.session_time_secs + excluded.session_time_secs, \
             input_octets = usage_customer_monthly.input_octets + excluded.input_octets, \
             output_octets = usage_customer_monthly.output_octets + excluded.output_octets, \
             sessions = usage_customer_monthly.sessions + excluded.sessions, \
             octets = usage_customer_monthly.octets + excluded.octets",
            Params::new(backend).rows(chunk.len(), 6)
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for (month, user, u) in chunk {
            q = q
                .bind(*month)
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
