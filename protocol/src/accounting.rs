//! Accounting records as the agent stores them and the controller ingests them.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fmt;
use std::net::Ipv4Addr;

/// Acct-Status-Type of a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum AcctStatus {
    /// Session started.
    Start,
    /// Session ended.
    Stop,
    /// Periodic update of a running session.
    InterimUpdate,
    /// The NAS came up (all its sessions are gone).
    AccountingOn,
    /// The NAS is going down.
    AccountingOff,
}

impl AcctStatus {
    /// Stable name used in storage.
    pub fn as_str(self) -> &'static str {
        match self {
            AcctStatus::Start => "start",
            AcctStatus::Stop => "stop",
            AcctStatus::InterimUpdate => "interim-update",
            AcctStatus::AccountingOn => "accounting-on",
            AcctStatus::AccountingOff => "accounting-off",
        }
    }

    /// The status stored as `name` ([`AcctStatus::as_str`]), if it is one.
    pub fn from_name(name: &str) -> Option<AcctStatus> {
        [
            AcctStatus::Start,
            AcctStatus::Stop,
            AcctStatus::InterimUpdate,
            AcctStatus::AccountingOn,
            AcctStatus::AccountingOff,
        ]
        .into_iter()
        .find(|s| s.as_str() == name)
    }
}

/// Stable identity of an accounting record: the same event always yields the same id, so a
/// record replayed by the router, the agent or the link is stored once.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct RecordId(pub [u8; 16]);

impl RecordId {
    /// Derives the id from what identifies an accounting event: NAS, session, status and a
    /// per-session sequence (for interim updates the session time, which a retransmission repeats).
    pub fn derive(
        nas_identifier: &str,
        session_id: &str,
        status: AcctStatus,
        sequence: u64,
    ) -> Self {
        let mut h = Sha256::new();
        for part in [
            nas_identifier.as_bytes(),
            session_id.as_bytes(),
            status.as_str().as_bytes(),
        ] {
            h.update((part.len() as u32).to_be_bytes());
            h.update(part);
        }
        h.update(sequence.to_be_bytes());
        let digest = h.finalize();
        let mut id = [0u8; 16];
        id.copy_from_slice(&digest[..16]);
        RecordId(id)
    }

    /// Lower-case hex form, as stored by the controller.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// The id whose [`RecordId::to_hex`] is `hex`, if it is one.
    pub fn from_hex(hex: &str) -> Option<RecordId> {
        let mut id = [0u8; 16];
        hex::decode_to_slice(hex, &mut id).ok()?;
        Some(RecordId(id))
    }
}

impl fmt::Debug for RecordId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RecordId({})", self.to_hex())
    }
}

/// One accounting event from the router.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountingRecord {
    /// Stable id for idempotent ingest.
    pub id: RecordId,
    /// NAS-Identifier (the router's identity).
    pub nas_identifier: String,
    /// NAS-IP-Address.
    pub nas_ip: Option<Ipv4Addr>,
    /// Acct-Session-Id.
    pub session_id: String,
    /// User-Name.
    pub username: String,
    /// Acct-Status-Type.
    pub status: AcctStatus,
    /// When the agent received the event (UTC, unix milliseconds).
    pub event_time_ms: i64,
    /// Acct-Session-Time in seconds.
    pub session_time_secs: u64,
    /// Octets from the subscriber, gigawords folded in.
    pub input_octets: u64,
    /// Octets to the subscriber, gigawords folded in.
    pub output_octets: u64,
    /// Packets from the subscriber.
    pub input_packets: u64,
    /// Packets to the subscriber.
    pub output_packets: u64,
    /// Acct-Terminate-Cause on Stop.
    pub terminate_cause: Option<u32>,
    /// Framed-IP-Address.
    pub framed_ip: Option<Ipv4Addr>,
    /// Calling-Station-Id (client MAC).
    pub calling_station_id: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_forms_read_back() {
        let id = RecordId::derive("nas1", "81a00001", AcctStatus::Stop, 7);
        assert_eq!(RecordId::from_hex(&id.to_hex()), Some(id));
        assert_eq!(RecordId::from_hex("zz"), None);
        assert_eq!(RecordId::from_hex(&"ab".repeat(17)), None);
        for s in [
            AcctStatus::Start,
            AcctStatus::Stop,
            AcctStatus::InterimUpdate,
            AcctStatus::AccountingOn,
            AcctStatus::AccountingOff,
        ] {
            assert_eq!(AcctStatus::from_name(s.as_str()), Some(s));
        }
        assert_eq!(AcctStatus::from_name("Start"), None);
    }

    #[test]
    fn record_id_is_stable_and_distinguishes_fields() {
        let a = RecordId::derive("nas1", "81a00001", AcctStatus::InterimUpdate, 300);
        assert_eq!(
            a,
            RecordId::derive("nas1", "81a00001", AcctStatus::InterimUpdate, 300)
        );
        assert_ne!(
            a,
            RecordId::derive("nas1", "81a00001", AcctStatus::InterimUpdate, 360)
        );
        assert_ne!(
            a,
            RecordId::derive("nas1", "81a00001", AcctStatus::Stop, 300)
        );
        assert_ne!(
            a,
            RecordId::derive("nas2", "81a00001", AcctStatus::InterimUpdate, 300)
        );
        // Length prefixes keep field boundaries: ("ab","c") differs from ("a","bc").
        assert_ne!(
            RecordId::derive("ab", "c", AcctStatus::Start, 0),
            RecordId::derive("a", "bc", AcctStatus::Start, 0)
        );
        assert_eq!(a.to_hex().len(), 32);
    }
}
