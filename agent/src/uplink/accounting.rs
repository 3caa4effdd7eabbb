//! Ships the outbox to the controller, one batch per request stream with several batches in
//! flight, and forgets records only after the controller answered that their batch is
//! committed.
//!
//! With one batch in flight a link's round trip bounds the drain (500 records per 50 ms is
//! 10,000 records/s whatever the controller could take); with several, the controller commits
//! one batch while the next ones travel. Batches may commit out of order: the ledger folds
//! records idempotently and in any order, and a record whose answer was lost is sent again
//! after a reconnect and counted once.

use crate::outbox::{Entry, Outbox};
use mikrobill_protocol::messages::{AccountingBatch, AgentRequest, ControllerReply};
use std::time::Duration;
use tokio::task::JoinSet;

/// Records per batch.
pub(super) const BATCH_SIZE: usize = 500;
/// Batches sent and not yet answered.
const IN_FLIGHT: usize = 4;
const REPLY_TIMEOUT: Duration = Duration::from_secs(30);
const IDLE_RECHECK: Duration = Duration::from_secs(5);
/// Pause before sending again after the controller could not commit a batch.
const RETRY_PAUSE: Duration = Duration::from_secs(2);

/// One batch's answer, as the request task saw it.
enum Answer {
    Committed {
        inserted: u32,
        duplicates: u32,
    },
    Rejected(String),
    /// The controller answered but could not commit (its database, for instance): send again.
    NotCommitted(String),
    /// The link is gone or spoke out of turn: the session ends.
    Fatal(String),
}

async fn send(conn: quinn::Connection, batch_id: u64, entries: &[Entry]) -> Answer {
    let request = AgentRequest::Accounting(AccountingBatch {
        batch_id,
        records: entries.iter().map(|e| e.record.clone()).collect(),
    });
    match tokio::time::timeout(REPLY_TIMEOUT, super::request(&conn, &request)).await {
        Ok(Ok(Some(ControllerReply::AccountingCommitted {
            batch_id: acked,
            inserted,
            duplicates,
        }))) if acked == batch_id => Answer::Committed {
            inserted,
            duplicates,
        },
        Ok(Ok(Some(ControllerReply::Rejected { message }))) => Answer::Rejected(message),
        Ok(Ok(other)) => Answer::Fatal(format!(
            "unexpected answer to accounting batch {batch_id}: {other:?}"
        )),
        Ok(Err(e)) if conn.close_reason().is_some() => {
            Answer::Fatal(format!("accounting batch {batch_id} not acknowledged: {e}"))
        }
        Ok(Err(e)) => Answer::NotCommitted(e),
        Err(_) => Answer::Fatal(format!("accounting batch {batch_id} timed out")),
    }
}

/// Sends batches until the connection fails; returns why it stopped.
pub(super) async fn run(
    conn: &quinn::Connection,
    outbox: &Outbox,
    stats: &super::UplinkStats,
) -> String {
    let mut batch_id: u64 = rand::random::<u32>() as u64;
    // Dropping the set (the session ends) aborts the requests still out.
    let mut in_flight: JoinSet<(u64, Vec<Entry>, Answer)> = JoinSet::new();
    // The newest record sent in this pass over the outbox; older ones are out or answered.
    let mut sent_up_to: Option<u64> = None;
    // Set when a batch must be sent again: nothing new goes out until the set is empty.
    let mut resend = false;
    loop {
        let notified = outbox.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        while !resend && in_flight.len() < IN_FLIGHT {
            let entries = match outbox.peek_after(sent_up_to, BATCH_SIZE) {
                Ok(e) => e,
                Err(e) => return format!("cannot read the outbox: {e}"),
            };
            let Some(last) = entries.last() else {
                break;
            };
            sent_up_to = Some(last.key);
            batch_id += 1;
            let (conn, id) = (conn.clone(), batch_id);
            in_flight.spawn(async move {
                let answer = send(conn, id, &entries).await;
                (id, entries, answer)
            });
        }
        if in_flight.is_empty() {
            if resend {
                tokio::time::sleep(RETRY_PAUSE).await;
                resend = false;
                sent_up_to = None;
                continue;
            }
            tokio::select! {
                _ = notified => {}
                _ = tokio::time::sleep(IDLE_RECHECK) => {}
            }
            continue;
        }
        let room = !resend && in_flight.len() < IN_FLIGHT;
        let done = tokio::select! {
            done = in_flight.join_next() => done,
            _ = notified, if room => continue,
        };
        let Some(done) = done else { continue };
        let (id, entries, answer) = match done {
            Ok(done) => done,
            Err(e) => return format!("accounting sender failed: {e}"),
        };
        match answer {
            Answer::Committed {
                inserted,
                duplicates,
            } => {
                tracing::debug!(
                    batch_id = id,
                    inserted,
                    duplicates,
                    "accounting batch acknowledged"
                );
                stats.contact();
                if let Err(e) = outbox
                    .remove(&entries.iter().map(|e| e.key).collect::<Vec<_>>())
                    .await
                {
                    return format!("cannot update the outbox: {e}");
                }
                stats
                    .delivered
                    .fetch_add(entries.len() as u64, std::sync::atomic::Ordering::Relaxed);
            }
            Answer::Rejected(message) => {
                tracing::error!(
                    batch_id = id,
                    records = entries.len(),
                    "controller rejected an accounting batch, set aside: {message}"
                );
                if let Err(e) = outbox.reject(&entries).await {
                    return format!("cannot update the outbox: {e}");
                }
            }
            Answer::NotCommitted(e) => {
                // The batch stays in the outbox; once the others are answered the pass starts
                // again from the oldest record.
                tracing::warn!(
                    batch_id = id,
                    "accounting batch not acknowledged, will retry: {e}"
                );
                resend = true;
            }
            Answer::Fatal(reason) => return reason,
        }
    }
}
