//! An admin's login, the same for the API and the web UI: the throttle gate, the account's
//! slowdown, the password check, and an audit record of every success and failure.

use crate::admins::{self, Admin};
use crate::audit::{self, Actor};
use crate::auth::{password, throttle};
use crate::db::Db;
use crate::error::DomainResult;
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
    /// The password was right and the account enabled.
    Success(Admin),
    /// Wrong username or password, or a disabled account (the caller is not told which).
    Failed,
    /// This address is locked out for this long; the password was not checked.
    Locked(Duration),
}

/// The longest attempted username kept in the audit log (what was typed may be a password
/// pasted into the wrong field; a long one is cut, never stored whole).
const AUDIT_USERNAME_CHARS: usize = 64;

/// Checks a login attempt from `addr` and records it.
pub async fn login(
    db: &Db,
    username: &str,
    password_text: &str,
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
