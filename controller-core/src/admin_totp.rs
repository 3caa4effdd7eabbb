//! Two-factor sign-in of admin accounts: each account's authenticator secret (pending until
//! a code confirms it), the codes checked against it once each, the roles that must use it,
//! and the audit records of turning it on, off and resetting it (never with the secret).

use crate::admins::{self, Admin};
use crate::audit::{self, Actor};
use crate::auth::totp::{self, Secret};
use crate::auth::{Role, tokens};
use crate::db::{Db, now_ms};
use crate::error::{DomainError, DomainResult};
use serde::{Deserialize, Serialize};
use sqlx::Row;

/// The issuer authenticator apps show next to the account name.
pub const ISSUER: &str = "MikroBill";

/// An account's two-factor state as it is shown (never the secret).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct TotpStatus {
    /// Codes are required at sign-in.
    pub enabled: bool,
    /// An enrolment was started and awaits its first code.
    pub pending: bool,
    /// When it was confirmed (unix ms).
    pub confirmed_at: Option<i64>,
    /// The account's role requires two-factor sign-in (it cannot be turned off).
    pub enforced: bool,
}

/// A new, unconfirmed authenticator secret, shown once to the account holder.
#[derive(Clone, Serialize, utoipa::ToSchema)]
pub struct Enrolment {
    /// The secret in base32, for typing into an app.
    pub secret: String,
    /// The `otpauth://` URI (what the QR code holds).
    pub otpauth_uri: String,
}

impl std::fmt::Debug for Enrolment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Enrolment([redacted])")
    }
}

/// Which roles must sign in with a code.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SecuritySettings {
    /// Roles whose accounts must use two-factor sign-in.
    pub totp_required_roles: Vec<Role>,
}

/// The stored row of an account.
struct Stored {
    secret: Secret,
    confirmed_at: Option<i64>,
    last_step: Option<i64>,
}

async fn stored(conn: &mut sqlx::AnyConnection, admin_id: &str) -> DomainResult<Option<Stored>> {
    let row =
        sqlx::query("SELECT secret, confirmed_at, last_step FROM admin_totp WHERE admin_id = $1")
            .bind(admin_id)
            .fetch_optional(&mut *conn)
            .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    let text: String = row.try_get("secret")?;
    let secret = Secret::from_base32(&text).ok_or_else(|| {
        DomainError::conflict(
            "totp_corrupt",
            "the stored authenticator secret is unreadable",
        )
    })?;
    Ok(Some(Stored {
        secret,
        confirmed_at: row.try_get("confirmed_at")?,
        last_step: row.try_get("last_step")?,
    }))
}

/// Whether accounts of `role` must sign in with a code.
pub async fn role_enforced(db: &Db, role: Role) -> DomainResult<bool> {
    let n: i64 = sqlx::query_scalar(
        "SELECT CAST(COUNT(*) AS BIGINT) FROM totp_enforced_roles WHERE role = $1",
    )
    .bind(role.as_str())
    .fetch_one(&db.pool)
    .await?;
    Ok(n > 0)
}

/// An account's two-factor state.
pub async fn status(db: &Db, admin: &Admin) -> DomainResult<TotpStatus> {
    // The connection goes back to the pool before the next query takes one.
    let row = {
        let mut conn = db.pool.acquire().await?;
        stored(&mut conn, &admin.id).await?
    };
    Ok(TotpStatus {
        enabled: row.as_ref().is_some_and(|r| r.confirmed_at.is_some()),
        pending: row.as_ref().is_some_and(|r| r.confirmed_at.is_none()),
        confirmed_at: row.and_then(|r| r.confirmed_at),
        enforced: role_enforced(db, admin.role).await?,
    })
}

/// Whether an account has a confirmed authenticator (its sign-ins need a code).
pub async fn is_enabled(db: &Db, admin_id: &str) -> DomainResult<bool> {
    let mut conn = db.pool.acquire().await?;
    Ok(stored(&mut conn, admin_id)
        .await?
        .is_some_and(|r| r.confirmed_at.is_some()))
}

/// Starts (or restarts) an enrolment after checking the account holder's password: a new
/// secret replaces any unconfirmed one. Refused while one is confirmed (turn it off first).
pub async fn start_enrolment(
    db: &Db,
    actor: &Actor,
    admin_id: &str,
    current_password: &str,
) -> DomainResult<Enrolment> {
    let admin = admins::get(db, admin_id).await?;
    admins::check_own_password(db, actor, &admin.username, current_password).await?;
    let secret = Secret::generate();
    let mut tx = db.begin().await?;
    // The conditional upsert keeps a confirmed secret: a second enrolment never silently
    // replaces the authenticator the account already signs in with.
    let changed = sqlx::query(
        "INSERT INTO admin_totp (admin_id, secret, created_at, confirmed_at, last_step) \
         VALUES ($1, $2, $3, NULL, NULL) ON CONFLICT (admin_id) DO UPDATE SET \
         secret = excluded.secret, created_at = excluded.created_at \
         WHERE admin_totp.confirmed_at IS NULL",
    )
    .bind(admin_id)
    .bind(secret.to_base32())
    .bind(now_ms())
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if changed == 0 {
        return Err(DomainError::conflict(
            "totp_enabled",
            "two-factor sign-in is already on; turn it off before enrolling again",
        ));
    }
    tx.commit().await?;
    Ok(Enrolment {
        otpauth_uri: totp::otpauth_uri(&secret, ISSUER, &admin.username),
        secret: secret.to_base32(),
    })
}

/// The pending enrolment of an account (shown again when its first code was wrong).
pub async fn pending_enrolment(db: &Db, admin: &Admin) -> DomainResult<Option<Enrolment>> {
    let mut conn = db.pool.acquire().await?;
    Ok(stored(&mut conn, &admin.id)
        .await?
        .filter(|r| r.confirmed_at.is_none())
        .map(|r| Enrolment {
            otpauth_uri: totp::otpauth_uri(&r.secret, ISSUER, &admin.username),
            secret: r.secret.to_base32(),
        }))
}

/// Marks `step` used for a confirmed account, in `conn`; false when it (or a later step)
/// was used already. The conditional update is what stops two requests with one code.
async fn claim_step(
    conn: &mut sqlx::AnyConnection,
    admin_id: &str,
    step: i64,
) -> DomainResult<bool> {
    Ok(sqlx::query(
        "UPDATE admin_totp SET last_step = $1 WHERE admin_id = $2 AND confirmed_at IS NOT NULL \
         AND (last_step IS NULL OR last_step < $1)",
    )
    .bind(step)
    .bind(admin_id)
    .execute(&mut *conn)
    .await?
    .rows_affected()
        == 1)
}

/// Checks a sign-in code of a confirmed account at `now_ms`; a right code is used up. No
/// audit or throttle here: the login path records both.
pub async fn verify_code(db: &Db, admin_id: &str, code: &str, now_ms: i64) -> DomainResult<bool> {
    let mut conn = db.pool.acquire().await?;
    let Some(row) = stored(&mut conn, admin_id).await? else {
        return Ok(false);
    };
    if row.confirmed_at.is_none() {
        return Ok(false);
    }
    match totp::matching_step(&row.secret, code, now_ms, row.last_step) {
        Some(step) => claim_step(&mut conn, admin_id, step).await,
        None => Ok(false),
    }
}

/// Confirms a pending enrolment with the app's first code; from then on sign-ins need a code.
pub async fn confirm(
    db: &Db,
    actor: &Actor,
    admin_id: &str,
    code: &str,
) -> DomainResult<TotpStatus> {
    let admin = admins::get(db, admin_id).await?;
    let mut tx = db.begin().await?;
    let row = stored(&mut tx, admin_id)
        .await?
        .ok_or_else(|| DomainError::conflict("totp_not_pending", "start an enrolment first"))?;
    if row.confirmed_at.is_some() {
        return Err(DomainError::conflict(
            "totp_enabled",
            "two-factor sign-in is already on",
        ));
    }
    let now = now_ms();
    let Some(step) = totp::matching_step(&row.secret, code, now, None) else {
        return Err(DomainError::invalid(
            "code",
            "is not the code the authenticator app shows now",
        ));
    };
    let changed = sqlx::query(
        "UPDATE admin_totp SET confirmed_at = $1, last_step = $2 WHERE admin_id = $3 \
         AND confirmed_at IS NULL AND secret = $4",
    )
    .bind(now)
    .bind(step)
    .bind(admin_id)
    .bind(row.secret.to_base32())
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if changed != 1 {
        return Err(DomainError::conflict(
            "totp_changed",
            "the enrolment changed meanwhile; start again",
        ));
    }
    audit_switch(
        &mut tx,
        actor,
        "admin.totp_enabled",
        admin_id,
        &admin.username,
    )
    .await?;
    tx.commit().await?;
    tracing::info!(username = %admin.username, "two-factor sign-in enabled");
    status(db, &admin).await
}

/// Audits two-factor sign-in turned on or off for `username`; the entry names the account,
/// never its secret.
async fn audit_switch(
    tx: &mut sqlx::AnyConnection,
    actor: &Actor,
    action: &str,
    admin_id: &str,
    username: &str,
) -> DomainResult<()> {
    let detail = serde_json::json!({ "username": username });
    audit::record(
        tx,
        actor,
        action,
        "admin",
        Some(admin_id),
        None::<&()>,
        Some(&detail),
    )
    .await?;
    Ok(())
}

/// Turns one's own two-factor sign-in off with the password and a current code; refused
/// while the role requires it. Both checks count as login attempts.
pub async fn disable(
    db: &Db,
    actor: &Actor,
    admin_id: &str,
    current_password: &str,
    code: &str,
) -> DomainResult<()> {
    let admin = admins::get(db, admin_id).await?;
    if role_enforced(db, admin.role).await? {
        return Err(DomainError::conflict(
            "totp_enforced",
            "your role requires two-factor sign-in; an administrator can reset it",
        ));
    }
    if !is_enabled(db, admin_id).await? {
        return Err(DomainError::conflict(
            "totp_not_enabled",
            "two-factor sign-in is not on",
        ));
    }
    admins::check_own_password(db, actor, &admin.username, current_password).await?;
    let ok = admins::throttled(db, actor, &admin.username, async || {
        verify_code(db, admin_id, code, now_ms())
            .await
            .unwrap_or(false)
    })
    .await?;
    if !ok {
        return Err(DomainError::invalid(
            "code",
            "is not the code the authenticator app shows now",
        ));
    }
    let mut tx = db.begin().await?;
    sqlx::query("DELETE FROM admin_totp WHERE admin_id = $1")
        .bind(admin_id)
        .execute(&mut *tx)
        .await?;
    audit_switch(
        &mut tx,
        actor,
        "admin.totp_disabled",
        admin_id,
        &admin.username,
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// An administrator removes another account's authenticator (a lost phone): the account
/// signs in with its password alone (or enrols again, if its role requires a code), and
/// every session and token it had ends, so nobody stays signed in on the old factor.
pub async fn reset(db: &Db, actor: &Actor, admin_id: &str) -> DomainResult<Admin> {
    let before = admins::get(db, admin_id).await?;
    let mut tx = db.begin().await?;
    let removed = sqlx::query("DELETE FROM admin_totp WHERE admin_id = $1")
        .bind(admin_id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    tokens::revoke_all_for(&mut tx, admin_id).await?;
    sqlx::query("DELETE FROM admin_login_pending WHERE admin_id = $1")
        .bind(admin_id)
        .execute(&mut *tx)
        .await?;
    let detail = serde_json::json!({
        "username": before.username,
        "had_authenticator": removed > 0,
    });
    audit::record(
        &mut tx,
        actor,
        "admin.totp_reset",
        "admin",
        Some(admin_id),
        None::<&()>,
        Some(&detail),
    )
    .await?;
    tx.commit().await?;
    admins::get(db, admin_id).await
}

/// The roles that must sign in with a code.
pub async fn security_settings(db: &Db) -> DomainResult<SecuritySettings> {
    let mut conn = db.pool.acquire().await?;
    settings_in(&mut conn).await
}

async fn settings_in(conn: &mut sqlx::AnyConnection) -> DomainResult<SecuritySettings> {
    let names: Vec<String> =
        sqlx::query_scalar("SELECT role FROM totp_enforced_roles ORDER BY role")
            .fetch_all(&mut *conn)
            .await?;
    let mut roles: Vec<Role> = names.iter().filter_map(|r| r.parse().ok()).collect();
    roles.sort_by_key(|r| crate::auth::roles::ALL_ROLES.iter().position(|a| a == r));
    Ok(SecuritySettings {
        totp_required_roles: roles,
    })
}

/// Sets the roles that must sign in with a code. Accounts of a newly enforced role without
/// an authenticator may then only enrol until they have one.
pub async fn set_security_settings(
    db: &Db,
    actor: &Actor,
    new: SecuritySettings,
) -> DomainResult<SecuritySettings> {
    let mut tx = db.begin().await?;
    let before = settings_in(&mut tx).await?;
    sqlx::query("DELETE FROM totp_enforced_roles")
        .execute(&mut *tx)
        .await?;
    let now = now_ms();
    for role in &new.totp_required_roles {
        sqlx::query(
            "INSERT INTO totp_enforced_roles (role, enforced_at) VALUES ($1, $2) \
             ON CONFLICT (role) DO NOTHING",
        )
        .bind(role.as_str())
        .bind(now)
        .execute(&mut *tx)
        .await?;
    }
    let after = settings_in(&mut tx).await?;
    audit::record(
        &mut tx,
        actor,
        "settings.security",
        "settings",
        Some("security"),
        Some(&before),
        Some(&after),
    )
    .await?;
    tx.commit().await?;
    Ok(after)
}
