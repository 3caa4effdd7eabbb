//! The `notifications` table: one message to one recipient through one channel, its status
//! and every delivery attempt. Producers insert with a dedupe key; workers claim, send and
//! finish. A claim is a lease (`sending` until `next_attempt_at`): a replica that dies
//! mid-send leaves a claim that expires, and the message is sent again with the same id.

use crate::audit::{self, Actor};
use crate::db::{Db, DbError, now_ms};
use crate::error::{DomainError, DomainResult};
use serde::Serialize;
use sqlx::Row;

/// A message to produce.
#[derive(Debug, Clone)]
pub struct NewMessage<'a> {
    /// Channel.
    pub channel_id: &'a str,
    /// Topic name.
    pub topic: super::Topic,
    /// Makes the producer idempotent, e.g. `event:42:<channel>`.
    pub dedupe_key: String,
    /// The event it came from.
    pub event_id: Option<i64>,
    /// The customer it is for.
    pub customer_id: Option<&'a str>,
    /// The site it is about.
    pub site_id: Option<&'a str>,
    /// The invoice it is about.
    pub invoice_id: Option<&'a str>,
    /// The subscription it is about.
    pub subscription_id: Option<&'a str>,
    /// Address on the channel.
    pub recipient: &'a str,
    /// Language code.
    pub lang: &'a str,
    /// Subject line.
    pub subject: &'a str,
    /// Text.
    pub body: &'a str,
    /// Not before (unix ms): delayed alerts.
    pub not_before: i64,
}

/// Inserts a message unless its dedupe key exists; returns whether it was new.
pub async fn enqueue(conn: &mut sqlx::AnyConnection, m: NewMessage<'_>) -> Result<bool, DbError> {
    let n = sqlx::query(
        "INSERT INTO notifications (id, channel_id, topic, dedupe_key, event_id, customer_id, site_id, invoice_id, subscription_id, recipient, lang, subject, body, status, attempts, next_attempt_at, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, 'pending', 0, $14, $15) ON CONFLICT (dedupe_key) DO NOTHING",
    )
    .bind(uuid::Uuid::new_v4().to_string())
    .bind(m.channel_id)
    .bind(m.topic.as_str())
    .bind(&m.dedupe_key)
    .bind(m.event_id)
    .bind(m.customer_id)
    .bind(m.site_id)
    .bind(m.invoice_id)
    .bind(m.subscription_id)
    .bind(m.recipient)
    .bind(m.lang)
    .bind(m.subject)
    .bind(m.body)
    .bind(m.not_before)
    .bind(now_ms())
    .execute(&mut *conn)
    .await?
    .rows_affected();
    Ok(n == 1)
}

/// A message as stored and shown.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Message {
    /// Id; also sent to gateways that can drop duplicates.
    pub id: String,
    /// Channel.
    pub channel_id: String,
    /// Topic, e.g. `invoice.reminder`.
    pub topic: String,
    /// Idempotency key of the producer.
    pub dedupe_key: String,
    /// Source event.
    pub event_id: Option<i64>,
    /// Customer.
    pub customer_id: Option<String>,
    /// Site.
    pub site_id: Option<String>,
    /// Invoice it is about.
    pub invoice_id: Option<String>,
    /// Subscription it is about.
    pub subscription_id: Option<String>,
    /// Address.
    pub recipient: String,
    /// Language.
    pub lang: String,
    /// Subject.
    pub subject: String,
    /// Text.
    pub body: String,
    /// `pending`, `sending`, `sent`, `dead` or `cancelled`.
    pub status: String,
    /// Attempts made.
    pub attempts: i64,
    /// Attempts made before an operator's last retry (the budget counts from here).
    pub attempts_base: i64,
    /// Next attempt (or claim expiry) at (unix ms).
    pub next_attempt_at: i64,
    /// The last failure.
    pub last_error: Option<String>,
    /// Created at (unix ms).
    pub created_at: i64,
    /// Delivered at (unix ms).
    pub sent_at: Option<i64>,
}

const COLUMNS: &str = "id, channel_id, topic, dedupe_key, event_id, customer_id, site_id, invoice_id, subscription_id, recipient, lang, subject, body, status, attempts, attempts_base, next_attempt_at, last_error, created_at, sent_at";

fn from_row(r: &sqlx::any::AnyRow) -> Result<Message, sqlx::Error> {
    Ok(Message {
        id: r.try_get("id")?,
        channel_id: r.try_get("channel_id")?,
        topic: r.try_get("topic")?,
        dedupe_key: r.try_get("dedupe_key")?,
        event_id: r.try_get("event_id")?,
        customer_id: r.try_get("customer_id")?,
        site_id: r.try_get("site_id")?,
        invoice_id: r.try_get("invoice_id")?,
        subscription_id: r.try_get("subscription_id")?,
        recipient: r.try_get("recipient")?,
        lang: r.try_get("lang")?,
        subject: r.try_get("subject")?,
        body: r.try_get("body")?,
        status: r.try_get("status")?,
        attempts: r.try_get("attempts")?,
        attempts_base: r.try_get("attempts_base")?,
        next_attempt_at: r.try_get("next_attempt_at")?,
        last_error: r.try_get("last_error")?,
        created_at: r.try_get("created_at")?,
        sent_at: r.try_get("sent_at")?,
    })
}

/// A channel's messages due now (pending, or claimed by a sender whose claim expired).
pub async fn due(db: &Db, channel_id: &str, now: i64, limit: u32) -> Result<Vec<Message>, DbError> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM notifications WHERE channel_id = $1 AND status IN ('pending', 'sending') AND next_attempt_at <= $2 \
         ORDER BY next_attempt_at, id LIMIT $3"
    )))
    .bind(channel_id)
    .bind(now)
    .bind(limit as i64)
    .fetch_all(&db.pool)
    .await?;
    rows.iter()
        .map(from_row)
        .collect::<Result<_, _>>()
        .map_err(DbError::from)
}

/// Claims a due message until `until`; returns the attempt number, or `None` when another
/// sender claimed it first.
pub async fn claim(db: &Db, id: &str, now: i64, until: i64) -> Result<Option<i64>, DbError> {
    let row = sqlx::query(
        "UPDATE notifications SET status = 'sending', attempts = attempts + 1, next_attempt_at = $1 \
         WHERE id = $2 AND status IN ('pending', 'sending') AND next_attempt_at <= $3 RETURNING attempts",
    )
    .bind(until)
    .bind(id)
    .bind(now)
    .fetch_all(&db.pool)
    .await?
    .into_iter()
    .next();
    Ok(match row {
        Some(r) => Some(r.try_get("attempts")?),
        None => None,
    })
}

/// How an attempt ended.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// The gateway accepted the message.
    Sent {
        /// HTTP status, for HTTP gateways.
        http_status: Option<u16>,
    },
    /// It failed and will be tried again at `retry_at`.
    Retry {
        /// HTTP status, if any.
        http_status: Option<u16>,
        /// What went wrong.
        error: String,
        /// Next attempt (unix ms).
        retry_at: i64,
    },
    /// It failed for good (refused by the gateway, or out of attempts).
    Dead {
        /// HTTP status, if any.
        http_status: Option<u16>,
        /// What went wrong.
        error: String,
    },
    /// It no longer applies (the site came back before the alert was due).
    Cancelled {
        /// Why.
        reason: String,
    },
}

impl Outcome {
    /// The label recorded and counted (`sent`, `retry`, `dead`, `cancelled`).
    pub fn label(&self) -> &'static str {
        match self {
            Outcome::Sent { .. } => "sent",
            Outcome::Retry { .. } => "retry",
            Outcome::Dead { .. } => "dead",
            Outcome::Cancelled { .. } => "cancelled",
        }
    }
}

/// Records an attempt and its outcome, if this sender still holds the claim of `attempt`;
/// returns whether it did.
pub async fn finish(db: &Db, id: &str, attempt: i64, outcome: &Outcome) -> Result<bool, DbError> {
    let now = now_ms();
    let (status, next, error, http, sent_at) = match outcome {
        Outcome::Sent { http_status } => ("sent", now, None, *http_status, Some(now)),
        Outcome::Retry {
            http_status,
            error,
            retry_at,
        } => (
            "pending",
            *retry_at,
            Some(error.as_str()),
            *http_status,
            None,
        ),
        Outcome::Dead { http_status, error } => {
            ("dead", now, Some(error.as_str()), *http_status, None)
        }
        Outcome::Cancelled { reason } => ("cancelled", now, Some(reason.as_str()), None, None),
    };
    let mut tx = db.begin().await?;
    let n = sqlx::query(
        "UPDATE notifications SET status = $1, next_attempt_at = $2, last_error = $3, sent_at = $4 WHERE id = $5 AND status = 'sending' AND attempts = $6",
    )
    .bind(status)
    .bind(next)
    .bind(error)
    .bind(sent_at)
    .bind(id)
    .bind(attempt)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if n != 1 {
        return Ok(false);
    }
    sqlx::query(
        "INSERT INTO notification_attempts (notification_id, attempt, outcome, http_status, detail, at) VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(id)
    .bind(attempt)
    .bind(outcome.label())
    .bind(http.map(i64::from))
    .bind(error)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(true)
}

/// One delivery attempt.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Attempt {
    /// Attempt number, from 1.
    pub attempt: i64,
    /// `sent`, `retry`, `dead` or `cancelled`.
    pub outcome: String,
    /// The gateway's HTTP status, if any.
    pub http_status: Option<i64>,
    /// What went wrong.
    pub detail: Option<String>,
    /// When (unix ms).
    pub at: i64,
}

/// A message with its attempts.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct MessageDetail {
    /// The message.
    #[serde(flatten)]
    pub message: Message,
    /// Its attempts, oldest first.
    pub attempt_log: Vec<Attempt>,
}

/// What staff see of a message: a portal login code is a credential, so its text is hidden
/// (only the sender reads it, through [`due`]).
fn for_staff(mut m: Message) -> Message {
    if super::Topic::parse(&m.topic) == Some(super::Topic::PortalCode) {
        m.subject = String::new();
        m.body = "(one-time login code; hidden)".into();
    }
    m
}

/// One message with its attempts.
pub async fn get(db: &Db, id: &str) -> DomainResult<MessageDetail> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM notifications WHERE id = $1"
    )))
    .bind(id)
    .fetch_optional(&db.pool)
    .await?
    .ok_or_else(|| DomainError::not_found("notification", id))?;
    let rows = sqlx::query(
        "SELECT attempt, outcome, http_status, detail, at FROM notification_attempts WHERE notification_id = $1 ORDER BY id",
    )
    .bind(id)
    .fetch_all(&db.pool)
    .await?;
    let attempt_log = rows
        .iter()
        .map(|r| {
            Ok(Attempt {
                attempt: r.try_get("attempt")?,
                outcome: r.try_get("outcome")?,
                http_status: r.try_get("http_status")?,
                detail: r.try_get("detail")?,
                at: r.try_get("at")?,
            })
        })
        .collect::<Result<_, sqlx::Error>>()?;
    Ok(MessageDetail {
        message: for_staff(from_row(&row)?),
        attempt_log,
    })
}

/// Filters of the message list.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// One status.
    pub status: Option<String>,
    /// One channel.
    pub channel_id: Option<String>,
    /// One customer.
    pub customer_id: Option<String>,
    /// One topic.
    pub topic: Option<String>,
}

/// Messages newest first, keyset-paged on (created_at, id).
pub async fn list(
    db: &Db,
    f: &Filter,
    after: Option<(i64, String)>,
    limit: u32,
) -> DomainResult<Vec<Message>> {
    let (after_at, after_id) = after.unwrap_or((i64::MAX, String::new()));
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM notifications WHERE (created_at < $1 OR (created_at = $1 AND id < $2)) \
         AND (CAST($3 AS TEXT) IS NULL OR status = $3) AND (CAST($4 AS TEXT) IS NULL OR channel_id = $4) \
         AND (CAST($5 AS TEXT) IS NULL OR customer_id = $5) AND (CAST($6 AS TEXT) IS NULL OR topic = $6) \
         ORDER BY created_at DESC, id DESC LIMIT $7"
    )))
    .bind(after_at)
    .bind(after_id)
    .bind(f.status.as_deref())
    .bind(f.channel_id.as_deref())
    .bind(f.customer_id.as_deref())
    .bind(f.topic.as_deref())
    .bind(limit as i64)
    .fetch_all(&db.pool)
    .await?;
    Ok(rows
        .iter()
        .map(|r| from_row(r).map(for_staff))
        .collect::<Result<_, _>>()?)
}

/// Sends a dead message again with a fresh attempt budget. Attempt numbers keep counting,
/// so the log stays in order and a sender whose claim lapsed long ago can never record over
/// a newer attempt. (A cancelled message no longer applies; it is not retried.)
pub async fn retry(db: &Db, actor: &Actor, id: &str) -> DomainResult<MessageDetail> {
    let before = get(db, id).await?;
    if before.message.status != "dead" {
        return Err(DomainError::conflict(
            "invalid_state",
            format!(
                "notification is {}; only dead ones are retried",
                before.message.status
            ),
        ));
    }
    let mut tx = db.begin().await?;
    sqlx::query(
        "UPDATE notifications SET status = 'pending', attempts_base = attempts, next_attempt_at = $1 WHERE id = $2 AND status = 'dead'",
    )
    .bind(now_ms())
    .bind(id)
    .execute(&mut *tx)
    .await?;
    audit::record(
        &mut tx,
        actor,
        "notification.retry",
        "notification",
        Some(id),
        Some(&before.message),
        None::<&()>,
    )
    .await?;
    tx.commit().await?;
    get(db, id).await
}
