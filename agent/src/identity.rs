//! The agent's identity on disk: its private key (never leaves the machine), its
//! certificate, the controller's CAs (`ca.crt`, one or, during a CA rotation, several PEM
//! certificates, the issuing one first) and where to reach the controller.

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde::{Deserialize, Serialize};
use std::fs;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

const KEY_FILE: &str = "agent.key";
const CERT_FILE: &str = "agent.crt";
const CA_FILE: &str = "ca.crt";
const STATE_FILE: &str = "agent.toml";

/// Errors reading or writing the identity.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// The agent has not enrolled yet.
    #[error(
        "this agent is not enrolled ({0} is missing): run `mikrobill-agent enroll --token ...` first"
    )]
    NotEnrolled(PathBuf),
    /// File access failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What the system said.
        source: std::io::Error,
    },
    /// A file is damaged.
    #[error("{path}: {message}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
}

/// What the agent remembers about its enrollment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnrollmentState {
    /// Controller edge address (`host:port`).
    pub controller_addr: String,
    /// Site id from the certificate.
    pub site_id: String,
    /// Site display name.
    pub site_name: String,
}

/// A loaded identity, ready for TLS.
#[derive(Debug)]
pub struct Identity {
    /// Enrollment facts.
    pub state: EnrollmentState,
    /// The agent certificate.
    pub cert: CertificateDer<'static>,
    /// The agent private key.
    pub key: PrivateKeyDer<'static>,
    /// The controller's CAs, the one issuing agent certificates first.
    pub ca: Vec<CertificateDer<'static>>,
}

impl Identity {
    /// Whether the agent's certificate was issued by the CA that issues now (the first of
    /// the bundle); false means a CA rotation wants it renewed onto that one.
    pub fn issued_by_current_ca(&self) -> bool {
        match self.ca.first() {
            Some(ca) => issued_by(&self.cert, ca),
            None => true,
        }
    }
}

/// Whether `ca`'s name is the issuer of `cert` (each controller CA has a name of its own).
pub fn issued_by(cert: &CertificateDer<'_>, ca: &CertificateDer<'_>) -> bool {
    let issuer =
        x509_parser::parse_x509_certificate(cert).map(|(_, c)| c.issuer().as_raw().to_vec());
    let subject =
        x509_parser::parse_x509_certificate(ca).map(|(_, c)| c.subject().as_raw().to_vec());
    matches!((issuer, subject), (Ok(i), Ok(s)) if i == s)
}

/// Every certificate of a PEM text; an error names what is wrong.
pub fn parse_bundle(pem: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| e.to_string())?;
    if certs.is_empty() {
        return Err("no certificate".into());
    }
    for cert in &certs {
        let (_, parsed) = x509_parser::parse_x509_certificate(cert).map_err(|e| e.to_string())?;
        if !parsed.is_ca() {
            return Err(format!("{} is not a CA", parsed.subject()));
        }
    }
    Ok(certs)
}

/// Stores the controller's trust bundle (the CAs of a rotation, the issuing one first) in
/// place of `ca.crt`, atomically; returns the parsed CAs when they differ from the stored
/// ones, `None` when nothing changed.
pub fn store_trust(
    dir: &Path,
    ca_pems: &[String],
) -> Result<Option<Vec<CertificateDer<'static>>>, IdentityError> {
    let path = dir.join(CA_FILE);
    let text: String = ca_pems.concat();
    let certs = parse_bundle(&text).map_err(|e| corrupt(&path, format!("trust bundle: {e}")))?;
    let stored = fs::read_to_string(&path).ok();
    let stored = stored.as_deref().and_then(|s| parse_bundle(s).ok());
    if stored.as_ref() == Some(&certs) {
        return Ok(None);
    }
    write_file(&path, &text, 0o644)?;
    Ok(Some(certs))
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> IdentityError + '_ {
    move |source| IdentityError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn corrupt(path: &Path, message: impl ToString) -> IdentityError {
    IdentityError::Corrupt {
        path: path.to_path_buf(),
        message: message.to_string(),
    }
}

/// Whether `dir` holds an enrollment.
pub fn is_enrolled(dir: &Path) -> bool {
    dir.join(CERT_FILE).exists() && dir.join(STATE_FILE).exists()
}

/// A renewed key and certificate, written but not yet in place.
const KEY_NEXT: &str = "agent.key.next";
const CERT_NEXT: &str = "agent.crt.next";

/// Finishes a renewal a crash interrupted: the key is renamed into place before the
/// certificate, so a waiting certificate means its key is in place already, and a waiting
/// key means neither was (both are then moved, key first).
fn finish_renewal(dir: &Path) -> Result<(), IdentityError> {
    let key_next = dir.join(KEY_NEXT);
    let cert_next = dir.join(CERT_NEXT);
    if !cert_next.exists() {
        // A key without its certificate was never used: the old pair is still whole.
        let _ = fs::remove_file(&key_next);
        return Ok(());
    }
    if key_next.exists() {
        fs::rename(&key_next, dir.join(KEY_FILE)).map_err(io(&key_next))?;
    }
    fs::rename(&cert_next, dir.join(CERT_FILE)).map_err(io(&cert_next))
}

/// Stores a renewed key and certificate so that a crash at any point leaves a matching
/// pair: both are written and synced beside the old ones, then renamed key first (a load
/// finishes what a crash interrupted).
pub fn store_renewed(dir: &Path, key_pem: &str, cert_pem: &str) -> Result<(), IdentityError> {
    let key_next = dir.join(KEY_NEXT);
    let cert_next = dir.join(CERT_NEXT);
    write_file(&key_next, key_pem, 0o600)?;
    write_file(&cert_next, cert_pem, 0o644)?;
    finish_renewal(dir)
}

/// Loads the identity from `dir`.
pub fn load(dir: &Path) -> Result<Identity, IdentityError> {
    finish_renewal(dir)?;
    for f in [STATE_FILE, KEY_FILE, CERT_FILE, CA_FILE] {
        if !dir.join(f).exists() {
            return Err(IdentityError::NotEnrolled(dir.join(f)));
        }
    }
    let state_path = dir.join(STATE_FILE);
    let state: EnrollmentState =
        toml::from_str(&fs::read_to_string(&state_path).map_err(io(&state_path))?)
            .map_err(|e| corrupt(&state_path, e))?;
    let key_path = dir.join(KEY_FILE);
    let key = PrivateKeyDer::from_pem_file(&key_path).map_err(|e| corrupt(&key_path, e))?;
    let cert_path = dir.join(CERT_FILE);
    let cert = CertificateDer::from_pem_file(&cert_path).map_err(|e| corrupt(&cert_path, e))?;
    let ca_path = dir.join(CA_FILE);
    let ca = parse_bundle(&fs::read_to_string(&ca_path).map_err(io(&ca_path))?)
        .map_err(|e| corrupt(&ca_path, e))?;
    Ok(Identity {
        state,
        cert,
        key,
        ca,
    })
}

fn write_file(path: &Path, contents: &str, mode: u32) -> Result<(), IdentityError> {
    let tmp = path.with_extension("tmp");
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(&tmp)
        .map_err(io(&tmp))?;
    f.write_all(contents.as_bytes()).map_err(io(&tmp))?;
    f.sync_all().map_err(io(&tmp))?;
    fs::rename(&tmp, path).map_err(io(path))
}

/// Stores a new identity; the state file goes last, so a crash midway leaves "not enrolled".
pub fn store(
    dir: &Path,
    state: &EnrollmentState,
    key_pem: &str,
    cert_pem: &str,
    ca_pem: &str,
) -> Result<(), IdentityError> {
    fs::create_dir_all(dir).map_err(io(dir))?;
    let _ = fs::remove_file(dir.join(STATE_FILE));
    write_file(&dir.join(KEY_FILE), key_pem, 0o600)?;
    write_file(&dir.join(CERT_FILE), cert_pem, 0o644)?;
    write_file(&dir.join(CA_FILE), ca_pem, 0o644)?;
    let text = toml::to_string(state).map_err(|e| corrupt(&dir.join(STATE_FILE), e))?;
    write_file(&dir.join(STATE_FILE), &text, 0o644)
}

/// The certificate's validity (not before, not after; UTC ms), if readable.
pub fn cert_validity_ms(cert: &CertificateDer<'_>) -> Option<(i64, i64)> {
    let (_, parsed) = x509_parser::parse_x509_certificate(cert).ok()?;
    let v = parsed.validity();
    Some((
        v.not_before.timestamp() * 1000,
        v.not_after.timestamp() * 1000,
    ))
}

/// When the certificate's validity ends (UTC ms), if readable.
pub fn cert_not_after_ms(cert: &CertificateDer<'_>) -> Option<i64> {
    cert_validity_ms(cert).map(|(_, not_after)| not_after)
}

/// Seconds until the certificate's validity ends (negative once it has).
pub fn cert_expires_in_secs(cert: &CertificateDer<'_>) -> Option<i64> {
    let (_, parsed) = x509_parser::parse_x509_certificate(cert).ok()?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .ok()?
        .as_secs() as i64;
    Some(parsed.validity().not_after.timestamp() - now)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ca_pem(name: &str) -> String {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::default();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params.self_signed(&key).unwrap().pem()
    }

    #[test]
    fn a_trust_bundle_replaces_the_stored_cas_only_when_it_differs() {
        let dir = tempfile::tempdir().unwrap();
        let (old, new) = (ca_pem("old"), ca_pem("new"));
        fs::write(dir.path().join(CA_FILE), &old).unwrap();
        let stored = store_trust(dir.path(), &[old.clone(), new.clone()])
            .unwrap()
            .expect("changed");
        assert_eq!(stored.len(), 2);
        assert!(
            store_trust(dir.path(), &[old.clone(), new.clone()])
                .unwrap()
                .is_none()
        );
        let stored = store_trust(dir.path(), std::slice::from_ref(&new))
            .unwrap()
            .expect("changed");
        assert_eq!(stored.len(), 1);
        assert_eq!(fs::read_to_string(dir.path().join(CA_FILE)).unwrap(), new);
        // Garbage or an empty bundle is refused and the stored CAs stay.
        assert!(store_trust(dir.path(), &[]).is_err());
        assert!(store_trust(dir.path(), &["not a certificate".into()]).is_err());
        assert_eq!(fs::read_to_string(dir.path().join(CA_FILE)).unwrap(), new);
    }
}
