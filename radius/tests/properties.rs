//! Property tests: decoding never panics, encoding round-trips, signatures verify.

use mikrobill_radius::*;
use proptest::prelude::*;

fn code() -> impl Strategy<Value = Code> {
    proptest::sample::select(Code::ALL.to_vec())
}

fn attribute() -> impl Strategy<Value = Attribute> {
    (any::<u8>(), proptest::collection::vec(any::<u8>(), 0..=253))
        .prop_map(|(typ, value)| Attribute { typ, value })
}

/// Packets of valid shape; at most 14 full attributes so a Message-Authenticator fits too.
fn packet() -> impl Strategy<Value = Packet> {
    (
        code(),
        any::<u8>(),
        any::<[u8; 16]>(),
        proptest::collection::vec(attribute(), 0..=14),
    )
        .prop_map(|(code, identifier, authenticator, attributes)| Packet {
            code,
            identifier,
            authenticator,
            attributes,
        })
}

/// A header that passes the length checks in front of arbitrary attribute bytes, so
/// the attribute walker sees more than random headers would let through.
fn plausible_bytes() -> impl Strategy<Value = Vec<u8>> {
    (
        any::<u8>(),
        any::<u8>(),
        proptest::collection::vec(any::<u8>(), 0..600),
        0usize..4,
    )
        .prop_map(|(code, id, body, padding)| {
            let mut v = vec![code % 50, id];
            let len = (20 + body.len() - padding.min(body.len())) as u16;
            v.extend_from_slice(&len.to_be_bytes());
            v.extend_from_slice(&body);
            v.resize(v.len().max(20), 0);
            v
        })
}

fn exercise(bytes: &[u8]) {
    let secret = b"secret";
    let auth = [7u8; 16];
    if let Ok(p) = Packet::decode(bytes) {
        let again = Packet::decode(&p.encode().expect("a decoded packet encodes"))
            .expect("re-encoded packet decodes");
        assert_eq!(again, p);
        let _ = p.vendor_attributes().count();
        let _ = p.get_vendor(dict::VENDOR_MIKROTIK, 8);
    }
    let _ = verify_request_message_authenticator(bytes, secret);
    let _ = verify_response_message_authenticator(bytes, &auth, secret);
    let _ = verify_request_authenticator(bytes, secret);
    let _ = verify_response_authenticator(bytes, &auth, secret);
    let _ = decrypt_user_password(bytes, secret, &auth);
    let _ = mschap::MsChap2Response::parse(bytes);
    let _ = mschap::decrypt_mppe_key_attribute(bytes, secret, &auth);
    let _ = verify_chap(bytes, bytes, bytes);
}

proptest! {
    #[test]
    fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..5000)) {
        exercise(&bytes);
    }

    #[test]
    fn decode_never_panics_on_plausible_headers(bytes in plausible_bytes()) {
        exercise(&bytes);
    }

    #[test]
    fn encode_decode_round_trip(p in packet()) {
        let bytes = p.encode().expect("valid shape encodes");
        prop_assert_eq!(bytes.len(), p.encoded_len().expect("valid shape"));
        prop_assert_eq!(Packet::decode(&bytes).expect("decodes"), p);
    }

    #[test]
    fn signed_responses_verify(p in packet(), request_auth in any::<[u8; 16]>(), secret in proptest::collection::vec(any::<u8>(), 1..64)) {
        let raw = encode_response(&p, &request_auth, &secret).expect("encodes");
        prop_assert!(verify_response_authenticator(&raw, &request_auth, &secret));
        if !p.code.is_request() {
            prop_assert_eq!(
                verify_response_message_authenticator(&raw, &request_auth, &secret),
                MaStatus::Valid
            );
        }
    }

    #[test]
    fn signed_requests_verify(p in packet(), secret in proptest::collection::vec(any::<u8>(), 1..64)) {
        let raw = encode_request(&p, &secret, true).expect("encodes");
        prop_assert!(verify_request_authenticator(&raw, &secret));
        if matches!(p.code, Code::AccountingRequest | Code::DisconnectRequest | Code::CoaRequest) {
            prop_assert_eq!(verify_request_message_authenticator(&raw, &secret), MaStatus::Valid);
        }
    }

    #[test]
    fn user_password_round_trip(
        password in proptest::collection::vec(any::<u8>(), 0..=128),
        secret in proptest::collection::vec(any::<u8>(), 1..64),
        auth in any::<[u8; 16]>(),
    ) {
        let hidden = encrypt_user_password(&password, &secret, &auth);
        let mut expected = password.clone();
        while expected.last() == Some(&0) {
            expected.pop();
        }
        prop_assert_eq!(decrypt_user_password(&hidden, &secret, &auth), Ok(expected));
    }

    #[test]
    fn vendor_round_trip(vendor in any::<u32>(), typ in any::<u8>(), value in proptest::collection::vec(any::<u8>(), 0..=247)) {
        let mut p = Packet::new(Code::AccessAccept, 1, [0; 16]);
        p.push_vendor(vendor, typ, &value);
        let back = Packet::decode(&p.encode().expect("encodes")).expect("decodes");
        prop_assert_eq!(back.get_vendor(vendor, typ), Some(value.as_slice()));
    }

    #[test]
    fn mppe_key_round_trip(key in any::<[u8; 16]>(), auth in any::<[u8; 16]>(), salt in any::<u16>()) {
        let value = mschap::mppe_key_attribute(&key, b"secret", &auth, salt);
        prop_assert!(value[0] & 0x80 != 0);
        prop_assert_eq!(
            mschap::decrypt_mppe_key_attribute(&value, b"secret", &auth),
            Some(key.to_vec())
        );
    }
}
