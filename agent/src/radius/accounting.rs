//! Accounting-Request to [`AccountingRecord`].
//!
//! Direction: RFC 2866 counts Acct-Input-Octets as received from the subscriber's port
//! (upload) and Acct-Output-Octets as sent to it (download). RouterOS's documentation is
//! ambiguous about this [unverified]; the record keeps the RADIUS names so the mapping lives
//! here and nowhere else.

use mikrobill_protocol::accounting::{AccountingRecord, AcctStatus, RecordId};
use mikrobill_radius::{Packet, dict};
use std::net::{IpAddr, SocketAddr};

fn counter(req: &Packet, octets: u8, gigawords: u8) -> u64 {
    ((req.get_u32(gigawords).unwrap_or(0) as u64) << 32) | req.get_u32(octets).unwrap_or(0) as u64
}

/// Builds the record for a verified Accounting-Request; errors name what is missing.
pub fn record_from(
    req: &Packet,
    nas_name: &str,
    from: SocketAddr,
    now_ms: i64,
) -> Result<AccountingRecord, String> {
    let status = match req.get_u32(dict::ACCT_STATUS_TYPE) {
        Some(dict::acct_status::START) => AcctStatus::Start,
        Some(dict::acct_status::STOP) => AcctStatus::Stop,
        Some(dict::acct_status::INTERIM_UPDATE) => AcctStatus::InterimUpdate,
        Some(dict::acct_status::ACCOUNTING_ON) => AcctStatus::AccountingOn,
        Some(dict::acct_status::ACCOUNTING_OFF) => AcctStatus::AccountingOff,
        Some(other) => return Err(format!("unsupported Acct-Status-Type {other}")),
        None => return Err("Acct-Status-Type missing".into()),
    };
    let nas_wide = matches!(status, AcctStatus::AccountingOn | AcctStatus::AccountingOff);
    let session_id = req.get_string(dict::ACCT_SESSION_ID).unwrap_or_default();
    if session_id.is_empty() && !nas_wide {
        return Err("Acct-Session-Id missing".into());
    }
    let nas_identifier = req
        .get_string(dict::NAS_IDENTIFIER)
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| nas_name.to_string());
    let session_time_secs = req.get_u32(dict::ACCT_SESSION_TIME).unwrap_or(0) as u64;
    let delay_ms = req.get_u32(dict::ACCT_DELAY_TIME).unwrap_or(0) as i64 * 1000;
    let event_time_ms = now_ms - delay_ms;
    // Whatever a retransmission repeats identifies the event: the session time for interim
    // updates, the NAS's own timestamp for NAS-wide events.
    let sequence = match status {
        AcctStatus::InterimUpdate => session_time_secs,
        AcctStatus::AccountingOn | AcctStatus::AccountingOff => req
            .get_u32(dict::EVENT_TIMESTAMP)
            .map(u64::from)
            .unwrap_or((event_time_ms / 1000) as u64),
        AcctStatus::Start | AcctStatus::Stop => 0,
    };
    Ok(AccountingRecord {
        id: RecordId::derive(&nas_identifier, &session_id, status, sequence),
        nas_ip: req.get_ipv4(dict::NAS_IP_ADDRESS).or(match from.ip() {
            IpAddr::V4(v4) => Some(v4),
            IpAddr::V6(v6) => v6.to_ipv4_mapped(),
        }),
        nas_identifier,
        session_id,
        username: req.get_string(dict::USER_NAME).unwrap_or_default(),
        status,
        event_time_ms,
        session_time_secs,
        input_octets: counter(req, dict::ACCT_INPUT_OCTETS, dict::ACCT_INPUT_GIGAWORDS),
        output_octets: counter(req, dict::ACCT_OUTPUT_OCTETS, dict::ACCT_OUTPUT_GIGAWORDS),
        input_packets: req.get_u32(dict::ACCT_INPUT_PACKETS).unwrap_or(0) as u64,
        output_packets: req.get_u32(dict::ACCT_OUTPUT_PACKETS).unwrap_or(0) as u64,
        terminate_cause: req.get_u32(dict::ACCT_TERMINATE_CAUSE),
        framed_ip: req.get_ipv4(dict::FRAMED_IP_ADDRESS),
        calling_station_id: req.get_string(dict::CALLING_STATION_ID),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use mikrobill_radius::Code;

    #[test]
    fn gigawords_fold_in_and_retransmissions_share_an_id() {
        let mut req = Packet::new(Code::AccountingRequest, 1, [0; 16]);
        req.push_u32(dict::ACCT_STATUS_TYPE, dict::acct_status::INTERIM_UPDATE);
        req.push(dict::ACCT_SESSION_ID, b"81a00001".to_vec());
        req.push(dict::USER_NAME, b"ABC".to_vec());
        req.push_u32(dict::ACCT_SESSION_TIME, 600);
        req.push_u32(dict::ACCT_INPUT_OCTETS, 5);
        req.push_u32(dict::ACCT_INPUT_GIGAWORDS, 2);
        req.push_u32(dict::ACCT_OUTPUT_OCTETS, 7);
        let from = "172.17.0.1:40000".parse().unwrap();
        let a = record_from(&req, "router", from, 1_000_000).unwrap();
        assert_eq!(a.input_octets, (2u64 << 32) + 5);
        assert_eq!(a.output_octets, 7);
        assert_eq!(a.nas_identifier, "router");
        assert_eq!(a.nas_ip, Some([172, 17, 0, 1].into()));
        let b = record_from(&req, "router", from, 2_000_000).unwrap();
        assert_eq!(a.id, b.id, "a retransmission is the same event");
        req.attributes.retain(|a| a.typ != dict::ACCT_SESSION_ID);
        assert_eq!(
            record_from(&req, "router", from, 0).unwrap_err(),
            "Acct-Session-Id missing"
        );
    }
}
