//! Browser sessions of the admin UI. A session is a row of `auth_tokens` of kind `session`
//! holding only the SHA-256 of the cookie's secret, so everything that ends an admin's
//! tokens (password change, disabling, role change: `tokens::revoke_all_for`) ends their
//! browser sessions too, and a session cookie is never accepted as an API bearer token.

use base64::Engine;
use mikrobill_core::auth::{ENROL_ONLY_SQL, Principal, Role};
use mikrobill_core::db::{Db, DbError, now_ms};
use rand::RngCore;
use sha2::{Digest, Sha256};
use sqlx::Row;

/// The session cookie's name.
pub const COOKIE: &str = "mb_admin";
/// A session ends after this long without a request.
pub const IDLE_MS: i64 = 12 * 3600 * 1000;
/// And in any case this long after the login.
pub const ABSOLUTE_MS: i64 = 7 * 24 * 3600 * 1000;
/// The sliding expiry is written at most this often, so page views stay reads.
const TOUCH_EVERY_MS: i64 = 60 * 1000;
const KIND: &str = "session";

fn hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// Starts a session for an admin whose password was just verified; returns the cookie
/// secret (shown to the browser only).
pub async fn start(db: &Db, admin_id: &str) -> Result<String, DbError> {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let secret = format!(
        "mbs_{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    );
    let now = now_ms();
    let mut tx = db.begin().await?;
    sqlx::query(
        "INSERT INTO auth_tokens (id, token_hash, admin_id, kind, created_at, expires_at, last_used_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $5)",
    )
    .bind(uuid::Uuid::new_v4().to_string())
    .bind(hash(&secret))
    .bind(admin_id)
    .bind(KIND)
    .bind(now)
    .bind(now + IDLE_MS)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(secret)
}

/// The admin a live session belongs to; `None` when the secret is unknown, expired,
/// revoked, or its admin is disabled. Extends the idle expiry.
pub async fn lookup(db: &Db, secret: &str) -> Result<Option<Principal>, DbError> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT t.id, t.created_at, t.expires_at, t.revoked_at, t.last_used_at, a.id AS admin_id, \
         a.username, a.role, a.disabled_at, {ENROL_ONLY_SQL} FROM auth_tokens t \
         JOIN admin_users a ON a.id = t.admin_id WHERE t.token_hash = $1 AND t.kind = $2"
    )))
    .bind(hash(secret))
    .bind(KIND)
    .fetch_optional(&db.pool)
    .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    let now = now_ms();
    let expires_at: Option<i64> = row.try_get("expires_at")?;
    if row.try_get::<Option<i64>, _>("revoked_at")?.is_some()
        || row.try_get::<Option<i64>, _>("disabled_at")?.is_some()
        || expires_at.is_none_or(|e| e <= now)
    {
        return Ok(None);
    }
    let Ok(role) = row.try_get::<String, _>("role")?.parse::<Role>() else {
        return Ok(None);
    };
    let id: String = row.try_get("id")?;
    let created_at: i64 = row.try_get("created_at")?;
    let last_used: Option<i64> = row.try_get("last_used_at")?;
    if last_used.is_none_or(|t| now - t > TOUCH_EVERY_MS) {
        let until = (now + IDLE_MS).min(created_at + ABSOLUTE_MS);
        sqlx::query("UPDATE auth_tokens SET last_used_at = $1, expires_at = $2 WHERE id = $3")
            .bind(now)
            .bind(until)
            .bind(&id)
            .execute(&db.pool)
            .await?;
    }
    Ok(Some(Principal {
        admin_id: row.try_get("admin_id")?,
        username: row.try_get("username")?,
        role,
        token_id: id,
        // A browser session stands in for a login's access token; only the role matters here.
        token_kind: mikrobill_core::auth::tokens::TokenKind::Access,
        totp_enrolment_only: row.try_get::<i64, _>("enrol_only")? == 1,
    }))
}

/// Ends one session (logout).
pub async fn end(db: &Db, secret: &str) -> Result<(), DbError> {
    sqlx::query(
        "UPDATE auth_tokens SET revoked_at = $1 WHERE token_hash = $2 AND kind = $3 AND revoked_at IS NULL",
    )
    .bind(now_ms())
    .bind(hash(secret))
    .bind(KIND)
    .execute(&db.pool)
    .await?;
    Ok(())
}
