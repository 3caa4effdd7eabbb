//! TLS and QUIC transport settings of the edge.

use super::EdgeError;
use mikrobill_core::pki::CaSet;
use mikrobill_protocol::{ALPN_ENROLL, ALPN_SESSION};
use rustls::RootCertStore;
use rustls::server::WebPkiClientVerifier;
use std::sync::Arc;
use std::time::Duration;

/// Idle connections die after this long without any packet.
pub(super) const MAX_IDLE: Duration = Duration::from_secs(45);

/// The edge's TLS for one phase of a CA rotation: client certificates of every trusted CA
/// pass, the edge certificate is the issuing CA's.
pub(super) fn server_config(ca: &CaSet) -> Result<quinn::ServerConfig, EdgeError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = RootCertStore::empty();
    for der in ca.trusted() {
        roots.add(der).map_err(|e| EdgeError::Tls(e.to_string()))?;
    }
    // Unauthenticated clients may only enroll; the session handler refuses them.
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .allow_unauthenticated()
        .build()
        .map_err(|e| EdgeError::Tls(e.to_string()))?;
    let (chain, key) = ca.edge_identity()?;
    let mut tls = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| EdgeError::Tls(e.to_string()))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)
        .map_err(|e| EdgeError::Tls(e.to_string()))?;
    tls.alpn_protocols = vec![ALPN_SESSION.to_vec(), ALPN_ENROLL.to_vec()];
    let crypto = quinn::crypto::rustls::QuicServerConfig::try_from(tls)
        .map_err(|e| EdgeError::Tls(e.to_string()))?;
    let mut config = quinn::ServerConfig::with_crypto(Arc::new(crypto));
    let mut transport = quinn::TransportConfig::default();
    transport.max_idle_timeout(Some(MAX_IDLE.try_into().expect("idle timeout fits")));
    transport.keep_alive_interval(Some(Duration::from_secs(10)));
    config.transport_config(Arc::new(transport));
    Ok(config)
}
