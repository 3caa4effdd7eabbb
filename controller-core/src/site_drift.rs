//! Router drift per site: the agents' reports of their routers changed by hand
//! (`AgentMessage::Drift`), kept as each site's current state (`site_drift`) and a bounded
//! history (`site_drift_reports`). A site going from clean (or never reported) to drifted
//! emits `site.drift`; an operator's repair is a `ResyncRouter` command, which makes the
//! agent reconcile and write its RADIUS/AAA settings back.

use crate::audit::Actor;
use crate::commands::QueuedCommand;
use crate::db::{Db, DbError, now_ms};
use crate::error::DomainResult;
use crate::events::{EventKind, Refs};
use mikrobill_protocol::drift::DriftReport;
use mikrobill_protocol::messages::Command;
use serde::{Deserialize, Serialize};
use sqlx::Row;

/// Reports kept per site; older ones are deleted as new ones arrive.
pub const HISTORY_KEPT: i64 = 200;
/// Reports shown by default with a site's status.
pub const HISTORY_SHOWN: u32 = 20;

/// Where a site's router stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum DriftStatus {
    /// No report yet (no router, an agent of protocol 6 or older, or nothing found so far).
    Unknown,
    /// The last report found nothing.
    Clean,
    /// The last report found something.
    Drifted,
}

impl DriftStatus {
    /// Storage and display name.
    pub fn as_str(self) -> &'static str {
        match self {
            DriftStatus::Unknown => "unknown",
            DriftStatus::Clean => "clean",
            DriftStatus::Drifted => "drifted",
        }
    }

    fn of(findings: i64) -> DriftStatus {
        if findings > 0 {
            DriftStatus::Drifted
        } else {
            DriftStatus::Clean
        }
    }
}

/// One finding, as stored and answered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Finding {
    /// The RouterOS menu, e.g. `/ip/hotspot/user/profile`.
    pub menu: String,
    /// The item (`settings` for a menu without items).
    pub name: String,
    /// `changed_by_hand`, `removed_by_hand`, `shadowed_by_unmanaged` or `aaa_changed`.
    pub kind: String,
    /// The properties that differ: what the agent set or wants (`old`) and what the router
    /// held (`new`); secrets as `[redacted]`.
    pub properties: Vec<FindingProperty>,
    /// Whether the agent put it back.
    pub repaired: bool,
}

/// One property that differs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct FindingProperty {
    /// Property name.
    pub name: String,
    /// What the agent set or wants (absent: unset).
    pub old: Option<String>,
    /// What the router held (absent: unset).
    pub new: Option<String>,
}

fn findings_of(report: &DriftReport) -> Vec<Finding> {
    report
        .entries
        .iter()
        .map(|e| Finding {
            menu: e.menu.clone(),
            name: e.name.clone(),
            kind: e.kind.as_str().to_owned(),
            properties: e
                .properties
                .iter()
                .map(|p| FindingProperty {
                    name: p.name.clone(),
                    old: p.old.clone(),
                    new: p.new.clone(),
                })
                .collect(),
            repaired: e.repaired,
        })
        .collect()
}

/// One stored report.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct StoredReport {
    /// Sequence number.
    pub id: i64,
    /// Clean or drifted.
    pub status: DriftStatus,
    /// What it found.
    pub findings: Vec<Finding>,
    /// When the agent's reconciliation ran (agent clock, unix ms).
    pub checked_at: i64,
    /// When the controller received it (unix ms).
    pub received_at: i64,
}

/// A site's drift status with its recent reports.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SiteDrift {
    /// The site.
    pub site_id: String,
    /// Unknown, clean or drifted.
    pub status: DriftStatus,
    /// The last report's findings.
    pub findings: Vec<Finding>,
    /// When the last report's reconciliation ran (unix ms).
    pub checked_at: Option<i64>,
    /// When the site last went from clean to drifted (unix ms).
    pub drifted_since: Option<i64>,
    /// Recent reports, newest first.
    pub history: Vec<StoredReport>,
}

/// Whether a stored report changed the site's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recorded {
    /// Not newer than the stored one (a re-send after a reconnect): nothing changed.
    Ignored,
    /// Stored; the site went from clean or unknown to drifted, and `site.drift` was emitted.
    NewlyDrifted,
    /// Stored.
    Stored,
}

/// Stores a report an agent sent for `site_id` (from its certificate), with the history row,
/// the retention and, on a change to drifted, the `site.drift` event, in one transaction.
pub async fn record(db: &Db, site_id: &str, report: &DriftReport) -> Result<Recorded, DbError> {
    let findings = findings_of(report);
    let json = serde_json::to_string(&findings).expect("findings serialize");
    let count = findings.len() as i64;
    let now = now_ms();
    let mut tx = db.begin().await?;
    let previous = sqlx::query(
        "SELECT findings, checked_at, drifted_since FROM site_drift WHERE site_id = $1",
    )
    .bind(site_id)
    .fetch_optional(&mut *tx)
    .await?;
    let (was_drifted, drifted_since) = match &previous {
        Some(row) => {
            let checked_at: i64 = row.try_get("checked_at")?;
            if report.checked_at_ms <= checked_at {
                return Ok(Recorded::Ignored);
            }
            let findings: i64 = row.try_get("findings")?;
            (
                findings > 0,
                row.try_get::<Option<i64>, _>("drifted_since")?,
            )
        }
        None => (false, None),
    };
    let newly = count > 0 && !was_drifted;
    let drifted_since = match (count > 0, newly) {
        (false, _) => None,
        (true, true) => Some(report.checked_at_ms),
        (true, false) => drifted_since,
    };
    sqlx::query(
        "INSERT INTO site_drift (site_id, findings, entries, checked_at, received_at, drifted_since) \
         VALUES ($1, $2, $3, $4, $5, $6) \
         ON CONFLICT (site_id) DO UPDATE SET findings = excluded.findings, entries = excluded.entries, \
         checked_at = excluded.checked_at, received_at = excluded.received_at, \
         drifted_since = excluded.drifted_since",
    )
    .bind(site_id)
    .bind(count)
    .bind(&json)
    .bind(report.checked_at_ms)
    .bind(now)
    .bind(drifted_since)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "INSERT INTO site_drift_reports (site_id, findings, entries, checked_at, received_at) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(site_id)
    .bind(count)
    .bind(&json)
    .bind(report.checked_at_ms)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "DELETE FROM site_drift_reports WHERE site_id = $1 AND id NOT IN \
         (SELECT id FROM site_drift_reports WHERE site_id = $2 ORDER BY id DESC LIMIT $3)",
    )
    .bind(site_id)
    .bind(site_id)
    .bind(HISTORY_KEPT)
    .execute(&mut *tx)
    .await?;
    if newly {
        let site_name: Option<String> = sqlx::query_scalar("SELECT name FROM sites WHERE id = $1")
            .bind(site_id)
            .fetch_optional(&mut *tx)
            .await?;
        crate::events::emit(
            &mut tx,
            EventKind::SiteDrift,
            Refs {
                site_id: Some(site_id),
                ..Refs::default()
            },
            &serde_json::json!({
                "site_id": site_id,
                "site_name": site_name,
                "findings": findings,
                "checked_at": report.checked_at_ms,
            }),
        )
        .await?;
    }
    tx.commit().await?;
    Ok(if newly {
        Recorded::NewlyDrifted
    } else {
        Recorded::Stored
    })
}

fn decode_findings(json: &str) -> Result<Vec<Finding>, sqlx::Error> {
    serde_json::from_str(json)
        .map_err(|e| sqlx::Error::Decode(format!("site drift: bad entries: {e}").into()))
}

/// A site's drift status and its `limit` (1 to [`HISTORY_KEPT`]) most recent reports.
pub async fn status(db: &Db, site_id: &str, limit: u32) -> DomainResult<SiteDrift> {
    if !(1..=HISTORY_KEPT as u32).contains(&limit) {
        return Err(crate::error::DomainError::invalid(
            "limit",
            format!("must be between 1 and {HISTORY_KEPT}"),
        ));
    }
    let site = crate::sites::by_id(db, site_id).await?;
    // One statement, so the current state and the history come from one snapshot (on
    // PostgreSQL two statements could straddle a report's commit).
    let rows = sqlx::query(
        "SELECT r.id, r.findings, r.entries, r.checked_at, r.received_at, \
         d.findings AS current_findings, d.entries AS current_entries, \
         d.checked_at AS current_checked_at, d.drifted_since \
         FROM site_drift_reports r JOIN site_drift d ON d.site_id = r.site_id \
         WHERE r.site_id = $1 ORDER BY r.id DESC LIMIT $2",
    )
    .bind(&site.id)
    .bind(limit as i64)
    .fetch_all(&db.pool)
    .await?;
    let history = rows
        .iter()
        .map(|r| {
            Ok(StoredReport {
                id: r.try_get("id")?,
                status: DriftStatus::of(r.try_get("findings")?),
                findings: decode_findings(&r.try_get::<String, _>("entries")?)?,
                checked_at: r.try_get("checked_at")?,
                received_at: r.try_get("received_at")?,
            })
        })
        .collect::<Result<Vec<_>, sqlx::Error>>()?;
    // Every stored report has its history row, so no rows means none was ever received.
    Ok(match rows.first() {
        None => SiteDrift {
            site_id: site.id,
            status: DriftStatus::Unknown,
            findings: Vec::new(),
            checked_at: None,
            drifted_since: None,
            history,
        },
        Some(r) => SiteDrift {
            site_id: site.id,
            status: DriftStatus::of(r.try_get("current_findings")?),
            findings: decode_findings(&r.try_get::<String, _>("current_entries")?)?,
            checked_at: Some(r.try_get("current_checked_at")?),
            drifted_since: r.try_get("drifted_since")?,
            history,
        },
    })
}

/// Every site's status with its number of findings, for lists (sites never reported are
/// absent: unknown).
pub async fn statuses(
    db: &Db,
) -> Result<std::collections::HashMap<String, (DriftStatus, i64)>, DbError> {
    let rows = sqlx::query("SELECT site_id, findings FROM site_drift")
        .fetch_all(&db.pool)
        .await?;
    rows.iter()
        .map(|r| {
            let findings: i64 = r.try_get("findings")?;
            Ok((r.try_get("site_id")?, (DriftStatus::of(findings), findings)))
        })
        .collect::<Result<_, sqlx::Error>>()
        .map_err(DbError::from)
}

/// Queues the repair of a site's drift: a full reconciliation in which the agent also writes
/// its RADIUS/AAA settings back (`ResyncRouter`, which every agent version applies), with
/// the audit entry of the queued command.
pub async fn queue_repair(db: &Db, actor: &Actor, site_id: &str) -> DomainResult<QueuedCommand> {
    crate::commands::queue_manual(db, actor, site_id, None, Command::ResyncRouter, None).await
}
