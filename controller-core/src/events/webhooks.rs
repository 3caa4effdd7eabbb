//! Outgoing webhooks for integrators: a subscription is a URL, a secret and an event filter.
//! The `webhooks` consumer fans new events out to a delivery row per matching webhook (in
//! the transaction that moves its cursor, so each event is fanned out once); a worker posts
//! due deliveries, signed with HMAC-SHA256 over the timestamp and body, and retries failures
//! with exponential backoff and jitter until a delivery is dead-lettered.

use super::{EventKind, consumer};
use crate::audit::{self, Actor};
use crate::db::{Db, DbError, now_ms};
pub use crate::delivery::DEFAULT_RETRY_BASE;
use crate::delivery::{Breakers, retry_delay};
use crate::error::{DomainError, DomainResult};
use hmac::{Hmac, Mac};
use serde::Serialize;
use sha2::Sha256;
use sqlx::Row;
use std::time::Duration;

/// The consumer name of the fan-out.
pub const CONSUMER: &str = "webhooks";
/// Attempts before a delivery is dead-lettered.
pub const MAX_ATTEMPTS: i64 = 8;
/// How long a worker may hold a claimed delivery before another replica retries it.
const CLAIM_MS: i64 = 60_000;
/// Timeout of one POST.
const POST_TIMEOUT: Duration = Duration::from_secs(10);

/// A webhook subscription (its secret is shown once, at creation).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Webhook {
    /// Id.
    pub id: String,
    /// Where events are POSTed.
    pub url: String,
    /// Event kinds sent (`*` for all).
    pub events: Vec<String>,
    /// Whether it receives events.
    pub active: bool,
    /// Who created it.
    pub created_by: String,
    /// When (unix ms).
    pub created_at: i64,
}

fn from_row(r: &sqlx::any::AnyRow) -> Result<Webhook, sqlx::Error> {
    let filter: String = r.try_get("event_filter")?;
    Ok(Webhook {
        id: r.try_get("id")?,
        url: r.try_get("url")?,
        events: parse_filter(&filter),
        active: r.try_get::<i64, _>("active")? != 0,
        created_by: r.try_get("created_by")?,
        created_at: r.try_get("created_at")?,
    })
}

const COLUMNS: &str = "id, url, event_filter, active, created_by, created_at";

/// Creates a webhook; returns it with its signing secret. It receives events from now on.
pub async fn create(
    db: &Db,
    actor: &Actor,
    url: &str,
    events: &[String],
) -> DomainResult<(Webhook, String)> {
    let url = url.trim();
    let parsed =
        reqwest::Url::parse(url).map_err(|_| DomainError::invalid("url", "is not a URL"))?;
    if !matches!(parsed.scheme(), "https" | "http") || parsed.host_str().is_none() {
        return Err(DomainError::invalid("url", "must be an http or https URL"));
    }
    if events.is_empty() {
        return Err(DomainError::invalid(
            "events",
            "name at least one event kind, or \"*\"",
        ));
    }
    for e in events {
        if e != "*" && EventKind::parse(e).is_none() {
            return Err(DomainError::invalid(
                "events",
                format!("unknown event kind {e:?}"),
            ));
        }
    }
    let secret = {
        use base64::Engine;
        use rand::RngCore;
        let mut b = [0u8; 32];
        rand::rng().fill_bytes(&mut b);
        format!(
            "whsec_{}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
        )
    };
    let id = uuid::Uuid::new_v4().to_string();
    let mut tx = db.begin().await?;
    let head = super::head(&mut tx).await?;
    sqlx::query(
        "INSERT INTO webhooks (id, url, secret, event_filter, after_event, active, created_by, created_at) VALUES ($1, $2, $3, $4, $5, 1, $6, $7)",
    )
    .bind(&id)
    .bind(url)
    .bind(&secret)
    .bind(events.join(","))
    .bind(head)
    .bind(&actor.name)
    .bind(now_ms())
    .execute(&mut *tx)
    .await?;
    let hook = get_in(&mut tx, &id).await?;
    audit::record(
        &mut tx,
        actor,
        "webhook.create",
        "webhook",
        Some(&id),
        None::<&()>,
        Some(&hook),
    )
    .await?;
    tx.commit().await?;
    Ok((hook, secret))
}

async fn get_in(conn: &mut sqlx::AnyConnection, id: &str) -> DomainResult<Webhook> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM webhooks WHERE id = $1"
    )))
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?
    .ok_or_else(|| DomainError::not_found("webhook", id))?;
    Ok(from_row(&row)?)
}

/// Every webhook.
pub async fn list(db: &Db) -> DomainResult<Vec<Webhook>> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM webhooks ORDER BY created_at, id"
    )))
    .fetch_all(&db.pool)
    .await?;
    Ok(rows.iter().map(from_row).collect::<Result<_, _>>()?)
}

/// Stops a webhook; deliveries not yet made are dead-lettered.
pub async fn deactivate(db: &Db, actor: &Actor, id: &str) -> DomainResult<Webhook> {
    let mut tx = db.begin().await?;
    let before = get_in(&mut tx, id).await?;
    sqlx::query("UPDATE webhooks SET active = 0 WHERE id = $1")
        .bind(id)
        .execute(&mut *tx)
        .await?;
    sqlx::query("UPDATE webhook_deliveries SET status = 'dead', last_error = 'webhook deactivated' WHERE webhook_id = $1 AND status = 'pending'")
        .bind(id)
        .execute(&mut *tx)
        .await?;
    let after = get_in(&mut tx, id).await?;
    audit::record(
        &mut tx,
        actor,
        "webhook.deactivate",
        "webhook",
        Some(id),
        Some(&before),
        Some(&after),
    )
    .await?;
    tx.commit().await?;
    Ok(after)
}

/// One delivery of one event to one webhook.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Delivery {
    /// Id, also sent as `X-MikroBill-Delivery`.
    pub id: i64,
    /// The event.
    pub event_id: i64,
    /// `pending`, `delivered` or `dead`.
    pub status: String,
    /// POSTs made so far.
    pub attempts: i64,
    /// The last HTTP status received.
    pub last_status: Option<i64>,
    /// The last failure.
    pub last_error: Option<String>,
    /// When it was delivered (unix ms).
    pub delivered_at: Option<i64>,
    /// When the next try is due (unix ms), while pending.
    pub next_attempt_at: i64,
}

/// A webhook's deliveries, newest first.
pub async fn deliveries(db: &Db, webhook_id: &str, limit: u32) -> DomainResult<Vec<Delivery>> {
    let rows = sqlx::query(
        "SELECT id, event_id, status, attempts, last_status, last_error, delivered_at, next_attempt_at \
         FROM webhook_deliveries WHERE webhook_id = $1 ORDER BY id DESC LIMIT $2",
    )
    .bind(webhook_id)
    .bind(limit as i64)
    .fetch_all(&db.pool)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(Delivery {
                id: r.try_get("id")?,
                event_id: r.try_get("event_id")?,
                status: r.try_get("status")?,
                attempts: r.try_get("attempts")?,
                last_status: r.try_get("last_status")?,
                last_error: r.try_get("last_error")?,
                delivered_at: r.try_get("delivered_at")?,
                next_attempt_at: r.try_get("next_attempt_at")?,
            })
        })
        .collect::<Result<_, sqlx::Error>>()
        .map_err(DomainError::from)
}

/// Sends a webhook the events after `after_event` again (new deliveries, or failed and
/// delivered ones reset to pending); returns how many deliveries were queued.
pub async fn replay(db: &Db, actor: &Actor, id: &str, after_event: i64) -> DomainResult<u64> {
    let mut tx = db.begin().await?;
    let hook = get_in(&mut tx, id).await?;
    if !hook.active {
        return Err(DomainError::conflict(
            "invalid_state",
            "the webhook is deactivated",
        ));
    }
    let now = now_ms();
    let mut n = 0;
    let mut cursor = after_event;
    loop {
        let events = super::after(&mut tx, cursor, 500).await?;
        let Some(last) = events.last() else { break };
        cursor = last.id;
        for e in events.iter().filter(|e| matches(&hook.events, &e.kind)) {
            n += sqlx::query(
                "INSERT INTO webhook_deliveries (webhook_id, event_id, status, attempts, next_attempt_at, created_at) \
                 VALUES ($1, $2, 'pending', 0, $3, $3) ON CONFLICT (webhook_id, event_id) DO UPDATE \
                 SET status = 'pending', attempts = 0, next_attempt_at = $3, delivered_at = NULL",
            )
            .bind(id)
            .bind(e.id)
            .bind(now)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        }
    }
    #[derive(Serialize)]
    struct Replay {
        after_event: i64,
        queued: u64,
    }
    audit::record(
        &mut tx,
        actor,
        "webhook.replay",
        "webhook",
        Some(id),
        None::<&()>,
        Some(&Replay {
            after_event,
            queued: n,
        }),
    )
    .await?;
    tx.commit().await?;
    Ok(n)
}

/// The stored comma-separated event filter as a list.
fn parse_filter(stored: &str) -> Vec<String> {
    stored.split(',').map(str::to_string).collect()
}

fn matches(filter: &[String], kind: &str) -> bool {
    filter.iter().any(|f| f == "*" || f == kind)
}

/// The webhook consumer: fans each event out to one delivery per matching active webhook.
struct FanOut;

impl consumer::Handler for FanOut {
    /// The active webhooks: id, event filter, and the last event before each was created.
    type Batch = Vec<(String, Vec<String>, i64)>;

    fn name(&self) -> &'static str {
        CONSUMER
    }

    async fn prepare(&self, conn: &mut sqlx::AnyConnection) -> Result<Self::Batch, String> {
        let rows =
            sqlx::query("SELECT id, event_filter, after_event FROM webhooks WHERE active = 1")
                .fetch_all(&mut *conn)
                .await
                .map_err(|e| e.to_string())?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.try_get("id")?,
                    parse_filter(&r.try_get::<String, _>("event_filter")?),
                    r.try_get("after_event")?,
                ))
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(|e| e.to_string())
    }

    async fn handle(
        &self,
        hooks: &Self::Batch,
        conn: &mut sqlx::AnyConnection,
        e: &super::Event,
    ) -> Result<u64, String> {
        let now = now_ms();
        let mut created = 0;
        for (hook, filter, after) in hooks {
            if e.id > *after && matches(filter, &e.kind) {
                created += sqlx::query(
                    "INSERT INTO webhook_deliveries (webhook_id, event_id, status, attempts, next_attempt_at, created_at) \
                     VALUES ($1, $2, 'pending', 0, $3, $3) ON CONFLICT (webhook_id, event_id) DO NOTHING",
                )
                .bind(hook)
                .bind(e.id)
                .bind(now)
                .execute(&mut *conn)
                .await
                .map_err(|e| e.to_string())?
                .rows_affected();
            }
        }
        Ok(created)
    }
}

/// Fans events after the consumer's cursor out to deliveries; returns how many deliveries
/// were created. Does nothing when another replica holds the consumer.
pub async fn fan_out(db: &Db, holder: &str) -> Result<u64, DbError> {
    consumer::drive(db, &FanOut, holder).await
}

/// The signature header value: `t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "t.body")>`.
pub fn signature(secret: &str, timestamp: i64, body: &[u8]) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!(
        "t={timestamp},v1={}",
        hex::encode(mac.finalize().into_bytes())
    )
}

/// Posts the deliveries that are due (claiming each so only one replica sends it); returns
/// how many were attempted.
pub async fn deliver_due(
    db: &Db,
    client: &reqwest::Client,
    retry_base: Duration,
    breakers: &Breakers,
) -> Result<u64, DbError> {
    let now = now_ms();
    // Deliveries of webhooks whose breaker is open are left due, not tried.
    let open = breakers.open(now);
    let skip = if open.is_empty() {
        String::new()
    } else {
        let marks: Vec<String> = (0..open.len()).map(|i| format!("${}", i + 2)).collect();
        format!("AND d.webhook_id NOT IN ({})", marks.join(", "))
    };
    let sql = format!(
        "SELECT d.id AS delivery_id, d.webhook_id, d.attempts, d.next_attempt_at, w.url, w.secret, \
         e.id, e.kind, e.customer_id, e.subscription_id, e.site_id, e.payload, e.created_at \
         FROM webhook_deliveries d JOIN webhooks w ON w.id = d.webhook_id JOIN events e ON e.id = d.event_id \
         WHERE d.status = 'pending' AND d.next_attempt_at <= $1 {skip} \
         ORDER BY d.next_attempt_at, d.id LIMIT 20"
    );
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(now);
    for id in &open {
        query = query.bind(id.clone());
    }
    let due = query.fetch_all(&db.pool).await?;
    let cooldown = retry_base * 16;
    let mut attempted = 0;
    for r in due {
        let id: i64 = r.try_get("delivery_id")?;
        let webhook: String = r.try_get("webhook_id")?;
        // It may have tripped on an earlier delivery of this batch.
        if breakers.open(now_ms()).contains(&webhook) {
            continue;
        }
        let claimed = sqlx::query("UPDATE webhook_deliveries SET next_attempt_at = $1 WHERE id = $2 AND next_attempt_at = $3 AND status = 'pending'")
            .bind(now + CLAIM_MS)
            .bind(id)
            .bind(r.try_get::<i64, _>("next_attempt_at")?)
            .execute(&db.pool)
            .await?
            .rows_affected();
        if claimed != 1 {
            continue;
        }
        attempted += 1;
        let attempts: i64 = r.try_get::<i64, _>("attempts")? + 1;
        let url: String = r.try_get("url")?;
        let secret: String = r.try_get("secret")?;
        let event = super::from_row(&r)?;
        let body = serde_json::to_vec(&serde_json::json!({
            "id": event.id,
            "type": event.kind,
            "created_at": event.created_at,
            "data": event.data,
        }))
        .expect("events serialize");
        let ts = now_ms() / 1000;
        let result = client
            .post(&url)
            .timeout(POST_TIMEOUT)
            .header("Content-Type", "application/json")
            .header(
                "User-Agent",
                concat!("MikroBill/", env!("CARGO_PKG_VERSION")),
            )
            .header("X-MikroBill-Event", event.kind.as_str())
            .header("X-MikroBill-Delivery", id.to_string())
            .header("X-MikroBill-Signature", signature(&secret, ts, &body))
            .body(body)
            .send()
            .await;
        let (ok, status, error) = match result {
            Ok(res) if res.status().is_success() => {
                (true, Some(res.status().as_u16() as i64), None)
            }
            Ok(res) => (
                false,
                Some(res.status().as_u16() as i64),
                Some(format!("HTTP {}", res.status())),
            ),
            // The error text names the URL but never the secret.
            Err(e) => (false, None, Some(e.without_url().to_string())),
        };
        let done_at = now_ms();
        breakers.record(&webhook, ok, done_at, cooldown);
        let outcome = if ok {
            "delivered"
        } else if attempts >= MAX_ATTEMPTS {
            "dead"
        } else {
            "retry"
        };
        metrics::counter!("mikrobill_webhook_attempts_total", "outcome" => outcome).increment(1);
        if ok {
            sqlx::query("UPDATE webhook_deliveries SET status = 'delivered', attempts = $1, last_status = $2, last_error = NULL, delivered_at = $3 WHERE id = $4")
                .bind(attempts)
                .bind(status)
                .bind(done_at)
                .bind(id)
                .execute(&db.pool)
                .await?;
        } else {
            let dead = attempts >= MAX_ATTEMPTS;
            if dead {
                tracing::warn!(delivery = id, url = %url, "webhook delivery dead-lettered after {attempts} attempts");
            }
            sqlx::query("UPDATE webhook_deliveries SET status = $1, attempts = $2, last_status = $3, last_error = $4, next_attempt_at = $5 WHERE id = $6")
                .bind(if dead { "dead" } else { "pending" })
                .bind(attempts)
                .bind(status)
                .bind(error)
                .bind(done_at + retry_delay(attempts, retry_base).as_millis() as i64)
                .bind(id)
                .execute(&db.pool)
                .await?;
        }
    }
    Ok(attempted)
}

/// Fans out and delivers every `interval` until `stop` resolves.
pub async fn run(
    db: Db,
    holder: String,
    interval: Duration,
    retry_base: Duration,
    stop: impl std::future::Future<Output = ()>,
) {
    tokio::pin!(stop);
    let client = match reqwest::Client::builder().build() {
        Ok(c) => c,
        Err(e) => {
            tracing::error!("webhooks disabled: cannot build the HTTP client: {e}");
            return;
        }
    };
    let breakers = Breakers::new("webhook");
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = &mut stop => return,
            _ = tick.tick() => {}
        }
        if let Err(e) = fan_out(&db, &holder).await {
            tracing::warn!("webhook fan-out failed: {e}");
        }
        loop {
            match deliver_due(&db, &client, retry_base, &breakers).await {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!("webhook delivery failed: {e}");
                    break;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_shape() {
        let s = signature("whsec_x", 1_700_000_000, b"{}");
        assert!(s.starts_with("t=1700000000,v1="));
        assert_eq!(s.len(), "t=1700000000,v1=".len() + 64);
    }
}
