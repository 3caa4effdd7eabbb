//! The enrollment exchange: one CSR in, one certificate out.

use super::EdgeContext;
use mikrobill_core::sites::{self, SiteError};
use mikrobill_protocol::enroll::{EnrollReply, EnrollRequest};
use mikrobill_protocol::{close_code, read_frame, write_frame};
use std::sync::Arc;
use std::time::Duration;

const STEP_TIMEOUT: Duration = Duration::from_secs(15);

pub(super) async fn handle(ctx: Arc<EdgeContext>, conn: quinn::Connection) {
    let remote = conn.remote_address();
    let (mut send, mut recv) = match tokio::time::timeout(STEP_TIMEOUT, conn.accept_bi()).await {
        Ok(Ok(streams)) => streams,
        _ => {
            return conn.close(
                close_code::PROTOCOL_ERROR.into(),
                b"expected an enrollment request",
            );
        }
    };
    let request: EnrollRequest =
        match tokio::time::timeout(STEP_TIMEOUT, read_frame(&mut recv)).await {
            Ok(Ok(Some(r))) => r,
            Ok(Err(e)) => {
                tracing::info!(%remote, "malformed enrollment request: {e}");
                return conn.close(
                    close_code::PROTOCOL_ERROR.into(),
                    format!("malformed enrollment request: {e}").as_bytes(),
                );
            }
            _ => {
                return conn.close(
                    close_code::PROTOCOL_ERROR.into(),
                    b"expected an enrollment request",
                );
            }
        };
    let reply = decide(&ctx, &request).await;
    match &reply {
        EnrollReply::Issued { site_name, .. } => {
            tracing::info!(%remote, site = %site_name, "agent enrolled")
        }
        EnrollReply::Refused { message } => {
            tracing::warn!(%remote, "enrollment refused: {message}")
        }
    }
    if write_frame(&mut send, &reply).await.is_ok() {
        let _ = send.finish();
    }
    // Let the agent read the reply and close; then make sure the connection goes away.
    let _ = tokio::time::timeout(STEP_TIMEOUT, conn.closed()).await;
    conn.close(close_code::SHUTDOWN.into(), b"done");
}

async fn decide(ctx: &EdgeContext, request: &EnrollRequest) -> EnrollReply {
    let refused = |message: String| EnrollReply::Refused { message };
    if !mikrobill_protocol::controller_admits(request.protocol_version) {
        return refused(format!(
            "incompatible protocol version {}: this controller accepts {} to {}",
            request.protocol_version,
            mikrobill_protocol::MIN_PROTOCOL_VERSION,
            mikrobill_protocol::PROTOCOL_VERSION
        ));
    }
    let site = match sites::token_site(&ctx.db, &request.secret).await {
        Ok(site) => site,
        Err(SiteError::TokenRejected) => {
            return refused("enrollment token is invalid, expired or already used".into());
        }
        Err(e) => {
            tracing::error!("enrollment lookup failed: {e}");
            return refused("controller error, try again later".into());
        }
    };
    let ca = ctx.ca.borrow().clone();
    let issued = match ca
        .active
        .sign_agent_csr(&request.csr_der, &site.id, &site.name)
    {
        Ok(issued) => issued,
        Err(e) => return refused(e.to_string()),
    };
    match sites::complete_enrollment(
        &ctx.db,
        &request.secret,
        &site.id,
        &issued.serial_hex,
        issued.not_after_ms,
        &issued.ca_fingerprint,
    )
    .await
    {
        Ok(()) => EnrollReply::Issued {
            site_id: site.id,
            site_name: site.name,
            certificate_pem: issued.pem,
            // Every CA to trust, the issuing one first: an older agent reads only that one.
            ca_certificate_pem: ca.bundle_pems().concat(),
        },
        Err(SiteError::TokenRejected) => {
            refused("enrollment token is invalid, expired or already used".into())
        }
        Err(e) => {
            tracing::error!("enrollment failed: {e}");
            refused("controller error, try again later".into())
        }
    }
}
