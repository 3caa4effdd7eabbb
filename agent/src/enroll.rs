//! `mikrobill-agent enroll`: trade a one-time token for a certificate.

use crate::identity::{self, EnrollmentState};
use crate::net;
use mikrobill_protocol::enroll::{
    EnrollReply, EnrollRequest, EnrollmentToken, TokenError, fingerprint,
};
use mikrobill_protocol::{CONTROLLER_SERVER_NAME, PROTOCOL_VERSION, read_frame, write_frame};
use rcgen::{CertificateParams, DistinguishedName, DnType, KeyPair};
use std::path::Path;
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(20);

/// Why enrollment failed.
#[derive(Debug, thiserror::Error)]
pub enum EnrollError {
    /// The token text is bad.
    #[error(transparent)]
    Token(#[from] TokenError),
    /// Already enrolled; refusing to overwrite without `--force`.
    #[error("{0} already holds an enrollment; pass --force to replace it")]
    AlreadyEnrolled(String),
    /// The controller could not be reached or the TLS check failed.
    #[error("cannot reach the controller at {addr}: {message}")]
    Connect {
        /// The controller's address.
        addr: String,
        /// What went wrong.
        message: String,
    },
    /// The controller said no.
    #[error("the controller refused enrollment: {0}")]
    Refused(String),
    /// Anything else.
    #[error("{0}")]
    Other(String),
}

/// The result of a successful enrollment.
#[derive(Debug, Clone)]
pub struct Enrolled {
    /// What was stored.
    pub state: EnrollmentState,
}

/// Enrolls the agent in `data_dir` using `token`.
pub async fn enroll(token: &str, data_dir: &Path, force: bool) -> Result<Enrolled, EnrollError> {
    let token = EnrollmentToken::decode(token)?;
    if identity::is_enrolled(data_dir) && !force {
        return Err(EnrollError::AlreadyEnrolled(data_dir.display().to_string()));
    }
    let key = KeyPair::generate().map_err(|e| EnrollError::Other(e.to_string()))?;
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, "mikrobill-agent");
    params.distinguished_name = dn;
    let csr = params
        .serialize_request(&key)
        .map_err(|e| EnrollError::Other(e.to_string()))?;

    let connect_err = |message: String| EnrollError::Connect {
        addr: token.controller_addr.clone(),
        message,
    };
    let config = crate::tls::enroll_config(token.ca_fingerprint)
        .map_err(|e| EnrollError::Other(e.to_string()))?;
    let addr = net::resolve(&token.controller_addr)
        .await
        .map_err(|e| connect_err(e.to_string()))?;
    let endpoint = net::client_endpoint(addr).map_err(|e| connect_err(e.to_string()))?;
    let conn = tokio::time::timeout(TIMEOUT, async {
        endpoint
            .connect_with(config, addr, CONTROLLER_SERVER_NAME)
            .map_err(|e| e.to_string())?
            .await
            .map_err(|e| e.to_string())
    })
    .await
    .map_err(|_| connect_err("timed out".into()))?
    .map_err(connect_err)?;

    let request = EnrollRequest {
        protocol_version: PROTOCOL_VERSION,
        secret: token.secret,
        csr_der: csr.der().to_vec(),
        agent_version: env!("CARGO_PKG_VERSION").to_string(),
    };
    let reply = tokio::time::timeout(TIMEOUT, async {
        let (mut send, mut recv) = conn.open_bi().await.map_err(|e| e.to_string())?;
        write_frame(&mut send, &request)
            .await
            .map_err(|e| e.to_string())?;
        send.finish().map_err(|e| e.to_string())?;
        read_frame::<_, EnrollReply>(&mut recv)
            .await
            .map_err(|e| e.to_string())?
            .ok_or_else(|| "no reply".to_string())
    })
    .await
    .map_err(|_| connect_err("timed out waiting for the controller".into()))?
    .map_err(connect_err)?;
    conn.close(0u32.into(), b"enrolled");
    endpoint.wait_idle().await;

    match reply {
        EnrollReply::Refused { message } => Err(EnrollError::Refused(message)),
        EnrollReply::Issued {
            site_id,
            site_name,
            certificate_pem,
            ca_certificate_pem,
        } => {
            let ca = crate::pem_cert(&ca_certificate_pem)
                .ok_or_else(|| EnrollError::Other("controller sent an unreadable CA".into()))?;
            if fingerprint(&ca) != token.ca_fingerprint {
                return Err(EnrollError::Other(
                    "controller sent a CA that does not match the token".into(),
                ));
            }
            let state = EnrollmentState {
                controller_addr: token.controller_addr.clone(),
                site_id,
                site_name,
            };
            identity::store(
                data_dir,
                &state,
                &key.serialize_pem(),
                &certificate_pem,
                &ca_certificate_pem,
            )
            .map_err(|e| EnrollError::Other(e.to_string()))?;
            Ok(Enrolled { state })
        }
    }
}
