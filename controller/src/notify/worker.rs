//! Delivery: a worker per channel, so a slow or dead gateway never holds up the others. Each
//! worker sends its channel's due messages at most at the channel's rate, behind a circuit
//! breaker, retrying failures with exponential backoff and jitter until the channel's attempt
//! budget sends a message to the dead letter. Every attempt is recorded and counted
//! (`mikrobill_notifications_total{channel,outcome}`).

use super::channels::{self, Channel};
use super::messages::{self, Message, Outcome};
use super::transport::{self, Outgoing, SendError};
use crate::db::{Db, now_ms};
use crate::delivery::{Breakers, retry_delay};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// Timing of the delivery machinery.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    /// How often producers run and workers look for due messages.
    pub poll: Duration,
    /// How long one send may take before it counts as failed.
    pub send_timeout: Duration,
    /// Delay before the first retry; later ones grow exponentially.
    pub retry_base: Duration,
}

impl Default for Timing {
    fn default() -> Self {
        Timing {
            poll: Duration::from_millis(500),
            send_timeout: Duration::from_secs(15),
            retry_base: crate::delivery::DEFAULT_RETRY_BASE,
        }
    }
}

impl Timing {
    /// How long a claim lasts: past the send timeout, so a live sender is never overtaken.
    fn claim(&self) -> Duration {
        self.send_timeout * 2 + Duration::from_secs(1)
    }
}

/// Shared by the workers of one replica.
struct Shared {
    db: Db,
    client: reqwest::Client,
    breakers: Breakers,
    timing: Timing,
}

/// Sends one claimed message and records the outcome.
async fn deliver(shared: &Shared, channel: &Channel, m: &Message, attempt: i64) {
    let outcome = match super::produce::cancel_reason(&shared.db, m).await {
        Ok(Some(reason)) => Outcome::Cancelled { reason },
        Ok(None) => {
            let msg = Outgoing {
                id: &m.id,
                to: &m.recipient,
                subject: &m.subject,
                text: &m.body,
            };
            let result = transport::send(
                &shared.client,
                &channel.config,
                &msg,
                shared.timing.send_timeout,
            )
            .await;
            let now = now_ms();
            let cooldown = shared.timing.retry_base * 16;
            shared
                .breakers
                .record(&channel.id, result.is_ok(), now, cooldown);
            match result {
                Ok(http_status) => Outcome::Sent { http_status },
                Err(SendError::Retryable { status, detail })
                    if attempt < i64::from(channel.max_attempts) =>
                {
                    Outcome::Retry {
                        http_status: status,
                        error: detail,
                        retry_at: now
                            + retry_delay(attempt, shared.timing.retry_base).as_millis() as i64,
                    }
                }
                Err(e) => Outcome::Dead {
                    http_status: e.status(),
                    error: e.to_string(),
                },
            }
        }
        Err(e) => {
            tracing::warn!(notification = %m.id, "cannot check the notification: {e}");
            Outcome::Retry {
                http_status: None,
                error: format!("internal: {e}"),
                retry_at: now_ms() + shared.timing.retry_base.as_millis() as i64,
            }
        }
    };
    metrics::counter!(
        "mikrobill_notifications_total",
        "channel" => channel.name.clone(),
        "outcome" => outcome.label()
    )
    .increment(1);
    match &outcome {
        Outcome::Dead { error, .. } => {
            tracing::warn!(notification = %m.id, channel = %channel.name, "notification dead after {attempt} attempt(s): {error}")
        }
        Outcome::Retry { error, .. } => {
            tracing::info!(notification = %m.id, channel = %channel.name, attempt, "notification failed, will retry: {error}")
        }
        _ => {}
    }
    match messages::finish(&shared.db, &m.id, attempt, &outcome).await {
        Ok(true) => {}
        Ok(false) => {
            tracing::info!(notification = %m.id, "claim lost before the outcome was recorded")
        }
        Err(e) => tracing::warn!(notification = %m.id, "cannot record the outcome: {e}"),
    }
}

/// One channel's worker: runs until the channel is deleted or deactivated.
async fn channel_worker(shared: Arc<Shared>, id: String) {
    let mut next_send = tokio::time::Instant::now();
    loop {
        let channel = match channels::get(&shared.db, &id).await {
            Ok(c) if c.active => c,
            Ok(_) => return,
            Err(crate::error::DomainError::NotFound { .. }) => return,
            Err(e) => {
                tracing::warn!(channel = %id, "cannot load the channel: {e}");
                tokio::time::sleep(shared.timing.poll).await;
                continue;
            }
        };
        let spacing = Duration::from_secs(60) / channel.rate_per_minute.max(1);
        let mut sent_any = false;
        if shared.breakers.open(now_ms()).contains(&id) {
            tokio::time::sleep(shared.timing.poll).await;
            continue;
        }
        let due = match messages::due(&shared.db, &id, now_ms(), 20).await {
            Ok(d) => d,
            Err(e) => {
                tracing::warn!(channel = %channel.name, "cannot read due notifications: {e}");
                Vec::new()
            }
        };
        for m in due {
            if shared.breakers.open(now_ms()).contains(&id) {
                break;
            }
            // The rate limit: sends are spaced evenly at the channel's rate.
            tokio::time::sleep_until(next_send).await;
            let now = now_ms();
            let until = now + shared.timing.claim().as_millis() as i64;
            let attempt = match messages::claim(&shared.db, &m.id, now, until).await {
                Ok(Some(a)) => a,
                Ok(None) => continue,
                Err(e) => {
                    tracing::warn!(notification = %m.id, "cannot claim: {e}");
                    continue;
                }
            };
            next_send = tokio::time::Instant::now() + spacing;
            deliver(&shared, &channel, &m, attempt).await;
            sent_any = true;
        }
        if !sent_any {
            tokio::time::sleep(shared.timing.poll).await;
        }
    }
}

/// Runs the producers (event fan-out) and one worker per active channel until `stop`.
pub async fn run(
    db: Db,
    holder: String,
    timing: Timing,
    stop: impl std::future::Future<Output = ()>,
) {
    tokio::pin!(stop);
    let client = match reqwest::Client::builder().build() {
        Ok(c) => c,
        Err(e) => {
            tracing::error!("notifications disabled: cannot build the HTTP client: {e}");
            return;
        }
    };
    let shared = Arc::new(Shared {
        db: db.clone(),
        client,
        breakers: Breakers::new("channel"),
        timing,
    });
    let mut workers: HashMap<String, tokio::task::JoinHandle<()>> = HashMap::new();
    let mut tick = tokio::time::interval(timing.poll);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = &mut stop => break,
            _ = tick.tick() => {}
        }
        if let Err(e) = super::produce::fan_out(&db, &holder).await {
            tracing::warn!("notification fan-out failed: {e}");
        }
        match channels::all(&db).await {
            Ok(all) => {
                workers.retain(|_, h| !h.is_finished());
                for c in all.into_iter().filter(|c| c.active) {
                    workers
                        .entry(c.id.clone())
                        .or_insert_with(|| tokio::spawn(channel_worker(shared.clone(), c.id)));
                }
            }
            Err(e) => tracing::warn!("cannot list notification channels: {e}"),
        }
    }
    for (_, h) in workers {
        h.abort();
    }
}
