//! The domain event outbox. Every business change others react to (an invoice, a payment,
//! an isolation, a sale, a site going offline) is written as an event row in the same
//! transaction as the change; consumers (outgoing webhooks, later notifications) read the
//! events after their own cursor, so a crash never loses or doubles a reaction.

pub mod consumer;
pub mod parking;
pub mod webhooks;

use crate::db::{Db, DbError, now_ms};
use serde::Serialize;
use sqlx::Row;

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize, utoipa::ToSchema)]
pub enum EventKind {
    /// An invoice was issued.
    #[serde(rename = "invoice.created")]
    InvoiceCreated,
    /// Money was received (desk or gateway).
    #[serde(rename = "payment.received")]
    PaymentReceived,
    /// A subscription was isolated.
    #[serde(rename = "subscription.isolated")]
    SubscriptionIsolated,
    /// An isolated subscription was re-activated.
    #[serde(rename = "subscription.reactivated")]
    SubscriptionReactivated,
    /// A subscription was terminated.
    #[serde(rename = "subscription.terminated")]
    SubscriptionTerminated,
    /// Vouchers were sold to or bought by a reseller.
    #[serde(rename = "voucher_batch.sold")]
    VoucherBatchSold,
    /// A site's agent connected.
    #[serde(rename = "site.online")]
    SiteOnline,
    /// A site's agent disconnected.
    #[serde(rename = "site.offline")]
    SiteOffline,
    /// A site's agent was revoked.
    #[serde(rename = "site.revoked")]
    SiteRevoked,
    /// A command failed or expired at its site.
    #[serde(rename = "command.failed")]
    CommandFailed,
    /// Records from several sites showed a voucher used beyond its plan.
    #[serde(rename = "voucher.conflict")]
    VoucherConflict,
    /// A consumer gave up on an event after repeated failures and moved on.
    #[serde(rename = "event.parked")]
    EventParked,
    /// A site's agent found its router changed by hand, after it was clean.
    #[serde(rename = "site.drift")]
    SiteDrift,
}

/// Every kind, for filters and the API.
pub const ALL_KINDS: [EventKind; 13] = [
    EventKind::InvoiceCreated,
    EventKind::PaymentReceived,
    EventKind::SubscriptionIsolated,
    EventKind::SubscriptionReactivated,
    EventKind::SubscriptionTerminated,
    EventKind::VoucherBatchSold,
    EventKind::SiteOnline,
    EventKind::SiteOffline,
    EventKind::SiteRevoked,
    EventKind::CommandFailed,
    EventKind::VoucherConflict,
    EventKind::EventParked,
    EventKind::SiteDrift,
];

impl EventKind {
    /// Storage and wire name, e.g. `invoice.created`.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::InvoiceCreated => "invoice.created",
            EventKind::PaymentReceived => "payment.received",
            EventKind::SubscriptionIsolated => "subscription.isolated",
            EventKind::SubscriptionReactivated => "subscription.reactivated",
            EventKind::SubscriptionTerminated => "subscription.terminated",
            EventKind::VoucherBatchSold => "voucher_batch.sold",
            EventKind::SiteOnline => "site.online",
            EventKind::SiteOffline => "site.offline",
            EventKind::SiteRevoked => "site.revoked",
            EventKind::CommandFailed => "command.failed",
            EventKind::VoucherConflict => "voucher.conflict",
            EventKind::EventParked => "event.parked",
            EventKind::SiteDrift => "site.drift",
        }
    }

    /// Parses a wire name.
    pub fn parse(s: &str) -> Option<EventKind> {
        ALL_KINDS.into_iter().find(|k| k.as_str() == s)
    }
}

/// The records an event concerns, for filtering.
#[derive(Debug, Clone, Default)]
pub struct Refs<'a> {
    /// The customer.
    pub customer_id: Option<&'a str>,
    /// The subscription.
    pub subscription_id: Option<&'a str>,
    /// The site.
    pub site_id: Option<&'a str>,
}

/// An event as read back.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Event {
    /// Sequence number; consumers read in this order.
    pub id: i64,
    /// What happened, e.g. `invoice.created`.
    pub kind: String,
    /// The customer it concerns.
    pub customer_id: Option<String>,
    /// The subscription it concerns.
    pub subscription_id: Option<String>,
    /// The site it concerns.
    pub site_id: Option<String>,
    /// The record as it was right after the change.
    #[schema(value_type = Object)]
    pub data: serde_json::Value,
    /// When (unix ms).
    pub created_at: i64,
}

/// Writes an event inside the caller's transaction, secrets redacted from its data.
pub async fn emit<T: Serialize>(
    conn: &mut sqlx::AnyConnection,
    kind: EventKind,
    refs: Refs<'_>,
    data: &T,
) -> Result<(), DbError> {
    sqlx::query(
        "INSERT INTO events (kind, customer_id, subscription_id, site_id, payload, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(kind.as_str())
    .bind(refs.customer_id)
    .bind(refs.subscription_id)
    .bind(refs.site_id)
    // Payloads go out to webhooks; a secret in a record stays behind.
    .bind(crate::secrets::redact(data).to_string())
    .bind(now_ms())
    .execute(&mut *conn)
    .await?;
    Ok(())
}

const COLUMNS: &str = "id, kind, customer_id, subscription_id, site_id, payload, created_at";

pub(crate) fn from_row(r: &sqlx::any::AnyRow) -> Result<Event, sqlx::Error> {
    let payload: String = r.try_get("payload")?;
    Ok(Event {
        id: r.try_get("id")?,
        kind: r.try_get("kind")?,
        customer_id: r.try_get("customer_id")?,
        subscription_id: r.try_get("subscription_id")?,
        site_id: r.try_get("site_id")?,
        data: serde_json::from_str(&payload).unwrap_or(serde_json::Value::Null),
        created_at: r.try_get("created_at")?,
    })
}

/// The newest event id (0 when there is none).
pub async fn head(conn: &mut sqlx::AnyConnection) -> Result<i64, DbError> {
    Ok(
        sqlx::query("SELECT CAST(COALESCE(MAX(id), 0) AS BIGINT) AS id FROM events")
            .fetch_one(&mut *conn)
            .await?
            .try_get("id")?,
    )
}

/// One event.
pub async fn get(conn: &mut sqlx::AnyConnection, id: i64) -> Result<Option<Event>, DbError> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM events WHERE id = $1"
    )))
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?;
    row.as_ref()
        .map(from_row)
        .transpose()
        .map_err(DbError::from)
}

/// Events after `after`, oldest first (consumers).
pub async fn after(
    conn: &mut sqlx::AnyConnection,
    after: i64,
    limit: u32,
) -> Result<Vec<Event>, DbError> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM events WHERE id > $1 ORDER BY id LIMIT $2"
    )))
    .bind(after)
    .bind(limit as i64)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(from_row)
        .collect::<Result<_, _>>()
        .map_err(DbError::from)
}

/// Filters of the event list.
#[derive(Debug, Clone, Default)]
pub struct EventFilter {
    /// One kind.
    pub kind: Option<EventKind>,
    /// One customer's.
    pub customer_id: Option<String>,
    /// At or after (unix ms).
    pub from: Option<i64>,
    /// Before (unix ms).
    pub to: Option<i64>,
}

/// Events newest first, with ids below `before`.
pub async fn list(
    db: &Db,
    f: &EventFilter,
    before: Option<i64>,
    limit: u32,
) -> Result<Vec<Event>, DbError> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM events WHERE id < $1 AND (CAST($2 AS TEXT) IS NULL OR kind = $2) \
         AND (CAST($3 AS TEXT) IS NULL OR customer_id = $3) AND created_at >= $4 AND created_at < $5 \
         ORDER BY id DESC LIMIT $6"
    )))
    .bind(before.unwrap_or(i64::MAX))
    .bind(f.kind.map(EventKind::as_str))
    .bind(f.customer_id.as_deref())
    .bind(f.from.unwrap_or(i64::MIN))
    .bind(f.to.unwrap_or(i64::MAX))
    .bind(limit as i64)
    .fetch_all(&db.pool)
    .await?;
    rows.iter()
        .map(from_row)
        .collect::<Result<_, _>>()
        .map_err(DbError::from)
}
