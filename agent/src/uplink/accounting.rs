//! Ships the outbox to the controller, one batch per request stream, and forgets records
//! only after the controller answered that their batch is committed.

use crate::outbox::Outbox;
use mikrobill_protocol::messages::{AccountingBatch, AgentRequest, ControllerReply};
use std::time::Duration;

/// Records per batch.
pub(super) const BATCH_SIZE: usize = 500;
const REPLY_TIMEOUT: Duration = Duration::from_secs(30);
const IDLE_RECHECK: Duration = Duration::from_secs(5);

/// Sends batches until the connection fails; returns why it stopped.
pub(super) async fn run(
    conn: &quinn::Connection,
    outbox: &Outbox,
    stats: &super::UplinkStats,
) -> String {
    let mut batch_id: u64 = rand::random::<u32>() as u64;
    loop {
        let notified = outbox.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        let entries = match outbox.peek(BATCH_SIZE) {
            Ok(e) => e,
            Err(e) => return format!("cannot read the outbox: {e}"),
        };
        if entries.is_empty() {
            tokio::select! {
                _ = notified => {}
                _ = tokio::time::sleep(IDLE_RECHECK) => {}
            }
            continue;
        }
        batch_id += 1;
        let request = AgentRequest::Accounting(AccountingBatch {
            batch_id,
            records: entries.iter().map(|e| e.record.clone()).collect(),
        });
        match tokio::time::timeout(REPLY_TIMEOUT, super::request(conn, &request)).await {
            Ok(Ok(Some(ControllerReply::AccountingCommitted {
                batch_id: acked,
                inserted,
                duplicates,
            }))) if acked == batch_id => {
                tracing::debug!(
                    batch_id,
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
            Ok(Ok(Some(ControllerReply::Rejected { message }))) => {
                tracing::error!(
                    batch_id,
                    records = entries.len(),
                    "controller rejected an accounting batch, set aside: {message}"
                );
                if let Err(e) = outbox.reject(&entries).await {
                    return format!("cannot update the outbox: {e}");
                }
            }
            Ok(Ok(other)) => {
                return format!("unexpected answer to accounting batch {batch_id}: {other:?}");
            }
            Ok(Err(e)) => {
                if conn.close_reason().is_some() {
                    return format!("accounting batch {batch_id} not acknowledged: {e}");
                }
                // The controller could not commit (database trouble): keep the batch, retry.
                tracing::warn!(
                    batch_id,
                    "accounting batch not acknowledged, will retry: {e}"
                );
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
            Err(_) => return format!("accounting batch {batch_id} timed out"),
        }
    }
}
