//! Portal passwords: set or reset by an operator, checked at login. A subscriber logs in with
//! their customer number or their phone number.

use crate::audit::{self, Actor};
use crate::auth::password;
use crate::customers::{self, Customer};
use crate::db::{Db, now_ms};
use crate::error::{DomainError, DomainResult};
use serde::{Deserialize, Serialize};
use sqlx::Row;

/// What an operator sends to set a portal password.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PortalPasswordInput {
    /// The new password (at least 10 characters); absent to have one generated.
    pub password: Option<String>,
}

/// The answer to setting a portal password.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct PortalPasswordSet {
    /// The customer.
    pub customer_id: String,
    /// What the subscriber logs in with besides the password.
    pub customer_number: String,
    /// The generated password, shown this once; absent when the operator chose it.
    pub generated_password: Option<String>,
    /// Portal sessions ended because the password changed.
    pub sessions_ended: u64,
}

/// Sets (or resets) a customer's portal password, ending their open portal sessions.
pub async fn set_password(
    db: &Db,
    actor: &Actor,
    customer_id: &str,
    input: PortalPasswordInput,
) -> DomainResult<PortalPasswordSet> {
    let (password, generated) = match input.password {
        Some(p) => (p, false),
        None => (password::generate(), true),
    };
    password::check_policy(&password)
        .map_err(|e| DomainError::invalid("password", e.to_string()))?;
    let customer = customers::get(db, customer_id).await?;
    let hash = password::hash(&password)
        .await
        .map_err(|e| DomainError::invalid("password", e.to_string()))?;
    let now = now_ms();
    let mut tx = db.begin().await?;
    sqlx::query(
        "INSERT INTO portal_credentials (customer_id, password_hash, updated_at) VALUES ($1, $2, $3) \
         ON CONFLICT (customer_id) DO UPDATE SET password_hash = $2, updated_at = $3",
    )
    .bind(customer_id)
    .bind(&hash)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    // Whoever knew the old password must not stay logged in with it.
    let sessions_ended = sqlx::query("DELETE FROM portal_sessions WHERE customer_id = $1")
        .bind(customer_id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    audit::record(
        &mut tx,
        actor,
        "customer.portal_password",
        "customer",
        Some(customer_id),
        None::<&()>,
        Some(&serde_json::json!({ "generated": generated, "sessions_ended": sessions_ended })),
    )
    .await?;
    tx.commit().await?;
    Ok(PortalPasswordSet {
        customer_id: customer.id,
        customer_number: customer.number,
        generated_password: generated.then_some(password),
        sessions_ended,
    })
}

/// A login attempt: who the subscriber says they are and how they prove it.
#[derive(Debug, Clone)]
pub enum Login {
    /// Customer number or phone number, and the portal password.
    Password {
        /// Customer number (`C000042`, any case) or phone number in any common form.
        identifier: String,
        /// The portal password.
        password: String,
    },
    /// Customer number or phone number, and a one-time code sent to the customer.
    Code {
        /// Customer number or phone number.
        identifier: String,
        /// The six-digit code.
        code: String,
    },
}

/// The customer an identifier names, if any: a customer number first, then a phone number.
/// A phone shared by several customers names none of them, so nobody logs into the wrong one.
pub async fn find_customer(db: &Db, identifier: &str) -> DomainResult<Option<Customer>> {
    let identifier = identifier.trim();
    if identifier.is_empty() {
        return Ok(None);
    }
    let by_number = sqlx::query("SELECT id FROM customers WHERE number = $1")
        .bind(identifier.to_uppercase())
        .fetch_optional(&db.pool)
        .await?;
    if let Some(row) = by_number {
        return Ok(Some(
            customers::get(db, &row.try_get::<String, _>("id")?).await?,
        ));
    }
    let Ok(phone) = customers::normalize_phone(identifier) else {
        return Ok(None);
    };
    let rows = sqlx::query("SELECT id FROM customers WHERE phone = $1 LIMIT 2")
        .bind(phone)
        .fetch_all(&db.pool)
        .await?;
    match rows.as_slice() {
        [one] => Ok(Some(
            customers::get(db, &one.try_get::<String, _>("id")?).await?,
        )),
        _ => Ok(None),
    }
}

/// Checks a login; the customer when it succeeds. Unknown identifiers and customers without
/// a portal password cost the same time as a wrong password.
pub async fn verify(db: &Db, login: &Login) -> DomainResult<Option<Customer>> {
    match login {
        Login::Password {
            identifier,
            password,
        } => {
            let customer = find_customer(db, identifier).await?;
            let stored: Option<String> = match &customer {
                Some(c) => sqlx::query(
                    "SELECT password_hash FROM portal_credentials WHERE customer_id = $1",
                )
                .bind(&c.id)
                .fetch_optional(&db.pool)
                .await?
                .map(|r| r.try_get("password_hash"))
                .transpose()?,
                None => None,
            };
            let has_password = stored.is_some();
            let ok = password::verify(password, stored).await;
            Ok(customer.filter(|_| ok && has_password))
        }
        Login::Code { identifier, code } => {
            let Some(customer) = find_customer(db, identifier).await? else {
                return Ok(None);
            };
            let ok = super::codes::verify(db, &customer.id, code).await?;
            Ok(ok.then_some(customer))
        }
    }
}
