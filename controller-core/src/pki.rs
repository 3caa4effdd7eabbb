//! The controller's own certificate authority: created on first start, it signs the edge
//! server certificate and every agent certificate. A CA rotation (`ca_rotation.rs` decides
//! and records it) adds a second CA in the other file slot, cross-signed by the first, and
//! [`CaSet`] is what the edge then trusts and presents.
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
const NEXT_CERT: &str = "ca-next.crt";
const NEXT_KEY: &str = "ca-next.key";
const CROSS_CERT: &str = "ca-cross.crt";
/// Every file of key material the PKI keeps in a data directory (what a backup carries).
pub const DATA_FILES: [&str; 8] = [
    CA_CERT,
    CA_KEY,
    EDGE_CERT,
    EDGE_KEY,
    EDGE_RESET_KEY,
    NEXT_CERT,
    NEXT_KEY,
    CROSS_CERT,
];
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

/// Where a CA's key and certificate live in the data directory: rotations alternate between
/// the two, so a new CA never overwrites one still trusted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Slot {
    /// `ca.crt` / `ca.key`: the first CA.
    First,
    /// `ca-next.crt` / `ca-next.key`.
    Next,
}

impl Slot {
    /// The name stored in `ca_rotations.slot`.
    pub fn as_str(self) -> &'static str {
        match self {
            Slot::First => "ca",
            Slot::Next => "ca-next",
        }
    }

    /// The slot named `name` in `ca_rotations.slot`.
    pub fn parse(name: &str) -> Option<Slot> {
        match name {
            "ca" => Some(Slot::First),
            "ca-next" => Some(Slot::Next),
            _ => None,
        }
    }

    /// The other slot.
    pub fn other(self) -> Slot {
        match self {
            Slot::First => Slot::Next,
            Slot::Next => Slot::First,
        }
    }

    fn files(self) -> (&'static str, &'static str) {
        match self {
            Slot::First => (CA_CERT, CA_KEY),
            Slot::Next => (NEXT_CERT, NEXT_KEY),
        }
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
    /// The issuing CA's fingerprint, lower-case hex (stored with the certificate, so a
    /// rotation knows which agents still run on the previous CA).
    pub ca_fingerprint: String,
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
            let (key, cert) = new_ca("MikroBill controller CA")?;
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
        Ca::load(dir, Slot::First)
    }

    /// Loads the CA stored in `slot` of `dir` (never creates one).
    pub fn load(dir: &Path, slot: Slot) -> Result<Ca, PkiError> {
        let (cert_file, key_file) = slot.files();
        let key_path = dir.join(key_file);
        let cert_path = dir.join(cert_file);
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

    /// Creates a new CA in `slot` (replacing whatever that slot held, which the caller made
    /// sure is trusted no more) and the cross certificate by which this CA vouches for it, so
    /// an agent that trusts only this one still accepts an edge certificate of the new one.
    pub fn create_successor(&self, slot: Slot) -> Result<Ca, PkiError> {
        // A name of its own: agents tell which CA issued their certificate by its issuer.
        let name = format!(
            "MikroBill controller CA {}",
            hex::encode(rand::random::<[u8; 6]>())
        );
        let (key, cert) = new_ca(&name)?;
        let cross = ca_params(&name)?.signed_by(&key, &self.issuer)?;
        let (cert_file, key_file) = slot.files();
        replace_file(&self.dir.join(key_file), &key.serialize_pem(), 0o600)?;
        replace_file(&self.dir.join(cert_file), &cert.pem(), 0o644)?;
        replace_file(&self.dir.join(CROSS_CERT), &cross.pem(), 0o644)?;
        Ca::load(&self.dir, slot)
    }

    /// The cross certificate of the newest CA (signed by the one before), if any.
    pub fn cross_cert(dir: &Path) -> Result<Option<CertificateDer<'static>>, PkiError> {
        let path = dir.join(CROSS_CERT);
        if !path.exists() {
            return Ok(None);
        }
        pem_to_der(&read(&path)?)
            .map(Some)
            .ok_or_else(|| PkiError::Corrupt {
                path,
                message: "no PEM certificate found".into(),
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

    /// [`Ca::fingerprint`] as lower-case hex, as the database stores it.
    pub fn fingerprint_hex(&self) -> String {
        hex::encode(self.fingerprint())
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
            ca_fingerprint: self.fingerprint_hex(),
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
            Some((der, key)) if !expires_within(&der, EDGE_RENEW_BEFORE) && self.issued(&der) => {
                (der, key)
            }
            existing => match self.issue_edge_cert(&cert_path, &key_path) {
                Ok(pair) => pair,
                // A read-only data directory (a Kubernetes secret, say) cannot take the new
                // files: keep serving the old certificate while it is valid, and say so.
                Err(e) => match existing {
                    Some((der, key))
                        if !expires_within(&der, Duration::ZERO) && self.issued(&der) =>
                    {
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

impl Ca {
    /// Whether this CA's name is the issuer of `der` (each CA has a name of its own).
    pub fn issued(&self, der: &[u8]) -> bool {
        let subject = x509_parser::parse_x509_certificate(&self.cert_der)
            .map(|(_, c)| c.subject().as_raw().to_vec());
        let issuer =
            x509_parser::parse_x509_certificate(der).map(|(_, c)| c.issuer().as_raw().to_vec());
        matches!((subject, issuer), (Ok(s), Ok(i)) if s == i)
    }
}

/// The CAs the edge works with at one phase of a rotation: the one that issues (and whose
/// edge certificate is presented), and every one an agent certificate may chain to.
#[derive(Debug)]
pub struct CaSet {
    /// The CA that signs agent and edge certificates now.
    pub active: Ca,
    /// Other CAs still trusted (the previous one until retired, or the published next one).
    pub also_trusted: Vec<CertificateDer<'static>>,
    /// Sent after the edge certificate while the previous CA is still trusted: the active
    /// CA signed by the previous one, for agents that trust only that.
    pub cross: Option<CertificateDer<'static>>,
}

impl CaSet {
    /// A set of one CA, no rotation under way.
    pub fn single(active: Ca) -> CaSet {
        CaSet {
            active,
            also_trusted: Vec::new(),
            cross: None,
        }
    }

    /// Every trusted CA, the active one first.
    pub fn trusted(&self) -> Vec<CertificateDer<'static>> {
        let mut all = vec![self.active.cert_der.clone()];
        all.extend(self.also_trusted.iter().cloned());
        all
    }

    /// Every trusted CA as PEM, the active one first (the agents' trust bundle).
    pub fn bundle_pems(&self) -> Vec<String> {
        self.trusted().iter().map(|der| der_to_pem(der)).collect()
    }

    /// The edge's chain and key: its certificate by the active CA, then the cross certificate
    /// while the previous CA is trusted, then the active CA itself (pinned by enrollment).
    pub fn edge_identity(
        &self,
    ) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), PkiError> {
        let (mut chain, key) = self.active.edge_identity()?;
        if let Some(cross) = &self.cross {
            // Before the active CA: an agent of the previous CA finds its path here first.
            chain.insert(1, cross.clone());
        }
        Ok((chain, key))
    }
}

/// PEM text of a DER certificate.
pub fn der_to_pem(der: &[u8]) -> String {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = String::from("-----BEGIN CERTIFICATE-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).expect("base64 is ASCII"));
        out.push('\n');
    }
    out.push_str("-----END CERTIFICATE-----\n");
    out
}

fn ca_params(name: &str) -> Result<CertificateParams, PkiError> {
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, name);
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
    Ok(params)
}

fn new_ca(name: &str) -> Result<(KeyPair, rcgen::Certificate), PkiError> {
    let key = KeyPair::generate()?;
    let cert = ca_params(name)?.self_signed(&key)?;
    Ok((key, cert))
}

/// Replaces `path` atomically: written and synced beside it, then renamed over it.
fn replace_file(path: &Path, contents: &str, mode: u32) -> Result<(), PkiError> {
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
    fs::rename(&tmp, path).map_err(io_err(path))
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

    /// Whether a client trusting only `roots` accepts the edge's chain of `set`.
    fn accepted(set: &CaSet, roots: &[&Ca]) -> bool {
        use rustls::client::danger::ServerCertVerifier;
        let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
        let mut store = rustls::RootCertStore::empty();
        for ca in roots {
            store.add(ca.cert_der().clone()).unwrap();
        }
        let verifier =
            rustls::client::WebPkiServerVerifier::builder_with_provider(store.into(), provider)
                .build()
                .unwrap();
        let (chain, _) = set.edge_identity().unwrap();
        let name =
            rustls::pki_types::ServerName::try_from(mikrobill_protocol::CONTROLLER_SERVER_NAME)
                .unwrap();
        verifier
            .verify_server_cert(
                &chain[0],
                &chain[1..],
                &name,
                &[],
                rustls::pki_types::UnixTime::now(),
            )
            .is_ok()
    }

    #[test]
    fn the_cross_certificate_carries_old_agents_until_retirement() {
        let dir = tempfile::tempdir().unwrap();
        let old = Ca::load_or_create(dir.path()).unwrap();
        let new = old.create_successor(Slot::Next).unwrap();
        assert_ne!(new.fingerprint(), old.fingerprint());
        let mode = fs::metadata(dir.path().join(NEXT_KEY))
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600, "the new CA's key is private");
        let reload = || Ca::load(dir.path(), Slot::Next).unwrap();
        let old_again = || Ca::load(dir.path(), Slot::First).unwrap();
        // Active: the edge certificate is the new CA's, and the chain carries the cross
        // certificate, so an agent that trusts only the old CA accepts it, as does one that
        // trusts only the new.
        let active = CaSet {
            active: reload(),
            also_trusted: vec![old.cert_der().clone()],
            cross: Ca::cross_cert(dir.path()).unwrap(),
        };
        let (chain, _) = active.edge_identity().unwrap();
        assert!(new.issued(&chain[0]) && !old.issued(&chain[0]));
        assert!(accepted(&active, &[&old_again()]));
        assert!(accepted(&active, &[&reload()]));
        // Retired: only the new CA's chain; an agent of the old CA alone refuses it.
        let retired = CaSet::single(reload());
        assert!(!accepted(&retired, &[&old_again()]));
        assert!(accepted(&retired, &[&reload(), &old_again()]));
        assert_eq!(active.bundle_pems().len(), 2);
        assert_eq!(
            pem_to_der(&active.bundle_pems()[0]).unwrap(),
            *new.cert_der(),
            "the issuing CA first"
        );
    }
}
