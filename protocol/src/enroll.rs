//! Enrollment: the one-time token and the CSR exchange.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Prefix that marks a MikroBill enrollment token (version 1 of the token format).
pub const TOKEN_PREFIX: &str = "mbe1.";

/// What a technician pastes into `mikrobill-agent enroll`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnrollmentToken {
    /// Where the agent reaches the controller's edge (`host:port`).
    pub controller_addr: String,
    /// SHA-256 of the controller CA certificate (DER), pinning the enrollment connection.
    pub ca_fingerprint: [u8; 32],
    /// The one-time secret; the controller keeps only its hash.
    pub secret: [u8; 32],
}

impl std::fmt::Debug for EnrollmentToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EnrollmentToken")
            .field("controller_addr", &self.controller_addr)
            .field("ca_fingerprint", &hex::encode(self.ca_fingerprint))
            .field("secret", &"<redacted>")
            .finish()
    }
}

/// Why a token string could not be read.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// Wrong prefix: not a token, or a format this build does not know.
    #[error("not a MikroBill enrollment token (expected it to start with {TOKEN_PREFIX:?})")]
    Prefix,
    /// Not base64url.
    #[error("enrollment token is not valid base64url: {0}")]
    Base64(#[from] base64::DecodeError),
    /// Decodes, but not to a token (damaged when copied?).
    #[error("enrollment token is damaged: {0}")]
    Decode(#[from] postcard::Error),
}

impl EnrollmentToken {
    /// The text form handed to technicians.
    pub fn encode(&self) -> String {
        let bytes = postcard::to_stdvec(self).expect("token always encodes");
        format!("{TOKEN_PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes))
    }

    /// Parses the text form.
    pub fn decode(s: &str) -> Result<Self, TokenError> {
        let body = s
            .trim()
            .strip_prefix(TOKEN_PREFIX)
            .ok_or(TokenError::Prefix)?;
        let bytes = URL_SAFE_NO_PAD.decode(body)?;
        Ok(postcard::from_bytes(&bytes)?)
    }

    /// The hash under which the controller stores this token.
    pub fn secret_hash(&self) -> String {
        secret_hash(&self.secret)
    }
}

/// Hex SHA-256 of a token secret.
pub fn secret_hash(secret: &[u8]) -> String {
    hex::encode(Sha256::digest(secret))
}

/// Hex SHA-256 fingerprint of a DER certificate.
pub fn fingerprint(der: &[u8]) -> [u8; 32] {
    Sha256::digest(der).into()
}

/// The agent's enrollment request, the only frame it sends on an enrollment connection.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnrollRequest {
    /// Protocol version the agent speaks.
    pub protocol_version: u16,
    /// The token secret.
    pub secret: [u8; 32],
    /// PKCS#10 certificate signing request (DER) for the agent's own key.
    pub csr_der: Vec<u8>,
    /// The agent's software version, for display.
    pub agent_version: String,
}

impl std::fmt::Debug for EnrollRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EnrollRequest")
            .field("protocol_version", &self.protocol_version)
            .field("secret", &"<redacted>")
            .field("csr_der_len", &self.csr_der.len())
            .finish()
    }
}

/// The controller's answer to an [`EnrollRequest`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum EnrollReply {
    /// The certificate was issued.
    Issued {
        /// Site id named in the certificate.
        site_id: String,
        /// Site display name.
        site_name: String,
        /// The agent's certificate (PEM).
        certificate_pem: String,
        /// The controller CA certificate (PEM), trusted for all later connections.
        ca_certificate_pem: String,
    },
    /// Enrollment refused.
    Refused {
        /// Why, in words for the technician.
        message: String,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_round_trips_and_hides_secret_in_debug() {
        let t = EnrollmentToken {
            controller_addr: "203.0.113.5:4433".into(),
            ca_fingerprint: [7; 32],
            secret: [9; 32],
        };
        let s = t.encode();
        assert!(s.starts_with(TOKEN_PREFIX));
        assert_eq!(EnrollmentToken::decode(&format!("  {s}\n")).unwrap(), t);
        assert!(!format!("{t:?}").contains("9, 9"));
    }

    #[test]
    fn bad_tokens_say_what_is_wrong() {
        assert!(matches!(
            EnrollmentToken::decode("hello"),
            Err(TokenError::Prefix)
        ));
        assert!(matches!(
            EnrollmentToken::decode("mbe1.@@@"),
            Err(TokenError::Base64(_))
        ));
        assert!(matches!(
            EnrollmentToken::decode("mbe1.AAAA"),
            Err(TokenError::Decode(_))
        ));
    }
}
