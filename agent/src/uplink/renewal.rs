//! Certificate renewal over the authenticated session: with a third of its validity left,
//! the agent makes a new key pair, sends a CSR on a request stream, stores the certificate
//! the controller signs beside its key (crash-safe, see `identity::store_renewed`) and ends
//! the session, so the next one runs on the new certificate and the controller retires the
//! old serial. The private key never leaves the agent. A CA rotation renews too: once the
//! controller's trust bundle names another issuing CA than the one of this certificate, the
//! agent renews at once, onto that CA, before the operator can retire the old one.

use super::UplinkContext;
use crate::identity;
use mikrobill_protocol::CERT_RENEWAL_VERSION;
use mikrobill_protocol::messages::{AgentRequest, ControllerReply};
use std::sync::atomic::Ordering;
use std::time::Duration;

/// At most one attempt per this long (a refused or failed renewal is not hammered).
const RETRY_MS: i64 = 3_600_000;
/// How often a long session looks at the certificate again.
const CHECK_EVERY: Duration = Duration::from_secs(3600);
const REPLY_TIMEOUT: Duration = Duration::from_secs(30);

/// Whether a certificate valid from `not_before` to `not_after` should be renewed at `now`:
/// once a third of its validity or less is left. Pure.
pub(crate) fn should_renew(not_before: i64, not_after: i64, now: i64) -> bool {
    let life = not_after.saturating_sub(not_before);
    life <= 0 || now >= not_after - life / 3
}

/// Renews when due, for as long as the session lives; returns (ending the session) once a
/// renewed certificate is stored.
pub(super) async fn run(conn: &quinn::Connection, ctx: &UplinkContext, version: u16) -> String {
    if version < CERT_RENEWAL_VERSION {
        return std::future::pending().await;
    }
    loop {
        let (validity, current) = {
            let id = ctx.identity();
            (
                identity::cert_validity_ms(&id.cert),
                id.issued_by_current_ca(),
            )
        };
        let now = crate::now_ms();
        let last = ctx.stats.last_renewal_attempt_ms.load(Ordering::Relaxed);
        if let Some((not_before, not_after)) = validity
            && (should_renew(not_before, not_after, now) || !current)
            && (last == 0 || now - last >= RETRY_MS)
        {
            if !current {
                tracing::info!("the controller issues from a new CA now; renewing onto it");
            }
            ctx.stats
                .last_renewal_attempt_ms
                .store(now, Ordering::Relaxed);
            match renew(conn, ctx).await {
                Ok(not_after) => {
                    tracing::info!(
                        expires = %humantime::format_rfc3339_seconds(
                            std::time::UNIX_EPOCH + Duration::from_millis(not_after.max(0) as u64)
                        ),
                        "agent certificate renewed; reconnecting with it"
                    );
                    return "certificate renewed: reconnecting with it".into();
                }
                Err(e) => {
                    tracing::warn!("certificate renewal failed, next try within the hour: {e}")
                }
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(CHECK_EVERY) => {}
            _ = ctx.trust_changed.notified() => {}
        }
    }
}

/// One renewal exchange; returns the new certificate's end of validity.
async fn renew(conn: &quinn::Connection, ctx: &UplinkContext) -> Result<i64, String> {
    let key = rcgen::KeyPair::generate().map_err(|e| e.to_string())?;
    let mut params = rcgen::CertificateParams::default();
    let mut dn = rcgen::DistinguishedName::new();
    dn.push(rcgen::DnType::CommonName, "mikrobill-agent");
    params.distinguished_name = dn;
    let csr = params.serialize_request(&key).map_err(|e| e.to_string())?;
    let request = AgentRequest::RenewCertificate {
        csr_der: csr.der().to_vec(),
    };
    let reply = tokio::time::timeout(REPLY_TIMEOUT, super::request(conn, &request))
        .await
        .map_err(|_| "no answer in time".to_string())??;
    let (pem, not_after) = match reply {
        Some(ControllerReply::Certificate {
            certificate_pem,
            not_after_ms,
        }) => (certificate_pem, not_after_ms),
        Some(ControllerReply::Rejected { message }) => return Err(format!("refused: {message}")),
        other => return Err(format!("unexpected answer {other:?}")),
    };
    // The certificate must be for the key just made, or storing it would lock the agent out.
    let der = crate::pem_cert(&pem).ok_or("the answer holds no certificate")?;
    let (_, parsed) = x509_parser::parse_x509_certificate(&der).map_err(|e| e.to_string())?;
    if parsed.public_key().raw != rcgen::PublicKeyData::subject_public_key_info(&key).as_slice() {
        return Err("the certificate is not for the key this agent sent".into());
    }
    identity::store_renewed(&ctx.data_dir, &key.serialize_pem(), &pem)
        .map_err(|e| e.to_string())?;
    let renewed = identity::load(&ctx.data_dir).map_err(|e| e.to_string())?;
    ctx.set_identity(renewed);
    ctx.certificate_expires_ms
        .store(not_after, Ordering::Relaxed);
    Ok(not_after)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn renewal_starts_with_a_third_left_and_never_before(
            not_before in 0i64..1_000_000_000_000,
            life in 1i64..100_000_000_000,
            at in 0i64..3_000,
        ) {
            let not_after = not_before + life;
            let now = not_before + life * at / 1000;
            let due = should_renew(not_before, not_after, now);
            // Due exactly when at most a third is left.
            prop_assert_eq!(due, not_after - now <= life / 3);
            if now >= not_after {
                prop_assert!(due, "an expired certificate is always due");
            }
        }
    }

    #[test]
    fn a_year_long_certificate_renews_four_months_ahead() {
        let day = 86_400_000;
        let issued = 0;
        let end = 365 * day;
        assert!(!should_renew(issued, end, 200 * day));
        assert!(should_renew(issued, end, 244 * day));
    }
}
