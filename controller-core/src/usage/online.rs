//! Who is online, as the controller knows from accounting: sessions of the usage ledger with
//! no Stop whose last record is recent. A session silent for longer than
//! [`STALE_INTERIMS`] of its plan's interim intervals (the CPE lost power, the Stop was lost)
//! is stale and not listed.

use crate::db::Db;
use crate::error::{DomainError, DomainResult};
use serde::Serialize;
use sqlx::Row;

/// Interim intervals a session may miss before it counts as gone: two missed updates and
/// half an interval for the network and the outbox.
pub const STALE_INTERIMS: f64 = 2.5;

/// The interim interval assumed for an account whose plan sets none (the agent's default).
pub const DEFAULT_INTERIM_SECS: i64 = 300;

/// The longest interim interval considered; bounds the index range the list reads.
const MAX_INTERIM_SECS: i64 = 86_400;

/// One live session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct OnlineSession {
    /// The account (voucher code or PPPoE user name).
    pub username: String,
    /// The site.
    pub site_id: String,
    /// The NAS that reports it (NAS-Identifier).
    pub nas_identifier: String,
    /// The NAS's address, when it sent one.
    pub nas_ip: Option<String>,
    /// Acct-Session-Id.
    pub session_id: String,
    /// The subscriber's address (Framed-IP-Address).
    pub framed_ip: Option<String>,
    /// The subscriber's device (Calling-Station-Id, usually its MAC).
    pub calling_station_id: Option<String>,
    /// First record of the session (unix ms).
    pub started_at: i64,
    /// Latest record of the session (unix ms).
    pub last_seen_at: i64,
    /// Online time the NAS reported, seconds.
    pub uptime_secs: i64,
    /// Octets from the subscriber (Acct-Input-Octets).
    pub bytes_in: i64,
    /// Octets to the subscriber (Acct-Output-Octets).
    pub bytes_out: i64,
}

impl OnlineSession {
    /// The list's sort key, for cursors: site, NAS, session, split by a unit separator.
    pub fn key(&self) -> String {
        format!(
            "{}\u{1f}{}\u{1f}{}",
            self.site_id, self.nas_identifier, self.session_id
        )
    }
}

/// Live sessions at `site_id` (or every site) at `now` (unix ms), by site, NAS and session,
/// after the key `after` of [`OnlineSession::key`] ("" for the first page).
pub async fn list(
    db: &Db,
    site_id: Option<&str>,
    after: &str,
    limit: u32,
    now: i64,
) -> DomainResult<Vec<OnlineSession>> {
    let (a_site, a_nas, a_session) = if after.is_empty() {
        ("", "", "")
    } else {
        let mut parts = after.splitn(3, '\u{1f}');
        match (parts.next(), parts.next(), parts.next()) {
            (Some(s), Some(n), Some(i)) => (s, n, i),
            _ => return Err(DomainError::invalid("cursor", "is not a session cursor")),
        }
    };
    let window = |secs: i64| (secs as f64 * STALE_INTERIMS * 1000.0) as i64;
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT u.site_id, u.nas_identifier, u.session_id, u.username, u.session_time_secs, \
         u.input_octets, u.output_octets, u.first_at, u.last_at, u.nas_ip, u.framed_ip, \
         u.calling_station_id \
         FROM usage_sessions u \
         LEFT JOIN vouchers v ON v.code = u.username \
         LEFT JOIN subscriptions s ON s.username = u.username \
         LEFT JOIN plans p ON p.id = COALESCE(v.plan_id, s.plan_id) \
         WHERE u.stopped_at IS NULL AND u.last_at >= $1 \
           AND u.last_at >= $2 - CAST(COALESCE(p.interim_interval_secs, {DEFAULT_INTERIM_SECS}) * {} AS BIGINT) \
           AND (CAST($3 AS TEXT) IS NULL OR u.site_id = $3) \
           AND (u.site_id > $4 OR (u.site_id = $4 AND (u.nas_identifier > $5 \
                OR (u.nas_identifier = $5 AND u.session_id > $6)))) \
         ORDER BY u.site_id, u.nas_identifier, u.session_id LIMIT $7",
        window(1)
    )))
    .bind(now - window(MAX_INTERIM_SECS))
    .bind(now)
    .bind(site_id)
    .bind(a_site)
    .bind(a_nas)
    .bind(a_session)
    .bind(limit as i64)
    .fetch_all(&db.pool)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(OnlineSession {
                username: r.try_get("username")?,
                site_id: r.try_get("site_id")?,
                nas_identifier: r.try_get("nas_identifier")?,
                nas_ip: r.try_get("nas_ip")?,
                session_id: r.try_get("session_id")?,
                framed_ip: r.try_get("framed_ip")?,
                calling_station_id: r.try_get("calling_station_id")?,
                started_at: r.try_get("first_at")?,
                last_seen_at: r.try_get("last_at")?,
                uptime_secs: r.try_get("session_time_secs")?,
                bytes_in: r.try_get("input_octets")?,
                bytes_out: r.try_get("output_octets")?,
            })
        })
        .collect::<Result<_, sqlx::Error>>()
        .map_err(Into::into)
}
