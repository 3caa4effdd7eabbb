//! A customer's credit (their balance) paid into their open invoices, oldest due first, as
//! payments of method `credit`: when an invoice is issued, when credit arrives (a plan
//! downgrade), before the isolation sweep decides, and when an operator asks.

use super::allocation::{self, OpenInvoice};
use super::settlement::add_payment;
use crate::audit::Actor;
use crate::db::now_ms;
use crate::error::DomainResult;
use serde::Serialize;
use sqlx::Row;

/// Credit paid into one invoice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct CreditUse {
    /// The invoice.
    pub invoice_id: String,
    /// Its subscription, if any (it may now be settled).
    pub subscription_id: Option<String>,
    /// Minor units paid from the balance.
    pub amount: i64,
}

/// The customer's unpaid invoices: the one `only` names, or all of them.
pub async fn open_invoices(
    conn: &mut sqlx::AnyConnection,
    customer_id: &str,
    only: Option<&str>,
) -> DomainResult<Vec<OpenInvoice>> {
    let rows = sqlx::query(
        "SELECT id, number, due_at, total - amount_paid AS outstanding FROM invoices \
         WHERE customer_id = $1 AND status = 'unpaid' AND (CAST($2 AS TEXT) IS NULL OR id = $2)",
    )
    .bind(customer_id)
    .bind(only)
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows
        .iter()
        .map(|r| {
            Ok(OpenInvoice {
                id: r.try_get("id")?,
                number: r.try_get("number")?,
                due_at: r.try_get("due_at")?,
                outstanding: r.try_get("outstanding")?,
            })
        })
        .collect::<Result<_, sqlx::Error>>()?)
}

/// Pays the customer's balance into their open invoices, oldest due first, inside the
/// caller's transaction; returns what went where (empty when there is no credit or nothing
/// open). Each part is a payment of method `credit` taken off the balance.
pub async fn apply_balance(
    conn: &mut sqlx::AnyConnection,
    actor: &Actor,
    customer_id: &str,
) -> DomainResult<Vec<CreditUse>> {
    let balance: i64 = sqlx::query("SELECT balance FROM customers WHERE id = $1")
        .bind(customer_id)
        .fetch_one(&mut *conn)
        .await?
        .try_get("balance")?;
    if balance <= 0 {
        return Ok(Vec::new());
    }
    let open = open_invoices(conn, customer_id, None).await?;
    let split = allocation::allocate(balance, &open);
    let mut used = Vec::with_capacity(split.parts.len());
    for (invoice_id, amount) in split.parts {
        crate::customers::adjust_balance(conn, customer_id, -amount).await?;
        sqlx::query(
            "INSERT INTO payments (id, customer_id, invoice_id, amount, method, received_by, received_at) \
             VALUES ($1, $2, $3, $4, 'credit', $5, $6)",
        )
        .bind(uuid::Uuid::new_v4().to_string())
        .bind(customer_id)
        .bind(&invoice_id)
        .bind(amount)
        .bind(&actor.id)
        .bind(now_ms())
        .execute(&mut *conn)
        .await?;
        add_payment(conn, &invoice_id, amount).await?;
        let subscription_id: Option<String> =
            sqlx::query("SELECT subscription_id FROM invoices WHERE id = $1")
                .bind(&invoice_id)
                .fetch_one(&mut *conn)
                .await?
                .try_get("subscription_id")?;
        used.push(CreditUse {
            invoice_id,
            subscription_id,
            amount,
        });
    }
    Ok(used)
}
