//! Recorded offline double use (`voucher_conflicts`): what [`conflict::detect`] found for a
//! voucher, one row per voucher and kind so a replayed batch never records it twice, with
//! what the operator's [`ConflictPolicy`] did about it. Ingest records them inside its
//! transaction (`metered.rs`); the API and the admin UI list them.

use super::conflict::{self, ConflictKind, SessionRef};
use crate::db::{Db, DbError};
use crate::error::{DomainError, DomainResult};
use serde::{Deserialize, Serialize};
use sqlx::Row;

/// What happens to a voucher when its records show it overused across sites.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ConflictPolicy {
    /// Its remaining budget is closed everywhere: it becomes exhausted at every site and its
    /// open sessions are disconnected.
    #[default]
    Close,
    /// The overuse is recorded and reported; the voucher stays as its usage decides.
    Accept,
}

impl ConflictPolicy {
    /// The resolution a conflict found under this policy gets.
    pub fn resolution(self) -> Resolution {
        match self {
            ConflictPolicy::Close => Resolution::Closed,
            ConflictPolicy::Accept => Resolution::Accepted,
        }
    }

    /// Storage and form name.
    pub fn as_str(self) -> &'static str {
        match self {
            ConflictPolicy::Close => "close",
            ConflictPolicy::Accept => "accept",
        }
    }

    /// Parses a form name.
    pub fn parse(s: &str) -> Option<ConflictPolicy> {
        [ConflictPolicy::Close, ConflictPolicy::Accept]
            .into_iter()
            .find(|p| p.as_str() == s)
    }
}

/// What was done about a conflict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Resolution {
    /// The voucher's remaining budget was closed.
    Closed,
    /// The overuse was accepted.
    Accepted,
}

impl Resolution {
    /// Storage name.
    pub fn as_str(self) -> &'static str {
        match self {
            Resolution::Closed => "closed",
            Resolution::Accepted => "accepted",
        }
    }
}

/// The stored detail of a conflict.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Detail {
    sites: Vec<String>,
    sessions: Vec<SessionRef>,
    over_secs: i64,
    over_bytes: i64,
    over_devices: i64,
}

/// A recorded conflict as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ConflictRecord {
    /// Its id.
    pub id: String,
    /// The voucher.
    pub voucher_code: String,
    /// How it was overused.
    pub kind: ConflictKind,
    /// The sites involved.
    pub sites: Vec<String>,
    /// The sessions involved.
    pub sessions: Vec<SessionRef>,
    /// Seconds beyond the time limit.
    pub over_secs: i64,
    /// Bytes beyond the data limit.
    pub over_bytes: i64,
    /// Devices beyond what the plan allows.
    pub over_devices: i64,
    /// What the policy did when it was found.
    pub resolution: Resolution,
    /// When it was found (unix ms).
    pub detected_at: i64,
    /// When its detail last grew (unix ms).
    pub updated_at: i64,
}

const COLUMNS: &str = "id, voucher_code, kind, detail, resolution, detected_at, updated_at";

fn from_row(r: &sqlx::any::AnyRow) -> Result<ConflictRecord, sqlx::Error> {
    let kind: String = r.try_get("kind")?;
    let detail: String = r.try_get("detail")?;
    let resolution: String = r.try_get("resolution")?;
    let decode = |what: &str| sqlx::Error::Decode(format!("voucher conflict: bad {what}").into());
    let detail: Detail = serde_json::from_str(&detail).map_err(|_| decode("detail"))?;
    Ok(ConflictRecord {
        id: r.try_get("id")?,
        voucher_code: r.try_get("voucher_code")?,
        kind: ConflictKind::parse(&kind).ok_or_else(|| decode("kind"))?,
        sites: detail.sites,
        sessions: detail.sessions,
        over_secs: detail.over_secs,
        over_bytes: detail.over_bytes,
        over_devices: detail.over_devices,
        resolution: match resolution.as_str() {
            "closed" => Resolution::Closed,
            "accepted" => Resolution::Accepted,
            _ => return Err(decode("resolution")),
        },
        detected_at: r.try_get("detected_at")?,
        updated_at: r.try_get("updated_at")?,
    })
}

/// Records what `found` shows for voucher `code` inside the caller's transaction: a kind
/// not recorded before is inserted with the resolution `policy` gives and returned (the
/// caller reports it and applies the policy); one already recorded keeps its id, time and
/// resolution and takes the newer detail when more records widened it. Re-running on the
/// same sessions changes nothing.
pub async fn record(
    tx: &mut sqlx::AnyConnection,
    code: &str,
    found: &[conflict::Conflict],
    policy: ConflictPolicy,
    now: i64,
) -> Result<Vec<ConflictRecord>, DbError> {
    let mut new = Vec::new();
    for c in found {
        let detail = serde_json::to_string(&Detail {
            sites: c.sites.clone(),
            sessions: c.sessions.clone(),
            over_secs: c.over_secs,
            over_bytes: c.over_bytes,
            over_devices: c.over_devices,
        })
        .expect("conflict detail encodes");
        let stored = sqlx::query(
            "SELECT detail FROM voucher_conflicts WHERE voucher_code = $1 AND kind = $2",
        )
        .bind(code)
        .bind(c.kind.as_str())
        .fetch_optional(&mut *tx)
        .await?;
        match stored {
            Some(row) => {
                if row.try_get::<String, _>("detail")? != detail {
                    sqlx::query(
                        "UPDATE voucher_conflicts SET detail = $1, updated_at = $2 \
                         WHERE voucher_code = $3 AND kind = $4",
                    )
                    .bind(&detail)
                    .bind(now)
                    .bind(code)
                    .bind(c.kind.as_str())
                    .execute(&mut *tx)
                    .await?;
                }
            }
            None => {
                let row = sqlx::query(sqlx::AssertSqlSafe(format!(
                    "INSERT INTO voucher_conflicts (id, voucher_code, kind, detail, resolution, detected_at, updated_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $6) RETURNING {COLUMNS}"
                )))
                .bind(uuid::Uuid::new_v4().to_string())
                .bind(code)
                .bind(c.kind.as_str())
                .bind(&detail)
                .bind(policy.resolution().as_str())
                .bind(now)
                // Read to the end: SQLite finishes a RETURNING statement only then.
                .fetch_all(&mut *tx)
                .await?
                .into_iter()
                .next()
                .ok_or(sqlx::Error::RowNotFound)?;
                new.push(from_row(&row)?);
            }
        }
    }
    Ok(new)
}

/// Filters of [`list`]; `None` matches everything.
#[derive(Debug, Clone, Default)]
pub struct ConflictFilter {
    /// One voucher's.
    pub voucher_code: Option<String>,
    /// One kind.
    pub kind: Option<ConflictKind>,
    /// Those involving this site.
    pub site_id: Option<String>,
}

impl ConflictRecord {
    /// Its place in the list, newest first: the cursor of the next page.
    pub fn key(&self) -> String {
        format!("{}:{}", self.detected_at, self.id)
    }
}

/// Conflicts newest first, after the one whose [`ConflictRecord::key`] is `after` (empty for
/// the first page), at most `limit`.
pub async fn list(
    db: &Db,
    f: &ConflictFilter,
    after: &str,
    limit: u32,
) -> DomainResult<Vec<ConflictRecord>> {
    if let Some(site) = &f.site_id
        && (site.is_empty() || site.len() > 64 || site.contains(['"', '\\', '%', '_']))
    {
        return Err(DomainError::invalid("site_id", "is not a site id"));
    }
    let (at, id) = if after.is_empty() {
        (i64::MAX, String::new())
    } else {
        after
            .split_once(':')
            .and_then(|(at, id)| Some((at.parse::<i64>().ok()?, id.to_string())))
            .ok_or_else(|| DomainError::invalid("after", "is not a cursor from this list"))?
    };
    // The site filter matches the site's id inside the detail's `sites` list.
    let site_pattern = f.site_id.as_ref().map(|s| format!("%\"{s}\"%"));
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM voucher_conflicts \
         WHERE (detected_at < $1 OR (detected_at = $1 AND id > $2)) \
         AND (CAST($3 AS TEXT) IS NULL OR voucher_code = $3) \
         AND (CAST($4 AS TEXT) IS NULL OR kind = $4) \
         AND (CAST($5 AS TEXT) IS NULL OR detail LIKE $5) \
         ORDER BY detected_at DESC, id LIMIT $6"
    )))
    .bind(at)
    .bind(id)
    .bind(f.voucher_code.as_deref())
    .bind(f.kind.map(ConflictKind::as_str))
    .bind(site_pattern)
    .bind(limit as i64)
    .fetch_all(&db.pool)
    .await?;
    Ok(rows.iter().map(from_row).collect::<Result<_, _>>()?)
}
