//! Bearer tokens: short-lived access tokens and rotating refresh tokens from a login, and
//! long-lived API tokens for integrations. Only a token's SHA-256 is stored, so a database
//! leak does not hand out sessions.

use crate::audit::{self, Actor};
use crate::auth::{ENROL_ONLY_SQL, Principal, Role};
use crate::db::{Db, DbError, now_ms};
use base64::Engine;
use rand::RngCore;
use sha2::{Digest, Sha256};
use sqlx::Row;

/// How long an access token lives.
pub const ACCESS_TTL_MS: i64 = 15 * 60 * 1000;
/// How long a refresh token lives.
pub const REFRESH_TTL_MS: i64 = 30 * 24 * 3600 * 1000;
/// `last_used_at` of a token is written at most this often, so reads stay reads.
const TOUCH_EVERY_MS: i64 = 60 * 1000;

/// What a token is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    /// Authenticates API calls for a short time after a login.
    Access,
    /// Trades itself for a new access/refresh pair.
    Refresh,
    /// A long-lived integration credential.
    Api,
}

impl TokenKind {
    /// Storage name.
    pub fn as_str(self) -> &'static str {
        match self {
            TokenKind::Access => "access",
            TokenKind::Refresh => "refresh",
            TokenKind::Api => "api",
        }
    }

    fn prefix(self) -> &'static str {
        match self {
            TokenKind::Access => "mba_",
            TokenKind::Refresh => "mbr_",
            TokenKind::Api => "mbk_",
        }
    }

    fn parse(s: &str) -> Option<TokenKind> {
        match s {
            "access" => Some(TokenKind::Access),
            "refresh" => Some(TokenKind::Refresh),
            "api" => Some(TokenKind::Api),
            _ => None,
        }
    }
}

/// A new access + refresh pair handed out by a login or a refresh.
#[derive(Debug, Clone)]
pub struct TokenPair {
    /// The bearer token for API calls.
    pub access_token: String,
    /// When the access token expires (unix ms).
    pub access_expires_at: i64,
    /// The token that buys the next pair.
    pub refresh_token: String,
    /// When the refresh token expires (unix ms).
    pub refresh_expires_at: i64,
}

/// A stored API token, without its secret.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct ApiTokenInfo {
    /// Token id (used to revoke it).
    pub id: String,
    /// The admin user it acts as.
    pub admin_id: String,
    /// What the integrator called it.
    pub name: Option<String>,
    /// Creation time (unix ms).
    pub created_at: i64,
    /// Expiry (unix ms), if any.
    pub expires_at: Option<i64>,
    /// Last use, to the minute (unix ms).
    pub last_used_at: Option<i64>,
    /// Revocation time (unix ms), if revoked.
    pub revoked_at: Option<i64>,
}

/// Why a token was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// Storage failed.
    #[error(transparent)]
    Db(#[from] DbError),
    /// Unknown, expired, revoked, of the wrong kind, or its user is disabled.
    #[error("the token is not valid")]
    Invalid,
}

impl From<sqlx::Error> for TokenError {
    fn from(e: sqlx::Error) -> Self {
        TokenError::Db(DbError::Sqlx(e))
    }
}

fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

fn new_secret(kind: TokenKind) -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!(
        "{}{}",
        kind.prefix(),
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    )
}

async fn insert(
    conn: &mut sqlx::AnyConnection,
    kind: TokenKind,
    admin_id: &str,
    name: Option<&str>,
    family: Option<&str>,
    expires_at: Option<i64>,
) -> Result<(String, String), sqlx::Error> {
    let id = uuid::Uuid::new_v4().to_string();
    let secret = new_secret(kind);
    sqlx::query(
        "INSERT INTO auth_tokens (id, token_hash, admin_id, kind, name, family, created_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(&id)
    .bind(hash_token(&secret))
    .bind(admin_id)
    .bind(kind.as_str())
    .bind(name)
    .bind(family)
    .bind(now_ms())
    .bind(expires_at)
    .execute(&mut *conn)
    .await?;
    Ok((id, secret))
}

async fn issue_pair(
    conn: &mut sqlx::AnyConnection,
    admin_id: &str,
    family: &str,
) -> Result<TokenPair, sqlx::Error> {
    let now = now_ms();
    let access_expires_at = now + ACCESS_TTL_MS;
    let refresh_expires_at = now + REFRESH_TTL_MS;
    let (_, access_token) = insert(
        conn,
        TokenKind::Access,
        admin_id,
        None,
        Some(family),
        Some(access_expires_at),
    )
    .await?;
    let (_, refresh_token) = insert(
        conn,
        TokenKind::Refresh,
        admin_id,
        None,
        Some(family),
        Some(refresh_expires_at),
    )
    .await?;
    Ok(TokenPair {
        access_token,
        access_expires_at,
        refresh_token,
        refresh_expires_at,
    })
}

/// Starts a login session for an admin whose password was just verified.
pub async fn login(db: &Db, admin_id: &str) -> Result<TokenPair, TokenError> {
    let mut tx = db.begin().await?;
    let family = uuid::Uuid::new_v4().to_string();
    let pair = issue_pair(&mut tx, admin_id, &family).await?;
    tx.commit().await?;
    Ok(pair)
}

/// Trades a refresh token for a new pair. A refresh token works once: presenting a used one
/// again means it leaked, so the whole login session is revoked.
pub async fn refresh(db: &Db, refresh_token: &str) -> Result<TokenPair, TokenError> {
    let mut tx = db.begin().await?;
    let row = sqlx::query(
        "SELECT t.id, t.admin_id, t.family, t.expires_at, t.revoked_at, a.disabled_at \
         FROM auth_tokens t JOIN admin_users a ON a.id = t.admin_id \
         WHERE t.token_hash = $1 AND t.kind = 'refresh'",
    )
    .bind(hash_token(refresh_token))
    .fetch_optional(&mut *tx)
    .await?
    .ok_or(TokenError::Invalid)?;
    let id: String = row.try_get("id")?;
    let admin_id: String = row.try_get("admin_id")?;
    let family: String = row.try_get("family")?;
    let expires_at: Option<i64> = row.try_get("expires_at")?;
    let revoked_at: Option<i64> = row.try_get("revoked_at")?;
    let disabled_at: Option<i64> = row.try_get("disabled_at")?;
    let now = now_ms();
    if revoked_at.is_some() {
        sqlx::query(
            "UPDATE auth_tokens SET revoked_at = $1 WHERE family = $2 AND revoked_at IS NULL",
        )
        .bind(now)
        .bind(&family)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        tracing::warn!(
            admin_id,
            "a used refresh token was presented again; login session revoked"
        );
        return Err(TokenError::Invalid);
    }
    if disabled_at.is_some() || expires_at.is_some_and(|e| e <= now) {
        return Err(TokenError::Invalid);
    }
    // The conditional update makes two concurrent refreshes with one token yield one pair.
    let claimed =
        sqlx::query("UPDATE auth_tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
            .bind(now)
            .bind(&id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
    if claimed != 1 {
        return Err(TokenError::Invalid);
    }
    let pair = issue_pair(&mut tx, &admin_id, &family).await?;
    tx.commit().await?;
    Ok(pair)
}

/// Ends the login session the given token belongs to (access or refresh).
pub async fn logout(db: &Db, token_id: &str) -> Result<(), TokenError> {
    sqlx::query(
        "UPDATE auth_tokens SET revoked_at = $1 WHERE revoked_at IS NULL AND family = \
         (SELECT family FROM auth_tokens WHERE id = $2 AND family IS NOT NULL)",
    )
    .bind(now_ms())
    .bind(token_id)
    .execute(&db.pool)
    .await?;
    Ok(())
}

/// Revokes every token of an admin (password change, disabling, role change).
pub async fn revoke_all_for(conn: &mut sqlx::AnyConnection, admin_id: &str) -> Result<(), DbError> {
    sqlx::query(
        "UPDATE auth_tokens SET revoked_at = $1 WHERE admin_id = $2 AND revoked_at IS NULL",
    )
    .bind(now_ms())
    .bind(admin_id)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Resolves a bearer token to its caller; refresh tokens are not accepted here.
pub async fn authenticate(db: &Db, bearer: &str) -> Result<Principal, TokenError> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT t.id, t.kind, t.expires_at, t.revoked_at, t.last_used_at, a.id AS admin_id, a.username, a.role, a.disabled_at, \
         {ENROL_ONLY_SQL} FROM auth_tokens t JOIN admin_users a ON a.id = t.admin_id WHERE t.token_hash = $1"
    )))
    .bind(hash_token(bearer))
    .fetch_optional(&db.pool)
    .await?
    .ok_or(TokenError::Invalid)?;
    let kind = TokenKind::parse(&row.try_get::<String, _>("kind")?).ok_or(TokenError::Invalid)?;
    let now = now_ms();
    let expires_at: Option<i64> = row.try_get("expires_at")?;
    if kind == TokenKind::Refresh
        || row.try_get::<Option<i64>, _>("revoked_at")?.is_some()
        || row.try_get::<Option<i64>, _>("disabled_at")?.is_some()
        || expires_at.is_some_and(|e| e <= now)
    {
        return Err(TokenError::Invalid);
    }
    let role: Role = row
        .try_get::<String, _>("role")?
        .parse()
        .map_err(|_| TokenError::Invalid)?;
    let token_id: String = row.try_get("id")?;
    let last_used: Option<i64> = row.try_get("last_used_at")?;
    if kind == TokenKind::Api && last_used.is_none_or(|t| now - t > TOUCH_EVERY_MS) {
        sqlx::query("UPDATE auth_tokens SET last_used_at = $1 WHERE id = $2")
            .bind(now)
            .bind(&token_id)
            .execute(&db.pool)
            .await?;
    }
    Ok(Principal {
        admin_id: row.try_get("admin_id")?,
        username: row.try_get("username")?,
        role,
        token_id,
        token_kind: kind,
        // An integration's API token is not a sign-in: enforcing two-factor sign-in for a
        // role limits its logins, not the tokens its accounts made for integrations.
        totp_enrolment_only: kind != TokenKind::Api && row.try_get::<i64, _>("enrol_only")? == 1,
    })
}

/// Creates an API token for `admin_id` and records who created it, in one transaction; the
/// secret is returned once and never stored.
pub async fn create_api_token(
    db: &Db,
    actor: &Actor,
    admin_id: &str,
    name: &str,
    expires_at: Option<i64>,
) -> Result<(ApiTokenInfo, String), TokenError> {
    let mut tx = db.begin().await.map_err(DbError::from)?;
    let (id, secret) = insert(
        &mut tx,
        TokenKind::Api,
        admin_id,
        Some(name),
        None,
        expires_at,
    )
    .await?;
    let info = api_token_in(&mut tx, &id)
        .await?
        .ok_or(TokenError::Invalid)?;
    audit::record(
        &mut tx,
        actor,
        "token.create",
        "token",
        Some(&id),
        None::<&()>,
        Some(&info),
    )
    .await?;
    tx.commit().await.map_err(DbError::from)?;
    Ok((info, secret))
}

const API_TOKEN_COLUMNS: &str =
    "id, admin_id, name, created_at, expires_at, last_used_at, revoked_at";

fn api_token_from_row(row: &sqlx::any::AnyRow) -> Result<ApiTokenInfo, sqlx::Error> {
    Ok(ApiTokenInfo {
        id: row.try_get("id")?,
        admin_id: row.try_get("admin_id")?,
        name: row.try_get("name")?,
        created_at: row.try_get("created_at")?,
        expires_at: row.try_get("expires_at")?,
        last_used_at: row.try_get("last_used_at")?,
        revoked_at: row.try_get("revoked_at")?,
    })
}

/// One API token by id.
pub async fn api_token(db: &Db, id: &str) -> Result<Option<ApiTokenInfo>, TokenError> {
    let mut conn = db.pool.acquire().await.map_err(DbError::from)?;
    api_token_in(&mut conn, id).await
}

/// One API token by id, on the caller's connection or transaction.
async fn api_token_in(
    conn: &mut sqlx::AnyConnection,
    id: &str,
) -> Result<Option<ApiTokenInfo>, TokenError> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {API_TOKEN_COLUMNS} FROM auth_tokens WHERE id = $1 AND kind = 'api'"
    )))
    .bind(id)
    .fetch_optional(&mut *conn)
    .await
    .map_err(DbError::from)?;
    Ok(row
        .as_ref()
        .map(api_token_from_row)
        .transpose()
        .map_err(DbError::from)?)
}

/// API tokens, of one admin or of everyone, newest first.
pub async fn list_api_tokens(
    db: &Db,
    admin_id: Option<&str>,
) -> Result<Vec<ApiTokenInfo>, TokenError> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {API_TOKEN_COLUMNS} FROM auth_tokens WHERE kind = 'api' AND (CAST($1 AS TEXT) IS NULL OR admin_id = $1) \
         ORDER BY created_at DESC, id"
    )))
    .bind(admin_id)
    .fetch_all(&db.pool)
    .await?;
    Ok(rows
        .iter()
        .map(api_token_from_row)
        .collect::<Result<_, _>>()?)
}

/// Revokes an API token and records who revoked it, in one transaction; returns whether one
/// was revoked (not when it is unknown or already revoked).
pub async fn revoke_api_token(db: &Db, actor: &Actor, id: &str) -> Result<bool, TokenError> {
    let mut tx = db.begin().await.map_err(DbError::from)?;
    let n = sqlx::query("UPDATE auth_tokens SET revoked_at = $1 WHERE id = $2 AND kind = 'api' AND revoked_at IS NULL")
        .bind(now_ms())
        .bind(id)
        .execute(&mut *tx)
        .await
        .map_err(DbError::from)?
        .rows_affected();
    if n == 1 {
        let after = api_token_in(&mut tx, id).await?;
        let before = after.as_ref().map(|t| ApiTokenInfo {
            revoked_at: None,
            ..t.clone()
        });
        audit::record(
            &mut tx,
            actor,
            "token.revoke",
            "token",
            Some(id),
            before.as_ref(),
            after.as_ref(),
        )
        .await?;
    }
    tx.commit().await.map_err(DbError::from)?;
    Ok(n == 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_prefixed_and_random() {
        let a = new_secret(TokenKind::Api);
        let b = new_secret(TokenKind::Api);
        assert!(a.starts_with("mbk_") && a.len() == 4 + 43);
        assert_ne!(a, b);
        assert_ne!(hash_token(&a), hash_token(&b));
        assert_eq!(hash_token(&a).len(), 64);
    }
}

/// Remembers authenticated tokens for a moment, so a busy integration costs one lookup per
/// token every [`TokenCache::TTL_MS`] instead of one per request. A revocation made through
/// this process clears the cache at once; one made elsewhere holds for at most the TTL.
#[derive(Debug, Default)]
pub struct TokenCache {
    entries: std::sync::Mutex<std::collections::HashMap<String, (Principal, i64)>>,
}

impl TokenCache {
    /// How long a verified token is trusted without asking the database.
    pub const TTL_MS: i64 = 2_000;
    const MAX_ENTRIES: usize = 10_000;

    /// Resolves a bearer token, from the cache when fresh.
    pub async fn authenticate(&self, db: &Db, bearer: &str) -> Result<Principal, TokenError> {
        let key = hash_token(bearer);
        let now = now_ms();
        if let Some((p, at)) = self.entries.lock().expect("token cache").get(&key)
            && now - at < Self::TTL_MS
        {
            return Ok(p.clone());
        }
        let principal = authenticate(db, bearer).await?;
        let mut entries = self.entries.lock().expect("token cache");
        if entries.len() >= Self::MAX_ENTRIES {
            entries.clear();
        }
        entries.insert(key, (principal.clone(), now));
        Ok(principal)
    }

    /// Forgets every cached token (after a revocation).
    pub fn clear(&self) {
        self.entries.lock().expect("token cache").clear();
    }
}
