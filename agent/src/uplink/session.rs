//! One session with the controller.

use super::{LinkState, UplinkContext};
use crate::net;
use mikrobill_protocol::drift::DriftReport;
use mikrobill_protocol::messages::{AgentMessage, ControllerMessage, Heartbeat, Hello, HelloReply};
use mikrobill_protocol::{
    CONTROLLER_SERVER_NAME, PROTOCOL_VERSION, close_code, read_frame, write_frame,
};
use std::time::Duration;
use tokio::sync::{mpsc, watch};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);

/// How a session ended.
pub(super) enum End {
    /// Network trouble or a controller restart; retry soon.
    Lost { was_up: bool, reason: String },
    /// The controller does not want this agent; retry slowly.
    Refused(String),
}

fn lost(reason: impl ToString) -> End {
    End::Lost {
        was_up: false,
        reason: reason.to_string(),
    }
}

/// Classifies a connection error: TLS rejections and revocations are refusals.
fn classify(err: &quinn::ConnectionError, was_up: bool) -> End {
    use quinn::ConnectionError as E;
    match err {
        E::ApplicationClosed(close) if close.error_code == close_code::REVOKED.into() => {
            End::Refused(format!(
                "revoked: {}",
                String::from_utf8_lossy(&close.reason)
            ))
        }
        E::ApplicationClosed(close)
            if close.error_code == close_code::INCOMPATIBLE_VERSION.into() =>
        {
            End::Refused(format!(
                "incompatible version: {}",
                String::from_utf8_lossy(&close.reason)
            ))
        }
        E::TransportError(t)
            if t.code.to_string().contains("CRYPTO") || t.code.to_string().contains("crypto") =>
        {
            End::Refused(format!(
                "TLS authentication failed: {t}{}",
                tls_hint(&t.reason)
            ))
        }
        E::ConnectionClosed(c)
            if c.error_code.to_string().contains("CRYPTO")
                || c.error_code.to_string().contains("crypto") =>
        {
            let reason = String::from_utf8_lossy(&c.reason);
            End::Refused(format!(
                "TLS authentication failed: {c}{}",
                tls_hint(&reason)
            ))
        }
        other => End::Lost {
            was_up,
            reason: other.to_string(),
        },
    }
}

/// What an operator should do about a TLS failure, when its reason tells: an unknown issuer
/// on either side is what a CA rotation retired while this agent was away looks like.
fn tls_hint(reason: &str) -> &'static str {
    if reason.contains("UnknownIssuer")
        || reason.contains("unknown ca")
        || reason.contains("UnknownCa")
    {
        " (the controller and this agent no longer share a CA: if the controller's CA was rotated and the old one retired while this agent was offline, this agent must be enrolled again with a new token)"
    } else {
        ""
    }
}

pub(super) async fn run(ctx: &UplinkContext) -> End {
    let config = match crate::tls::session_config(&ctx.identity()) {
        Ok(c) => c,
        Err(e) => return End::Refused(e.to_string()),
    };
    let addr = match net::resolve(&ctx.controller_addr).await {
        Ok(a) => a,
        Err(e) => return lost(e),
    };
    let endpoint = match net::client_endpoint(addr) {
        Ok(e) => e,
        Err(e) => return lost(e),
    };
    let connecting = match endpoint.connect_with(config, addr, CONTROLLER_SERVER_NAME) {
        Ok(c) => c,
        Err(e) => return lost(e),
    };
    let conn = match tokio::time::timeout(CONNECT_TIMEOUT, connecting).await {
        Ok(Ok(conn)) => conn,
        Ok(Err(e)) => return classify(&e, false),
        Err(_) => return lost("connect timed out"),
    };
    let end = session(ctx, &conn).await;
    conn.close(close_code::SHUTDOWN.into(), b"agent reconnecting");
    endpoint.close(close_code::SHUTDOWN.into(), b"");
    end
}

async fn session(ctx: &UplinkContext, conn: &quinn::Connection) -> End {
    // With TLS 1.3 the handshake "succeeds" before the server has checked our certificate,
    // so the link counts as up only once the controller answered the hello.
    let hello = Hello {
        protocol_version: PROTOCOL_VERSION,
        agent_version: env!("CARGO_PKG_VERSION").to_string(),
        cursor: match ctx.cache.cursor() {
            Ok(c) => c,
            Err(e) => return lost(format!("cannot read the sync cursor: {e}")),
        },
    };
    let opened = tokio::time::timeout(CONNECT_TIMEOUT, async {
        let (mut send, mut recv) = conn.open_bi().await?;
        write_frame(&mut send, &hello)
            .await
            .map_err(std::io::Error::other)?;
        let reply = read_frame::<_, HelloReply>(&mut recv)
            .await
            .map_err(std::io::Error::other)?;
        Ok::<_, Box<dyn std::error::Error + Send + Sync>>((send, recv, reply))
    })
    .await;
    let (send, recv, reply) = match opened {
        Ok(Ok(v)) => v,
        Ok(Err(e)) => {
            if let Some(reason) = conn.close_reason() {
                return classify(&reason, false);
            }
            return lost(format!("hello failed: {e}"));
        }
        Err(_) => return lost("no answer to hello"),
    };
    let (heartbeat_every, version) = match reply {
        Some(HelloReply::Welcome {
            site_name,
            heartbeat_interval_secs,
            protocol_version,
            ..
        }) => {
            tracing::info!(site = %site_name, "connected to the controller");
            ctx.set_link(LinkState::Connected { site_name });
            (
                Duration::from_secs(heartbeat_interval_secs.clamp(1, 300) as u64),
                protocol_version,
            )
        }
        Some(HelloReply::Refused(refusal)) => return End::Refused(refusal.to_string()),
        None => {
            return match conn.close_reason() {
                Some(reason) => classify(&reason, false),
                None => lost("controller closed the control stream"),
            };
        }
    };

    let (out_tx, out_rx) = mpsc::channel::<AgentMessage>(64);
    let reason = tokio::select! {
        r = control_reader(ctx, recv, out_tx, version) => r,
        r = control_writer(ctx, send, out_rx, heartbeat_every, version) => r,
        r = super::accounting::run(conn, &ctx.outbox, &ctx.stats) => r,
        r = super::commands::run(conn, &ctx.commands) => r,
        r = super::renewal::run(conn, ctx, version) => r,
        e = conn.closed() => return classify(&e, true),
    };
    match conn.close_reason() {
        Some(e) => classify(&e, true),
        None => End::Lost {
            was_up: true,
            reason,
        },
    }
}

async fn control_reader(
    ctx: &UplinkContext,
    mut recv: quinn::RecvStream,
    out: mpsc::Sender<AgentMessage>,
    version: u16,
) -> String {
    loop {
        // An older controller sends items in the layout of its version.
        let frame = ControllerMessage::read_for_version(&mut recv, version).await;
        if let Ok(Some(_)) = &frame {
            ctx.stats.contact();
        }
        match frame {
            Ok(Some(ControllerMessage::Sync(msg))) => match ctx.cache.apply(msg).await {
                Ok(Some(cursor)) => {
                    ctx.stats.last_sync_ms.store(
                        ctx.stats.clock.now_ms(),
                        std::sync::atomic::Ordering::Relaxed,
                    );
                    tracing::debug!(seq = cursor.seq, "cache synced");
                    let _ = out.send(AgentMessage::SyncApplied(cursor)).await;
                }
                Ok(None) => {}
                Err(e) => return format!("cannot apply sync: {e}"),
            },
            Ok(Some(ControllerMessage::HeartbeatAck { .. })) => {}
            Ok(Some(ControllerMessage::TrustBundle(bundle))) => {
                match crate::identity::store_trust(&ctx.data_dir, &bundle.ca_pems) {
                    Ok(Some(cas)) => {
                        tracing::info!(
                            cas = cas.len(),
                            "the controller's CAs changed (CA rotation); stored them"
                        );
                        ctx.identity().ca = cas;
                        ctx.trust_changed.notify_one();
                    }
                    Ok(None) => {}
                    Err(e) => return format!("cannot store the controller's CAs: {e}"),
                }
            }
            Ok(None) => return "controller closed the control stream".into(),
            Err(e) => return format!("bad frame from the controller: {e}"),
        }
    }
}

/// The next router state to report; never resolves without a router, or once it is gone.
async fn next_router_state(
    rx: &mut Option<watch::Receiver<crate::router::RouterState>>,
) -> crate::router::RouterState {
    if let Some(r) = rx {
        if r.changed().await.is_ok() {
            return r.borrow_and_update().clone();
        }
        *rx = None;
    }
    std::future::pending().await
}

/// The next drift report to send; never resolves without a router, or once it is gone.
async fn next_drift_report(rx: &mut Option<watch::Receiver<Option<DriftReport>>>) -> DriftReport {
    if let Some(r) = rx {
        while r.changed().await.is_ok() {
            if let Some(report) = r.borrow_and_update().clone() {
                return report;
            }
        }
        *rx = None;
    }
    std::future::pending().await
}

/// Whether a controller that negotiated `version` reads drift reports.
pub(super) fn sends_drift(version: u16) -> bool {
    version >= mikrobill_protocol::DRIFT_VERSION
}

/// Whether a controller of `version` can read RADIUS counters.
pub(super) fn sends_radius_counters(version: u16) -> bool {
    version >= mikrobill_protocol::RADIUS_COUNTERS_VERSION
}

async fn control_writer(
    ctx: &UplinkContext,
    mut send: quinn::SendStream,
    mut rx: mpsc::Receiver<AgentMessage>,
    every: Duration,
    version: u16,
) -> String {
    let mut ticker = tokio::time::interval(every);
    // Older controllers cannot decode router reports: they get none.
    let mut router = ctx
        .router_state
        .clone()
        .filter(|_| version >= mikrobill_protocol::ROUTER_REPORT_VERSION);
    if let Some(r) = &mut router {
        let report = AgentMessage::Router(r.borrow_and_update().report());
        if let Err(e) = write_frame(&mut send, &report).await {
            return format!("cannot write to the controller: {e}");
        }
    }
    // Older controllers cannot decode drift reports either. A newer one gets the latest at
    // every session start: one made while the link was down (or before a restart) arrives
    // now, and the controller ignores one it already holds.
    let mut drift = ctx.drift.clone().filter(|_| sends_drift(version));
    if let Some(r) = &mut drift {
        let latest = r.borrow_and_update().clone();
        if let Some(report) = latest
            && let Err(e) = write_frame(&mut send, &AgentMessage::Drift(report)).await
        {
            return format!("cannot write to the controller: {e}");
        }
    }
    let radius = ctx
        .radius_stats
        .clone()
        .filter(|_| sends_radius_counters(version));
    loop {
        let msg = tokio::select! {
            state = next_router_state(&mut router) => AgentMessage::Router(state.report()),
            report = next_drift_report(&mut drift) => AgentMessage::Drift(report),
            _ = ticker.tick() => AgentMessage::Heartbeat(Heartbeat {
                sent_at_ms: ctx.stats.clock.now_ms(),
                outbox_pending: ctx.outbox.len(),
                cache_items: ctx.cache.item_count(),
                uptime_secs: ctx.started.elapsed().as_secs(),
            }),
            msg = rx.recv() => match msg {
                Some(m) => m,
                None => return "control channel closed".into(),
            },
        };
        // The counters go just before each heartbeat, which the controller stores them with:
        // one write per site and interval, however many sites there are.
        if let (AgentMessage::Heartbeat(_), Some(stats)) = (&msg, &radius) {
            let counters = AgentMessage::Radius(stats.counters(ctx.started_at_ms));
            if let Err(e) = write_frame(&mut send, &counters).await {
                return format!("cannot write to the controller: {e}");
            }
        }
        if let Err(e) = write_frame(&mut send, &msg).await {
            return format!("cannot write to the controller: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn drift_reports_go_only_to_controllers_of_protocol_7() {
        assert!(!super::sends_drift(
            mikrobill_protocol::ROUTER_IMPORT_VERSION
        ));
        assert!(!super::sends_drift(6));
        assert!(super::sends_drift(7));
        assert!(super::sends_drift(mikrobill_protocol::PROTOCOL_VERSION));
    }

    #[test]
    fn radius_counters_go_only_to_controllers_of_protocol_9() {
        assert!(!super::sends_radius_counters(
            mikrobill_protocol::DRIFT_VERSION
        ));
        assert!(!super::sends_radius_counters(8));
        assert!(super::sends_radius_counters(9));
        assert!(super::sends_radius_counters(
            mikrobill_protocol::PROTOCOL_VERSION
        ));
    }
}
