//! Portal sessions: an opaque random secret in the subscriber's cookie, only its SHA-256
//! stored, valid for [`SESSION_TTL_MS`] or until logout. Separate from admin tokens: a portal
//! session can never authenticate an admin API call, nor the other way round.

use crate::db::{Db, DbError, now_ms};
use sha2::{Digest, Sha256};
use sqlx::Row;

/// How long a portal login lasts.
pub const SESSION_TTL_MS: i64 = 12 * 3_600_000;

/// A live portal session.
#[derive(Debug, Clone)]
pub struct Session {
    /// The logged-in customer.
    pub customer_id: String,
    /// When it ends (unix ms).
    pub expires_at: i64,
    /// The token every form of this session must carry (see [`csrf_token`]).
    pub csrf: String,
}

/// SHA-256 of a session secret, as stored.
fn hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// The anti-forgery token of a session: derived from the cookie's secret, which scripts on
/// other sites can neither read nor guess, and useless without that cookie.
pub fn csrf_token(secret: &str) -> String {
    let mut h = Sha256::new();
    h.update(b"mikrobill-portal-csrf\0");
    h.update(secret.as_bytes());
    hex::encode(h.finalize())
}

/// A fresh 256-bit secret, hex-encoded.
pub fn new_secret() -> String {
    use rand::RngCore;
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// Opens a session for `customer_id`; returns the secret for the cookie (shown only here).
pub async fn create(db: &Db, customer_id: &str) -> Result<(String, Session), DbError> {
    let secret = new_secret();
    let now = now_ms();
    let expires_at = now + SESSION_TTL_MS;
    let mut tx = db.begin().await?;
    // Every login sweeps out ended sessions (an index range scan), so the table holds about
    // the sessions of the last TTL and no job is needed for it.
    sqlx::query("DELETE FROM portal_sessions WHERE expires_at <= $1")
        .bind(now)
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "INSERT INTO portal_sessions (token_hash, customer_id, created_at, expires_at) \
         VALUES ($1, $2, $3, $4)",
    )
    .bind(hash(&secret))
    .bind(customer_id)
    .bind(now)
    .bind(expires_at)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    let session = Session {
        customer_id: customer_id.to_string(),
        expires_at,
        csrf: csrf_token(&secret),
    };
    Ok((secret, session))
}

/// The live session a cookie secret belongs to, if any.
pub async fn lookup(db: &Db, secret: &str) -> Result<Option<Session>, DbError> {
    // A well-formed secret is 64 hex digits; anything else cannot match, so skip the query.
    if secret.len() != 64 || !secret.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Ok(None);
    }
    let row = sqlx::query(
        "SELECT customer_id, expires_at FROM portal_sessions WHERE token_hash = $1 AND expires_at > $2",
    )
    .bind(hash(secret))
    .bind(now_ms())
    .fetch_optional(&db.pool)
    .await?;
    Ok(match row {
        Some(r) => Some(Session {
            customer_id: r.try_get("customer_id")?,
            expires_at: r.try_get("expires_at")?,
            csrf: csrf_token(secret),
        }),
        None => None,
    })
}

/// Ends the session a cookie secret belongs to (logout).
pub async fn end(db: &Db, secret: &str) -> Result<(), DbError> {
    let mut tx = db.begin().await?;
    sqlx::query("DELETE FROM portal_sessions WHERE token_hash = $1")
        .bind(hash(secret))
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_fresh_and_csrf_tokens_depend_on_them() {
        let a = new_secret();
        let b = new_secret();
        assert_eq!(a.len(), 64);
        assert_ne!(a, b);
        assert_ne!(csrf_token(&a), csrf_token(&b));
        assert_eq!(csrf_token(&a), csrf_token(&a));
        assert_ne!(csrf_token(&a), hash(&a));
    }
}
