//! Paying an invoice online: a payment link from the configured gateway, stored so that
//! pressing "Pay" again reuses it while it is valid and the amount still matches. The order
//! id is the invoice number, `~` and a random suffix: unique for the gateway, and the
//! webhook (`payments::record_gateway`) finds the invoice from the part before `~`.

use crate::audit::{self, Actor};
use crate::billing::invoices::InvoiceStatus;
use crate::db::{Db, now_ms};
use crate::error::DomainError;
use crate::payments::gateway::{Gateway, LinkError, LinkRequest};
use serde::Serialize;
use sqlx::Row;

/// How long a stored link is reused: a little under the day Snap keeps a page open.
pub const LINK_REUSE_MS: i64 = 23 * 3_600_000;

/// A stored payment link.
#[derive(Debug, Clone, Serialize)]
pub struct StoredLink {
    /// The invoice it pays.
    pub invoice_id: String,
    /// The gateway.
    pub gateway: String,
    /// The order id the gateway knows.
    pub order_id: String,
    /// The amount it asks for, minor units.
    pub amount: i64,
    /// Where the payer goes.
    pub redirect_url: String,
    /// Until when it is reused (unix ms).
    pub expires_at: i64,
}

/// Why an invoice could not be paid online.
#[derive(Debug, thiserror::Error)]
pub enum PayError {
    /// Not the customer's invoice, or nothing to pay.
    #[error(transparent)]
    Domain(#[from] DomainError),
    /// The gateway did not give a link.
    #[error(transparent)]
    Gateway(#[from] LinkError),
}

impl From<sqlx::Error> for PayError {
    fn from(e: sqlx::Error) -> Self {
        PayError::Domain(e.into())
    }
}

impl From<crate::db::DbError> for PayError {
    fn from(e: crate::db::DbError) -> Self {
        PayError::Domain(e.into())
    }
}

/// A payment link for what is still owed on the customer's invoice `invoice_id`.
pub async fn link_for_invoice(
    db: &Db,
    gateway: &dyn Gateway,
    actor: &Actor,
    customer_id: &str,
    invoice_id: &str,
) -> Result<StoredLink, PayError> {
    let invoice = super::account::own_invoice(db, customer_id, invoice_id).await?;
    let amount = invoice.outstanding();
    if invoice.status != InvoiceStatus::Unpaid || amount <= 0 {
        return Err(DomainError::conflict(
            "invalid_state",
            format!("invoice {} is {}", invoice.number, invoice.status.as_str()),
        )
        .into());
    }
    let now = now_ms();
    let reusable = sqlx::query(
        "SELECT order_id, redirect_url, expires_at FROM payment_links \
         WHERE invoice_id = $1 AND gateway = $2 AND amount = $3 AND expires_at > $4 \
         ORDER BY expires_at DESC LIMIT 1",
    )
    .bind(&invoice.id)
    .bind(gateway.name())
    .bind(amount)
    .bind(now)
    .fetch_optional(&db.pool)
    .await?;
    if let Some(row) = reusable {
        return Ok(StoredLink {
            invoice_id: invoice.id,
            gateway: gateway.name().to_string(),
            order_id: row.try_get("order_id")?,
            amount,
            redirect_url: row.try_get("redirect_url")?,
            expires_at: row.try_get("expires_at")?,
        });
    }
    let settings = crate::settings::billing(db).await?;
    let customer = crate::customers::get(db, customer_id).await?;
    let public_url = crate::notify::settings::get(db).await?.public_url;
    let order_id = format!("{}~{}", invoice.number, suffix());
    // The gateway is called outside any transaction: a slow gateway must not hold the
    // database's write lock.
    let link = gateway
        .create_link(&LinkRequest {
            order_id: order_id.clone(),
            amount,
            currency_exponent: settings.currency_exponent,
            currency: settings.currency.clone(),
            description: format!("{} {}", settings.company_name, invoice.number)
                .trim()
                .to_string(),
            customer_name: customer.name,
            customer_email: customer.email,
            customer_phone: customer.phone,
            return_url: (!public_url.is_empty())
                .then(|| format!("{public_url}/portal/invoices/{}", invoice.id)),
        })
        .await?;
    let stored = StoredLink {
        invoice_id: invoice.id.clone(),
        gateway: gateway.name().to_string(),
        order_id,
        amount,
        redirect_url: link.redirect_url,
        expires_at: now + LINK_REUSE_MS,
    };
    let mut tx = db.begin().await?;
    sqlx::query(
        "INSERT INTO payment_links (id, invoice_id, gateway, order_id, amount, redirect_url, created_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(uuid::Uuid::new_v4().to_string())
    .bind(&stored.invoice_id)
    .bind(&stored.gateway)
    .bind(&stored.order_id)
    .bind(stored.amount)
    .bind(&stored.redirect_url)
    .bind(now)
    .bind(stored.expires_at)
    .execute(&mut *tx)
    .await?;
    audit::record(
        &mut tx,
        actor,
        "invoice.payment_link",
        "invoice",
        Some(&stored.invoice_id),
        None::<&()>,
        Some(&stored),
    )
    .await?;
    tx.commit().await?;
    Ok(stored)
}

/// Eight random lowercase letters and digits: order ids stay unique without a counter.
fn suffix() -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyz23456789";
    let mut rng = rand::rng();
    (0..8)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}
