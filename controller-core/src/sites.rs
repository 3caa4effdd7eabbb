//! Sites (one agent each), their enrollment tokens and agent certificates, revocation and
//! the online/offline view.

use crate::audit::{self, Actor};
use crate::db::{Db, DbError, now_ms};
use mikrobill_protocol::enroll::secret_hash;
use mikrobill_protocol::radius_counters::RadiusCounters;
use sqlx::Row;

/// Setting under which `serve` records the address agents should dial.
pub const EDGE_ADVERTISE_SETTING: &str = "edge_advertise";

/// A site is shown online when its agent has a session and was heard from this recently.
pub const ONLINE_WINDOW_MS: i64 = 60_000;

/// Errors of site operations.
#[derive(Debug, thiserror::Error)]
pub enum SiteError {
    /// Storage failed.
    #[error(transparent)]
    Db(#[from] DbError),
    /// No site by that name.
    #[error("no site named {0:?}")]
    NotFound(String),
    /// The name is taken.
    #[error("a site named {0:?} already exists")]
    Exists(String),
    /// The name is not acceptable.
    #[error("invalid site name {0:?}: use 1-64 letters, digits, '-', '_', '.' or spaces")]
    InvalidName(String),
    /// The token is unknown, used, expired or its site revoked.
    #[error("enrollment token is invalid, expired or already used")]
    TokenRejected,
}

/// A site error as the API and the web UI answer it; here, not in `error.rs`, so the shared
/// error type depends on no domain module.
impl From<SiteError> for crate::error::DomainError {
    fn from(e: SiteError) -> Self {
        use crate::error::DomainError;
        match e {
            SiteError::Db(db) => DomainError::Db(db),
            SiteError::NotFound(k) => DomainError::not_found("site", k),
            SiteError::Exists(n) => {
                DomainError::conflict("exists", format!("a site named {n:?} already exists"))
            }
            e @ SiteError::InvalidName(_) => DomainError::invalid("name", e.to_string()),
            e @ SiteError::TokenRejected => DomainError::conflict("token_rejected", e.to_string()),
        }
    }
}

impl From<sqlx::Error> for SiteError {
    fn from(e: sqlx::Error) -> Self {
        SiteError::Db(DbError::Sqlx(e))
    }
}

/// A site as listed to operators.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct Site {
    /// Stable id, the agent certificate's common name.
    pub id: String,
    /// Unique display name.
    pub name: String,
    /// Creation time (UTC ms).
    pub created_at: i64,
    /// When the site was revoked, if it was.
    pub revoked_at: Option<i64>,
    /// Last heartbeat or connect (UTC ms).
    pub last_seen_at: Option<i64>,
    /// Whether an agent session is open and recently heard from.
    pub online: bool,
    /// Agent software version last reported.
    pub agent_version: Option<String>,
    /// Outbox records the agent reported waiting.
    pub outbox_pending: i64,
    /// The router's state as the agent last reported it (reachable, version, board, CPU,
    /// memory, sessions online), if it manages one.
    #[schema(value_type = Option<Object>)]
    pub router: Option<serde_json::Value>,
    /// The agent's RADIUS counters as it last reported them, counted since `since_ms` (its
    /// start): Access-Accepts, Access-Rejects by reason, accounting stored, requests dropped
    /// by reason. None until an agent of protocol 9 or later running RADIUS reports.
    #[schema(value_type = Option<Object>)]
    pub radius: Option<serde_json::Value>,
}

pub(crate) fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.chars().count())
        && name
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | '.' | ' '))
        && name.trim() == name
}

fn site_from_row(row: &sqlx::any::AnyRow, now: i64) -> Result<Site, sqlx::Error> {
    let session: Option<String> = row.try_get("session_id")?;
    let last_seen_at: Option<i64> = row.try_get("last_seen_at")?;
    let revoked_at: Option<i64> = row.try_get("revoked_at")?;
    Ok(Site {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        created_at: row.try_get("created_at")?,
        online: revoked_at.is_none()
            && session.is_some()
            && last_seen_at.is_some_and(|t| now - t < ONLINE_WINDOW_MS),
        revoked_at,
        last_seen_at,
        agent_version: row.try_get("agent_version")?,
        outbox_pending: row.try_get("outbox_pending")?,
        router: row
            .try_get::<Option<String>, _>("router_json")?
            .and_then(|j| serde_json::from_str(&j).ok()),
        radius: row
            .try_get::<Option<String>, _>("radius_json")?
            .and_then(|j| serde_json::from_str(&j).ok()),
    })
}

const SITE_COLUMNS: &str = "id, name, created_at, revoked_at, session_id, last_seen_at, agent_version, outbox_pending, router_json, radius_json";

/// Creates a site.
pub async fn create(db: &Db, actor: &Actor, name: &str) -> Result<Site, SiteError> {
    let mut tx = db.begin().await?;
    let site = create_in(&mut tx, actor, name, now_ms()).await?;
    tx.commit().await?;
    Ok(site)
}

/// Creates a site inside the caller's transaction, for an import that writes many records
/// at once.
pub async fn create_in(
    conn: &mut sqlx::AnyConnection,
    actor: &Actor,
    name: &str,
    now: i64,
) -> Result<Site, SiteError> {
    if !valid_name(name) {
        return Err(SiteError::InvalidName(name.to_string()));
    }
    let id = uuid::Uuid::new_v4().to_string();
    let res = sqlx::query("INSERT INTO sites (id, name, created_at) VALUES ($1, $2, $3) ON CONFLICT (name) DO NOTHING")
        .bind(&id)
        .bind(name)
        .bind(now)
        .execute(&mut *conn)
        .await?;
    if res.rows_affected() == 0 {
        return Err(SiteError::Exists(name.to_string()));
    }
    let site = fetch_in(conn, name).await?;
    audit::record(
        conn,
        actor,
        "site.create",
        "site",
        Some(&id),
        None::<&()>,
        Some(&site),
    )
    .await?;
    Ok(site)
}

/// A site by name, inside the caller's transaction.
pub(crate) async fn fetch_in(
    conn: &mut sqlx::AnyConnection,
    name: &str,
) -> Result<Site, SiteError> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {SITE_COLUMNS} FROM sites WHERE name = $1"
    )))
    .bind(name)
    .fetch_optional(&mut *conn)
    .await?
    .ok_or_else(|| SiteError::NotFound(name.to_string()))?;
    Ok(site_from_row(&row, now_ms())?)
}

/// Looks a site up by name.
pub async fn by_name(db: &Db, name: &str) -> Result<Site, SiteError> {
    let mut conn = db.pool.acquire().await?;
    fetch_in(&mut conn, name).await
}

/// All sites, by name.
pub async fn list(db: &Db) -> Result<Vec<Site>, SiteError> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {SITE_COLUMNS} FROM sites ORDER BY name"
    )))
    .fetch_all(&db.pool)
    .await?;
    let now = now_ms();
    Ok(rows
        .iter()
        .map(|r| site_from_row(r, now))
        .collect::<Result<_, _>>()?)
}

/// Stores a new enrollment token secret (as a hash) for a site.
pub async fn add_token(
    db: &Db,
    site_id: &str,
    secret: &[u8; 32],
    ttl_ms: i64,
) -> Result<(), SiteError> {
    let mut conn = db.pool.acquire().await?;
    add_token_in(&mut conn, site_id, secret, now_ms(), ttl_ms).await
}

/// Stores a token's hash inside the caller's transaction (bulk provisioning).
pub async fn add_token_in(
    conn: &mut sqlx::AnyConnection,
    site_id: &str,
    secret: &[u8; 32],
    now: i64,
    ttl_ms: i64,
) -> Result<(), SiteError> {
    sqlx::query("INSERT INTO enrollment_tokens (token_hash, site_id, created_at, expires_at) VALUES ($1, $2, $3, $4)")
        .bind(secret_hash(secret))
        .bind(site_id)
        .bind(now)
        .bind(now + ttl_ms)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// The site a still-valid token belongs to (the token is not consumed).
pub async fn token_site(db: &Db, secret: &[u8; 32]) -> Result<Site, SiteError> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {SITE_COLUMNS} FROM sites WHERE revoked_at IS NULL AND id = \
         (SELECT site_id FROM enrollment_tokens WHERE token_hash = $1 AND used_at IS NULL AND expires_at > $2)"
    )))
    .bind(secret_hash(secret))
    .bind(now_ms())
    .fetch_optional(&db.pool)
    .await?
    .ok_or(SiteError::TokenRejected)?;
    Ok(site_from_row(&row, now_ms())?)
}

/// Consumes the token and records the certificate issued with it, atomically: a token
/// yields exactly one certificate even when two agents race with it.
pub async fn complete_enrollment(
    db: &Db,
    secret: &[u8; 32],
    site_id: &str,
    serial_hex: &str,
    not_after_ms: i64,
    ca_fingerprint: &str,
) -> Result<(), SiteError> {
    let now = now_ms();
    let mut tx = db.begin().await?;
    let used = sqlx::query(
        "UPDATE enrollment_tokens SET used_at = $1 \
         WHERE token_hash = $2 AND site_id = $3 AND used_at IS NULL AND expires_at > $1",
    )
    .bind(now)
    .bind(secret_hash(secret))
    .bind(site_id)
    .execute(&mut *tx)
    .await?;
    if used.rows_affected() != 1 {
        return Err(SiteError::TokenRejected);
    }
    sqlx::query("INSERT INTO agent_certificates (serial, site_id, issued_at, not_after, ca_fingerprint) VALUES ($1, $2, $3, $4, $5)")
        .bind(serial_hex)
        .bind(site_id)
        .bind(now)
        .bind(not_after_ms)
        .bind(ca_fingerprint)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}

/// What the edge learns about a presented certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CertStatus {
    /// Good: the session may start.
    Valid {
        /// The site's display name.
        site_name: String,
    },
    /// The certificate or its site was revoked.
    Revoked,
    /// Not a certificate issued to this site.
    Unknown,
}

/// Checks a presented certificate against the database.
pub async fn certificate_status(
    db: &Db,
    site_id: &str,
    serial_hex: &str,
) -> Result<CertStatus, SiteError> {
    let row = sqlx::query(
        "SELECT s.name, s.revoked_at AS site_revoked, c.revoked_at AS cert_revoked \
         FROM agent_certificates c JOIN sites s ON s.id = c.site_id \
         WHERE c.serial = $1 AND c.site_id = $2",
    )
    .bind(serial_hex)
    .bind(site_id)
    .fetch_optional(&db.pool)
    .await?;
    let Some(row) = row else {
        return Ok(CertStatus::Unknown);
    };
    let site_revoked: Option<i64> = row.try_get("site_revoked")?;
    let cert_revoked: Option<i64> = row.try_get("cert_revoked")?;
    if site_revoked.is_some() || cert_revoked.is_some() {
        return Ok(CertStatus::Revoked);
    }
    Ok(CertStatus::Valid {
        site_name: row.try_get("name")?,
    })
}

/// One site by id.
pub async fn by_id(db: &Db, id: &str) -> Result<Site, SiteError> {
    let mut conn = db.pool.acquire().await?;
    by_id_in(&mut conn, id).await
}

/// One site by id, inside the caller's transaction.
pub(crate) async fn by_id_in(conn: &mut sqlx::AnyConnection, id: &str) -> Result<Site, SiteError> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {SITE_COLUMNS} FROM sites WHERE id = $1"
    )))
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?
    .ok_or_else(|| SiteError::NotFound(id.to_string()))?;
    Ok(site_from_row(&row, now_ms())?)
}

/// Sites ordered by name after `after`.
pub async fn list_page(db: &Db, after: &str, limit: u32) -> Result<Vec<Site>, SiteError> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {SITE_COLUMNS} FROM sites WHERE name > $1 ORDER BY name LIMIT $2"
    )))
    .bind(after)
    .bind(limit as i64)
    .fetch_all(&db.pool)
    .await?;
    let now = now_ms();
    Ok(rows
        .iter()
        .map(|r| site_from_row(r, now))
        .collect::<Result<_, _>>()?)
}

/// Stores the router state an agent reported.
pub async fn router_reported(
    db: &Db,
    site_id: &str,
    report: &mikrobill_protocol::messages::RouterReport,
) -> Result<(), SiteError> {
    #[derive(serde::Serialize)]
    struct Json<'a> {
        reachable: bool,
        version: &'a Option<String>,
        board: &'a Option<String>,
        architecture: &'a Option<String>,
        cpu_load: Option<u8>,
        free_memory: Option<u64>,
        total_memory: Option<u64>,
        uptime_secs: Option<u64>,
        identity: &'a Option<String>,
        hotspot_active: Option<u32>,
        ppp_active: Option<u32>,
        last_error: &'a Option<String>,
        checked_at: i64,
    }
    let json = serde_json::to_string(&Json {
        reachable: report.reachable,
        version: &report.version,
        board: &report.board,
        architecture: &report.architecture,
        cpu_load: report.cpu_load,
        free_memory: report.free_memory,
        total_memory: report.total_memory,
        uptime_secs: report.uptime_secs,
        identity: &report.identity,
        hotspot_active: report.hotspot_active,
        ppp_active: report.ppp_active,
        last_error: &report.last_error,
        checked_at: report.checked_at_ms,
    })
    .expect("router report serializes");
    sqlx::query("UPDATE sites SET router_json = $1 WHERE id = $2")
        .bind(json)
        .bind(site_id)
        .execute(&db.pool)
        .await?;
    Ok(())
}

/// Stores a new one-time enrollment token for a site and returns its text form.
pub async fn issue_enrollment_token(
    db: &Db,
    actor: &Actor,
    site_id: &str,
    controller_addr: String,
    ca_fingerprint: [u8; 32],
    ttl_ms: i64,
) -> Result<String, SiteError> {
    let mut tx = db.begin().await?;
    let token = issue_enrollment_token_in(
        &mut tx,
        actor,
        site_id,
        &controller_addr,
        ca_fingerprint,
        now_ms(),
        ttl_ms,
    )
    .await?;
    tx.commit().await?;
    Ok(token)
}

/// [`issue_enrollment_token`] inside the caller's transaction (bulk provisioning).
pub async fn issue_enrollment_token_in(
    conn: &mut sqlx::AnyConnection,
    actor: &Actor,
    site_id: &str,
    controller_addr: &str,
    ca_fingerprint: [u8; 32],
    now: i64,
    ttl_ms: i64,
) -> Result<String, SiteError> {
    let secret: [u8; 32] = rand::random();
    add_token_in(conn, site_id, &secret, now, ttl_ms).await?;
    // The token itself never reaches the log: only that one was issued, and for how long.
    audit::record(
        conn,
        actor,
        "site.token",
        "site",
        Some(site_id),
        None::<&()>,
        Some(&serde_json::json!({ "valid_for_ms": ttl_ms })),
    )
    .await?;
    Ok(mikrobill_protocol::enroll::EnrollmentToken {
        controller_addr: controller_addr.to_string(),
        ca_fingerprint,
        secret,
    }
    .encode())
}

/// Revokes a site: its certificates and unused tokens stop working at once.
pub async fn revoke(db: &Db, actor: &Actor, name: &str) -> Result<Site, SiteError> {
    let site = by_name(db, name).await?;
    let now = now_ms();
    let mut tx = db.begin().await?;
    sqlx::query("UPDATE sites SET revoked_at = COALESCE(revoked_at, $1) WHERE id = $2")
        .bind(now)
        .bind(&site.id)
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "UPDATE agent_certificates SET revoked_at = $1 WHERE site_id = $2 AND revoked_at IS NULL",
    )
    .bind(now)
    .bind(&site.id)
    .execute(&mut *tx)
    .await?;
    sqlx::query("UPDATE enrollment_tokens SET expires_at = $1 WHERE site_id = $2 AND used_at IS NULL AND expires_at > $1")
        .bind(now)
        .bind(&site.id)
        .execute(&mut *tx)
        .await?;
    if site.revoked_at.is_none() {
        let refs = crate::events::Refs {
            site_id: Some(&site.id),
            ..Default::default()
        };
        crate::events::emit(&mut tx, crate::events::EventKind::SiteRevoked, refs, &site).await?;
    }
    let after = fetch_in(&mut tx, name).await?;
    audit::record(
        &mut tx,
        actor,
        "site.revoke",
        "site",
        Some(&site.id),
        Some(&site),
        Some(&after),
    )
    .await?;
    tx.commit().await?;
    Ok(after)
}

/// A number that grows whenever a certificate or site is revoked; the edge polls it.
pub async fn revocation_count(db: &Db) -> Result<i64, SiteError> {
    let row = sqlx::query(
        "SELECT (SELECT COUNT(*) FROM agent_certificates WHERE revoked_at IS NOT NULL) \
              + (SELECT COUNT(*) FROM sites WHERE revoked_at IS NOT NULL) AS n",
    )
    .fetch_one(&db.pool)
    .await?;
    Ok(row.try_get("n")?)
}

/// Marks a new agent session as open.
pub async fn session_opened(
    db: &Db,
    site_id: &str,
    session_id: &str,
    agent_version: &str,
) -> Result<(), SiteError> {
    let now = now_ms();
    let mut tx = db.begin().await?;
    sqlx::query("UPDATE sites SET session_id = $1, connected_at = $2, last_seen_at = $2, agent_version = $3 WHERE id = $4")
        .bind(session_id)
        .bind(now)
        .bind(agent_version)
        .bind(site_id)
        .execute(&mut *tx)
        .await?;
    #[derive(serde::Serialize)]
    struct Online<'a> {
        site_id: &'a str,
        agent_version: &'a str,
    }
    let refs = crate::events::Refs {
        site_id: Some(site_id),
        ..Default::default()
    };
    crate::events::emit(
        &mut tx,
        crate::events::EventKind::SiteOnline,
        refs,
        &Online {
            site_id,
            agent_version,
        },
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Records a heartbeat, with the RADIUS counters the agent sent just before it, if any (a
/// report outside the bounds [`RadiusCounters::is_well_formed`] sets is not stored).
pub async fn heard_from(
    db: &Db,
    site_id: &str,
    session_id: &str,
    outbox_pending: u64,
    radius: Option<&RadiusCounters>,
) -> Result<(), SiteError> {
    let radius = radius
        .filter(|c| c.is_well_formed())
        .and_then(|c| serde_json::to_string(c).ok());
    sqlx::query(
        "UPDATE sites SET last_seen_at = $1, outbox_pending = $2, radius_json = COALESCE($3, radius_json) \
         WHERE id = $4 AND session_id = $5",
    )
    .bind(now_ms())
    .bind(outbox_pending.min(i64::MAX as u64) as i64)
    .bind(radius)
    .bind(site_id)
    .bind(session_id)
    .execute(&db.pool)
    .await?;
    Ok(())
}

/// Records the agent's acknowledged sync position.
pub async fn sync_applied(db: &Db, site_id: &str, seq: u64) -> Result<(), SiteError> {
    sqlx::query("UPDATE sites SET sync_seq = $1 WHERE id = $2")
        .bind(seq as i64)
        .bind(site_id)
        .execute(&db.pool)
        .await?;
    Ok(())
}

/// Marks a session closed, unless a newer session already replaced it.
pub async fn session_closed(db: &Db, site_id: &str, session_id: &str) -> Result<(), SiteError> {
    let mut tx = db.begin().await?;
    let closed = sqlx::query("UPDATE sites SET session_id = NULL, disconnected_at = $1 WHERE id = $2 AND session_id = $3")
        .bind(now_ms())
        .bind(site_id)
        .bind(session_id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    // A session replaced by a newer one is not the site going offline.
    if closed == 1 {
        #[derive(serde::Serialize)]
        struct Offline<'a> {
            site_id: &'a str,
        }
        let refs = crate::events::Refs {
            site_id: Some(site_id),
            ..Default::default()
        };
        crate::events::emit(
            &mut tx,
            crate::events::EventKind::SiteOffline,
            refs,
            &Offline { site_id },
        )
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::valid_name;

    #[test]
    fn site_names() {
        assert!(valid_name("Desa Sukamaju-2"));
        assert!(!valid_name(""));
        assert!(!valid_name(" padded"));
        assert!(!valid_name("semi;colon"));
        assert!(!valid_name(&"x".repeat(65)));
    }
}

/// How long an enrollment token handed to a technician lives unless asked otherwise.
pub const DEFAULT_TOKEN_HOURS: u32 = 24;

/// An enrollment token for a technician, with the command that uses it.
#[derive(Debug, Clone)]
pub struct IssuedToken {
    /// The token (shown once; only its hash is stored).
    pub token: String,
    /// When it stops working (unix ms).
    pub expires_at: i64,
    /// The command the technician runs on the site's agent host.
    pub command: String,
}

/// The command that enrolls an agent with `token`.
pub fn agent_command(token: &str) -> String {
    format!("mikrobill-agent enroll --data-dir /var/lib/mikrobill-agent --token {token}")
}

/// Issues a token for `site_id` that works for `hours` (1-720, default 24), naming the edge
/// address the controller advertises; `Ok(None)` while that address is not known yet.
pub async fn issue_for_technician(
    db: &Db,
    actor: &Actor,
    site_id: &str,
    ca_fingerprint: [u8; 32],
    hours: Option<u32>,
) -> crate::error::DomainResult<Option<IssuedToken>> {
    let hours = hours.unwrap_or(DEFAULT_TOKEN_HOURS);
    if !(1..=720).contains(&hours) {
        return Err(crate::error::DomainError::invalid(
            "token_ttl_hours",
            "must be between 1 and 720",
        ));
    }
    let Some(addr) = db.setting(EDGE_ADVERTISE_SETTING).await? else {
        return Ok(None);
    };
    let ttl_ms = hours as i64 * 3_600_000;
    let token = issue_enrollment_token(db, actor, site_id, addr, ca_fingerprint, ttl_ms).await?;
    Ok(Some(IssuedToken {
        command: agent_command(&token),
        expires_at: now_ms() + ttl_ms,
        token,
    }))
}
