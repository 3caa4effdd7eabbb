//! An admin's login, the same for the API and the web UI: the throttle gate, the account's
//! slowdown, the password check, the authenticator code of an account with two-factor
//! sign-in, and an audit record of every success and failure. The web UI asks for the code on
//! a page of its own: between the two steps the browser holds a pending-login token.

use crate::admin_totp;
use crate::admins::{self, Admin};
use crate::audit::{self, Actor};
use crate::auth::{password, throttle};
use crate::db::{Db, DbError, now_ms};
use crate::error::DomainResult;
use base64::Engine;
use rand::RngCore;
use sha2::{Digest, Sha256};
use sqlx::Row;
use std::net::IpAddr;
use std::time::Duration;

/// Which front end the login came through, as the audit log names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    /// `POST /api/v1/auth/login`.
    Api,
    /// The web UI's sign-in form.
    Web,
}

impl Via {
    fn as_str(self) -> &'static str {
        match self {
            Via::Api => "api",
            Via::Web => "web",
        }
    }
}

/// How a login attempt ended.
#[derive(Debug)]
pub enum LoginOutcome {
    /// The password (and the code, where one is needed) was right and the account enabled.
    Success(Admin),
    /// The password was right but the account signs in with a code too, and none was sent.
    CodeRequired(Admin),
    /// The password was right but the code was wrong, stale or already used.
    CodeInvalid,
    /// Wrong username or password, or a disabled account (the caller is not told which).
    Failed,
    /// This address is locked out for this long; the password was not checked.
    Locked(Duration),
}

/// The longest attempted username kept in the audit log (what was typed may be a password
/// pasted into the wrong field; a long one is cut, never stored whole).
const AUDIT_USERNAME_CHARS: usize = 64;

/// How long the web UI's pending login (password right, code not yet) lives.
pub const PENDING_TTL_MS: i64 = 5 * 60 * 1000;
/// Codes a pending login may try before it ends.
pub const PENDING_MAX_ATTEMPTS: i64 = 5;

/// Checks a login attempt from `addr` and records it. An account with a confirmed
/// authenticator needs `totp_code` as well; without one the outcome is
/// [`LoginOutcome::CodeRequired`] (the attempt stays counted until a code succeeds), with a
/// wrong one [`LoginOutcome::CodeInvalid`], counted as a failed login.
pub async fn login(
    db: &Db,
    username: &str,
    password_text: &str,
    totp_code: Option<&str>,
    addr: Option<IpAddr>,
    via: Via,
) -> DomainResult<LoginOutcome> {
    let address = throttle::address_key(addr);
    let keys = throttle::LoginKeys::admin(username, &address);
    let delay = match throttle::gate(db, &keys).await? {
        throttle::Gate::Locked(wait) => {
            metrics::counter!("mikrobill_admin_logins_total", "result" => "locked").increment(1);
            tracing::warn!(%address, via = via.as_str(), "admin login refused: address locked");
            return Ok(LoginOutcome::Locked(wait));
        }
        throttle::Gate::Open(delay) => delay,
    };
    if !delay.is_zero() {
        // Someone has been guessing this account: every attempt now waits, the owner's too,
        // but the owner still gets in.
        tracing::info!(
            delay_ms = delay.as_millis() as u64,
            "admin login slowed down"
        );
        tokio::time::sleep(delay).await;
    }
    let found = admins::for_login(db, username).await?;
    let (admin, hash) = match found {
        Some((a, h)) => (Some(a), Some(h)),
        None => (None, None),
    };
    // Verified even for unknown users, so timing does not tell which usernames exist.
    let ok = password::verify(password_text, hash).await;
    let actor = Actor {
        id: admin.as_ref().map(|a| a.id.clone()),
        name: admin.as_ref().map_or_else(
            || username.chars().take(AUDIT_USERNAME_CHARS).collect(),
            |a| a.username.clone(),
        ),
        addr: addr.map(|a| a.to_string()),
    };
    match admin {
        Some(admin) if ok && !admin.disabled => {
            if admin_totp::is_enabled(db, &admin.id).await? {
                let Some(code) = totp_code else {
                    tracing::info!(username = %admin.username, via = via.as_str(), "admin password right, code required");
                    return Ok(LoginOutcome::CodeRequired(admin));
                };
                return second_factor(db, &keys, &actor, admin, code, via).await;
            }
            throttle::login_succeeded(db, &keys).await?;
            let detail = serde_json::json!({ "via": via.as_str() });
            audit::record_alone(
                db,
                &actor,
                "admin.login",
                "admin_user",
                actor.id.as_deref(),
                None::<&()>,
                Some(&detail),
            )
            .await?;
            metrics::counter!("mikrobill_admin_logins_total", "result" => "success").increment(1);
            tracing::info!(username = %admin.username, %address, via = via.as_str(), "admin logged in");
            Ok(LoginOutcome::Success(admin))
        }
        other => {
            throttle::login_failed(db, &keys).await?;
            let reason = match &other {
                None => "unknown_user",
                Some(a) if a.disabled => "disabled",
                Some(_) => "wrong_password",
            };
            let detail = serde_json::json!({ "via": via.as_str(), "reason": reason });
            audit::record_alone(
                db,
                &actor,
                "admin.login_failed",
                "admin_user",
                actor.id.as_deref(),
                None::<&()>,
                Some(&detail),
            )
            .await?;
            metrics::counter!("mikrobill_admin_logins_total", "result" => "failure").increment(1);
            tracing::warn!(%address, via = via.as_str(), reason, "failed admin login");
            Ok(LoginOutcome::Failed)
        }
    }
}

/// Checks the code of an account whose password was right (the attempt is counted under
/// `keys` already), and records the outcome like a login.
async fn second_factor(
    db: &Db,
    keys: &throttle::LoginKeys,
    actor: &Actor,
    admin: Admin,
    code: &str,
    via: Via,
) -> DomainResult<LoginOutcome> {
    if admin_totp::verify_code(db, &admin.id, code, now_ms()).await? {
        throttle::login_succeeded(db, keys).await?;
        let detail = serde_json::json!({ "via": via.as_str(), "second_factor": "totp" });
        audit::record_alone(
            db,
            actor,
            "admin.login",
            "admin_user",
            Some(&admin.id),
            None::<&()>,
            Some(&detail),
        )
        .await?;
        metrics::counter!("mikrobill_admin_logins_total", "result" => "success").increment(1);
        tracing::info!(username = %admin.username, via = via.as_str(), "admin logged in with a code");
        return Ok(LoginOutcome::Success(admin));
    }
    throttle::login_failed(db, keys).await?;
    let detail = serde_json::json!({ "via": via.as_str(), "reason": "wrong_code" });
    audit::record_alone(
        db,
        actor,
        "admin.login_failed",
        "admin_user",
        Some(&admin.id),
        None::<&()>,
        Some(&detail),
    )
    .await?;
    metrics::counter!("mikrobill_admin_logins_total", "result" => "failure").increment(1);
    tracing::warn!(username = %admin.username, via = via.as_str(), "failed admin login: wrong code");
    Ok(LoginOutcome::CodeInvalid)
}

fn hash_pending(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Starts the web UI's pending login of an account whose password was just right; returns the
/// token for the browser (only its SHA-256 is stored). Expired ones are swept here.
pub async fn start_pending(db: &Db, admin_id: &str) -> Result<String, DbError> {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let token = format!(
        "mbp_{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    );
    let now = now_ms();
    let mut tx = db.begin().await?;
    sqlx::query("DELETE FROM admin_login_pending WHERE expires_at <= $1")
        .bind(now)
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "INSERT INTO admin_login_pending (id, token_hash, admin_id, created_at, expires_at, attempts) \
         VALUES ($1, $2, $3, $4, $5, 0)",
    )
    .bind(uuid::Uuid::new_v4().to_string())
    .bind(hash_pending(&token))
    .bind(admin_id)
    .bind(now)
    .bind(now + PENDING_TTL_MS)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(token)
}

/// The account a live pending login belongs to (`None`: unknown, expired or out of tries).
pub async fn pending_admin(db: &Db, token: &str) -> DomainResult<Option<Admin>> {
    let row = sqlx::query(
        "SELECT admin_id FROM admin_login_pending WHERE token_hash = $1 AND expires_at > $2 AND attempts < $3",
    )
    .bind(hash_pending(token))
    .bind(now_ms())
    .bind(PENDING_MAX_ATTEMPTS)
    .fetch_optional(&db.pool)
    .await?;
    match row {
        Some(r) => Ok(Some(
            admins::get(db, &r.try_get::<String, _>("admin_id")?).await?,
        )),
        None => Ok(None),
    }
}

/// Ends a pending login (signed in, or given up).
pub async fn end_pending(db: &Db, token: &str) -> Result<(), DbError> {
    sqlx::query("DELETE FROM admin_login_pending WHERE token_hash = $1")
        .bind(hash_pending(token))
        .execute(&db.pool)
        .await?;
    Ok(())
}

/// The web UI's second step: the code for a pending login, under the same throttle and audit
/// as a login. `Failed` when the pending login is unknown, expired or out of tries (the
/// browser starts over at the password).
pub async fn login_pending(
    db: &Db,
    token: &str,
    code: &str,
    addr: Option<IpAddr>,
) -> DomainResult<LoginOutcome> {
    // Counting the try first, in one statement, keeps parallel posts within the limit.
    let claimed = sqlx::query(
        "UPDATE admin_login_pending SET attempts = attempts + 1 \
         WHERE token_hash = $1 AND expires_at > $2 AND attempts < $3",
    )
    .bind(hash_pending(token))
    .bind(now_ms())
    .bind(PENDING_MAX_ATTEMPTS)
    .execute(&db.pool)
    .await?
    .rows_affected();
    let admin = match claimed {
        1 => {
            sqlx::query_scalar::<_, String>(
                "SELECT admin_id FROM admin_login_pending WHERE token_hash = $1",
            )
            .bind(hash_pending(token))
            .fetch_optional(&db.pool)
            .await?
        }
        _ => None,
    };
    let Some(admin_id) = admin else {
        return Ok(LoginOutcome::Failed);
    };
    let admin = admins::get(db, &admin_id).await?;
    if admin.disabled {
        end_pending(db, token).await?;
        return Ok(LoginOutcome::Failed);
    }
    let address = throttle::address_key(addr);
    let keys = throttle::LoginKeys::admin(&admin.username, &address);
    match throttle::gate(db, &keys).await? {
        throttle::Gate::Locked(wait) => {
            tracing::warn!(%address, "admin code refused: address locked");
            return Ok(LoginOutcome::Locked(wait));
        }
        throttle::Gate::Open(delay) => tokio::time::sleep(delay).await,
    }
    let actor = Actor {
        id: Some(admin.id.clone()),
        name: admin.username.clone(),
        addr: addr.map(|a| a.to_string()),
    };
    let outcome = second_factor(db, &keys, &actor, admin, code, Via::Web).await?;
    if matches!(outcome, LoginOutcome::Success(_)) {
        end_pending(db, token).await?;
    }
    Ok(outcome)
}
