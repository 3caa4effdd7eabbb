//! Invoices: gapless numbering per year, tax applied once on the sum of the lines, customer
//! credit applied on issue, void. The periodic invoice run lives in `subscriptions`.

use crate::audit::{self, Actor};
use crate::db::{Db, now_ms};
use crate::error::{DomainError, DomainResult};
use crate::tax::{self, TaxRule};
use serde::Serialize;
use sqlx::Row;

/// What an invoice is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum InvoiceKind {
    /// One billing cycle of a subscription.
    Cycle,
    /// The difference after a mid-cycle plan change.
    Proration,
    /// Anything an operator bills by hand.
    Manual,
}

impl InvoiceKind {
    /// Storage name.
    pub fn as_str(self) -> &'static str {
        match self {
            InvoiceKind::Cycle => "cycle",
            InvoiceKind::Proration => "proration",
            InvoiceKind::Manual => "manual",
        }
    }

    fn parse(s: &str) -> InvoiceKind {
        match s {
            "cycle" => InvoiceKind::Cycle,
            "proration" => InvoiceKind::Proration,
            _ => InvoiceKind::Manual,
        }
    }
}

/// Where an invoice stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum InvoiceStatus {
    /// Waiting for (the rest of) its money.
    Unpaid,
    /// Fully paid.
    Paid,
    /// Cancelled; its number stays used.
    Void,
}

impl InvoiceStatus {
    /// Storage name.
    pub fn as_str(self) -> &'static str {
        match self {
            InvoiceStatus::Unpaid => "unpaid",
            InvoiceStatus::Paid => "paid",
            InvoiceStatus::Void => "void",
        }
    }

    fn parse(s: &str) -> InvoiceStatus {
        match s {
            "paid" => InvoiceStatus::Paid,
            "void" => InvoiceStatus::Void,
            _ => InvoiceStatus::Unpaid,
        }
    }
}

/// One line of an invoice (before tax when prices exclude it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Line {
    /// What is billed.
    pub description: String,
    /// Amount in minor units (negative for a credit line).
    pub amount: i64,
}

/// An invoice with its lines.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Invoice {
    /// Stable id.
    pub id: String,
    /// Gapless number per year, e.g. `INV-2026-000042`.
    pub number: String,
    /// Billed customer.
    pub customer_id: String,
    /// The subscription billed, if any.
    pub subscription_id: Option<String>,
    /// Cycle, proration or manual.
    pub kind: InvoiceKind,
    /// Start of the billed period (unix ms).
    pub period_start: Option<i64>,
    /// End of the billed period, exclusive (unix ms).
    pub period_end: Option<i64>,
    /// The lines.
    pub lines: Vec<Line>,
    /// Net amount.
    pub subtotal: i64,
    /// Tax.
    pub tax: i64,
    /// Gross amount to pay.
    pub total: i64,
    /// Tax rate applied, basis points.
    pub tax_rate_bp: i64,
    /// Whether the line amounts included tax.
    pub tax_inclusive: bool,
    /// Paid so far.
    pub amount_paid: i64,
    /// Unpaid, paid or void.
    pub status: InvoiceStatus,
    /// Issue time (unix ms).
    pub issued_at: i64,
    /// Due time (unix ms).
    pub due_at: i64,
    /// When it became fully paid.
    pub paid_at: Option<i64>,
    /// When it was voided.
    pub voided_at: Option<i64>,
}

impl Invoice {
    /// What is still owed.
    pub fn outstanding(&self) -> i64 {
        if self.status == InvoiceStatus::Unpaid {
            (self.total - self.amount_paid).max(0)
        } else {
            0
        }
    }
}

const COLUMNS: &str = "id, number, customer_id, subscription_id, kind, period_start, period_end, subtotal, tax, total, tax_rate_bp, tax_inclusive, amount_paid, status, issued_at, due_at, paid_at, voided_at";

/// [`COLUMNS`], each prefixed with `alias.`, for queries that join invoices to other tables.
fn qualified_columns(alias: &str) -> String {
    COLUMNS
        .split(", ")
        .map(|c| format!("{alias}.{c}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn from_row(r: &sqlx::any::AnyRow) -> Result<Invoice, sqlx::Error> {
    Ok(Invoice {
        id: r.try_get("id")?,
        number: r.try_get("number")?,
        customer_id: r.try_get("customer_id")?,
        subscription_id: r.try_get("subscription_id")?,
        kind: InvoiceKind::parse(&r.try_get::<String, _>("kind")?),
        period_start: r.try_get("period_start")?,
        period_end: r.try_get("period_end")?,
        lines: Vec::new(),
        subtotal: r.try_get("subtotal")?,
        tax: r.try_get("tax")?,
        total: r.try_get("total")?,
        tax_rate_bp: r.try_get("tax_rate_bp")?,
        tax_inclusive: r.try_get::<i64, _>("tax_inclusive")? != 0,
        amount_paid: r.try_get("amount_paid")?,
        status: InvoiceStatus::parse(&r.try_get::<String, _>("status")?),
        issued_at: r.try_get("issued_at")?,
        due_at: r.try_get("due_at")?,
        paid_at: r.try_get("paid_at")?,
        voided_at: r.try_get("voided_at")?,
    })
}

/// Reads an invoice with its lines inside a transaction or on a connection.
pub async fn fetch(conn: &mut sqlx::AnyConnection, id: &str) -> DomainResult<Invoice> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM invoices WHERE id = $1"
    )))
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?
    .ok_or_else(|| DomainError::not_found("invoice", id))?;
    let mut inv = from_row(&row)?;
    inv.lines = sqlx::query(
        "SELECT description, amount FROM invoice_lines WHERE invoice_id = $1 ORDER BY line_no",
    )
    .bind(id)
    .fetch_all(&mut *conn)
    .await?
    .iter()
    .map(|r| {
        Ok(Line {
            description: r.try_get("description")?,
            amount: r.try_get("amount")?,
        })
    })
    .collect::<Result<_, sqlx::Error>>()?;
    Ok(inv)
}

/// One invoice by id.
pub async fn get(db: &Db, id: &str) -> DomainResult<Invoice> {
    let mut conn = db.pool.acquire().await?;
    fetch(&mut conn, id).await
}

/// One invoice by number.
pub async fn by_number(conn: &mut sqlx::AnyConnection, number: &str) -> DomainResult<Invoice> {
    let id: String = sqlx::query("SELECT id FROM invoices WHERE number = $1")
        .bind(number)
        .fetch_optional(&mut *conn)
        .await?
        .ok_or_else(|| DomainError::not_found("invoice", number))?
        .try_get("id")?;
    fetch(conn, &id).await
}

/// What a new invoice consists of.
#[derive(Debug, Clone)]
pub struct NewInvoice {
    /// Billed customer.
    pub customer_id: String,
    /// Billed subscription.
    pub subscription_id: Option<String>,
    /// Cycle, proration or manual.
    pub kind: InvoiceKind,
    /// Billed period `[start, end)` in unix ms.
    pub period: Option<(i64, i64)>,
    /// Lines; tax is applied once on their sum.
    pub lines: Vec<Line>,
    /// Due time (unix ms).
    pub due_at: i64,
    /// Tax rule in effect.
    pub tax: TaxRule,
    /// Local year the number belongs to.
    pub year: i32,
}

/// Issues an invoice inside the caller's transaction: takes the next number of its year
/// (the counter row's lock keeps numbers gapless: a rolled-back invoice returns its number)
/// and pays it from the customer's credit when there is some. `None` if this subscription
/// already has an invoice of this kind for this period.
pub async fn issue(
    conn: &mut sqlx::AnyConnection,
    actor: &Actor,
    new: NewInvoice,
) -> DomainResult<Option<Invoice>> {
    let sum: i64 = new.lines.iter().map(|l| l.amount).sum();
    if !tax::check_amount(sum) {
        return Err(DomainError::invalid("lines", "amount out of range"));
    }
    if let (Some(sub), Some((start, _))) = (&new.subscription_id, new.period) {
        let exists = sqlx::query("SELECT 1 AS x FROM invoices WHERE subscription_id = $1 AND kind = $2 AND period_start = $3")
            .bind(sub)
            .bind(new.kind.as_str())
            .bind(start)
            .fetch_optional(&mut *conn)
            .await?;
        if exists.is_some() {
            return Ok(None);
        }
    }
    let taxed = tax::apply(sum, new.tax);
    let seq: i64 = sqlx::query(
        "INSERT INTO invoice_counters (year, last) VALUES ($1, 1) \
         ON CONFLICT (year) DO UPDATE SET last = invoice_counters.last + 1 RETURNING last",
    )
    .bind(new.year as i64)
    .fetch_all(&mut *conn)
    .await?
    .into_iter()
    .next()
    .ok_or(sqlx::Error::RowNotFound)?
    .try_get("last")?;
    let id = uuid::Uuid::new_v4().to_string();
    let now = now_ms();
    sqlx::query(
        "INSERT INTO invoices (id, number, customer_id, subscription_id, kind, period_start, period_end, subtotal, tax, total, \
         tax_rate_bp, tax_inclusive, amount_paid, status, issued_at, due_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, 0, 'unpaid', $13, $14)",
    )
    .bind(&id)
    .bind(format!("INV-{}-{seq:06}", new.year))
    .bind(&new.customer_id)
    .bind(&new.subscription_id)
    .bind(new.kind.as_str())
    .bind(new.period.map(|p| p.0))
    .bind(new.period.map(|p| p.1))
    .bind(taxed.subtotal)
    .bind(taxed.tax)
    .bind(taxed.total)
    .bind(new.tax.rate_bp as i64)
    .bind(new.tax.inclusive as i64)
    .bind(now)
    .bind(new.due_at)
    .execute(&mut *conn)
    .await?;
    for (i, line) in new.lines.iter().enumerate() {
        sqlx::query("INSERT INTO invoice_lines (invoice_id, line_no, description, amount) VALUES ($1, $2, $3, $4)")
            .bind(&id)
            .bind(i as i64 + 1)
            .bind(&line.description)
            .bind(line.amount)
            .execute(&mut *conn)
            .await?;
    }
    let invoice = fetch(conn, &id).await?;
    audit::record(
        conn,
        actor,
        "invoice.issue",
        "invoice",
        Some(&id),
        None::<&()>,
        Some(&invoice),
    )
    .await?;
    // The customer's credit goes to their open invoices, oldest due first: an older overdue
    // one before this new one.
    super::credit::apply_balance(conn, actor, &invoice.customer_id).await?;
    let invoice = fetch(conn, &id).await?;
    let refs = crate::events::Refs {
        customer_id: Some(&invoice.customer_id),
        subscription_id: invoice.subscription_id.as_deref(),
        site_id: None,
    };
    crate::events::emit(
        conn,
        crate::events::EventKind::InvoiceCreated,
        refs,
        &invoice,
    )
    .await?;
    Ok(Some(invoice))
}

/// Voids an unpaid invoice that has received no money; its number stays used.
pub async fn void(db: &Db, actor: &Actor, id: &str, reason: &str) -> DomainResult<Invoice> {
    let reason = crate::error::required_text("reason", reason, 500)?;
    let mut tx = db.begin().await?;
    let before = fetch(&mut tx, id).await?;
    if before.status != InvoiceStatus::Unpaid || before.amount_paid != 0 {
        return Err(DomainError::conflict(
            "invalid_state",
            "only an unpaid invoice without payments can be voided",
        ));
    }
    sqlx::query("UPDATE invoices SET status = 'void', voided_at = $1 WHERE id = $2")
        .bind(now_ms())
        .bind(id)
        .execute(&mut *tx)
        .await?;
    let after = fetch(&mut tx, id).await?;
    #[derive(Serialize)]
    struct Voided<'a> {
        invoice: &'a Invoice,
        reason: &'a str,
    }
    audit::record(
        &mut tx,
        actor,
        "invoice.void",
        "invoice",
        Some(id),
        Some(&before),
        Some(&Voided {
            invoice: &after,
            reason: &reason,
        }),
    )
    .await?;
    tx.commit().await?;
    Ok(after)
}

/// Filters of the invoice list.
#[derive(Debug, Clone, Default)]
pub struct InvoiceFilter {
    /// One customer's.
    pub customer_id: Option<String>,
    /// One subscription's.
    pub subscription_id: Option<String>,
    /// One status.
    pub status: Option<InvoiceStatus>,
    /// Overdue (see [`super::overdue`]).
    pub overdue: bool,
}

/// Invoices, newest number first, before `before` ("" for the first page). Lines are not
/// loaded; fetch one invoice for them.
pub async fn list(
    db: &Db,
    f: &InvoiceFilter,
    before: &str,
    limit: u32,
) -> DomainResult<Vec<Invoice>> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {} FROM invoices i LEFT JOIN subscriptions s ON s.id = i.subscription_id \
         WHERE ($1 = '' OR i.number < $1) \
         AND (CAST($2 AS TEXT) IS NULL OR i.customer_id = $2) AND (CAST($3 AS TEXT) IS NULL OR i.subscription_id = $3) \
         AND (CAST($4 AS TEXT) IS NULL OR i.status = $4) AND ($5 = 0 OR {}) \
         ORDER BY i.number DESC LIMIT $7",
        qualified_columns("i"),
        super::overdue::sql("$6")
    )))
    .bind(before)
    .bind(f.customer_id.as_deref())
    .bind(f.subscription_id.as_deref())
    .bind(f.status.map(InvoiceStatus::as_str))
    .bind(f.overdue as i64)
    .bind(now_ms())
    .bind(limit as i64)
    .fetch_all(&db.pool)
    .await?;
    Ok(rows.iter().map(from_row).collect::<Result<_, _>>()?)
}
