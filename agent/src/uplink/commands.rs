//! Commands the controller sends on streams it opens. They are not applied to the router
//! yet, so every command is answered honestly: expired ones as `Expired`, the rest as
//! `Unsupported`, and the controller records that instead of waiting for ever.

use mikrobill_protocol::messages::{CommandEnvelope, CommandOutcome, CommandResult};
use mikrobill_protocol::{read_frame, write_frame};
use std::time::Duration;

const READ_TIMEOUT: Duration = Duration::from_secs(15);

/// Decides what to answer for a command received at `now_ms`.
pub fn outcome(envelope: &CommandEnvelope, now_ms: i64) -> CommandOutcome {
    if envelope.expires_at_ms <= now_ms {
        return CommandOutcome::Expired;
    }
    CommandOutcome::Unsupported(format!(
        "agent {} cannot apply {:?} commands yet",
        env!("CARGO_PKG_VERSION"),
        envelope.command
    ))
}

/// Answers command streams until the connection ends; returns why it stopped.
pub(super) async fn run(conn: &quinn::Connection) -> String {
    loop {
        let (mut send, mut recv) = match conn.accept_bi().await {
            Ok(streams) => streams,
            Err(e) => return format!("connection ended: {e}"),
        };
        tokio::spawn(async move {
            let envelope = match tokio::time::timeout(
                READ_TIMEOUT,
                read_frame::<_, CommandEnvelope>(&mut recv),
            )
            .await
            {
                Ok(Ok(Some(e))) => e,
                Ok(Err(e)) => {
                    tracing::warn!("malformed command from the controller: {e}");
                    let _ = send.reset(mikrobill_protocol::close_code::PROTOCOL_ERROR.into());
                    return;
                }
                _ => return,
            };
            let result = CommandResult {
                id: envelope.id,
                outcome: outcome(&envelope, crate::now_ms()),
            };
            tracing::warn!(id = envelope.id, outcome = ?result.outcome, "command not applied");
            if write_frame(&mut send, &result).await.is_ok() {
                let _ = send.finish();
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mikrobill_protocol::messages::Command;

    #[test]
    fn expired_commands_are_reported_not_applied() {
        let env = CommandEnvelope {
            id: 7,
            expires_at_ms: 1_000,
            command: Command::ResyncRouter,
        };
        assert_eq!(outcome(&env, 1_000), CommandOutcome::Expired);
        assert!(
            matches!(outcome(&env, 999), CommandOutcome::Unsupported(m) if m.contains("ResyncRouter"))
        );
    }
}
