//! Command streams the controller opens: one [`CommandEnvelope`] in, one
//! [`CommandResult`] out, applied by the agent's [`Applier`] (which answers a redelivered
//! id with its stored outcome, and expired commands as `Expired`).

use crate::commands::{Applier, command_kind};
use mikrobill_protocol::frame::read_payload;
use mikrobill_protocol::messages::CommandEnvelope;
use mikrobill_protocol::write_frame;
use std::sync::Arc;
use std::time::Duration;

/// How long the controller has to send the envelope once it opened the stream. Applying
/// has no limit here: the command's own deadline bounds it.
const READ_TIMEOUT: Duration = Duration::from_secs(15);

/// Answers command streams until the connection ends; returns why it stopped.
pub(super) async fn run(conn: &quinn::Connection, applier: &Arc<Applier>) -> String {
    loop {
        let (mut send, mut recv) = match conn.accept_bi().await {
            Ok(streams) => streams,
            Err(e) => return format!("connection ended: {e}"),
        };
        let applier = applier.clone();
        // Applying goes on if the link drops meanwhile: the outcome is stored for the
        // redelivery.
        tokio::spawn(async move {
            let payload = match tokio::time::timeout(READ_TIMEOUT, read_payload(&mut recv)).await {
                Ok(Ok(Some(p))) => p,
                Ok(Err(e)) => {
                    tracing::warn!("malformed command from the controller: {e}");
                    let _ = send.reset(mikrobill_protocol::close_code::PROTOCOL_ERROR.into());
                    return;
                }
                _ => return,
            };
            let envelope = match CommandEnvelope::decode(&payload) {
                Ok(e) => e,
                Err(e) => {
                    tracing::warn!("malformed command from the controller: {e}");
                    let _ = send.reset(mikrobill_protocol::close_code::PROTOCOL_ERROR.into());
                    return;
                }
            };
            let kind = command_kind(&envelope.command);
            let result = applier.apply(envelope).await;
            tracing::info!(id = result.id, command = kind, outcome = ?result.outcome, "command answered");
            if write_frame(&mut send, &result).await.is_ok() {
                let _ = send.finish();
            }
        });
    }
}
