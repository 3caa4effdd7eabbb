//! Service plans (the spine keeps to what the agent cache needs; billing fields grow later).

use crate::db::{Db, DbError, now_ms};
use crate::sync_log;
use mikrobill_protocol::items::{Item, Plan};
use mikrobill_protocol::messages::ChangeOp;
use sqlx::Row;

/// Columns read by [`from_row`].
pub const COLUMNS: &str = "id, name, rate_limit, time_limit_secs, data_limit_bytes, validity_secs, shared_users, interim_interval_secs, router_group, address_list, mac_lock, fup_rate_limit";

/// Errors of plan operations.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    /// Storage failed.
    #[error(transparent)]
    Db(#[from] DbError),
    /// The name is taken.
    #[error("a plan named {0:?} already exists")]
    Exists(String),
    /// No such plan.
    #[error("no plan named {0:?}")]
    NotFound(String),
    /// A field is not acceptable.
    #[error("invalid plan: {0}")]
    Invalid(String),
}

impl From<sqlx::Error> for PlanError {
    fn from(e: sqlx::Error) -> Self {
        PlanError::Db(DbError::Sqlx(e))
    }
}

fn opt_u64(row: &sqlx::any::AnyRow, col: &str) -> Result<Option<u64>, sqlx::Error> {
    Ok(row.try_get::<Option<i64>, _>(col)?.map(|v| v.max(0) as u64))
}

/// Builds a plan from a row selected with [`COLUMNS`].
pub fn from_row(row: &sqlx::any::AnyRow) -> Result<Plan, sqlx::Error> {
    Ok(Plan {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        rate_limit: row.try_get("rate_limit")?,
        time_limit_secs: opt_u64(row, "time_limit_secs")?,
        data_limit_bytes: opt_u64(row, "data_limit_bytes")?,
        validity_secs: opt_u64(row, "validity_secs")?,
        shared_users: row
            .try_get::<i64, _>("shared_users")?
            .clamp(1, u32::MAX as i64) as u32,
        interim_interval_secs: opt_u64(row, "interim_interval_secs")?
            .map(|v| v.min(u32::MAX as u64) as u32),
        router_group: row.try_get("router_group")?,
        address_list: row.try_get("address_list")?,
        mac_lock: row.try_get::<i64, _>("mac_lock")? != 0,
        fup_rate_limit: row.try_get("fup_rate_limit")?,
    })
}

/// Why a fair-usage rate is refused on a plan without a data limit: it applies only once
/// the data limit is reached.
const FUP_NEEDS_DATA_LIMIT: &str =
    "a fair-usage rate limit needs a data limit: it applies once that much data is used";

/// Checks a Mikrotik-Rate-Limit string's basic `rx/tx` shape, e.g. `512k/2M`.
pub fn valid_rate_limit(s: &str) -> bool {
    let first = s.split_whitespace().next().unwrap_or("");
    let mut parts = first.split('/');
    let ok = |p: Option<&str>| {
        p.is_some_and(|p| {
            let digits = p.trim_end_matches(['k', 'K', 'M', 'G']);
            !digits.is_empty()
                && digits.chars().all(|c| c.is_ascii_digit())
                && p.len() - digits.len() <= 1
        })
    };
    ok(parts.next()) && ok(parts.next()) && parts.next().is_none()
}

/// Creates a plan and announces it to every site.
pub async fn create(db: &Db, mut plan: Plan, price: i64) -> Result<Plan, PlanError> {
    if plan.name.trim().is_empty() || plan.name.len() > 64 {
        return Err(PlanError::Invalid("name must be 1-64 characters".into()));
    }
    if let Some(r) = &plan.rate_limit
        && !valid_rate_limit(r)
    {
        return Err(PlanError::Invalid(format!(
            "rate limit {r:?} is not of the form upload/download (RouterOS rx/tx), e.g. 2M/10M"
        )));
    }
    if let Some(r) = &plan.fup_rate_limit
        && !valid_rate_limit(r)
    {
        return Err(PlanError::Invalid(format!(
            "fair-usage rate limit {r:?} is not of the form upload/download (RouterOS rx/tx), e.g. 512k/1M"
        )));
    }
    if plan.fup_rate_limit.is_some() && plan.data_limit_bytes.is_none() {
        return Err(PlanError::Invalid(FUP_NEEDS_DATA_LIMIT.into()));
    }
    if plan.shared_users == 0 {
        return Err(PlanError::Invalid("shared users must be at least 1".into()));
    }
    if price < 0 {
        return Err(PlanError::Invalid("price cannot be negative".into()));
    }
    plan.id = uuid::Uuid::new_v4().to_string();
    let as_i64 = |v: Option<u64>| v.map(|v| v.min(i64::MAX as u64) as i64);
    let mut tx = db.begin().await?;
    let res = sqlx::query(
        "INSERT INTO plans (id, name, price, rate_limit, time_limit_secs, data_limit_bytes, validity_secs, shared_users, interim_interval_secs, router_group, address_list, created_at, mac_lock, fup_rate_limit) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) ON CONFLICT (name) DO NOTHING",
    )
    .bind(&plan.id)
    .bind(&plan.name)
    .bind(price)
    .bind(&plan.rate_limit)
    .bind(as_i64(plan.time_limit_secs))
    .bind(as_i64(plan.data_limit_bytes))
    .bind(as_i64(plan.validity_secs))
    .bind(plan.shared_users as i64)
    .bind(plan.interim_interval_secs.map(|v| v as i64))
    .bind(&plan.router_group)
    .bind(&plan.address_list)
    .bind(now_ms())
    .bind(plan.mac_lock as i64)
    .bind(&plan.fup_rate_limit)
    .execute(&mut *tx)
    .await?;
    if res.rows_affected() == 0 {
        return Err(PlanError::Exists(plan.name));
    }
    sync_log::append(&mut tx, None, &[ChangeOp::Upsert(Item::Plan(plan.clone()))]).await?;
    tx.commit().await?;
    Ok(plan)
}

/// Looks a plan up by name.
pub async fn by_name(db: &Db, name: &str) -> Result<Plan, PlanError> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM plans WHERE name = $1"
    )))
    .bind(name)
    .fetch_optional(&db.pool)
    .await?
    .ok_or_else(|| PlanError::NotFound(name.to_string()))?;
    Ok(from_row(&row)?)
}

#[cfg(test)]
mod tests {
    use super::valid_rate_limit;

    #[test]
    fn rate_limits() {
        assert!(valid_rate_limit("512k/2M"));
        assert!(valid_rate_limit("2M/10M 4M/20M 1M/5M 8"));
        assert!(!valid_rate_limit("fast"));
        assert!(!valid_rate_limit("2M"));
        assert!(!valid_rate_limit("2MM/1M"));
    }
}

/// Whether a plan sells hotspot vouchers or bills PPPoE subscriptions monthly.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum PlanKind {
    /// Vouchers: price per voucher, time/data/validity limits.
    Hotspot,
    /// PPPoE subscriptions: price per month.
    Pppoe,
}

impl PlanKind {
    /// Storage name.
    pub fn as_str(self) -> &'static str {
        match self {
            PlanKind::Hotspot => "hotspot",
            PlanKind::Pppoe => "pppoe",
        }
    }
}

/// A plan as the admin API shows it.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct PlanInfo {
    /// Stable id.
    pub id: String,
    /// Unique name; also the router profile name.
    pub name: String,
    /// Hotspot or PPPoE.
    pub kind: PlanKind,
    /// Price in minor units: per voucher (hotspot) or per month (PPPoE).
    pub price: i64,
    /// Mikrotik rate limit `rx/tx` as RouterOS reads it, from the router's side: the
    /// subscriber's upload, then their download, e.g. `2M/10M` (2 Mbit/s up, 10 down).
    pub rate_limit: Option<String>,
    /// Online time allowed, seconds.
    pub time_limit_secs: Option<i64>,
    /// Data allowed (down + up), bytes; the quota of a PPPoE plan.
    pub data_limit_bytes: Option<i64>,
    /// Validity after first use, seconds.
    pub validity_secs: Option<i64>,
    /// Concurrent sessions per account.
    pub shared_users: i64,
    /// Accounting interim interval, seconds.
    pub interim_interval_secs: Option<i64>,
    /// Router profile (Mikrotik-Group) for sessions.
    pub router_group: Option<String>,
    /// Address list sessions join.
    pub address_list: Option<String>,
    /// Vouchers are bound to the first device (MAC) that uses them, at every site.
    pub mac_lock: bool,
    /// Fair usage: the rate limit (`rx/tx`) an account drops to once its data reaches
    /// `data_limit_bytes`, instead of being cut off; absent cuts it off.
    pub fup_rate_limit: Option<String>,
    /// Router profile an isolated (overdue) subscriber gets.
    pub isolation_profile: Option<String>,
    /// No new vouchers or subscriptions on an archived plan.
    pub archived: bool,
    /// Creation time (unix ms).
    pub created_at: i64,
}

const INFO_COLUMNS: &str = "id, name, kind, price, rate_limit, time_limit_secs, data_limit_bytes, validity_secs, shared_users, interim_interval_secs, router_group, address_list, mac_lock, fup_rate_limit, isolation_profile, archived_at, created_at";

fn info_from_row(r: &sqlx::any::AnyRow) -> Result<PlanInfo, sqlx::Error> {
    Ok(PlanInfo {
        id: r.try_get("id")?,
        name: r.try_get("name")?,
        kind: match r.try_get::<String, _>("kind")?.as_str() {
            "pppoe" => PlanKind::Pppoe,
            _ => PlanKind::Hotspot,
        },
        price: r.try_get("price")?,
        rate_limit: r.try_get("rate_limit")?,
        time_limit_secs: r.try_get("time_limit_secs")?,
        data_limit_bytes: r.try_get("data_limit_bytes")?,
        validity_secs: r.try_get("validity_secs")?,
        shared_users: r.try_get("shared_users")?,
        interim_interval_secs: r.try_get("interim_interval_secs")?,
        router_group: r.try_get("router_group")?,
        address_list: r.try_get("address_list")?,
        mac_lock: r.try_get::<i64, _>("mac_lock")? != 0,
        fup_rate_limit: r.try_get("fup_rate_limit")?,
        isolation_profile: r.try_get("isolation_profile")?,
        archived: r.try_get::<Option<i64>, _>("archived_at")?.is_some(),
        created_at: r.try_get("created_at")?,
    })
}

/// Fields of a plan for create and update through the API.
#[derive(Debug, Clone, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PlanInput {
    /// Unique name (1-64 characters).
    pub name: String,
    /// Hotspot or PPPoE.
    pub kind: PlanKind,
    /// Price in minor units (≥ 0).
    pub price: i64,
    /// Rate limit `rx/tx` (the subscriber's upload/download), e.g. `2M/10M`.
    pub rate_limit: Option<String>,
    /// Online time allowed, seconds.
    pub time_limit_secs: Option<u64>,
    /// Data allowed, bytes.
    pub data_limit_bytes: Option<u64>,
    /// Validity after first use, seconds.
    pub validity_secs: Option<u64>,
    /// Concurrent sessions per account (default 1).
    pub shared_users: Option<u32>,
    /// Accounting interim interval, seconds.
    pub interim_interval_secs: Option<u32>,
    /// Router profile for sessions.
    pub router_group: Option<String>,
    /// Address list for sessions.
    pub address_list: Option<String>,
    /// Bind each voucher to the first device (MAC) that uses it, at every site (hotspot).
    #[serde(default)]
    pub mac_lock: bool,
    /// Fair usage: the rate limit `rx/tx` an account drops to once its data reaches
    /// `data_limit_bytes` (which it needs), instead of being cut off, e.g. `512k/1M`.
    #[serde(default)]
    pub fup_rate_limit: Option<String>,
    /// Router profile for isolated subscribers (PPPoE).
    pub isolation_profile: Option<String>,
}

fn checked(input: &PlanInput) -> Result<(Plan, i64), crate::error::DomainError> {
    use crate::error::{DomainError, text};
    let name = crate::error::required_text("name", &input.name, 64)?;
    let rate_limit = text("rate_limit", input.rate_limit.clone(), 200)?;
    if let Some(r) = &rate_limit
        && !valid_rate_limit(r)
    {
        return Err(DomainError::invalid(
            "rate_limit",
            format!("{r:?} is not of the form upload/download (RouterOS rx/tx), e.g. 2M/10M"),
        ));
    }
    let fup_rate_limit = text("fup_rate_limit", input.fup_rate_limit.clone(), 200)?;
    if let Some(r) = &fup_rate_limit {
        if !valid_rate_limit(r) {
            return Err(DomainError::invalid(
                "fup_rate_limit",
                format!("{r:?} is not of the form upload/download (RouterOS rx/tx), e.g. 512k/1M"),
            ));
        }
        if input.data_limit_bytes.is_none() {
            return Err(DomainError::invalid("fup_rate_limit", FUP_NEEDS_DATA_LIMIT));
        }
    }
    if input.price < 0 || input.price > crate::tax::MAX_AMOUNT {
        return Err(DomainError::invalid("price", "must be between 0 and 10^15"));
    }
    let shared_users = input.shared_users.unwrap_or(1);
    if shared_users == 0 {
        return Err(DomainError::invalid("shared_users", "must be at least 1"));
    }
    for (field, v) in [
        ("time_limit_secs", input.time_limit_secs),
        ("data_limit_bytes", input.data_limit_bytes),
        ("validity_secs", input.validity_secs),
    ] {
        if v == Some(0) || v.is_some_and(|v| v > i64::MAX as u64) {
            return Err(DomainError::invalid(
                field,
                "must be positive (leave it out for no limit)",
            ));
        }
    }
    Ok((
        Plan {
            id: String::new(),
            name,
            rate_limit,
            time_limit_secs: input.time_limit_secs,
            data_limit_bytes: input.data_limit_bytes,
            validity_secs: input.validity_secs,
            shared_users,
            interim_interval_secs: input.interim_interval_secs,
            router_group: text("router_group", input.router_group.clone(), 64)?,
            address_list: text("address_list", input.address_list.clone(), 64)?,
            mac_lock: input.mac_lock,
            fup_rate_limit,
        },
        input.price,
    ))
}

fn plan_err(e: PlanError) -> crate::error::DomainError {
    use crate::error::DomainError;
    match e {
        PlanError::Db(db) => DomainError::Db(db),
        PlanError::Exists(n) => {
            DomainError::conflict("exists", format!("a plan named {n:?} already exists"))
        }
        PlanError::NotFound(n) => DomainError::not_found("plan", n),
        PlanError::Invalid(m) => DomainError::invalid("plan", m),
    }
}

/// Creates a plan through the API (any kind) and announces it to every site.
pub async fn create_from(
    db: &Db,
    actor: &crate::audit::Actor,
    input: PlanInput,
) -> crate::error::DomainResult<PlanInfo> {
    let mut tx = db.begin().await?;
    let info = create_in(&mut tx, actor, &input, now_ms()).await?;
    tx.commit().await?;
    Ok(info)
}

/// Creates a plan of any kind inside the caller's transaction (an import writes many records
/// at once), announces it to every site and records it in the audit log.
pub async fn create_in(
    conn: &mut sqlx::AnyConnection,
    actor: &crate::audit::Actor,
    input: &PlanInput,
    now: i64,
) -> crate::error::DomainResult<PlanInfo> {
    let (mut plan, price) = checked(input)?;
    let isolation = crate::error::text("isolation_profile", input.isolation_profile.clone(), 64)?;
    plan.id = uuid::Uuid::new_v4().to_string();
    let as_i64 = |v: Option<u64>| v.map(|v| v.min(i64::MAX as u64) as i64);
    let res = sqlx::query(
        "INSERT INTO plans (id, name, kind, price, rate_limit, time_limit_secs, data_limit_bytes, validity_secs, shared_users, interim_interval_secs, router_group, address_list, isolation_profile, created_at, updated_at, mac_lock, fup_rate_limit) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $14, $15, $16) ON CONFLICT (name) DO NOTHING",
    )
    .bind(&plan.id)
    .bind(&plan.name)
    .bind(input.kind.as_str())
    .bind(price)
    .bind(&plan.rate_limit)
    .bind(as_i64(plan.time_limit_secs))
    .bind(as_i64(plan.data_limit_bytes))
    .bind(as_i64(plan.validity_secs))
    .bind(plan.shared_users as i64)
    .bind(plan.interim_interval_secs.map(|v| v as i64))
    .bind(&plan.router_group)
    .bind(&plan.address_list)
    .bind(isolation)
    .bind(now)
    .bind(plan.mac_lock as i64)
    .bind(&plan.fup_rate_limit)
    .execute(&mut *conn)
    .await?;
    if res.rows_affected() == 0 {
        return Err(plan_err(PlanError::Exists(plan.name)));
    }
    sync_log::append(
        &mut *conn,
        None,
        &[ChangeOp::Upsert(Item::Plan(plan.clone()))],
    )
    .await?;
    let info = fetch_info(conn, &plan.id).await?;
    crate::audit::record(
        conn,
        actor,
        "plan.create",
        "plan",
        Some(&plan.id),
        None::<&()>,
        Some(&info),
    )
    .await?;
    Ok(info)
}

pub(crate) async fn fetch_info(
    conn: &mut sqlx::AnyConnection,
    id: &str,
) -> crate::error::DomainResult<PlanInfo> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {INFO_COLUMNS} FROM plans WHERE id = $1"
    )))
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?
    .ok_or_else(|| crate::error::DomainError::not_found("plan", id))?;
    Ok(info_from_row(&row)?)
}

/// One plan by id.
pub async fn get(db: &Db, id: &str) -> crate::error::DomainResult<PlanInfo> {
    let mut conn = db.pool.acquire().await?;
    fetch_info(&mut conn, id).await
}

/// Plans ordered by name after `after`, optionally of one kind and with archived ones.
pub async fn list(
    db: &Db,
    kind: Option<PlanKind>,
    include_archived: bool,
    after: &str,
    limit: u32,
) -> crate::error::DomainResult<Vec<PlanInfo>> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {INFO_COLUMNS} FROM plans WHERE name > $1 AND (CAST($2 AS TEXT) IS NULL OR kind = $2) \
         AND ($3 = 1 OR archived_at IS NULL) ORDER BY name LIMIT $4"
    )))
    .bind(after)
    .bind(kind.map(PlanKind::as_str))
    .bind(include_archived as i64)
    .bind(limit as i64)
    .fetch_all(&db.pool)
    .await?;
    Ok(rows.iter().map(info_from_row).collect::<Result<_, _>>()?)
}

/// Replaces a plan's fields (the kind cannot change) and syncs the new limits to every site;
/// sessions pick them up at their next login or through a provisioning command.
pub async fn update(
    db: &Db,
    actor: &crate::audit::Actor,
    id: &str,
    input: PlanInput,
) -> crate::error::DomainResult<PlanInfo> {
    let (mut plan, price) = checked(&input)?;
    let isolation = crate::error::text("isolation_profile", input.isolation_profile.clone(), 64)?;
    let mut tx = db.begin().await?;
    let before = fetch_info(&mut tx, id).await?;
    if before.kind != input.kind {
        return Err(crate::error::DomainError::invalid(
            "kind",
            "a plan's kind cannot change; create a new plan",
        ));
    }
    let as_i64 = |v: Option<u64>| v.map(|v| v as i64);
    let res = sqlx::query(
        "UPDATE plans SET name = $1, price = $2, rate_limit = $3, time_limit_secs = $4, data_limit_bytes = $5, \
         validity_secs = $6, shared_users = $7, interim_interval_secs = $8, router_group = $9, address_list = $10, \
         isolation_profile = $11, updated_at = $12, mac_lock = $14, fup_rate_limit = $15 WHERE id = $13 AND NOT EXISTS (SELECT 1 FROM plans o WHERE o.name = $1 AND o.id <> $13)",
    )
    .bind(&plan.name)
    .bind(price)
    .bind(&plan.rate_limit)
    .bind(as_i64(plan.time_limit_secs))
    .bind(as_i64(plan.data_limit_bytes))
    .bind(as_i64(plan.validity_secs))
    .bind(plan.shared_users as i64)
    .bind(plan.interim_interval_secs.map(|v| v as i64))
    .bind(&plan.router_group)
    .bind(&plan.address_list)
    .bind(isolation)
    .bind(now_ms())
    .bind(id)
    .bind(plan.mac_lock as i64)
    .bind(&plan.fup_rate_limit)
    .execute(&mut *tx)
    .await?;
    if res.rows_affected() == 0 {
        return Err(crate::error::DomainError::conflict(
            "exists",
            format!("a plan named {:?} already exists", plan.name),
        ));
    }
    plan.id = id.to_string();
    sync_log::append(&mut tx, None, &[ChangeOp::Upsert(Item::Plan(plan))]).await?;
    let after = fetch_info(&mut tx, id).await?;
    crate::audit::record(
        &mut tx,
        actor,
        "plan.update",
        "plan",
        Some(id),
        Some(&before),
        Some(&after),
    )
    .await?;
    tx.commit().await?;
    Ok(after)
}

/// Archives or restores a plan: an archived plan takes no new vouchers or subscriptions, and
/// existing ones keep working.
pub async fn set_archived(
    db: &Db,
    actor: &crate::audit::Actor,
    id: &str,
    archived: bool,
) -> crate::error::DomainResult<PlanInfo> {
    let mut tx = db.begin().await?;
    let after = set_archived_in(&mut tx, actor, id, archived, now_ms()).await?;
    tx.commit().await?;
    Ok(after)
}

/// [`set_archived`] inside the caller's transaction (an import archives the plans its source
/// had disabled).
pub(crate) async fn set_archived_in(
    conn: &mut sqlx::AnyConnection,
    actor: &crate::audit::Actor,
    id: &str,
    archived: bool,
    now: i64,
) -> crate::error::DomainResult<PlanInfo> {
    let before = fetch_info(&mut *conn, id).await?;
    sqlx::query("UPDATE plans SET archived_at = CASE WHEN $1 = 1 THEN COALESCE(archived_at, $2) ELSE NULL END, updated_at = $2 WHERE id = $3")
        .bind(archived as i64)
        .bind(now)
        .bind(id)
        .execute(&mut *conn)
        .await?;
    let after = fetch_info(&mut *conn, id).await?;
    crate::audit::record(
        &mut *conn,
        actor,
        if archived {
            "plan.archive"
        } else {
            "plan.restore"
        },
        "plan",
        Some(id),
        Some(&before),
        Some(&after),
    )
    .await?;
    Ok(after)
}

/// Every plan as a sync item, for a site's snapshot.
pub async fn snapshot(db: &Db) -> Result<Vec<Item>, DbError> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM plans ORDER BY id"
    )))
    .fetch_all(&db.pool)
    .await?;
    rows.iter().map(|r| Ok(Item::Plan(from_row(r)?))).collect()
}
