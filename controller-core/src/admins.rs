//! Admin users: the people (and integrations) who use the API, their roles, and resellers'
//! prepaid balance.

use crate::audit::{self, Actor};
use crate::auth::password;
use crate::auth::{Role, tokens};
use crate::db::{Db, now_ms};
use crate::error::{DomainError, DomainResult, text};
use serde::Serialize;
use sqlx::Row;

/// An admin user as the API shows it (never with its password hash).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Admin {
    /// Stable id.
    pub id: String,
    /// Login name.
    pub username: String,
    /// Role.
    pub role: Role,
    /// Name to show.
    pub display_name: Option<String>,
    /// Prepaid credit in minor units (resellers).
    pub balance: i64,
    /// Whether the account is disabled.
    pub disabled: bool,
    /// Whether the account signs in with an authenticator code (two-factor, confirmed).
    pub totp_enabled: bool,
    /// Creation time (unix ms).
    pub created_at: i64,
    /// Last change (unix ms).
    pub updated_at: i64,
}

const COLUMNS: &str = "id, username, role, display_name, balance, disabled_at, created_at, updated_at, \
     CAST(CASE WHEN EXISTS (SELECT 1 FROM admin_totp t WHERE t.admin_id = admin_users.id \
     AND t.confirmed_at IS NOT NULL) THEN 1 ELSE 0 END AS BIGINT) AS totp_enabled";

fn from_row(row: &sqlx::any::AnyRow) -> Result<Admin, sqlx::Error> {
    Ok(Admin {
        id: row.try_get("id")?,
        username: row.try_get("username")?,
        role: row
            .try_get::<String, _>("role")?
            .parse()
            .map_err(|e: String| sqlx::Error::Decode(e.into()))?,
        display_name: row.try_get("display_name")?,
        balance: row.try_get("balance")?,
        disabled: row.try_get::<Option<i64>, _>("disabled_at")?.is_some(),
        totp_enabled: row.try_get::<i64, _>("totp_enabled")? == 1,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

fn check_username(username: &str) -> DomainResult<()> {
    let ok = (3..=64).contains(&username.len())
        && username
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'));
    if ok {
        Ok(())
    } else {
        Err(DomainError::invalid(
            "username",
            "must be 3-64 letters, digits, '.', '_', '-' or '@'",
        ))
    }
}

fn check_password(pw: &str) -> DomainResult<()> {
    password::check_policy(pw).map_err(|e| DomainError::invalid("password", e.to_string()))
}

/// What a new admin user is made of.
#[derive(Debug, Clone)]
pub struct NewAdmin {
    /// Login name.
    pub username: String,
    /// Clear-text password (hashed before storage).
    pub password: String,
    /// Role.
    pub role: Role,
    /// Name to show.
    pub display_name: Option<String>,
}

async fn insert(
    conn: &mut sqlx::AnyConnection,
    new: &NewAdmin,
    hash: &str,
) -> DomainResult<Option<Admin>> {
    let now = now_ms();
    let id = uuid::Uuid::new_v4().to_string();
    let inserted = sqlx::query(
        "INSERT INTO admin_users (id, username, password_hash, role, display_name, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $6) ON CONFLICT (username) DO NOTHING",
    )
    .bind(&id)
    .bind(&new.username)
    .bind(hash)
    .bind(new.role.as_str())
    .bind(new.display_name.as_deref())
    .bind(now)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    if inserted == 0 {
        return Ok(None);
    }
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM admin_users WHERE id = $1"
    )))
    .bind(&id)
    .fetch_one(&mut *conn)
    .await?;
    Ok(Some(from_row(&row)?))
}

/// Creates an admin user.
pub async fn create(db: &Db, actor: &Actor, mut new: NewAdmin) -> DomainResult<Admin> {
    check_username(&new.username)?;
    check_password(&new.password)?;
    new.display_name = text("display_name", new.display_name, 100)?;
    let hash = password::hash(&new.password)
        .await
        .map_err(|e| DomainError::invalid("password", e.to_string()))?;
    let mut tx = db.begin().await?;
    let admin = insert(&mut tx, &new, &hash).await?.ok_or_else(|| {
        DomainError::conflict(
            "exists",
            format!("an admin user named {:?} already exists", new.username),
        )
    })?;
    audit::record(
        &mut tx,
        actor,
        "admin.create",
        "admin",
        Some(&admin.id),
        None::<&()>,
        Some(&admin),
    )
    .await?;
    tx.commit().await?;
    Ok(admin)
}

/// Creates the first admin when there is no admin user at all; returns it if created.
/// Concurrent replicas starting at once create at most one.
pub async fn create_first(
    db: &Db,
    username: &str,
    password_clear: &str,
) -> DomainResult<Option<Admin>> {
    let hash = password::hash(password_clear)
        .await
        .map_err(|e| DomainError::invalid("password", e.to_string()))?;
    let mut tx = db.begin().await?;
    // The settings row serialises first-start across replicas (its insert conflicts).
    let claimed = sqlx::query(
        "INSERT INTO settings (key, value) VALUES ('first_admin_created', $1) ON CONFLICT (key) DO NOTHING",
    )
    .bind(now_ms().to_string())
    .execute(&mut *tx)
    .await?
    .rows_affected();
    let existing: i64 = sqlx::query("SELECT COUNT(*) AS n FROM admin_users")
        .fetch_one(&mut *tx)
        .await?
        .try_get("n")?;
    if claimed == 0 || existing > 0 {
        return Ok(None);
    }
    let new = NewAdmin {
        username: username.to_string(),
        password: password_clear.to_string(),
        role: Role::Admin,
        display_name: Some("First administrator".into()),
    };
    let admin = insert(&mut tx, &new, &hash).await?;
    if let Some(a) = &admin {
        audit::record(
            &mut tx,
            &Actor::system("first-start"),
            "admin.create",
            "admin",
            Some(&a.id),
            None::<&()>,
            Some(a),
        )
        .await?;
    }
    tx.commit().await?;
    Ok(admin)
}

/// One admin user by id.
pub async fn get(db: &Db, id: &str) -> DomainResult<Admin> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM admin_users WHERE id = $1"
    )))
    .bind(id)
    .fetch_optional(&db.pool)
    .await?
    .ok_or_else(|| DomainError::not_found("admin", id))?;
    Ok(from_row(&row)?)
}

/// The account and stored hash for a login name, if it exists.
pub async fn for_login(db: &Db, username: &str) -> DomainResult<Option<(Admin, String)>> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS}, password_hash FROM admin_users WHERE username = $1"
    )))
    .bind(username)
    .fetch_optional(&db.pool)
    .await?;
    match row {
        Some(r) => Ok(Some((from_row(&r)?, r.try_get("password_hash")?))),
        None => Ok(None),
    }
}

/// Admin users ordered by username, after `after`, optionally of one role.
pub async fn list(
    db: &Db,
    role: Option<Role>,
    after: &str,
    limit: u32,
) -> DomainResult<Vec<Admin>> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM admin_users WHERE (CAST($1 AS TEXT) IS NULL OR role = $1) AND username > $2 ORDER BY username LIMIT $3"
    )))
    .bind(role.map(Role::as_str))
    .bind(after)
    .bind(limit as i64)
    .fetch_all(&db.pool)
    .await?;
    Ok(rows.iter().map(from_row).collect::<Result<_, _>>()?)
}

/// Changes to an admin user; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct AdminPatch {
    /// New role.
    pub role: Option<Role>,
    /// New display name (empty clears it).
    pub display_name: Option<String>,
    /// Disable or re-enable.
    pub disabled: Option<bool>,
    /// New password.
    pub password: Option<String>,
}

/// Applies a patch; a new role, password or disabling ends the user's sessions and tokens.
pub async fn update(db: &Db, actor: &Actor, id: &str, patch: AdminPatch) -> DomainResult<Admin> {
    if let Some(pw) = &patch.password {
        check_password(pw)?;
    }
    let display_name = match patch.display_name {
        Some(d) => Some(text("display_name", Some(d), 100)?),
        None => None,
    };
    let hash = match &patch.password {
        Some(pw) => Some(
            password::hash(pw)
                .await
                .map_err(|e| DomainError::invalid("password", e.to_string()))?,
        ),
        None => None,
    };
    let before = get(db, id).await?;
    if actor.id.as_deref() == Some(id)
        && (patch.disabled == Some(true)
            || patch.role.is_some_and(|r| r != Role::Admin) && before.role == Role::Admin)
    {
        return Err(DomainError::conflict(
            "self_lockout",
            "you cannot disable yourself or drop your own admin role",
        ));
    }
    let now = now_ms();
    let mut tx = db.begin().await?;
    sqlx::query(
        "UPDATE admin_users SET role = COALESCE($1, role), \
           display_name = CASE WHEN $2 = 1 THEN $3 ELSE display_name END, \
           disabled_at = CASE WHEN $4 = 1 THEN COALESCE(disabled_at, $5) WHEN $4 = 0 THEN NULL ELSE disabled_at END, \
           password_hash = COALESCE($6, password_hash), updated_at = $5 WHERE id = $7",
    )
    .bind(patch.role.map(Role::as_str))
    .bind(display_name.is_some() as i64)
    .bind(display_name.flatten())
    .bind(patch.disabled.map(|d| d as i64).unwrap_or(-1))
    .bind(now)
    .bind(hash.as_deref())
    .bind(id)
    .execute(&mut *tx)
    .await?;
    if patch.password.is_some()
        || patch.disabled == Some(true)
        || patch.role.is_some_and(|r| r != before.role)
    {
        tokens::revoke_all_for(&mut tx, id).await?;
    }
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM admin_users WHERE id = $1"
    )))
    .bind(id)
    .fetch_one(&mut *tx)
    .await?;
    let after = from_row(&row)?;
    audit::record(
        &mut tx,
        actor,
        "admin.update",
        "admin",
        Some(id),
        Some(&before),
        Some(&after),
    )
    .await?;
    tx.commit().await?;
    Ok(after)
}

/// Changes one's own password after checking the current one.
pub async fn change_own_password(
    db: &Db,
    actor: &Actor,
    id: &str,
    current: &str,
    new: &str,
) -> DomainResult<()> {
    check_password(new)?;
    let before = get(db, id).await?;
    check_own_password(db, actor, &before.username, current).await?;
    update(
        db,
        actor,
        id,
        AdminPatch {
            password: Some(new.to_string()),
            ..AdminPatch::default()
        },
    )
    .await
    .map(|_| ())
}

/// Checks that `current` is the password of `username` before a change to one's own account,
/// under the same lockout as the login form: a stolen session must not become a way to guess
/// the account's password without limit.
pub async fn check_own_password(
    db: &Db,
    actor: &Actor,
    username: &str,
    current: &str,
) -> DomainResult<()> {
    let stored = for_login(db, username).await?.map(|(_, h)| h);
    throttled(db, actor, username, async || {
        password::verify(current, stored).await
    })
    .await?
    .then_some(())
    .ok_or_else(|| DomainError::invalid("current_password", "is not your current password"))
}

/// Runs `check` (a password or code an account holder typed) as one attempt of the login
/// throttle of `username` from the actor's address: refused while locked, a failure counted
/// (and locking at the limit), a success clearing the account's failures.
pub async fn throttled(
    db: &Db,
    actor: &Actor,
    username: &str,
    check: impl AsyncFnOnce() -> bool,
) -> DomainResult<bool> {
    use crate::auth::throttle::{self, Gate, LoginKeys};
    let ip = actor.addr.as_deref().and_then(|a| {
        a.parse::<std::net::SocketAddr>()
            .map(|s| s.ip())
            .or_else(|_| a.parse())
            .ok()
    });
    let keys = LoginKeys::admin(username, &throttle::address_key(ip));
    match throttle::gate(db, &keys).await? {
        Gate::Locked(wait) => {
            return Err(DomainError::conflict(
                "locked",
                format!(
                    "too many wrong attempts; try again in {} min",
                    wait.as_secs().div_ceil(60).max(1)
                ),
            ));
        }
        Gate::Open(delay) => tokio::time::sleep(delay).await,
    }
    if check().await {
        throttle::login_succeeded(db, &keys).await?;
        Ok(true)
    } else {
        throttle::login_failed(db, &keys).await?;
        Ok(false)
    }
}

/// Adds `amount` (positive) to a reseller's balance, e.g. after the reseller paid cash.
pub async fn credit_reseller(
    db: &Db,
    actor: &Actor,
    id: &str,
    amount: i64,
    note: Option<String>,
) -> DomainResult<Admin> {
    if amount <= 0 || !crate::tax::check_amount(amount) {
        return Err(DomainError::invalid(
            "amount",
            "must be positive and at most 10^15",
        ));
    }
    let note = text("note", note, 500)?;
    let before = get(db, id).await?;
    if before.role != Role::Reseller {
        return Err(DomainError::conflict(
            "not_reseller",
            format!("{} is not a reseller", before.username),
        ));
    }
    let mut tx = db.begin().await?;
    // The bound is checked in the UPDATE itself, so concurrent credits cannot pass it together.
    let updated = sqlx::query(
        "UPDATE admin_users SET balance = balance + $1, updated_at = $2 WHERE id = $3 AND balance <= $4",
    )
    .bind(amount)
    .bind(now_ms())
    .bind(id)
    .bind(crate::tax::MAX_AMOUNT - amount)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if updated == 0 {
        return Err(DomainError::invalid(
            "amount",
            format!("would take the balance above {}", crate::tax::MAX_AMOUNT),
        ));
    }
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM admin_users WHERE id = $1"
    )))
    .bind(id)
    .fetch_one(&mut *tx)
    .await?;
    let after = from_row(&row)?;
    crate::revenue::record(
        &mut tx,
        &crate::revenue::Entry {
            source: crate::revenue::Source::ResellerTopUp,
            reference: &uuid::Uuid::new_v4().to_string(),
            amount,
            received_at: now_ms(),
            method: None,
            plan_id: None,
            site_id: None,
            reseller_id: Some(id),
        },
    )
    .await?;
    #[derive(Serialize)]
    struct Credit<'a> {
        amount: i64,
        balance: i64,
        note: Option<&'a str>,
    }
    audit::record(
        &mut tx,
        actor,
        "reseller.credit",
        "admin",
        Some(id),
        Some(&before),
        Some(&Credit {
            amount,
            balance: after.balance,
            note: note.as_deref(),
        }),
    )
    .await?;
    tx.commit().await?;
    Ok(after)
}

/// Takes `amount` from a reseller's balance inside the caller's transaction, or fails with
/// `insufficient_balance` and takes nothing. Returns the new balance.
pub async fn debit_reseller(
    conn: &mut sqlx::AnyConnection,
    id: &str,
    amount: i64,
) -> DomainResult<i64> {
    let row = sqlx::query(
        "UPDATE admin_users SET balance = balance - $1, updated_at = $2 \
         WHERE id = $3 AND role = 'reseller' AND balance >= $1 RETURNING balance",
    )
    .bind(amount)
    .bind(now_ms())
    .bind(id)
    .fetch_all(&mut *conn)
    .await?
    .into_iter()
    .next();
    match row {
        Some(r) => Ok(r.try_get("balance")?),
        None => {
            let have: Option<i64> =
                sqlx::query("SELECT balance FROM admin_users WHERE id = $1 AND role = 'reseller'")
                    .bind(id)
                    .fetch_optional(&mut *conn)
                    .await?
                    .map(|r| r.try_get("balance"))
                    .transpose()?;
            match have {
                None => Err(DomainError::not_found("reseller", id)),
                Some(have) => Err(DomainError::conflict(
                    "insufficient_balance",
                    format!("the reseller's balance is {have}, {amount} is needed"),
                )),
            }
        }
    }
}
