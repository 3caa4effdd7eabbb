//! Payments: money in from the cash desk or a payment gateway, allocated to invoices (the
//! named one, else the oldest unpaid), the rest kept as customer credit. Settling what was
//! overdue re-activates an isolated subscription in the same transaction. `gateway` holds the
//! payment gateways whose confirmed notifications become payments here.

pub mod gateway;

use crate::audit::{self, Actor};
use crate::billing::allocation;
use crate::billing::credit;
use crate::billing::invoices::{self, Invoice, InvoiceStatus};
use crate::db::{Db, now_ms};
use crate::error::{DomainError, DomainResult, text};
use crate::payments::gateway::{Notification, PaymentStatus};
use serde::{Deserialize, Serialize};
use sqlx::Row;

/// How money arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum PaymentMethod {
    /// Cash at the desk.
    Cash,
    /// Bank transfer checked by a cashier.
    Transfer,
    /// A payment gateway's verified notification.
    Gateway,
    /// The customer's existing credit, applied to an invoice (not new money).
    Credit,
}

impl PaymentMethod {
    /// Storage name.
    pub fn as_str(self) -> &'static str {
        match self {
            PaymentMethod::Cash => "cash",
            PaymentMethod::Transfer => "transfer",
            PaymentMethod::Gateway => "gateway",
            PaymentMethod::Credit => "credit",
        }
    }

    fn parse(s: &str) -> PaymentMethod {
        match s {
            "cash" => PaymentMethod::Cash,
            "transfer" => PaymentMethod::Transfer,
            "gateway" => PaymentMethod::Gateway,
            _ => PaymentMethod::Credit,
        }
    }
}

/// A recorded payment.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Payment {
    /// Stable id.
    pub id: String,
    /// Paying customer.
    pub customer_id: String,
    /// The invoice it was made for, if one was named.
    pub invoice_id: Option<String>,
    /// Amount in minor units.
    pub amount: i64,
    /// How it arrived.
    pub method: PaymentMethod,
    /// Gateway name for gateway payments.
    pub gateway: Option<String>,
    /// The gateway's transaction id.
    pub external_id: Option<String>,
    /// Receipt or transfer reference.
    pub reference: Option<String>,
    /// Cashier's note.
    pub note: Option<String>,
    /// The admin user who took it.
    pub received_by: Option<String>,
    /// When (unix ms).
    pub received_at: i64,
}

const COLUMNS: &str = "id, customer_id, invoice_id, amount, method, gateway, external_id, reference, note, received_by, received_at";

fn from_row(r: &sqlx::any::AnyRow) -> Result<Payment, sqlx::Error> {
    Ok(Payment {
        id: r.try_get("id")?,
        customer_id: r.try_get("customer_id")?,
        invoice_id: r.try_get("invoice_id")?,
        amount: r.try_get("amount")?,
        method: PaymentMethod::parse(&r.try_get::<String, _>("method")?),
        gateway: r.try_get("gateway")?,
        external_id: r.try_get("external_id")?,
        reference: r.try_get("reference")?,
        note: r.try_get("note")?,
        received_by: r.try_get("received_by")?,
        received_at: r.try_get("received_at")?,
    })
}

async fn fetch(conn: &mut sqlx::AnyConnection, id: &str) -> DomainResult<Payment> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM payments WHERE id = $1"
    )))
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?
    .ok_or_else(|| DomainError::not_found("payment", id))?;
    Ok(from_row(&row)?)
}

/// A payment taken at the desk.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PaymentInput {
    /// The invoice being paid; the customer is taken from it.
    pub invoice_id: Option<String>,
    /// The paying customer, when no invoice is named (oldest unpaid invoices are paid first).
    pub customer_id: Option<String>,
    /// Amount in minor units (positive).
    pub amount: i64,
    /// `cash` or `transfer`.
    pub method: PaymentMethod,
    /// Receipt or transfer reference.
    pub reference: Option<String>,
    /// Note.
    pub note: Option<String>,
}

/// The result of recording a payment.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Receipt {
    /// The payment.
    pub payment: Payment,
    /// Invoices it paid, with what each received.
    pub allocations: Vec<Allocation>,
    /// What went to the customer's credit.
    pub credited: i64,
    /// Subscriptions re-activated because nothing overdue is left.
    pub reactivated: Vec<String>,
    /// False when this was a repeat of an already recorded gateway transaction.
    pub created: bool,
}

/// The part of a payment one invoice received.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Allocation {
    /// Invoice id.
    pub invoice_id: String,
    /// Invoice number.
    pub number: String,
    /// Amount applied.
    pub amount: i64,
}

struct NewPayment<'a> {
    customer_id: String,
    invoice_id: Option<String>,
    amount: i64,
    method: PaymentMethod,
    gateway: Option<&'a str>,
    external_id: Option<&'a str>,
    reference: Option<String>,
    note: Option<String>,
}

/// Records money received and allocates it, in one transaction.
async fn record_in(
    conn: &mut sqlx::AnyConnection,
    actor: &Actor,
    p: NewPayment<'_>,
) -> DomainResult<Receipt> {
    let id = uuid::Uuid::new_v4().to_string();
    let inserted = sqlx::query(
        "INSERT INTO payments (id, customer_id, invoice_id, amount, method, gateway, external_id, reference, note, received_by, received_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) ON CONFLICT (gateway, external_id) DO NOTHING",
    )
    .bind(&id)
    .bind(&p.customer_id)
    .bind(&p.invoice_id)
    .bind(p.amount)
    .bind(p.method.as_str())
    .bind(p.gateway)
    .bind(p.external_id)
    .bind(&p.reference)
    .bind(&p.note)
    .bind(&actor.id)
    .bind(now_ms())
    .execute(&mut *conn)
    .await?
    .rows_affected();
    if inserted == 0 {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM payments WHERE gateway = $1 AND external_id = $2"
        )))
        .bind(p.gateway)
        .bind(p.external_id)
        .fetch_one(&mut *conn)
        .await?;
        return Ok(Receipt {
            payment: from_row(&row)?,
            allocations: vec![],
            credited: 0,
            reactivated: vec![],
            created: false,
        });
    }
    let open = credit::open_invoices(conn, &p.customer_id, p.invoice_id.as_deref()).await?;
    let split = allocation::allocate(p.amount, &open);
    let mut allocations = Vec::new();
    let mut touched_subscriptions = Vec::new();
    for (invoice_id, amount) in split.parts {
        let used = crate::billing::settlement::add_payment(conn, &invoice_id, amount).await?;
        // The invoice was read in this transaction, so it still owes what the split assumed.
        debug_assert_eq!(used, amount);
        let inv = invoices::fetch(conn, &invoice_id).await?;
        allocations.push(Allocation {
            invoice_id: inv.id.clone(),
            number: inv.number.clone(),
            amount: used,
        });
        if let Some(s) = inv.subscription_id
            && !touched_subscriptions.contains(&s)
        {
            touched_subscriptions.push(s);
        }
    }
    if p.method != PaymentMethod::Credit {
        // Reports by site and plan credit a payment to the subscription of the oldest
        // invoice it paid (one payment rarely spans subscriptions; credit alone names none).
        let (plan_id, site_id) = match touched_subscriptions.first() {
            Some(sub) => sqlx::query_as::<_, (String, String)>(
                "SELECT plan_id, site_id FROM subscriptions WHERE id = $1",
            )
            .bind(sub)
            .fetch_optional(&mut *conn)
            .await?
            .map_or((None, None), |(p, s)| (Some(p), Some(s))),
            None => (None, None),
        };
        crate::revenue::record(
            conn,
            &crate::revenue::Entry {
                source: crate::revenue::Source::Payment,
                reference: &id,
                amount: p.amount,
                received_at: now_ms(),
                method: Some(p.method.as_str()),
                plan_id: plan_id.as_deref(),
                site_id: site_id.as_deref(),
                reseller_id: None,
            },
        )
        .await?;
    }
    let left = split.credit;
    if left > 0 {
        crate::customers::adjust_balance(conn, &p.customer_id, left).await?;
    }
    let mut reactivated = Vec::new();
    for sub in touched_subscriptions {
        if crate::subscriptions::reactivate_if_settled(conn, actor, &sub).await? {
            reactivated.push(sub);
        }
    }
    let payment = fetch(conn, &id).await?;
    let receipt = Receipt {
        payment,
        allocations,
        credited: left,
        reactivated,
        created: true,
    };
    audit::record(
        conn,
        actor,
        "payment.record",
        "payment",
        Some(&id),
        None::<&()>,
        Some(&receipt),
    )
    .await?;
    let refs = crate::events::Refs {
        customer_id: Some(&receipt.payment.customer_id),
        subscription_id: None,
        site_id: None,
    };
    crate::events::emit(
        conn,
        crate::events::EventKind::PaymentReceived,
        refs,
        &receipt,
    )
    .await?;
    Ok(receipt)
}

/// What an operator's "apply credit" did.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct CreditApplied {
    /// The customer's credit paid into each invoice, oldest due first.
    pub applied: Vec<credit::CreditUse>,
    /// Subscriptions re-activated because nothing overdue is left.
    pub reactivated: Vec<String>,
    /// The balance left.
    pub balance: i64,
}

/// Pays the customer's credit into their open invoices now (it is also applied when an
/// invoice is issued, when a downgrade credits them and before the isolation sweep).
pub async fn apply_customer_credit(
    db: &Db,
    actor: &Actor,
    customer_id: &str,
) -> DomainResult<CreditApplied> {
    let mut tx = db.begin().await?;
    let before = crate::customers::fetch(&mut tx, customer_id).await?;
    let (applied, reactivated) =
        crate::subscriptions::settle_from_credit(&mut tx, actor, customer_id).await?;
    let after = crate::customers::fetch(&mut tx, customer_id).await?;
    let outcome = CreditApplied {
        applied,
        reactivated,
        balance: after.balance,
    };
    if !outcome.applied.is_empty() {
        audit::record(
            &mut tx,
            actor,
            "customer.apply_credit",
            "customer",
            Some(customer_id),
            Some(&before),
            Some(&outcome),
        )
        .await?;
    }
    tx.commit().await?;
    Ok(outcome)
}

/// Records a payment taken by a cashier.
pub async fn record_manual(db: &Db, actor: &Actor, input: PaymentInput) -> DomainResult<Receipt> {
    if !matches!(input.method, PaymentMethod::Cash | PaymentMethod::Transfer) {
        return Err(DomainError::invalid("method", "must be cash or transfer"));
    }
    if input.amount <= 0 || !crate::tax::check_amount(input.amount) {
        return Err(DomainError::invalid("amount", "must be positive"));
    }
    let reference = text("reference", input.reference, 100)?;
    let note = text("note", input.note, 500)?;
    let mut tx = db.begin().await?;
    let customer_id = match (&input.invoice_id, &input.customer_id) {
        (Some(inv), claimed) => {
            let invoice = invoices::fetch(&mut tx, inv).await.map_err(|e| match e {
                DomainError::NotFound { .. } => {
                    DomainError::invalid("invoice_id", "no such invoice")
                }
                other => other,
            })?;
            if claimed.as_ref().is_some_and(|c| c != &invoice.customer_id) {
                return Err(DomainError::invalid(
                    "customer_id",
                    "is not the invoice's customer",
                ));
            }
            if invoice.status != InvoiceStatus::Unpaid {
                return Err(DomainError::conflict(
                    "invalid_state",
                    format!("invoice {} is {}", invoice.number, invoice.status.as_str()),
                ));
            }
            invoice.customer_id
        }
        (None, Some(c)) => {
            crate::customers::fetch(&mut tx, c)
                .await
                .map_err(|_| DomainError::invalid("customer_id", "no such customer"))?;
            c.clone()
        }
        (None, None) => {
            return Err(DomainError::invalid(
                "invoice_id",
                "name the invoice or the customer",
            ));
        }
    };
    let receipt = record_in(
        &mut tx,
        actor,
        NewPayment {
            customer_id,
            invoice_id: input.invoice_id,
            amount: input.amount,
            method: input.method,
            gateway: None,
            external_id: None,
            reference,
            note,
        },
    )
    .await?;
    tx.commit().await?;
    Ok(receipt)
}

/// What a gateway notification led to.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct GatewayOutcome {
    /// Always true: the notification was handled (Tripay expects `{"success": true}`).
    pub success: bool,
    /// `recorded`, `duplicate`, `ignored` (pending, failed, refunded), or `stale` (the
    /// notification's signed status is not the one the gateway confirms now).
    pub result: &'static str,
    /// The payment, when one was recorded now or before.
    pub payment_id: Option<String>,
}

/// Records a gateway transaction its API confirmed: idempotent on the gateway's transaction
/// id; the order id names the invoice (`INV-...`, optionally followed by `~attempt`).
pub async fn record_gateway(
    db: &Db,
    gateway: &str,
    n: &Notification,
    currency: &str,
) -> DomainResult<GatewayOutcome> {
    if let Some(answer) = gateway_precheck(gateway, n, currency)? {
        return Ok(answer);
    }
    let number = n.order_id.split('~').next().unwrap_or_default();
    let mut tx = db.begin().await?;
    let invoice: Invoice = invoices::by_number(&mut tx, number)
        .await
        .map_err(|e| match e {
            DomainError::NotFound { .. } => {
                DomainError::invalid("order_id", format!("no invoice {number:?}"))
            }
            other => other,
        })?;
    // Money the gateway took is recorded even if the invoice was paid or voided meanwhile;
    // whatever the invoice cannot take becomes customer credit rather than vanishing.
    let receipt =
        record_gateway_in(&mut tx, gateway, n, &invoice.customer_id, Some(&invoice.id)).await?;
    tx.commit().await?;
    Ok(GatewayOutcome {
        success: true,
        result: if receipt.created {
            "recorded"
        } else {
            "duplicate"
        },
        payment_id: Some(receipt.payment.id),
    })
}

/// Whether a confirmed transaction is money to record: `Some` answer when there is nothing
/// to record (pending, failed, refunded), an error for a currency or amount the ledger cannot
/// take, `None` to go on and record it.
pub fn gateway_precheck(
    gateway: &str,
    n: &Notification,
    currency: &str,
) -> DomainResult<Option<GatewayOutcome>> {
    if n.status != PaymentStatus::Paid {
        if n.status == PaymentStatus::Refunded {
            tracing::warn!(gateway, order_id = %n.order_id, "gateway reports a refund; an operator must handle it");
        }
        return Ok(Some(GatewayOutcome {
            success: true,
            result: "ignored",
            payment_id: None,
        }));
    }
    if !n.currency.eq_ignore_ascii_case(currency) {
        return Err(DomainError::invalid(
            "currency",
            format!("{} is not the ledger currency {currency}", n.currency),
        ));
    }
    if n.amount <= 0 || !crate::tax::check_amount(n.amount) {
        return Err(DomainError::invalid("gross_amount", "must be positive"));
    }
    Ok(None)
}

/// Records a confirmed gateway payment of `customer_id` in the caller's transaction, to
/// `invoice_id` first when one is named (an invoice's payment link), else to the open invoices
/// oldest first (a wallet top-up); the rest is credit. Idempotent on the gateway's
/// transaction id.
pub async fn record_gateway_in(
    conn: &mut sqlx::AnyConnection,
    gateway: &str,
    n: &Notification,
    customer_id: &str,
    invoice_id: Option<&str>,
) -> DomainResult<Receipt> {
    record_in(
        conn,
        &Actor::system(&format!("gateway:{gateway}")),
        NewPayment {
            customer_id: customer_id.to_string(),
            invoice_id: invoice_id.map(str::to_string),
            amount: n.amount,
            method: PaymentMethod::Gateway,
            gateway: Some(gateway),
            external_id: Some(&n.external_id),
            reference: Some(n.order_id.clone()),
            note: Some(n.raw_status.clone()),
        },
    )
    .await
}

/// One payment.
pub async fn get(db: &Db, id: &str) -> DomainResult<Payment> {
    let mut conn = db.pool.acquire().await?;
    fetch(&mut conn, id).await
}

/// Filters of the payment list.
#[derive(Debug, Clone, Default)]
pub struct PaymentFilter {
    /// One customer's.
    pub customer_id: Option<String>,
    /// One invoice's.
    pub invoice_id: Option<String>,
    /// Received at or after (unix ms).
    pub from: Option<i64>,
    /// Received before (unix ms).
    pub to: Option<i64>,
}

/// Payments, newest first; the cursor is `received_at:id` of the last one seen.
pub async fn list(
    db: &Db,
    f: &PaymentFilter,
    cursor: Option<(i64, String)>,
    limit: u32,
) -> DomainResult<Vec<Payment>> {
    // The first page starts below every real timestamp, so the id tie-break never matters.
    let (at, id) = cursor.unwrap_or((i64::MAX, String::new()));
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM payments WHERE (received_at < $1 OR (received_at = $1 AND id < $2)) \
         AND (CAST($3 AS TEXT) IS NULL OR customer_id = $3) AND (CAST($4 AS TEXT) IS NULL OR invoice_id = $4) \
         AND received_at >= $5 AND received_at < $6 ORDER BY received_at DESC, id DESC LIMIT $7"
    )))
    .bind(at)
    .bind(id)
    .bind(f.customer_id.as_deref())
    .bind(f.invoice_id.as_deref())
    .bind(f.from.unwrap_or(i64::MIN))
    .bind(f.to.unwrap_or(i64::MAX))
    .bind(limit as i64)
    .fetch_all(&db.pool)
    .await?;
    Ok(rows.iter().map(from_row).collect::<Result<_, _>>()?)
}
