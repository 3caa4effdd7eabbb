//! Packet codec: strict decoding errors, encoding limits, attribute accessors, VSAs.

use std::net::Ipv4Addr;

use mikrobill_radius::dict::{self, microsoft, mikrotik};
use mikrobill_radius::{Code, DecodeError, EncodeError, MAX_PACKET_LEN, Packet};

/// A valid Accounting-Request header with the given length field and attribute bytes.
fn raw(code: u8, length: u16, attributes: &[u8]) -> Vec<u8> {
    let mut v = vec![code, 9];
    v.extend_from_slice(&length.to_be_bytes());
    v.extend_from_slice(&[0xAB; 16]);
    v.extend_from_slice(attributes);
    v
}

#[test]
fn codes_round_trip() {
    for v in 0..=255u8 {
        if let Some(c) = Code::from_u8(v) {
            assert_eq!(c.as_u8(), v);
        }
    }
    assert_eq!(Code::from_u8(1), Some(Code::AccessRequest));
    assert_eq!(Code::from_u8(45), Some(Code::CoaNak));
    assert_eq!(Code::from_u8(12), None);
    assert_eq!(Code::from_u8(0), None);
}

#[test]
fn decodes_a_simple_packet() {
    let bytes = raw(
        4,
        20 + 6 + 6,
        &[1, 6, b'b', b'o', b'b', b'!', 40, 6, 0, 0, 0, 1],
    );
    let p = Packet::decode(&bytes).expect("valid");
    assert_eq!(p.code, Code::AccountingRequest);
    assert_eq!(p.identifier, 9);
    assert_eq!(p.authenticator, [0xAB; 16]);
    assert_eq!(p.get_string(dict::USER_NAME).as_deref(), Some("bob!"));
    assert_eq!(
        p.get_u32(dict::ACCT_STATUS_TYPE),
        Some(dict::acct_status::START)
    );
    assert_eq!(p.encode().expect("encodes"), bytes);
}

#[test]
fn octets_past_the_length_field_are_padding() {
    let mut bytes = raw(5, 20, &[]);
    bytes.extend_from_slice(&[1, 200, 7]);
    let p = Packet::decode(&bytes).expect("padding ignored");
    assert!(p.attributes.is_empty());
    assert_eq!(p.encode().expect("encodes"), &bytes[..20]);
}

#[test]
fn truncated_header() {
    let err = Packet::decode(&raw(1, 20, &[])[..19]).unwrap_err();
    assert_eq!(err, DecodeError::TruncatedHeader(19));
    assert_eq!(
        err.to_string(),
        "packet is 19 bytes, shorter than the 20-byte RADIUS header"
    );
    assert_eq!(
        Packet::decode(&[]).unwrap_err(),
        DecodeError::TruncatedHeader(0)
    );
}

#[test]
fn length_field_larger_than_buffer() {
    let err = Packet::decode(&raw(1, 30, &[1, 3, b'x'])).unwrap_err();
    assert_eq!(
        err,
        DecodeError::LengthExceedsBuffer {
            length: 30,
            received: 23
        }
    );
    assert_eq!(
        err.to_string(),
        "packet length field 30 exceeds the 23 bytes received"
    );
}

#[test]
fn length_field_above_4096() {
    let mut bytes = raw(1, 5000, &[]);
    bytes.resize(6000, 0);
    let err = Packet::decode(&bytes).unwrap_err();
    assert_eq!(err, DecodeError::LengthTooLarge(5000));
    assert_eq!(err.to_string(), "packet length field 5000 exceeds 4096");
}

#[test]
fn length_field_below_20() {
    let err = Packet::decode(&raw(1, 19, &[0])).unwrap_err();
    assert_eq!(err, DecodeError::LengthTooSmall(19));
    assert_eq!(
        err.to_string(),
        "packet length field 19 is below the minimum of 20"
    );
}

#[test]
fn unknown_code() {
    let err = Packet::decode(&raw(12, 20, &[])).unwrap_err();
    assert_eq!(err, DecodeError::UnknownCode(12));
    assert_eq!(err.to_string(), "unknown packet code 12");
}

#[test]
fn attribute_length_zero_and_one() {
    for len in [0u8, 1] {
        let err = Packet::decode(&raw(1, 26, &[1, 3, b'x', 31, len, 0])).unwrap_err();
        assert_eq!(
            err,
            DecodeError::AttributeTooShort {
                offset: 23,
                typ: 31,
                len
            }
        );
        assert_eq!(
            err.to_string(),
            format!("attribute type 31 at offset 23 has length {len}, below the minimum of 2")
        );
    }
}

#[test]
fn attribute_overrunning_the_packet() {
    // Room for the attribute exists in the buffer, but not within the length field.
    let err = Packet::decode(&raw(1, 25, &[1, 6, b'a', b'b', b'c', b'd'])).unwrap_err();
    assert_eq!(
        err,
        DecodeError::AttributeOverrun {
            offset: 20,
            typ: 1,
            len: 6,
            remaining: 5
        }
    );
    assert_eq!(
        err.to_string(),
        "attribute type 1 at offset 20 has length 6 but only 5 bytes remain in the packet"
    );
}

#[test]
fn attribute_header_cut_off() {
    let err = Packet::decode(&raw(1, 21, &[1])).unwrap_err();
    assert_eq!(err, DecodeError::TruncatedAttributeHeader { offset: 20 });
    assert_eq!(
        err.to_string(),
        "attribute at offset 20 is cut off: only its type octet fits in the packet"
    );
}

#[test]
fn encode_limits() {
    let mut p = Packet::new(Code::AccessAccept, 1, [0; 16]);
    p.push(dict::REPLY_MESSAGE, vec![b'x'; 253]);
    assert_eq!(p.encode().expect("253 fits").len(), 20 + 255);
    p.push(dict::CLASS, vec![0; 254]);
    let err = p.encode().unwrap_err();
    assert_eq!(err, EncodeError::AttributeTooLong { typ: 25, len: 254 });
    assert_eq!(
        err.to_string(),
        "attribute type 25 has a 254-byte value; at most 253 bytes fit"
    );

    let mut p = Packet::new(Code::AccessAccept, 1, [0; 16]);
    for _ in 0..16 {
        p.push(dict::REPLY_MESSAGE, vec![b'x'; 253]);
    }
    let err = p.encode().unwrap_err();
    assert_eq!(err, EncodeError::PacketTooLong(20 + 16 * 255));
    p.attributes.pop();
    let bytes = p.encode().expect("fits");
    assert!(bytes.len() <= MAX_PACKET_LEN);
    assert_eq!(Packet::decode(&bytes).expect("decodes"), p);
}

#[test]
fn accessors() {
    let mut p = Packet::new(Code::AccessRequest, 3, [1; 16]);
    p.push(dict::CLASS, b"one".to_vec());
    p.push(dict::CLASS, &b"two"[..]);
    p.push_u32(dict::SESSION_TIMEOUT, 3600);
    p.push_ipv4(dict::FRAMED_IP_ADDRESS, Ipv4Addr::new(10, 0, 0, 7));
    p.push(dict::NAS_PORT, vec![0, 0, 1]);
    p.push(dict::FILTER_ID, vec![0xff, b'a']);

    assert_eq!(p.get(dict::CLASS), Some(&b"one"[..]));
    let all: Vec<&[u8]> = p.get_all(dict::CLASS).collect();
    assert_eq!(all, vec![&b"one"[..], &b"two"[..]]);
    assert_eq!(p.get_u32(dict::SESSION_TIMEOUT), Some(3600));
    assert_eq!(
        p.get_ipv4(dict::FRAMED_IP_ADDRESS),
        Some(Ipv4Addr::new(10, 0, 0, 7))
    );
    assert_eq!(p.get_u32(dict::NAS_PORT), None, "3 bytes is not an integer");
    assert_eq!(p.get_u32(dict::CLASS), None);
    assert_eq!(p.get_string(dict::FILTER_ID).as_deref(), Some("\u{fffd}a"));
    assert_eq!(p.get(dict::USER_NAME), None);
    assert_eq!(p.get_string(dict::USER_NAME), None);

    p.remove_all(dict::CLASS);
    assert_eq!(p.get(dict::CLASS), None);
    assert_eq!(p.attributes.len(), 4);
}

#[test]
fn vendor_attribute_with_two_sub_attributes() {
    // One MikroTik VSA carrying Mikrotik-Group "gold" and Mikrotik-Recv-Limit 1000.
    let mut vsa = 14988u32.to_be_bytes().to_vec();
    vsa.extend_from_slice(&[3, 6, b'g', b'o', b'l', b'd']);
    vsa.extend_from_slice(&[1, 6, 0, 0, 0x03, 0xe8]);
    let mut p = Packet::new(Code::AccessAccept, 1, [0; 16]);
    p.push(dict::VENDOR_SPECIFIC, vsa);

    assert_eq!(
        p.get_vendor(dict::VENDOR_MIKROTIK, mikrotik::GROUP),
        Some(&b"gold"[..])
    );
    assert_eq!(
        p.get_vendor_u32(dict::VENDOR_MIKROTIK, mikrotik::RECV_LIMIT),
        Some(1000)
    );
    assert_eq!(
        p.get_vendor_string(dict::VENDOR_MIKROTIK, mikrotik::GROUP)
            .as_deref(),
        Some("gold")
    );
    assert_eq!(
        p.get_vendor(dict::VENDOR_MIKROTIK, mikrotik::RATE_LIMIT),
        None
    );
    assert_eq!(
        p.get_vendor(dict::VENDOR_MICROSOFT, 3),
        None,
        "other vendor"
    );
    let all: Vec<_> = p.vendor_attributes().collect();
    assert_eq!(
        all,
        vec![(14988, 3, &b"gold"[..]), (14988, 1, &[0, 0, 3, 0xe8][..])]
    );

    let bytes = p.encode().expect("encodes");
    let back = Packet::decode(&bytes).expect("decodes");
    assert_eq!(back.get_vendor_u32(14988, 1), Some(1000));
}

#[test]
fn push_vendor_round_trip() {
    let mut p = Packet::new(Code::AccessAccept, 1, [0; 16]);
    p.push_vendor(dict::VENDOR_MIKROTIK, mikrotik::RATE_LIMIT, b"2M/4M");
    p.push_vendor_u32(dict::VENDOR_MIKROTIK, mikrotik::TOTAL_LIMIT, 5_000_000);
    p.push_vendor(
        dict::VENDOR_MICROSOFT,
        microsoft::MS_CHAP2_SUCCESS,
        b"\x01S=00",
    );
    assert_eq!(
        p.get_all(dict::VENDOR_SPECIFIC).count(),
        3,
        "one VSA per call"
    );
    assert_eq!(
        p.get(dict::VENDOR_SPECIFIC),
        Some(&[0, 0, 0x3a, 0x8c, 8, 7, b'2', b'M', b'/', b'4', b'M'][..])
    );

    let back = Packet::decode(&p.encode().expect("encodes")).expect("decodes");
    assert_eq!(
        back.get_vendor(dict::VENDOR_MIKROTIK, mikrotik::RATE_LIMIT),
        Some(&b"2M/4M"[..])
    );
    assert_eq!(
        back.get_vendor_u32(dict::VENDOR_MIKROTIK, mikrotik::TOTAL_LIMIT),
        Some(5_000_000)
    );
    assert_eq!(
        back.get_vendor(dict::VENDOR_MICROSOFT, microsoft::MS_CHAP2_SUCCESS),
        Some(&b"\x01S=00"[..])
    );
}

#[test]
fn push_vendor_too_long_is_an_encode_error() {
    let mut p = Packet::new(Code::AccessAccept, 1, [0; 16]);
    p.push_vendor(dict::VENDOR_MIKROTIK, mikrotik::ADDRESS_LIST, &[b'a'; 247]);
    assert_eq!(p.encode().expect("247 fits").len(), 20 + 255);
    p.push_vendor(dict::VENDOR_MIKROTIK, mikrotik::ADDRESS_LIST, &[b'a'; 248]);
    assert_eq!(
        p.encode().unwrap_err(),
        EncodeError::AttributeTooLong { typ: 26, len: 254 }
    );
}

#[test]
fn malformed_vendor_attributes_are_skipped() {
    let mut p = Packet::new(Code::AccessRequest, 1, [0; 16]);
    p.push(dict::VENDOR_SPECIFIC, vec![0, 0, 0x3a]);
    // Second sub-attribute claims more bytes than the VSA holds.
    p.push(
        dict::VENDOR_SPECIFIC,
        vec![0, 0, 0x3a, 0x8c, 3, 3, b'x', 8, 9, b'y'],
    );
    // Zero-length sub-attribute.
    p.push(dict::VENDOR_SPECIFIC, vec![0, 0, 0x3a, 0x8c, 19, 0]);
    p.push_vendor(dict::VENDOR_MIKROTIK, mikrotik::RATE_LIMIT, b"1M");
    assert_eq!(
        p.get_vendor(dict::VENDOR_MIKROTIK, mikrotik::GROUP),
        Some(&b"x"[..])
    );
    assert_eq!(
        p.get_vendor(dict::VENDOR_MIKROTIK, mikrotik::RATE_LIMIT),
        Some(&b"1M"[..]),
        "a later well-formed VSA is still found"
    );
    assert_eq!(
        p.get_vendor(dict::VENDOR_MIKROTIK, mikrotik::ADDRESS_LIST),
        None
    );
}
