//! The controller's own certificate authority: created on first start, it signs the edge
//! server certificate and every agent certificate.
//!
//! Agent certificates are built from scratch from the CSR's public key alone: nothing the
//! agent asked for (CA flag, names, validity) is copied, so an agent cannot mint itself
//! anything but a client certificate for the site its token named.

use rcgen::{
    BasicConstraints, CertificateParams, CertificateSigningRequestParams, DistinguishedName,
    DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose, SerialNumber,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use std::fs;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// File names inside the data directory.
const CA_CERT: &str = "ca.crt";
const CA_KEY: &str = "ca.key";
const EDGE_CERT: &str = "edge.crt";
const EDGE_KEY: &str = "edge.key";
const EDGE_RESET_KEY: &str = "edge-reset.key";
/// Every file of key material the PKI keeps in a data directory (what a backup carries).
pub const DATA_FILES: [&str; 5] = [CA_CERT, CA_KEY, EDGE_CERT, EDGE_KEY, EDGE_RESET_KEY];
/// The files without which a data directory has no CA (a backup refuses to go without them).
pub const CA_FILES: [&str; 2] = [CA_CERT, CA_KEY];

/// How long agent certificates are valid by default (agents renew a third before the end).
pub const AGENT_CERT_VALIDITY: Duration = Duration::from_secs(365 * 24 * 3600);
const CA_VALIDITY: Duration = Duration::from_secs(20 * 365 * 24 * 3600);
const EDGE_VALIDITY: Duration = Duration::from_secs(2 * 365 * 24 * 3600);
/// Re-issue the edge certificate when less than this is left.
const EDGE_RENEW_BEFORE: Duration = Duration::from_secs(30 * 24 * 3600);

/// Errors of the PKI.
#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    /// Reading or writing key material failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What the system said.
        source: std::io::Error,
    },
    /// rcgen refused.
    #[error("certificate operation failed: {0}")]
    Rcgen(#[from] rcgen::Error),
    /// The CSR is not acceptable.
    #[error("certificate signing request rejected: {0}")]
    BadCsr(String),
    /// Stored material is damaged.
    #[error("{path}: {message}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> PkiError + '_ {
    move |source| PkiError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// A freshly signed agent certificate.
#[derive(Debug, Clone)]
pub struct IssuedCert {
    /// PEM form, handed to the agent.
    pub pem: String,
    /// Serial number, lower-case hex, as stored in the database.
    pub serial_hex: String,
    /// End of validity, UTC unix milliseconds.
    pub not_after_ms: i64,
}

/// The loaded certificate authority.
pub struct Ca {
    issuer: Issuer<'static, KeyPair>,
    cert_der: CertificateDer<'static>,
    cert_pem: String,
    dir: PathBuf,
    agent_validity: Duration,
}

impl std::fmt::Debug for Ca {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ca")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

fn random_serial() -> SerialNumber {
    let mut bytes: [u8; 16] = rand::random();
    bytes[0] &= 0x7f; // positive INTEGER
    bytes[0] |= 0x01; // no leading zero byte, so the hex form is stable
    SerialNumber::from_slice(&bytes)
}

/// Writes `contents` to `path` only if it does not exist yet, readable by the owner only when
/// `private`; returns false when another process created it first.
fn write_new(path: &Path, contents: &str, private: bool) -> Result<bool, PkiError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = dir.join(format!(
        ".{}.tmp-{}",
        path.file_name().unwrap().to_string_lossy(),
        rand::random::<u32>()
    ));
    {
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(if private { 0o600 } else { 0o644 })
            .open(&tmp)
            .map_err(io_err(&tmp))?;
        f.write_all(contents.as_bytes()).map_err(io_err(&tmp))?;
        f.sync_all().map_err(io_err(&tmp))?;
    }
    // A hard link fails if the target exists: the first writer wins atomically.
    let won = match fs::hard_link(&tmp, path) {
        Ok(()) => true,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => false,
        Err(e) => {
            let _ = fs::remove_file(&tmp);
            return Err(io_err(path)(e));
        }
    };
    let _ = fs::remove_file(&tmp);
    Ok(won)
}

fn read(path: &Path) -> Result<String, PkiError> {
    fs::read_to_string(path).map_err(io_err(path))
}

impl Ca {
    /// Loads the CA from `dir`, creating it on first use.
    pub fn load_or_create(dir: &Path) -> Result<Ca, PkiError> {
        fs::create_dir_all(dir).map_err(io_err(dir))?;
        let key_path = dir.join(CA_KEY);
        let cert_path = dir.join(CA_CERT);
        if !key_path.exists() {
            let key = KeyPair::generate()?;
            let mut params = CertificateParams::default();
            let mut dn = DistinguishedName::new();
            dn.push(DnType::CommonName, "MikroBill controller CA");
            dn.push(DnType::OrganizationName, "MikroBill");
            params.distinguished_name = dn;
            params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
            params.key_usages = vec![
                KeyUsagePurpose::KeyCertSign,
                KeyUsagePurpose::CrlSign,
                KeyUsagePurpose::DigitalSignature,
            ];
            params.serial_number = Some(random_serial());
            let now = SystemTime::now();
            params.not_before = (now - Duration::from_secs(3600)).into();
            params.not_after = (now + CA_VALIDITY).into();
            let cert = params.self_signed(&key)?;
            if write_new(&key_path, &key.serialize_pem(), true)? {
                write_new(&cert_path, &cert.pem(), false)?;
            }
        }
        // Another process may have won the creation race and be about to write the cert.
        let mut tries = 0;
        while !cert_path.exists() && tries < 50 {
            std::thread::sleep(Duration::from_millis(100));
            tries += 1;
        }
        let key = KeyPair::from_pem(&read(&key_path)?).map_err(|e| PkiError::Corrupt {
            path: key_path.clone(),
            message: format!("not a usable private key: {e}"),
        })?;
        let cert_pem = read(&cert_path)?;
        let cert_der = pem_to_der(&cert_pem).ok_or_else(|| PkiError::Corrupt {
            path: cert_path.clone(),
            message: "no PEM certificate found".into(),
        })?;
        let issuer = Issuer::from_ca_cert_der(&cert_der, key)?;
        Ok(Ca {
            issuer,
            cert_der,
            cert_pem,
            dir: dir.to_path_buf(),
            agent_validity: AGENT_CERT_VALIDITY,
        })
    }

    /// The same CA issuing agent certificates valid for `validity` (`serve
    /// --agent-cert-validity`).
    pub fn with_agent_validity(mut self, validity: Duration) -> Ca {
        self.agent_validity = validity;
        self
    }

    /// The CA certificate (DER).
    pub fn cert_der(&self) -> &CertificateDer<'static> {
        &self.cert_der
    }

    /// The CA certificate (PEM).
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// SHA-256 of the CA certificate, pinned by enrollment tokens.
    pub fn fingerprint(&self) -> [u8; 32] {
        mikrobill_protocol::enroll::fingerprint(&self.cert_der)
    }

    /// Signs an agent's CSR as a client certificate for `site_id`.
    pub fn sign_agent_csr(
        &self,
        csr_der: &[u8],
        site_id: &str,
        site_name: &str,
    ) -> Result<IssuedCert, PkiError> {
        let mut csr = CertificateSigningRequestParams::from_der(&csr_der.to_vec().into())
            .map_err(|e| PkiError::BadCsr(e.to_string()))?;
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, site_id);
        dn.push(DnType::OrganizationalUnitName, site_name);
        dn.push(DnType::OrganizationName, "MikroBill agent");
        params.distinguished_name = dn;
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let serial = random_serial();
        let serial_hex = hex::encode(serial.as_ref());
        params.serial_number = Some(serial);
        params.use_authority_key_identifier_extension = true;
        let now = SystemTime::now();
        let not_after = now + self.agent_validity;
        params.not_before = (now - Duration::from_secs(3600)).into();
        params.not_after = not_after.into();
        csr.params = params;
        let cert = csr.signed_by(&self.issuer)?;
        let not_after_ms = not_after
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis() as i64;
        Ok(IssuedCert {
            pem: cert.pem(),
            serial_hex,
            not_after_ms,
        })
    }

    /// The edge's QUIC stateless-reset secret, kept across restarts so a restarted
    /// controller can reset the connections its previous run left open and agents reconnect
    /// at once instead of waiting for an idle timeout.
    pub fn edge_reset_secret(&self) -> Result<[u8; 32], PkiError> {
        let path = self.dir.join(EDGE_RESET_KEY);
        if !path.exists() {
            write_new(&path, &hex::encode(rand::random::<[u8; 32]>()), true)?;
        }
        let text = read(&path)?;
        let mut secret = [0u8; 32];
        hex::decode_to_slice(text.trim(), &mut secret).map_err(|e| PkiError::Corrupt {
            path: path.clone(),
            message: format!("not a 64-digit hex secret: {e}"),
        })?;
        Ok(secret)
    }

    /// Issues a fresh edge certificate and stores it; returns it with its key.
    fn issue_edge_cert(
        &self,
        cert_path: &Path,
        key_path: &Path,
    ) -> Result<(CertificateDer<'static>, String), PkiError> {
        let key = KeyPair::generate()?;
        let mut params =
            CertificateParams::new(vec![mikrobill_protocol::CONTROLLER_SERVER_NAME.to_string()])?;
        params
            .distinguished_name
            .push(DnType::CommonName, "MikroBill controller edge");
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.serial_number = Some(random_serial());
        params.use_authority_key_identifier_extension = true;
        let now = SystemTime::now();
        params.not_before = (now - Duration::from_secs(3600)).into();
        params.not_after = (now + EDGE_VALIDITY).into();
        let cert = params.signed_by(&key, &self.issuer)?;
        let key_pem = key.serialize_pem();
        // Replace atomically: write beside, then rename over.
        for (path, contents, mode) in [(key_path, &key_pem, 0o600), (cert_path, &cert.pem(), 0o644)]
        {
            let tmp = path.with_extension("tmp");
            let mut f = fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(mode)
                .open(&tmp)
                .map_err(io_err(&tmp))?;
            f.write_all(contents.as_bytes()).map_err(io_err(&tmp))?;
            f.sync_all().map_err(io_err(&tmp))?;
            fs::rename(&tmp, path).map_err(io_err(path))?;
        }
        Ok((cert.der().clone(), key_pem))
    }

    /// The edge server's certificate chain and key, re-issued when missing or near expiry.
    pub fn edge_identity(
        &self,
    ) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), PkiError> {
        let cert_path = self.dir.join(EDGE_CERT);
        let key_path = self.dir.join(EDGE_KEY);
        let existing = match (
            fs::read_to_string(&cert_path),
            fs::read_to_string(&key_path),
        ) {
            (Ok(cert), Ok(key)) => pem_to_der(&cert).zip(Some(key)),
            _ => None,
        };
        let (cert_der, key_pem) = match existing {
            Some((der, key)) if !expires_within(&der, EDGE_RENEW_BEFORE) => (der, key),
            existing => match self.issue_edge_cert(&cert_path, &key_path) {
                Ok(pair) => pair,
                // A read-only data directory (a Kubernetes secret, say) cannot take the new
                // files: keep serving the old certificate while it is valid, and say so.
                Err(e) => match existing {
                    Some((der, key)) if !expires_within(&der, Duration::ZERO) => {
                        tracing::warn!(
                            "the edge certificate expires soon and cannot be renewed: {e}"
                        );
                        (der, key)
                    }
                    _ => return Err(e),
                },
            },
        };
        let key = KeyPair::from_pem(&key_pem).map_err(|e| PkiError::Corrupt {
            path: key_path,
            message: e.to_string(),
        })?;
        let key_der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        Ok((vec![cert_der, self.cert_der.clone()], key_der))
    }
}

/// The first certificate in a PEM text, as DER.
pub fn pem_to_der(pem: &str) -> Option<CertificateDer<'static>> {
    use rustls::pki_types::pem::PemObject;
    CertificateDer::pem_slice_iter(pem.as_bytes()).next()?.ok()
}

fn expires_within(der: &[u8], window: Duration) -> bool {
    match x509_parser::parse_x509_certificate(der) {
        Ok((_, cert)) => {
            let not_after = cert.validity().not_after.timestamp();
            let limit = SystemTime::now() + window;
            let limit = limit
                .duration_since(SystemTime::UNIX_EPOCH)
                .unwrap_or_default()
                .as_secs() as i64;
            not_after < limit
        }
        Err(_) => true,
    }
}

/// What the controller reads out of a presented agent certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentCertInfo {
    /// Site id from the subject common name.
    pub site_id: String,
    /// Serial, lower-case hex.
    pub serial_hex: String,
}

/// Reads site id and serial from an agent certificate the TLS layer already verified.
pub fn agent_cert_info(der: &[u8]) -> Option<AgentCertInfo> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    let site_id = cert
        .subject()
        .iter_common_name()
        .next()?
        .as_str()
        .ok()?
        .to_string();
    Some(AgentCertInfo {
        site_id,
        serial_hex: hex::encode(cert.raw_serial()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn ca_is_created_once_with_a_private_key_file() {
        let dir = tempfile::tempdir().unwrap();
        let a = Ca::load_or_create(dir.path()).unwrap();
        let b = Ca::load_or_create(dir.path()).unwrap();
        assert_eq!(a.fingerprint(), b.fingerprint());
        let mode = fs::metadata(dir.path().join(CA_KEY))
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600);
    }

    #[test]
    fn agent_certificates_ignore_what_the_csr_asks_for() {
        let dir = tempfile::tempdir().unwrap();
        let ca = Ca::load_or_create(dir.path()).unwrap();
        let key = KeyPair::generate().unwrap();
        // A greedy CSR: asks to be a CA with a server name.
        let mut wish = CertificateParams::new(vec!["evil.example".to_string()]).unwrap();
        wish.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        wish.distinguished_name
            .push(DnType::CommonName, "some-other-site");
        let csr = wish.serialize_request(&key).unwrap();
        let issued = ca
            .sign_agent_csr(csr.der(), "site-123", "Desa Sukamaju")
            .unwrap();
        let der = pem_to_der(&issued.pem).unwrap();
        let info = agent_cert_info(&der).unwrap();
        assert_eq!(info.site_id, "site-123");
        assert_eq!(info.serial_hex, issued.serial_hex);
        let (_, cert) = x509_parser::parse_x509_certificate(&der).unwrap();
        assert!(!cert.is_ca());
        assert!(cert.subject_alternative_name().unwrap().is_none());
        // Same key signed twice still gets distinct serials.
        let again = ca
            .sign_agent_csr(csr.der(), "site-123", "Desa Sukamaju")
            .unwrap();
        assert_ne!(again.serial_hex, issued.serial_hex);
    }

    #[test]
    fn an_expiring_edge_certificate_is_renewed_or_kept_when_the_directory_is_read_only() {
        let dir = tempfile::tempdir().unwrap();
        let ca = Ca::load_or_create(dir.path()).unwrap();
        // An edge certificate with ten days left.
        let key = KeyPair::generate().unwrap();
        let mut params =
            CertificateParams::new(vec![mikrobill_protocol::CONTROLLER_SERVER_NAME.to_string()])
                .unwrap();
        params.not_after = (SystemTime::now() + Duration::from_secs(10 * 86_400)).into();
        let short = params.signed_by(&key, &ca.issuer).unwrap();
        fs::write(dir.path().join(EDGE_CERT), short.pem()).unwrap();
        fs::write(dir.path().join(EDGE_KEY), key.serialize_pem()).unwrap();
        // Writes fail (as they would on a read-only mount): the old certificate keeps serving.
        fs::create_dir(dir.path().join(EDGE_KEY).with_extension("tmp")).unwrap();
        let (chain, _) = ca.edge_identity().unwrap();
        assert_eq!(chain[0].as_ref(), short.der().as_ref());
        // Writable again: renewed.
        fs::remove_dir(dir.path().join(EDGE_KEY).with_extension("tmp")).unwrap();
        let (chain, _) = ca.edge_identity().unwrap();
        assert_ne!(chain[0].as_ref(), short.der().as_ref());
        assert!(!expires_within(&chain[0], EDGE_RENEW_BEFORE));
    }

    #[test]
    fn garbage_csr_is_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let ca = Ca::load_or_create(dir.path()).unwrap();
        assert!(matches!(
            ca.sign_agent_csr(b"not a csr", "s", "n"),
            Err(PkiError::BadCsr(_))
        ));
    }
}
