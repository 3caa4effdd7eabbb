//! Delivery: a worker per channel, so a slow or dead gateway never holds up the others. A
//! channel's worker runs on one replica at a time (a lease row), so the channel's rate limit
//! holds however many controllers run. It sends the channel's due messages spaced at that
//! rate, behind a circuit breaker, retrying failures with exponential backoff and jitter
//! until the attempt budget sends a message to the dead letter. Every attempt is recorded
//! and counted (`mikrobill_notifications_total{channel,outcome}`).

use super::channels::{self, Channel};
use super::messages::{self, Message, Outcome};
use super::transport::{self, Outgoing, SendError};
use crate::db::{Db, now_ms};
use crate::delivery::{Breakers, retry_delay};
use crate::lease;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
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

/// How often a Telegram bot that links chats reads its updates.
const TELEGRAM_POLL: Duration = Duration::from_secs(2);

/// How many retry bases an open breaker waits before letting a probe through.
const BREAKER_COOLDOWN_BASES: u32 = 16;

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
    holder: String,
    /// Set at shutdown: workers finish the send in hand and take no new one.
    stopping: AtomicBool,
}

/// The outcome of sending one claimed message.
async fn attempt(shared: &Shared, channel: &Channel, m: &Message, attempt: i64) -> Outcome {
    let timing = shared.timing;
    match super::produce::cancel_reason(&shared.db, channel, m).await {
        Ok(Some(reason)) => return Outcome::Cancelled { reason },
        Ok(None) => {}
        Err(e) => {
            tracing::warn!(notification = %m.id, "cannot check the notification: {e}");
            return Outcome::Retry {
                http_status: None,
                error: "internal error while checking the message".into(),
                retry_at: now_ms() + retry_delay(attempt, timing.retry_base).as_millis() as i64,
            };
        }
    }
    let msg = Outgoing {
        id: &m.id,
        to: &m.recipient,
        subject: &m.subject,
        text: &m.body,
    };
    // The transports bound their own steps; this bounds the whole send (an SMTP server that
    // stalls mid-dialogue included), which keeps every send inside its claim.
    let result = match tokio::time::timeout(
        timing.send_timeout,
        transport::send(&shared.client, &channel.config, &msg, timing.send_timeout),
    )
    .await
    {
        Ok(r) => r,
        Err(_) => Err(SendError::Retryable {
            status: None,
            detail: format!("no answer within {:?}", timing.send_timeout),
        }),
    };
    let now = now_ms();
    // Only a gateway that does not answer (or answers 5xx) counts against the channel: one
    // recipient's refusal says nothing about the others.
    let gateway_failed = matches!(result, Err(SendError::Retryable { .. }));
    shared.breakers.record(
        &channel.id,
        !gateway_failed,
        now,
        timing.retry_base * BREAKER_COOLDOWN_BASES,
    );
    let budget_left = attempt - m.attempts_base < i64::from(channel.max_attempts);
    match result {
        Ok(http_status) => Outcome::Sent { http_status },
        Err(SendError::Retryable { status, detail }) if budget_left => Outcome::Retry {
            http_status: status,
            error: detail,
            retry_at: now
                + retry_delay(attempt - m.attempts_base, timing.retry_base).as_millis() as i64,
        },
        Err(e) => Outcome::Dead {
            http_status: e.status(),
            error: e.to_string(),
        },
    }
}

/// Sends one claimed message and records the outcome.
async fn deliver(shared: &Shared, channel: &Channel, m: &Message, n: i64) {
    let outcome = attempt(shared, channel, m, n).await;
    metrics::counter!(
        "mikrobill_notifications_total",
        "channel" => channel.name.clone(),
        "outcome" => outcome.label()
    )
    .increment(1);
    match &outcome {
        Outcome::Dead { error, .. } => {
            tracing::warn!(notification = %m.id, channel = %channel.name, "notification dead after attempt {n}: {error}")
        }
        Outcome::Retry { error, .. } => {
            tracing::info!(notification = %m.id, channel = %channel.name, attempt = n, "notification failed, will retry: {error}")
        }
        _ => {}
    }
    // A busy database must not turn a delivered message into a second send: try again.
    for i in 0..3 {
        match messages::finish(&shared.db, &m.id, n, &outcome).await {
            Ok(true) => return,
            Ok(false) => {
                tracing::info!(notification = %m.id, "claim lost before the outcome was recorded");
                return;
            }
            Err(e) => {
                tracing::warn!(notification = %m.id, "cannot record the outcome (try {}): {e}", i + 1);
                tokio::time::sleep(Duration::from_millis(200 << i)).await;
            }
        }
    }
}

/// The channel as it is now, if its worker should go on.
async fn current(shared: &Shared, id: &str) -> Result<Option<Channel>, ()> {
    match channels::get(&shared.db, id).await {
        Ok(c) if c.active => Ok(Some(c)),
        Ok(_) => Ok(None),
        Err(e) => {
            tracing::warn!(channel = %id, "cannot load the channel: {e}");
            Err(())
        }
    }
}

/// One channel's worker: runs until the channel is deactivated or the replica stops.
async fn channel_worker(shared: Arc<Shared>, id: String) {
    let lease_name = format!("notify:{id}");
    // Renewed every round; a round lasts at most a poll or one send, both inside a claim.
    let lease_ms = shared.timing.claim().as_millis() as i64;
    let mut next_send = tokio::time::Instant::now();
    let mut last_poll: Option<tokio::time::Instant> = None;
    while !shared.stopping.load(Ordering::Relaxed) {
        let Ok(found) = current(&shared, &id).await else {
            tokio::time::sleep(shared.timing.poll).await;
            continue;
        };
        let Some(mut channel) = found else {
            break;
        };
        match lease::acquire(&shared.db, &lease_name, &shared.holder, lease_ms).await {
            Ok(true) => {}
            Ok(false) => {
                // Another replica sends this channel.
                tokio::time::sleep(shared.timing.poll).await;
                continue;
            }
            Err(e) => {
                tracing::warn!(channel = %channel.name, "cannot take the channel's lease: {e}");
                tokio::time::sleep(shared.timing.poll).await;
                continue;
            }
        }
        if last_poll.is_none_or(|at| at.elapsed() >= TELEGRAM_POLL) {
            last_poll = Some(tokio::time::Instant::now());
            match super::telegram_link::poll(
                &shared.db,
                &shared.client,
                &channel,
                shared.timing.send_timeout,
            )
            .await
            {
                Ok(0) => {}
                Ok(n) => {
                    tracing::info!(channel = %channel.name, linked = n, "Telegram chats linked")
                }
                Err(e) => tracing::warn!(channel = %channel.name, "{e}"),
            }
        }
        let spacing = Duration::from_secs(60) / channel.rate_per_minute.max(1);
        // No more than one poll interval's worth at a time, so the lease stays fresh and a
        // changed channel is picked up soon.
        let batch =
            (shared.timing.poll.as_millis() / spacing.as_millis().max(1)).clamp(1, 50) as u32;
        let due = match messages::due(&shared.db, &id, now_ms(), batch).await {
            Ok(d) => d,
            Err(e) => {
                tracing::warn!(channel = %channel.name, "cannot read due notifications: {e}");
                Vec::new()
            }
        };
        let mut sent_any = false;
        let mut leased_at = tokio::time::Instant::now();
        for m in due {
            if shared.stopping.load(Ordering::Relaxed)
                || shared.breakers.open(now_ms()).contains(&id)
            {
                break;
            }
            // Slow sends: renew the lease before it could lapse under this round.
            if leased_at.elapsed().as_millis() as i64 > lease_ms / 2 {
                if !matches!(
                    lease::acquire(&shared.db, &lease_name, &shared.holder, lease_ms).await,
                    Ok(true)
                ) {
                    break;
                }
                leased_at = tokio::time::Instant::now();
            }
            // The rate limit: sends are spaced evenly at the channel's rate.
            tokio::time::sleep_until(next_send).await;
            // An edit or deactivation made meanwhile applies to the very next send.
            match current(&shared, &id).await {
                Ok(Some(c)) => channel = c,
                Ok(None) => break,
                Err(()) => continue,
            }
            let now = now_ms();
            let until = now + shared.timing.claim().as_millis() as i64;
            let n = match messages::claim(&shared.db, &m.id, now, until).await {
                Ok(Some(a)) => a,
                Ok(None) => continue,
                Err(e) => {
                    tracing::warn!(notification = %m.id, "cannot claim: {e}");
                    continue;
                }
            };
            next_send = tokio::time::Instant::now() + spacing;
            deliver(&shared, &channel, &m, n).await;
            sent_any = true;
        }
        if !sent_any {
            tokio::time::sleep(shared.timing.poll).await;
        }
    }
    let _ = lease::release(&shared.db, &lease_name, &shared.holder, "stopped").await;
}

/// Runs the producers (event fan-out) and one worker per active channel until `stop`; then
/// lets sends in flight finish (up to the send timeout) before returning.
pub async fn run(
    db: Db,
    holder: String,
    timing: Timing,
    stop: impl std::future::Future<Output = ()>,
) {
    tokio::pin!(stop);
    // Gateways answer directly: a redirect could carry the channel's headers to another host
    // or turn a POST into a GET that "succeeds".
    let client = match reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
    {
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
        holder: holder.clone(),
        stopping: AtomicBool::new(false),
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
    shared.stopping.store(true, Ordering::Relaxed);
    let deadline = tokio::time::Instant::now() + timing.send_timeout + Duration::from_secs(1);
    for (_, mut h) in workers {
        if tokio::time::timeout_at(deadline, &mut h).await.is_err() {
            h.abort();
        }
    }
}
