//! Hotspot vouchers: their lifecycle (new -> sold -> active -> expired/exhausted, or
//! revoked), where they can be used (one site, a site group, every site), who may see them,
//! and how their changes reach the agents. Batches, sales and the expiry sweep live in the
//! submodules.

pub mod batch;
pub mod carried;
pub mod conflict;
pub mod conflicts;
pub mod fleet;
pub mod lifecycle;
pub mod metered;
pub mod sale;
pub mod sales_daily;
pub mod sweep;
pub mod usage_state;

pub use lifecycle::State;

use crate::audit::{self, Actor};
use crate::db::{Db, DbError, now_ms};
use crate::error::{DomainError, DomainResult};
use crate::sync_log;
use mikrobill_protocol::items::{Item, ItemKey, Voucher, VoucherStatus};
use mikrobill_protocol::messages::ChangeOp;
use rand::Rng;
use serde::{Deserialize, Serialize};
use sqlx::Row;
use std::collections::BTreeMap;

/// Columns read by [`from_row`].
pub const COLUMNS: &str = "code, password, plan_id, status, activated_at, used_time_secs, used_bytes, fleet_usage, bound_mac";

/// Characters that cannot be confused when read off paper (no 0/O, 1/I/L).
pub const UNAMBIGUOUS_ALPHABET: &[u8] = b"23456789ABCDEFGHJKMNPQRSTUVWXYZ";

/// Errors of voucher operations.
#[derive(Debug, thiserror::Error)]
pub enum VoucherError {
    /// Storage failed.
    #[error(transparent)]
    Db(#[from] DbError),
    /// A code already exists.
    #[error("voucher code {0:?} already exists")]
    Exists(String),
    /// No such voucher.
    #[error("no voucher with code {0:?}")]
    NotFound(String),
    /// A field is not acceptable.
    #[error("invalid voucher: {0}")]
    Invalid(String),
    /// The voucher's state does not allow the change.
    #[error("{0}")]
    State(String),
}

impl From<sqlx::Error> for VoucherError {
    fn from(e: sqlx::Error) -> Self {
        VoucherError::Db(DbError::Sqlx(e))
    }
}

/// Storage name of a status.
pub fn status_str(s: VoucherStatus) -> &'static str {
    match s {
        VoucherStatus::New => "new",
        VoucherStatus::Sold => "sold",
        VoucherStatus::Active => "active",
        VoucherStatus::Expired => "expired",
        VoucherStatus::Exhausted => "exhausted",
        VoucherStatus::Revoked => "revoked",
    }
}

fn parse_status(s: &str) -> Result<VoucherStatus, sqlx::Error> {
    Ok(match s {
        "new" => VoucherStatus::New,
        "sold" => VoucherStatus::Sold,
        "active" => VoucherStatus::Active,
        "expired" => VoucherStatus::Expired,
        "exhausted" => VoucherStatus::Exhausted,
        "revoked" => VoucherStatus::Revoked,
        other => {
            return Err(sqlx::Error::Decode(
                format!("unknown voucher status {other:?}").into(),
            ));
        }
    })
}

/// Builds a voucher from a row selected with [`COLUMNS`].
pub fn from_row(row: &sqlx::any::AnyRow) -> Result<Voucher, sqlx::Error> {
    Ok(Voucher {
        code: row.try_get("code")?,
        password: row.try_get("password")?,
        plan_id: row.try_get("plan_id")?,
        status: parse_status(&row.try_get::<String, _>("status")?)?,
        activated_at_ms: row.try_get("activated_at")?,
        used_time_secs: row.try_get::<i64, _>("used_time_secs")?.max(0) as u64,
        used_bytes: row.try_get::<i64, _>("used_bytes")?.max(0) as u64,
        sites: fleet::decode_sites(row.try_get::<Option<String>, _>("fleet_usage")?.as_deref()),
        bound_mac: row.try_get("bound_mac")?,
    })
}

/// Generates `count` random codes of `length` characters after `prefix`.
pub fn generate_codes(count: usize, prefix: &str, length: usize) -> Vec<String> {
    let mut rng = rand::rng();
    let mut seen = std::collections::HashSet::with_capacity(count);
    while seen.len() < count {
        let code: String = prefix
            .chars()
            .chain((0..length).map(|_| {
                UNAMBIGUOUS_ALPHABET[rng.random_range(0..UNAMBIGUOUS_ALPHABET.len())] as char
            }))
            .collect();
        seen.insert(code);
    }
    seen.into_iter().collect()
}

pub(crate) fn valid_code(code: &str) -> bool {
    (1..=64).contains(&code.len())
        && code
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// Creates vouchers for one site (or all when `site_id` is None) and syncs them out.
pub async fn create(
    db: &Db,
    plan_id: &str,
    site_id: Option<&str>,
    entries: &[(String, Option<String>)],
) -> Result<Vec<Voucher>, VoucherError> {
    if let Some((bad, _)) = entries.iter().find(|(code, _)| !valid_code(code)) {
        return Err(VoucherError::Invalid(format!(
            "code {bad:?} must be 1-64 letters, digits, '-', '_' or '.'"
        )));
    }
    let vouchers: Vec<Voucher> = entries
        .iter()
        .map(|(code, password)| Voucher {
            code: code.clone(),
            password: password.clone(),
            plan_id: plan_id.to_string(),
            status: VoucherStatus::New,
            activated_at_ms: None,
            used_time_secs: 0,
            used_bytes: 0,
            sites: Vec::new(),
            bound_mac: None,
        })
        .collect();
    let now = now_ms();
    let mut tx = db.begin().await?;
    for chunk in vouchers.chunks(crate::db::params::rows_per_statement(6)) {
        let sql = format!(
            "INSERT INTO vouchers (code, password, plan_id, site_id, status, created_at) VALUES {} \
             ON CONFLICT (code) DO NOTHING",
            crate::db::params::Params::new(db.backend).rows(chunk.len(), 6)
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for v in chunk {
            q = q
                .bind(v.code.clone())
                .bind(v.password.clone())
                .bind(plan_id.to_string())
                .bind(site_id.map(str::to_string))
                .bind(status_str(v.status))
                .bind(now);
        }
        let inserted = q.execute(&mut *tx).await?.rows_affected();
        if inserted != chunk.len() as u64 {
            // Name one of the clashing codes so the operator can act.
            for v in chunk {
                let exists = sqlx::query("SELECT created_at FROM vouchers WHERE code = $1")
                    .bind(&v.code)
                    .fetch_one(&mut *tx)
                    .await?;
                if exists.try_get::<i64, _>("created_at")? != now {
                    return Err(VoucherError::Exists(v.code.clone()));
                }
            }
            return Err(VoucherError::Invalid(
                "duplicate codes in the request".into(),
            ));
        }
    }
    let ops: Vec<ChangeOp> = vouchers
        .iter()
        .map(|v| ChangeOp::Upsert(Item::Voucher(v.clone())))
        .collect();
    sync_log::append(&mut tx, site_id, &ops).await?;
    tx.commit().await?;
    Ok(vouchers)
}

/// Revokes a voucher from the command line: it disappears from every agent cache.
pub async fn revoke(db: &Db, code: &str) -> Result<(), VoucherError> {
    match revoke_voucher(db, &Actor::cli(), code).await {
        Ok(_) => Ok(()),
        Err(DomainError::Db(e)) => Err(VoucherError::Db(e)),
        Err(DomainError::NotFound { .. }) => Err(VoucherError::NotFound(code.to_string())),
        Err(DomainError::Invalid { message, .. }) => Err(VoucherError::Invalid(message)),
        Err(DomainError::Conflict { message, .. }) => Err(VoucherError::State(message)),
    }
}

/// The kind of place a voucher or batch is valid at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ScopeKind {
    /// One site.
    Site,
    /// Every member site of a site group.
    Group,
    /// Every site.
    All,
}

impl ScopeKind {
    /// Storage name.
    pub fn as_str(self) -> &'static str {
        match self {
            ScopeKind::Site => "site",
            ScopeKind::Group => "group",
            ScopeKind::All => "all",
        }
    }
}

/// Where a voucher can be used, and so which agents cache it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Scope {
    /// Every site.
    All,
    /// One site, by id.
    Site(String),
    /// The member sites of a group, by group id.
    Group(String),
}

impl Scope {
    /// The scope stored in a voucher's or batch's `site_id` and `group_id` columns.
    pub fn from_columns(site_id: Option<String>, group_id: Option<String>) -> Scope {
        match (site_id, group_id) {
            (Some(site), _) => Scope::Site(site),
            (None, Some(group)) => Scope::Group(group),
            (None, None) => Scope::All,
        }
    }

    /// Its kind.
    pub fn kind(&self) -> ScopeKind {
        match self {
            Scope::All => ScopeKind::All,
            Scope::Site(_) => ScopeKind::Site,
            Scope::Group(_) => ScopeKind::Group,
        }
    }

    /// The `site_id` column's value.
    pub fn site_id(&self) -> Option<&str> {
        match self {
            Scope::Site(s) => Some(s),
            _ => None,
        }
    }

    /// The `group_id` column's value.
    pub fn group_id(&self) -> Option<&str> {
        match self {
            Scope::Group(g) => Some(g),
            _ => None,
        }
    }
}

/// SQL condition: the voucher row can be used at the site bound as `$n` (its own site, a
/// group the site belongs to, or every site). Used by snapshots, activation and filters so
/// they all agree with where [`sync`] sends changes.
pub fn usable_at_site_sql(n: usize) -> String {
    usable_at(&format!("${n}"), &format!("${n}"))
}

/// [`usable_at_site_sql`] for a statement whose placeholders come from `params`: the site is
/// bound twice, once for each placeholder taken here.
pub fn usable_at_site_params(params: &mut crate::db::params::Params) -> String {
    let (own, member) = (params.one(), params.one());
    usable_at(&own, &member)
}

fn usable_at(own: &str, member: &str) -> String {
    format!(
        "(site_id = {own} OR (site_id IS NULL AND group_id IS NULL) \
         OR group_id IN (SELECT m.group_id FROM site_group_members m WHERE m.site_id = {member}))"
    )
}

/// Appends voucher changes to the change log of every site that can use each voucher, inside
/// the caller's transaction. A group's changes are appended once per member site, so an
/// agent outside the group never receives them.
pub async fn sync(
    conn: &mut sqlx::AnyConnection,
    changes: Vec<(Scope, ChangeOp)>,
) -> Result<(), DbError> {
    if changes.is_empty() {
        return Ok(());
    }
    let mut by_scope: BTreeMap<Scope, Vec<ChangeOp>> = BTreeMap::new();
    for (scope, op) in changes {
        by_scope.entry(scope).or_default().push(op);
    }
    // Membership must be read under the change-log lock, so a site joining a group
    // concurrently either sees these vouchers or is seen here.
    sync_log::lock(&mut *conn).await?;
    for (scope, ops) in by_scope {
        match &scope {
            Scope::All => {
                sync_log::append(&mut *conn, None, &ops).await?;
            }
            Scope::Site(site) => {
                sync_log::append(&mut *conn, Some(site), &ops).await?;
            }
            Scope::Group(group) => {
                let members: Vec<String> = sqlx::query(
                    "SELECT site_id FROM site_group_members WHERE group_id = $1 ORDER BY site_id",
                )
                .bind(group)
                .fetch_all(&mut *conn)
                .await?
                .iter()
                .map(|r| r.try_get("site_id"))
                .collect::<Result<_, _>>()?;
                for site in members {
                    sync_log::append(&mut *conn, Some(&site), &ops).await?;
                }
            }
        }
    }
    Ok(())
}

/// Columns read by [`record_from_row`].
pub const RECORD_COLUMNS: &str = "code, password, plan_id, status, activated_at, used_time_secs, used_bytes, \
     site_id, group_id, batch_id, price, sold_at, sold_to, expires_at, created_at, fleet_usage, bound_mac";

/// A voucher as the API shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct VoucherRecord {
    /// The code the subscriber types (RADIUS User-Name).
    pub code: String,
    /// The separate password; absent when the code is the password.
    pub password: Option<String>,
    /// The plan it grants.
    pub plan_id: String,
    /// Lifecycle state.
    pub status: State,
    /// Where it can be used.
    pub scope: ScopeKind,
    /// The site, for site scope.
    pub site_id: Option<String>,
    /// The site group, for group scope.
    pub group_id: Option<String>,
    /// The batch it was generated in.
    pub batch_id: Option<String>,
    /// Selling price in minor units.
    pub price: i64,
    /// When it was sold (unix ms).
    pub sold_at: Option<i64>,
    /// The reseller it was sold to.
    pub sold_to: Option<String>,
    /// First use (unix ms).
    pub activated_at: Option<i64>,
    /// A fixed end of validity (unix ms), besides the plan's validity after first use.
    pub expires_at: Option<i64>,
    /// Accounted online time, seconds.
    pub used_time_secs: i64,
    /// Accounted traffic, bytes.
    pub used_bytes: i64,
    /// Creation time (unix ms).
    pub created_at: i64,
    /// The device (MAC) a voucher of a MAC-locked plan is bound to: its earliest session's.
    pub bound_mac: Option<String>,
    /// Active at its plan's fair-usage rate: the data limit is used, and the plan slows the
    /// voucher down instead of using it up. Read by [`get`] and [`list`].
    pub throttled: bool,
    /// `used_time_secs` and `used_bytes` split by site, with the sessions open at each.
    #[serde(skip)]
    pub sites: Vec<mikrobill_protocol::items::SiteUsage>,
}

impl VoucherRecord {
    /// Where it can be used.
    pub fn scope(&self) -> Scope {
        Scope::from_columns(self.site_id.clone(), self.group_id.clone())
    }

    /// The item agents cache.
    pub fn item(&self) -> Voucher {
        Voucher {
            code: self.code.clone(),
            password: self.password.clone(),
            plan_id: self.plan_id.clone(),
            status: self.status.status(),
            activated_at_ms: self.activated_at,
            used_time_secs: self.used_time_secs.max(0) as u64,
            used_bytes: self.used_bytes.max(0) as u64,
            sites: self.sites.clone(),
            bound_mac: self.bound_mac.clone(),
        }
    }
}

/// Builds a record from a row selected with [`RECORD_COLUMNS`].
pub fn record_from_row(row: &sqlx::any::AnyRow) -> Result<VoucherRecord, sqlx::Error> {
    let site_id: Option<String> = row.try_get("site_id")?;
    let group_id: Option<String> = row.try_get("group_id")?;
    Ok(VoucherRecord {
        code: row.try_get("code")?,
        password: row.try_get("password")?,
        plan_id: row.try_get("plan_id")?,
        status: parse_status(&row.try_get::<String, _>("status")?)?.into(),
        scope: Scope::from_columns(site_id.clone(), group_id.clone()).kind(),
        site_id,
        group_id,
        batch_id: row.try_get("batch_id")?,
        price: row.try_get("price")?,
        sold_at: row.try_get("sold_at")?,
        sold_to: row.try_get("sold_to")?,
        activated_at: row.try_get("activated_at")?,
        expires_at: row.try_get("expires_at")?,
        used_time_secs: row.try_get("used_time_secs")?,
        used_bytes: row.try_get("used_bytes")?,
        created_at: row.try_get("created_at")?,
        bound_mac: row.try_get("bound_mac")?,
        throttled: false,
        sites: fleet::decode_sites(row.try_get::<Option<String>, _>("fleet_usage")?.as_deref()),
    })
}

/// The `throttled` column [`with_throttled`] reads, for a query over `vouchers`.
fn throttled_column() -> String {
    format!(
        "CAST(COALESCE((SELECT 1 FROM plans p WHERE p.id = vouchers.plan_id AND {}), 0) AS BIGINT) AS throttled",
        usage_state::throttled_sql("vouchers", "p")
    )
}

/// A record from a row selected with [`RECORD_COLUMNS`] and [`throttled_column`].
fn with_throttled(row: &sqlx::any::AnyRow) -> Result<VoucherRecord, sqlx::Error> {
    let mut record = record_from_row(row)?;
    record.throttled = row.try_get::<i64, _>("throttled")? != 0;
    Ok(record)
}

/// Which vouchers and batches a caller may see.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Viewer {
    /// Everything (staff with the read permission).
    All,
    /// Only what was sold to or bought by this reseller; anything else does not exist.
    Reseller(String),
}

impl Viewer {
    /// The reseller id to restrict queries to, if any.
    pub fn reseller(&self) -> Option<&str> {
        match self {
            Viewer::All => None,
            Viewer::Reseller(id) => Some(id),
        }
    }
}

/// One voucher, if the viewer may see it.
pub async fn get(db: &Db, viewer: &Viewer, code: &str) -> DomainResult<VoucherRecord> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {RECORD_COLUMNS}, {} FROM vouchers WHERE code = $1 AND (CAST($2 AS TEXT) IS NULL OR sold_to = $2)",
        throttled_column()
    )))
    .bind(code)
    .bind(viewer.reseller())
    .fetch_optional(&db.pool)
    .await?
    .ok_or_else(|| DomainError::not_found("voucher", code))?;
    Ok(with_throttled(&row)?)
}

/// Filters of [`list`]; `None` matches everything.
#[derive(Debug, Clone, Default)]
pub struct VoucherFilter {
    /// Only this batch.
    pub batch_id: Option<String>,
    /// Only this state.
    pub status: Option<State>,
    /// Only vouchers usable at this site (its own, its groups', every site's).
    pub site_id: Option<String>,
    /// Only this plan.
    pub plan_id: Option<String>,
    /// Only codes starting with this.
    pub code_prefix: Option<String>,
}

/// Vouchers the viewer may see, by code, after `after`.
pub async fn list(
    db: &Db,
    viewer: &Viewer,
    f: &VoucherFilter,
    after: &str,
    limit: u32,
) -> DomainResult<Vec<VoucherRecord>> {
    if let Some(q) = &f.code_prefix
        && (q.len() > 64
            || !q
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
    {
        return Err(DomainError::invalid(
            "q",
            "must be at most 64 letters, digits, '-', '_' or '.'",
        ));
    }
    let sql = format!(
        "SELECT {RECORD_COLUMNS}, {} FROM vouchers WHERE code > $1 \
         AND (CAST($2 AS TEXT) IS NULL OR sold_to = $2) \
         AND (CAST($3 AS TEXT) IS NULL OR batch_id = $3) \
         AND (CAST($4 AS TEXT) IS NULL OR status = $4) \
         AND (CAST($5 AS TEXT) IS NULL OR plan_id = $5) \
         AND (CAST($6 AS TEXT) IS NULL OR substr(code, 1, length($6)) = $6) \
         AND (CAST($7 AS TEXT) IS NULL OR {}) \
         ORDER BY code LIMIT $8",
        throttled_column(),
        usable_at_site_sql(7)
    );
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(after)
        .bind(viewer.reseller())
        .bind(f.batch_id.as_deref())
        .bind(f.status.map(State::as_str))
        .bind(f.plan_id.as_deref())
        .bind(f.code_prefix.as_deref())
        .bind(f.site_id.as_deref())
        .bind(limit as i64)
        .fetch_all(&db.pool)
        .await?;
    Ok(rows.iter().map(with_throttled).collect::<Result<_, _>>()?)
}

/// Changes one voucher's state from what `before` shows, provided nobody changed it since;
/// returns the new record. The caller checked that the transition is allowed.
pub(crate) async fn transition(
    conn: &mut sqlx::AnyConnection,
    before: &VoucherRecord,
    to: State,
    price: i64,
    sold_at: Option<i64>,
) -> DomainResult<VoucherRecord> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "UPDATE vouchers SET status = $1, price = $2, sold_at = $3 WHERE code = $4 AND status = $5 \
         RETURNING {RECORD_COLUMNS}"
    )))
    .bind(to.as_str())
    .bind(price)
    .bind(sold_at)
    .bind(&before.code)
    .bind(before.status.as_str())
    .fetch_all(&mut *conn)
    .await?
    .into_iter()
    .next()
    .ok_or_else(|| {
        DomainError::conflict(
            "invalid_state",
            format!("voucher {} changed meanwhile; read it again", before.code),
        )
    })?;
    Ok(record_from_row(&row)?)
}

/// Revokes a new, sold or active voucher: it disappears from every agent cache.
pub async fn revoke_voucher(db: &Db, actor: &Actor, code: &str) -> DomainResult<VoucherRecord> {
    let before = get(db, &Viewer::All, code).await?;
    let Some(to) = lifecycle::next(before.status, lifecycle::Event::Revoke) else {
        return Err(DomainError::conflict(
            "invalid_state",
            lifecycle::refusal(code, before.status, lifecycle::Event::Revoke),
        ));
    };
    let mut tx = db.begin().await?;
    let after = transition(&mut tx, &before, to, before.price, before.sold_at).await?;
    sync(
        &mut tx,
        vec![(
            after.scope(),
            ChangeOp::Delete(ItemKey::Voucher(code.to_string())),
        )],
    )
    .await?;
    audit::record(
        &mut tx,
        actor,
        "voucher.revoke",
        "voucher",
        Some(code),
        Some(&before),
        Some(&after),
    )
    .await?;
    tx.commit().await?;
    Ok(after)
}

/// A page of the vouchers a site may use, after voucher code `after`, for a site's snapshot.
pub async fn snapshot_page(
    db: &Db,
    site_id: &str,
    after: &str,
    limit: u32,
) -> Result<Vec<Voucher>, DbError> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM vouchers WHERE {} AND code > $2 AND status <> $3 ORDER BY code LIMIT $4",
        usable_at_site_sql(1)
    )))
    .bind(site_id)
    .bind(after)
    .bind(status_str(VoucherStatus::Revoked))
    .bind(limit as i64)
    .fetch_all(&db.pool)
    .await?;
    rows.iter().map(|r| Ok(from_row(r)?)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_codes_are_unique_and_unambiguous() {
        let codes = generate_codes(2000, "HS-", 6);
        assert_eq!(codes.len(), 2000);
        assert_eq!(
            codes.iter().collect::<std::collections::HashSet<_>>().len(),
            2000
        );
        for c in &codes {
            assert!(c.starts_with("HS-") && c.len() == 9);
            assert!(!c[3..].contains(['0', 'O', '1', 'I', 'L']));
            assert!(valid_code(c));
        }
    }
}
