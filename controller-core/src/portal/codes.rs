//! One-time login codes: a subscriber without a password (or who forgot it) asks for a code,
//! which goes out through the notification channels that reach them, and logs in with it.
//! A code is six digits, lives ten minutes, allows five tries and works once; only its hash
//! is stored, bound to the customer so a code can never open another account.

use crate::customers::Customer;
use crate::db::{Db, now_ms};
use crate::error::DomainResult;
use crate::notify::produce::{Context, Origin, to_customer};
use crate::notify::{Topic, templates::Vars};
use sha2::{Digest, Sha256};
use sqlx::Row;

/// How long a code is valid (its message is not sent after that either).
pub const LIFETIME_MS: i64 = crate::notify::PORTAL_CODE_LIFETIME_MS;
/// Wrong tries before a code is void.
pub const MAX_TRIES: i64 = 5;
/// A new code is not sent sooner than this after the last one.
pub const RESEND_AFTER_MS: i64 = 60 * 1000;

fn hash(customer_id: &str, code: &str) -> String {
    hex::encode(Sha256::digest(format!("{customer_id}:{code}").as_bytes()))
}

/// What asking for a code did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Requested {
    /// A code was queued on this many channels (0: no channel reaches the customer).
    Sent(u64),
    /// A code was sent less than a minute ago; it is still the one to use.
    TooSoon,
}

/// Makes a new code for `customer` and queues it on every channel that reaches them.
pub async fn request(db: &Db, customer: &Customer) -> DomainResult<Requested> {
    let now = now_ms();
    let mut tx = db.begin().await?;
    let last: Option<i64> =
        sqlx::query("SELECT created_at FROM portal_codes WHERE customer_id = $1")
            .bind(&customer.id)
            .fetch_optional(&mut *tx)
            .await?
            .map(|r| r.try_get("created_at"))
            .transpose()?;
    if last.is_some_and(|at| now - at < RESEND_AFTER_MS) {
        return Ok(Requested::TooSoon);
    }
    let code = {
        use rand::Rng;
        format!("{:06}", rand::rng().random_range(0..1_000_000u32))
    };
    sqlx::query(
        "INSERT INTO portal_codes (customer_id, code_hash, attempts, created_at, expires_at) VALUES ($1, $2, 0, $3, $4) \
         ON CONFLICT (customer_id) DO UPDATE SET code_hash = excluded.code_hash, attempts = 0, created_at = excluded.created_at, expires_at = excluded.expires_at",
    )
    .bind(&customer.id)
    .bind(hash(&customer.id, &code))
    .bind(now)
    .bind(now + LIFETIME_MS)
    .execute(&mut *tx)
    .await?;
    let ctx = Context::load(&mut tx).await?;
    let origin = Origin::new(format!("portal-code:{}:{now}", customer.id), now);
    let sent = to_customer(
        &mut tx,
        &ctx,
        Topic::PortalCode,
        &customer.id,
        &origin,
        |_| {
            Vars::from([
                ("code", code.clone()),
                ("minutes", (LIFETIME_MS / 60_000).to_string()),
            ])
        },
    )
    .await?;
    tx.commit().await?;
    Ok(Requested::Sent(sent))
}

/// Checks a code; true (and the code is used up) when it is the customer's live code. The
/// try is counted in the same statement that reads the code, so parallel guesses cannot
/// share one count.
pub async fn verify(db: &Db, customer_id: &str, code: &str) -> DomainResult<bool> {
    let now = now_ms();
    let mut tx = db.begin().await?;
    let row = sqlx::query(
        "UPDATE portal_codes SET attempts = attempts + 1 WHERE customer_id = $1 AND attempts < $2 AND expires_at > $3 RETURNING code_hash",
    )
    .bind(customer_id)
    .bind(MAX_TRIES)
    .bind(now)
    .fetch_all(&mut *tx)
    .await?
    .into_iter()
    .next();
    let Some(row) = row else {
        return Ok(false);
    };
    let stored: String = row.try_get("code_hash")?;
    // Hashes are compared, so timing reveals nothing usable about the code itself.
    let ok = hash(customer_id, code.trim()) == stored;
    if ok {
        sqlx::query("DELETE FROM portal_codes WHERE customer_id = $1")
            .bind(customer_id)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(ok)
}
