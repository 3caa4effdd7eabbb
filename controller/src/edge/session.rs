//! One agent session: hello, sync push, heartbeats, and accounting requests.

use super::EdgeContext;
use super::registry::LiveSession;
use mikrobill_core::accounting::IngestError;
use mikrobill_core::db::now_ms;
use mikrobill_core::pki::{AgentCertInfo, CaSet, agent_cert_info};
use mikrobill_core::sites::{self, CertStatus};
use mikrobill_core::sync_log;
use mikrobill_protocol::frame::{FrameError, decode_payload, read_payload};
use mikrobill_protocol::items::Item;
use mikrobill_protocol::messages::{
    AgentMessage, AgentRequest, CommandEnvelope, CommandOutcome, CommandResult, ControllerMessage,
    ControllerReply, Hello, HelloReply, HelloVersion, Refusal, SyncCursor, SyncMessage,
    TrustBundle,
};
use mikrobill_protocol::{
    MIN_PROTOCOL_VERSION, PROTOCOL_VERSION, close_code, read_frame, write_frame,
};
use rustls::pki_types::CertificateDer;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tracing::Instrument;

const HELLO_TIMEOUT: Duration = Duration::from_secs(15);
/// Records per sync message.
const SYNC_CHUNK: u32 = 1000;

type Send = quinn::SendStream;

fn peer_cert(conn: &quinn::Connection) -> Option<AgentCertInfo> {
    let certs = conn
        .peer_identity()?
        .downcast::<Vec<CertificateDer<'static>>>()
        .ok()?;
    agent_cert_info(certs.first()?)
}

async fn refuse(conn: &quinn::Connection, send: &mut Send, refusal: Refusal, code: u32) {
    let reason = refusal.to_string();
    if write_frame(send, &HelloReply::Refused(refusal))
        .await
        .is_ok()
    {
        let _ = send.finish();
        // Give the frame a moment to leave before the close overtakes it.
        let _ = tokio::time::timeout(Duration::from_millis(500), conn.closed()).await;
    }
    conn.close(code.into(), reason.as_bytes());
}

pub(super) async fn handle(ctx: Arc<EdgeContext>, conn: quinn::Connection) {
    let remote = conn.remote_address();
    let Some(cert) = peer_cert(&conn) else {
        tracing::warn!(%remote, "session without a client certificate refused");
        return conn.close(
            close_code::PROTOCOL_ERROR.into(),
            b"client certificate required",
        );
    };
    let (mut send, mut recv) = match tokio::time::timeout(HELLO_TIMEOUT, conn.accept_bi()).await {
        Ok(Ok(streams)) => streams,
        _ => return conn.close(close_code::PROTOCOL_ERROR.into(), b"expected a hello"),
    };
    let payload = match tokio::time::timeout(HELLO_TIMEOUT, read_payload(&mut recv)).await {
        Ok(Ok(Some(p))) => p,
        Ok(Err(e)) => {
            return conn.close(
                close_code::PROTOCOL_ERROR.into(),
                format!("bad hello: {e}").as_bytes(),
            );
        }
        _ => return conn.close(close_code::PROTOCOL_ERROR.into(), b"expected a hello"),
    };
    let version = match decode_payload::<HelloVersion>(&payload) {
        Ok(v) => v.protocol_version,
        Err(e) => {
            return conn.close(
                close_code::PROTOCOL_ERROR.into(),
                format!("bad hello: {e}").as_bytes(),
            );
        }
    };
    if !mikrobill_protocol::controller_admits(version) {
        tracing::warn!(%remote, site_id = cert.site_id, version, "agent speaks an incompatible protocol version");
        let refusal = Refusal::IncompatibleVersion {
            min: MIN_PROTOCOL_VERSION,
            max: PROTOCOL_VERSION,
        };
        return refuse(&conn, &mut send, refusal, close_code::INCOMPATIBLE_VERSION).await;
    }
    let hello: Hello = match decode_payload(&payload) {
        Ok(h) => h,
        Err(e) => {
            return conn.close(
                close_code::PROTOCOL_ERROR.into(),
                format!("bad hello: {e}").as_bytes(),
            );
        }
    };
    let site_name = match sites::certificate_status(&ctx.db, &cert.site_id, &cert.serial_hex).await
    {
        Ok(CertStatus::Valid { site_name }) => site_name,
        Ok(status) => {
            tracing::warn!(%remote, site_id = cert.site_id, serial = cert.serial_hex, ?status, "agent refused");
            let refusal = if status == CertStatus::Revoked {
                Refusal::Revoked
            } else {
                Refusal::UnknownCertificate
            };
            return refuse(&conn, &mut send, refusal, close_code::REVOKED).await;
        }
        Err(e) => {
            tracing::error!("certificate check failed: {e}");
            return refuse(
                &conn,
                &mut send,
                Refusal::Internal("try again later".into()),
                close_code::INTERNAL,
            )
            .await;
        }
    };

    let session_id = uuid::Uuid::new_v4().to_string();
    let site_id = cert.site_id.clone();
    ctx.registry.register(
        &site_id,
        LiveSession {
            session_id: session_id.clone(),
            serial_hex: cert.serial_hex.clone(),
            conn: conn.clone(),
        },
    );
    if let Err(e) =
        sites::session_opened(&ctx.db, &site_id, &session_id, &hello.agent_version).await
    {
        tracing::error!(site_id, "cannot record session: {e}");
    }
    tracing::info!(%remote, site = %site_name, agent_version = hello.agent_version, "agent session up");
    // Connected with a renewed certificate: the ones it replaces stop working now.
    match mikrobill_core::agent_certs::retire_older(&ctx.db, &site_id, &cert.serial_hex).await {
        Ok(0) => {}
        Ok(n) => tracing::info!(site = %site_name, retired = n, "older agent certificates retired"),
        Err(e) => tracing::error!(site_id, "cannot retire older certificates: {e}"),
    }

    let welcome = HelloReply::Welcome {
        protocol_version: mikrobill_protocol::negotiate(version),
        site_id: site_id.clone(),
        site_name: site_name.clone(),
        server_time_ms: now_ms(),
        heartbeat_interval_secs: ctx.heartbeat_interval_secs,
    };
    let requests = tokio::spawn(serve_requests(ctx.clone(), conn.clone(), site_id.clone()));
    let commands = tokio::spawn(deliver_commands(
        ctx.clone(),
        conn.clone(),
        site_id.clone(),
        mikrobill_protocol::negotiate(version),
    ));
    let result = match write_frame(&mut send, &welcome).await {
        Ok(()) => {
            let link = Link {
                site_id: &site_id,
                session_id: &session_id,
                version: mikrobill_protocol::negotiate(version),
            };
            control_loop(&ctx, &conn, link, hello.cursor, send, recv).await
        }
        Err(e) => Err(e.to_string()),
    };
    requests.abort();
    commands.abort();
    match result {
        Ok(()) => {
            tracing::info!(site = %site_name, "agent session closed: {}", close_reason(&conn))
        }
        Err(e) => {
            tracing::warn!(site = %site_name, "agent session failed: {e}");
            conn.close(close_code::PROTOCOL_ERROR.into(), e.as_bytes());
        }
    }
    ctx.registry.unregister(&site_id, &session_id);
    if let Err(e) = sites::session_closed(&ctx.db, &site_id, &session_id).await {
        tracing::error!(site_id, "cannot record session end: {e}");
    }
}

fn close_reason(conn: &quinn::Connection) -> String {
    conn.close_reason()
        .map(|r| r.to_string())
        .unwrap_or_else(|| "closed".into())
}

/// Writes a sync message in the layout the session's negotiated version decodes.
async fn write_sync(send: &mut Send, version: u16, msg: SyncMessage) -> Result<(), FrameError> {
    let framed = ControllerMessage::Sync(msg)
        .for_version(version)
        .expect("every protocol version decodes sync");
    write_frame(send, &framed).await
}

/// Whether an agent that negotiated `version` takes trust bundles.
fn takes_trust_bundle(version: u16) -> bool {
    version >= mikrobill_protocol::CA_ROTATION_VERSION
}

/// Sends the agent the CAs to trust (an agent of an older protocol is sent nothing).
async fn write_trust_bundle(send: &mut Send, version: u16, ca: &CaSet) -> Result<(), String> {
    let msg = ControllerMessage::TrustBundle(TrustBundle {
        ca_pems: ca.bundle_pems(),
    });
    match msg.for_version(version) {
        Some(framed) => write_frame(send, &framed).await.map_err(|e| e.to_string()),
        None => Ok(()),
    }
}

/// Which session a control loop serves.
struct Link<'a> {
    site_id: &'a str,
    session_id: &'a str,
    /// The negotiated protocol version.
    version: u16,
}

/// How often an idle site's cursor is moved up to the head (`SyncMessage::CaughtUp`).
const CATCH_UP_EVERY: Duration = Duration::from_secs(60);

async fn control_loop(
    ctx: &EdgeContext,
    conn: &quinn::Connection,
    link: Link<'_>,
    cursor: SyncCursor,
    mut send: Send,
    mut recv: quinn::RecvStream,
) -> Result<(), String> {
    let Link {
        site_id,
        session_id,
        version,
    } = link;
    // Reading a frame is not cancel-safe, so a task owns the receive half.
    let (msg_tx, mut msg_rx) = mpsc::channel::<Result<AgentMessage, FrameError>>(16);
    let reader = tokio::spawn(async move {
        loop {
            let msg = read_frame::<_, AgentMessage>(&mut recv).await.transpose();
            let Some(msg) = msg else { break };
            let failed = msg.is_err();
            if msg_tx.send(msg).await.is_err() || failed {
                break;
            }
        }
    });
    let result = async {
        let mut head = ctx.head.clone();
        let mut cas = ctx.ca.clone();
        let bundles = takes_trust_bundle(version);
        if bundles {
            let set = cas.borrow_and_update().clone();
            write_trust_bundle(&mut send, version, &set).await?;
        }
        let mut sent = initial_sync(ctx, site_id, version, &cursor, &mut send).await?;
        let mut catch_up = tokio::time::interval(CATCH_UP_EVERY);
        catch_up.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let catches_up = version >= mikrobill_protocol::SYNC_CAUGHT_UP_VERSION;
        // The agent's RADIUS counters arrive just before its heartbeat and are stored with it.
        let mut radius = None;
        loop {
            tokio::select! {
                msg = msg_rx.recv() => match msg {
                    None => return Ok(()),
                    Some(Err(e)) => return Err(format!("bad frame from agent: {e}")),
                    Some(Ok(AgentMessage::Radius(counters))) => radius = Some(counters),
                    Some(Ok(AgentMessage::Heartbeat(hb))) => {
                        if let Err(e) = sites::heard_from(&ctx.db, site_id, session_id, hb.outbox_pending, radius.take().as_ref()).await {
                            tracing::warn!(site_id, "cannot record heartbeat: {e}");
                        }
                        write_frame(&mut send, &ControllerMessage::HeartbeatAck { server_time_ms: now_ms() })
                            .await
                            .map_err(|e| e.to_string())?;
                    }
                    Some(Ok(AgentMessage::Router(report))) => {
                        if let Err(e) = sites::router_reported(&ctx.db, site_id, &report).await {
                            tracing::warn!(site_id, "cannot record router state: {e}");
                        }
                    }
                    Some(Ok(AgentMessage::Drift(report))) => {
                        match mikrobill_core::site_drift::record(&ctx.db, site_id, &report).await {
                            Ok(recorded) => tracing::info!(
                                site_id,
                                findings = report.entries.len(),
                                ?recorded,
                                "router drift reported"
                            ),
                            Err(e) => tracing::warn!(site_id, "cannot record router drift: {e}"),
                        }
                    }
                    Some(Ok(AgentMessage::SyncApplied(c))) => {
                        if let Err(e) = sites::sync_applied(&ctx.db, site_id, c.seq).await {
                            tracing::warn!(site_id, "cannot record sync position: {e}");
                        }
                    }
                },
                changed = head.changed() => {
                    if changed.is_err() {
                        return Ok(());
                    }
                    sent = push_changes(ctx, site_id, version, sent, &mut send).await?;
                }
                changed = cas.changed(), if bundles => {
                    if changed.is_err() {
                        return Ok(());
                    }
                    let set = cas.borrow_and_update().clone();
                    write_trust_bundle(&mut send, version, &set).await?;
                }
                _ = catch_up.tick(), if catches_up => {
                    sent = caught_up(ctx, site_id, version, sent, &mut send).await?;
                }
                _ = conn.closed() => return Ok(()),
            }
        }
    }
    .await;
    reader.abort();
    result
}

/// Moves an agent with nothing pending up to the head: the head is read first (every change
/// up to it is committed, numbers become visible in order), then whatever the log holds for
/// the site is sent; if that stops below the head, the site has nothing up to it.
async fn caught_up(
    ctx: &EdgeContext,
    site_id: &str,
    version: u16,
    sent: u64,
    send: &mut Send,
) -> Result<u64, String> {
    let head = sync_log::head(&ctx.db).await.map_err(|e| e.to_string())?;
    let sent = push_changes(ctx, site_id, version, sent, send).await?;
    if head <= sent {
        return Ok(sent);
    }
    write_sync(
        send,
        version,
        SyncMessage::CaughtUp {
            cursor: SyncCursor {
                epoch: ctx.epoch.clone(),
                seq: head,
            },
        },
    )
    .await
    .map_err(|e| e.to_string())?;
    Ok(head)
}

/// Brings the agent up to date: a snapshot when its cursor cannot be served from the log,
/// else the changes after it. Returns the last sequence sent.
async fn initial_sync(
    ctx: &EdgeContext,
    site_id: &str,
    version: u16,
    cursor: &SyncCursor,
    send: &mut Send,
) -> Result<u64, String> {
    let db = &ctx.db;
    let err = |e: mikrobill_core::db::DbError| e.to_string();
    let from = if sync_log::needs_snapshot(db, &ctx.epoch, cursor)
        .await
        .map_err(err)?
    {
        let epoch = ctx.epoch.clone();
        // Items are read after the head, so they are at least as new as it; replaying the
        // changes after the head on top converges on the current state.
        let seq = sync_log::head(db).await.map_err(err)?;
        let frame_err = |e: FrameError| e.to_string();
        write_sync(
            send,
            version,
            SyncMessage::SnapshotBegin {
                cursor: SyncCursor { epoch, seq },
            },
        )
        .await
        .map_err(frame_err)?;
        let plans = mikrobill_core::plans::snapshot(db).await.map_err(err)?;
        for chunk in plans.chunks(SYNC_CHUNK as usize) {
            write_sync(send, version, SyncMessage::SnapshotItems(chunk.to_vec()))
                .await
                .map_err(frame_err)?;
        }
        let mut after = String::new();
        let mut count = 0usize;
        loop {
            let page = mikrobill_core::vouchers::snapshot_page(db, site_id, &after, SYNC_CHUNK)
                .await
                .map_err(err)?;
            let Some(last) = page.last() else { break };
            after = last.code.clone();
            count += page.len();
            let items = page.into_iter().map(Item::Voucher).collect();
            write_sync(send, version, SyncMessage::SnapshotItems(items))
                .await
                .map_err(frame_err)?;
        }
        write_sync(send, version, SyncMessage::SnapshotEnd)
            .await
            .map_err(frame_err)?;
        tracing::info!(
            site_id,
            plans = plans.len(),
            vouchers = count,
            seq,
            "snapshot sent"
        );
        seq
    } else {
        cursor.seq
    };
    push_changes(ctx, site_id, version, from, send).await
}

/// Sends every change after `after` for the site; returns the last sequence sent.
async fn push_changes(
    ctx: &EdgeContext,
    site_id: &str,
    version: u16,
    mut after: u64,
    send: &mut Send,
) -> Result<u64, String> {
    loop {
        let changes = sync_log::changes_after(&ctx.db, site_id, after, SYNC_CHUNK)
            .await
            .map_err(|e| e.to_string())?;
        let Some(last) = changes.last() else {
            return Ok(after);
        };
        after = last.seq;
        let full = changes.len() as u32 == SYNC_CHUNK;
        write_sync(send, version, SyncMessage::Changes(changes))
            .await
            .map_err(|e| e.to_string())?;
        if !full {
            return Ok(after);
        }
    }
}

async fn serve_requests(ctx: Arc<EdgeContext>, conn: quinn::Connection, site_id: String) {
    while let Ok((send, recv)) = conn.accept_bi().await {
        let ctx = ctx.clone();
        let site_id = site_id.clone();
        tokio::spawn(async move { handle_request(&ctx, &site_id, send, recv).await });
    }
}

async fn handle_request(
    ctx: &EdgeContext,
    site_id: &str,
    mut send: Send,
    mut recv: quinn::RecvStream,
) {
    let request =
        match tokio::time::timeout(HELLO_TIMEOUT, read_frame::<_, AgentRequest>(&mut recv)).await {
            Ok(Ok(Some(r))) => r,
            Ok(Err(e)) => {
                let reply = ControllerReply::Rejected {
                    message: format!("malformed request: {e}"),
                };
                let _ = write_frame(&mut send, &reply).await;
                let _ = send.finish();
                return;
            }
            _ => {
                let _ = send.reset(close_code::PROTOCOL_ERROR.into());
                return;
            }
        };
    let reply = match request {
        AgentRequest::Accounting(batch) => {
            let (batch_id, records) = (batch.batch_id, batch.records);
            match ctx.ingester.ingest(site_id, records).await {
                Ok(outcome) => {
                    tracing::debug!(
                        site_id,
                        batch = batch_id,
                        ?outcome,
                        "accounting batch committed"
                    );
                    metrics::counter!("mikrobill_accounting_records_total", "outcome" => "inserted")
                        .increment(u64::from(outcome.inserted));
                    metrics::counter!("mikrobill_accounting_records_total", "outcome" => "duplicate")
                        .increment(u64::from(outcome.duplicates));
                    ControllerReply::AccountingCommitted {
                        batch_id,
                        inserted: outcome.inserted,
                        duplicates: outcome.duplicates,
                    }
                }
                Err(IngestError::Invalid(message)) => {
                    tracing::warn!(
                        site_id,
                        batch = batch_id,
                        "accounting batch rejected: {message}"
                    );
                    ControllerReply::Rejected { message }
                }
                Err(e @ IngestError::Busy { .. }) => {
                    // No answer: the agent pauses and sends again (counted in
                    // `mikrobill_accounting_busy_total`; a storm would flood the log).
                    tracing::debug!(site_id, batch = batch_id, "accounting batch deferred: {e}");
                    let _ = send.reset(close_code::INTERNAL.into());
                    return;
                }
                Err(IngestError::Db(e)) => {
                    // No answer at all: the agent keeps the batch and retries.
                    tracing::error!(site_id, batch = batch_id, "accounting ingest failed: {e}");
                    let _ = send.reset(close_code::INTERNAL.into());
                    return;
                }
            }
        }
        AgentRequest::RenewCertificate { csr_der } => renew(ctx, site_id, &csr_der).await,
    };
    if write_frame(&mut send, &reply).await.is_ok() {
        let _ = send.finish();
    }
}

/// Signs a new certificate for the session's own site (the site id comes from the
/// certificate the session runs on, never from the request).
async fn renew(ctx: &EdgeContext, site_id: &str, csr_der: &[u8]) -> ControllerReply {
    use mikrobill_core::agent_certs::{self, RenewError};
    let refused = |message: String| ControllerReply::Rejected { message };
    let site_name = match agent_certs::may_renew(&ctx.db, site_id, now_ms()).await {
        Ok(name) => name,
        Err(e @ (RenewError::Revoked | RenewError::TooMany(_))) => {
            tracing::warn!(site_id, "certificate renewal refused: {e}");
            return refused(e.to_string());
        }
        Err(e) => {
            tracing::error!(site_id, "certificate renewal failed: {e}");
            return refused("controller error, try again later".into());
        }
    };
    // The issuing CA of the current rotation phase: once a new CA is active, renewals move
    // agents onto it.
    let ca = ctx.ca.borrow().clone();
    let issued = match ca.active.sign_agent_csr(csr_der, site_id, &site_name) {
        Ok(issued) => issued,
        Err(e) => return refused(e.to_string()),
    };
    match agent_certs::record_renewal(
        &ctx.db,
        site_id,
        &issued.serial_hex,
        issued.not_after_ms,
        &issued.ca_fingerprint,
    )
    .await
    {
        Ok(()) => {
            tracing::info!(site = %site_name, serial = issued.serial_hex, "agent certificate renewed");
            ControllerReply::Certificate {
                certificate_pem: issued.pem,
                not_after_ms: issued.not_after_ms,
            }
        }
        Err(e) => {
            tracing::warn!(site_id, "certificate renewal not recorded: {e}");
            refused(e.to_string())
        }
    }
}

/// How long to wait before retrying a command whose delivery failed on a live connection.
const COMMAND_RETRY: Duration = Duration::from_secs(2);
/// How long the agent may take beyond a command's deadline to answer it.
const COMMAND_ANSWER_GRACE_MS: i64 = 30_000;

/// Delivers the site's pending commands one at a time, in id order, for as long as the
/// session lives: each waits for the agent's answer before the next goes out, so commands
/// apply in the order they were queued. Undelivered ones stay pending for the next session.
async fn deliver_commands(
    ctx: Arc<EdgeContext>,
    conn: quinn::Connection,
    site_id: String,
    version: u16,
) {
    let mut wake = ctx.commands.clone();
    loop {
        match mikrobill_core::commands::next_pending(&ctx.db, &site_id).await {
            Ok(Some(mut envelope)) => {
                let id = envelope.id as i64;
                let delivered = if envelope.command.min_version() > version {
                    Ok(CommandOutcome::Unsupported(format!(
                        "the agent speaks protocol {version}; this command needs {}: upgrade the agent",
                        envelope.command.min_version()
                    )))
                } else {
                    // A child of what queued the command; the agent's apply a child of this.
                    let span = tracing::info_span!(
                        "command.deliver",
                        site_id = %site_id,
                        command.id = id,
                        command.kind = mikrobill_core::commands::kind(&envelope.command),
                    );
                    if let Some(parent) = &envelope.trace_parent {
                        mikrobill_telemetry::set_parent(&span, parent);
                    }
                    async {
                        // The agent continues the delivery's trace, not the queuing one's.
                        envelope.trace_parent = mikrobill_telemetry::current_traceparent();
                        deliver_command(&ctx, &conn, &envelope).await
                    }
                    .instrument(span)
                    .await
                };
                match delivered {
                    Ok(outcome) => {
                        tracing::info!(site_id, id, ?outcome, "command answered");
                        if let Err(e) =
                            mikrobill_core::commands::complete(&ctx.db, id, &outcome).await
                        {
                            tracing::error!(site_id, id, "cannot store a command result: {e}");
                            tokio::time::sleep(COMMAND_RETRY).await;
                        }
                        continue;
                    }
                    Err(e) => {
                        if conn.close_reason().is_some() {
                            return;
                        }
                        tracing::warn!(site_id, id, "command delivery failed, will retry: {e}");
                        tokio::time::sleep(COMMAND_RETRY).await;
                        continue;
                    }
                }
            }
            Ok(None) => {}
            Err(e) => tracing::warn!(site_id, "cannot read the command queue: {e}"),
        }
        tokio::select! {
            _ = wake.changed() => {}
            _ = tokio::time::sleep(Duration::from_secs(5)) => {}
            _ = conn.closed() => return,
        }
    }
}

async fn deliver_command(
    ctx: &EdgeContext,
    conn: &quinn::Connection,
    envelope: &CommandEnvelope,
) -> Result<CommandOutcome, String> {
    mikrobill_core::commands::attempted(&ctx.db, envelope.id as i64)
        .await
        .map_err(|e| e.to_string())?;
    let (mut send, mut recv) = conn.open_bi().await.map_err(|e| e.to_string())?;
    write_frame(&mut send, envelope)
        .await
        .map_err(|e| e.to_string())?;
    let _ = send.finish();
    let wait_ms = (envelope.expires_at_ms - now_ms()).max(0) + COMMAND_ANSWER_GRACE_MS;
    let result: CommandResult =
        tokio::time::timeout(Duration::from_millis(wait_ms as u64), read_frame(&mut recv))
            .await
            .map_err(|_| "the agent did not answer in time".to_string())?
            .map_err(|e| e.to_string())?
            .ok_or_else(|| "the agent closed the command stream without an answer".to_string())?;
    if result.id != envelope.id {
        return Err(format!(
            "the agent answered command {} on the stream of command {}",
            result.id, envelope.id
        ));
    }
    Ok(result.outcome)
}
