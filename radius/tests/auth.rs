//! Authenticators, Message-Authenticator, User-Password hiding and CHAP.

use mikrobill_radius::dict::{self, mikrotik};
use mikrobill_radius::*;

const SECRET: &[u8] = b"s3cr3t";
const REQUEST_AUTH: [u8; 16] = [
    0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff, 0x01,
];

fn accept() -> Packet {
    let mut p = Packet::new(Code::AccessAccept, 77, [0; 16]);
    p.push_u32(dict::SESSION_TIMEOUT, 3600);
    p.push(dict::CLASS, b"plan-7".to_vec());
    p.push_vendor(VENDOR_MIKROTIK, mikrotik::RATE_LIMIT, b"2M/4M");
    p
}

#[test]
fn chap_with_chap_challenge() {
    let challenge = b"0123456789abcdef-challenge";
    let response = chap_response(5, b"hunter2", challenge);
    let mut attr = vec![5];
    attr.extend_from_slice(&response);
    assert!(verify_chap(&attr, challenge, b"hunter2"));
    assert!(!verify_chap(&attr, challenge, b"hunter3"));
    assert!(
        !verify_chap(&attr, &REQUEST_AUTH, b"hunter2"),
        "wrong challenge"
    );
    attr[0] = 6;
    assert!(!verify_chap(&attr, challenge, b"hunter2"), "wrong ident");

    let mut req = Packet::new(Code::AccessRequest, 1, REQUEST_AUTH);
    req.push(dict::CHAP_CHALLENGE, &challenge[..]);
    assert_eq!(chap_challenge(&req), &challenge[..]);
}

#[test]
fn chap_without_chap_challenge_uses_the_request_authenticator() {
    let response = chap_response(9, b"hunter2", &REQUEST_AUTH);
    let attr = [&[9][..], &response].concat();
    let mut req = Packet::new(Code::AccessRequest, 1, REQUEST_AUTH);
    req.push(dict::CHAP_PASSWORD, attr.clone());
    assert_eq!(chap_challenge(&req), &REQUEST_AUTH[..]);
    assert!(verify_chap(&attr, chap_challenge(&req), b"hunter2"));
}

#[test]
fn chap_password_of_the_wrong_length_fails() {
    let response = chap_response(9, b"pw", &REQUEST_AUTH);
    let attr = [&[9][..], &response].concat();
    assert!(!verify_chap(&attr[..16], &REQUEST_AUTH, b"pw"));
    assert!(!verify_chap(
        &[attr.as_slice(), &[0]].concat(),
        &REQUEST_AUTH,
        b"pw"
    ));
    assert!(!verify_chap(&[], &REQUEST_AUTH, b"pw"));
}

#[test]
fn user_password_round_trip() {
    for len in [0usize, 1, 15, 16, 17, 31, 32, 100, 127, 128] {
        let password: Vec<u8> = (0..len).map(|i| b'a' + (i % 26) as u8).collect();
        let hidden = encrypt_user_password(&password, SECRET, &REQUEST_AUTH);
        assert_eq!(hidden.len(), len.div_ceil(16).max(1) * 16, "length {len}");
        if len > 0 {
            assert_ne!(&hidden[..len], &password[..], "hidden for length {len}");
        }
        assert_eq!(
            decrypt_user_password(&hidden, SECRET, &REQUEST_AUTH),
            Ok(password.clone()),
            "length {len}"
        );
        if len > 0 {
            let wrong = decrypt_user_password(&hidden, b"other", &REQUEST_AUTH).expect("decrypts");
            assert_ne!(wrong, password, "wrong secret, length {len}");
            let mut other_auth = REQUEST_AUTH;
            other_auth[0] ^= 1;
            let wrong = decrypt_user_password(&hidden, SECRET, &other_auth).expect("decrypts");
            assert_ne!(wrong, password, "wrong authenticator, length {len}");
        }
    }
}

#[test]
fn user_password_second_block_depends_on_the_first() {
    // RFC 2865 5.2 chains on the ciphertext: equal plaintext blocks hide differently.
    let hidden = encrypt_user_password(&[b'x'; 32], SECRET, &REQUEST_AUTH);
    assert_ne!(hidden[..16], hidden[16..]);
}

#[test]
fn user_password_bad_lengths() {
    assert_eq!(
        decrypt_user_password(&[], SECRET, &REQUEST_AUTH),
        Err(PasswordError::Empty)
    );
    for len in [1usize, 15, 17, 33, 127] {
        let err = decrypt_user_password(&vec![0; len], SECRET, &REQUEST_AUTH).unwrap_err();
        assert_eq!(err, PasswordError::NotBlockAligned(len));
        assert_eq!(
            err.to_string(),
            format!("hidden User-Password is {len} bytes, not a multiple of 16")
        );
    }
    let err = decrypt_user_password(&[0; 144], SECRET, &REQUEST_AUTH).unwrap_err();
    assert_eq!(err, PasswordError::TooLong(144));
    assert_eq!(
        err.to_string(),
        "hidden User-Password is 144 bytes, more than the 128 allowed"
    );
}

#[test]
fn encode_response_verifies() {
    let raw = encode_response(&accept(), &REQUEST_AUTH, SECRET).expect("encodes");
    assert_eq!(
        verify_response_message_authenticator(&raw, &REQUEST_AUTH, SECRET),
        MaStatus::Valid
    );
    assert!(verify_response_authenticator(&raw, &REQUEST_AUTH, SECRET));

    let decoded = Packet::decode(&raw).expect("decodes");
    assert_eq!(decoded.attributes[0].typ, dict::MESSAGE_AUTHENTICATOR);
    assert_eq!(decoded.attributes[1..], accept().attributes[..]);
}

#[test]
fn tampering_any_byte_of_a_response_is_detected() {
    let raw = encode_response(&accept(), &REQUEST_AUTH, SECRET).expect("encodes");
    for i in 0..raw.len() {
        let mut bad = raw.clone();
        bad[i] ^= 0x01;
        assert!(
            !verify_response_authenticator(&bad, &REQUEST_AUTH, SECRET),
            "byte {i}"
        );
        // The HMAC sees the request authenticator in place of the response
        // authenticator, so only the check above covers those 16 bytes.
        if !(4..20).contains(&i) {
            assert_ne!(
                verify_response_message_authenticator(&bad, &REQUEST_AUTH, SECRET),
                MaStatus::Valid,
                "byte {i}"
            );
        }
    }
    let mut other_auth = REQUEST_AUTH;
    other_auth[15] ^= 0x80;
    assert!(!verify_response_authenticator(&raw, &other_auth, SECRET));
    assert_eq!(
        verify_response_message_authenticator(&raw, &other_auth, SECRET),
        MaStatus::Invalid
    );
    assert!(!verify_response_authenticator(
        &raw,
        &REQUEST_AUTH,
        b"s3cr3T"
    ));
    assert_eq!(
        verify_response_message_authenticator(&raw, &REQUEST_AUTH, b"s3cr3T"),
        MaStatus::Invalid
    );
}

#[test]
fn encode_response_replaces_an_existing_message_authenticator() {
    let mut reply = accept();
    reply.push(dict::MESSAGE_AUTHENTICATOR, vec![0xee; 16]);
    reply.push(dict::MESSAGE_AUTHENTICATOR, vec![0xdd; 3]);
    let raw = encode_response(&reply, &REQUEST_AUTH, SECRET).expect("encodes");
    let decoded = Packet::decode(&raw).expect("decodes");
    assert_eq!(decoded.get_all(dict::MESSAGE_AUTHENTICATOR).count(), 1);
    assert_eq!(
        verify_response_message_authenticator(&raw, &REQUEST_AUTH, SECRET),
        MaStatus::Valid
    );
}

#[test]
fn every_reply_code_round_trips() {
    for code in [
        Code::AccessAccept,
        Code::AccessReject,
        Code::AccessChallenge,
        Code::AccountingResponse,
        Code::DisconnectAck,
        Code::DisconnectNak,
        Code::CoaAck,
        Code::CoaNak,
    ] {
        let mut reply = Packet::new(code, 3, [0; 16]);
        reply.push_u32(dict::ERROR_CAUSE, 503);
        let raw = encode_response(&reply, &REQUEST_AUTH, SECRET).expect("encodes");
        assert_eq!(
            verify_response_message_authenticator(&raw, &REQUEST_AUTH, SECRET),
            MaStatus::Valid,
            "{code:?}"
        );
        assert!(verify_response_authenticator(&raw, &REQUEST_AUTH, SECRET));
    }
}

#[test]
fn response_without_message_authenticator_is_absent() {
    let reply = Packet::new(Code::AccessReject, 3, [0; 16]);
    let mut raw = reply.encode().expect("encodes");
    raw[4..20].copy_from_slice(&REQUEST_AUTH);
    assert_eq!(
        verify_response_message_authenticator(&raw, &REQUEST_AUTH, SECRET),
        MaStatus::Absent
    );
    assert_eq!(
        verify_request_message_authenticator(&raw, SECRET),
        MaStatus::Absent
    );
}

#[test]
fn malformed_or_duplicated_message_authenticators_are_invalid() {
    let raw = encode_response(&accept(), &REQUEST_AUTH, SECRET).expect("encodes");
    // A second copy of the valid attribute.
    let mut twice = raw.clone();
    twice.extend_from_slice(&raw[20..38]);
    let len = twice.len() as u16;
    twice[2..4].copy_from_slice(&len.to_be_bytes());
    assert_eq!(
        verify_response_message_authenticator(&twice, &REQUEST_AUTH, SECRET),
        MaStatus::Invalid
    );
    // Message-Authenticator with a 4-byte value.
    let mut short = Packet::new(Code::AccessAccept, 1, REQUEST_AUTH);
    short.push(dict::MESSAGE_AUTHENTICATOR, vec![0; 4]);
    let short = short.encode().expect("encodes");
    assert_eq!(
        verify_response_message_authenticator(&short, &REQUEST_AUTH, SECRET),
        MaStatus::Invalid
    );
    // Truncated packets.
    assert_eq!(
        verify_response_message_authenticator(&raw[..30], &REQUEST_AUTH, SECRET),
        MaStatus::Invalid
    );
    assert!(!verify_response_authenticator(
        &raw[..30],
        &REQUEST_AUTH,
        SECRET
    ));
    assert!(!verify_request_authenticator(&raw[..10], SECRET));
    assert_eq!(
        verify_request_message_authenticator(&[], SECRET),
        MaStatus::Invalid
    );
}

#[test]
fn reply_codes_are_not_requests() {
    let raw = encode_response(&accept(), &REQUEST_AUTH, SECRET).expect("encodes");
    assert_eq!(
        verify_request_message_authenticator(&raw, SECRET),
        MaStatus::Invalid
    );
    let req = encode_request(
        &Packet::new(Code::AccountingRequest, 1, [0; 16]),
        SECRET,
        true,
    )
    .expect("encodes");
    assert_eq!(
        verify_response_message_authenticator(&req, &REQUEST_AUTH, SECRET),
        MaStatus::Invalid
    );
}

#[test]
fn padding_after_the_length_field_is_ignored() {
    let mut raw = encode_response(&accept(), &REQUEST_AUTH, SECRET).expect("encodes");
    raw.extend_from_slice(&[0xff; 7]);
    assert_eq!(
        verify_response_message_authenticator(&raw, &REQUEST_AUTH, SECRET),
        MaStatus::Valid
    );
    assert!(verify_response_authenticator(&raw, &REQUEST_AUTH, SECRET));
}

#[test]
fn encode_request_for_each_request_code() {
    for code in [
        Code::AccountingRequest,
        Code::DisconnectRequest,
        Code::CoaRequest,
    ] {
        let mut req = Packet::new(code, 12, [0x5a; 16]);
        req.push(dict::USER_NAME, "bob");
        req.push(dict::ACCT_SESSION_ID, "81a0000f");
        req.push(dict::MESSAGE_AUTHENTICATOR, vec![0x42; 16]);

        let with = encode_request(&req, SECRET, true).expect("encodes");
        assert!(verify_request_authenticator(&with, SECRET), "{code:?}");
        assert_eq!(
            verify_request_message_authenticator(&with, SECRET),
            MaStatus::Valid
        );

        let without = encode_request(&req, SECRET, false).expect("encodes");
        assert!(verify_request_authenticator(&without, SECRET));
        assert_eq!(
            verify_request_message_authenticator(&without, SECRET),
            MaStatus::Absent,
            "the stale attribute is dropped"
        );

        for i in 0..with.len() {
            let mut bad = with.clone();
            bad[i] ^= 0x04;
            assert!(!verify_request_authenticator(&bad, SECRET), "byte {i}");
            // The HMAC sees 16 zero octets in place of the Request Authenticator.
            if !(4..20).contains(&i) {
                assert_ne!(
                    verify_request_message_authenticator(&bad, SECRET),
                    MaStatus::Valid,
                    "byte {i}"
                );
            }
        }
        assert!(!verify_request_authenticator(&with, b"other"));
    }
}

#[test]
fn encode_access_request_keeps_its_authenticator() {
    let mut req = Packet::new(Code::AccessRequest, 200, REQUEST_AUTH);
    req.push(dict::USER_NAME, "carol");
    req.push(
        dict::USER_PASSWORD,
        encrypt_user_password(b"pw", SECRET, &REQUEST_AUTH),
    );
    let raw = encode_access_request(&req, SECRET, true).expect("encodes");
    assert_eq!(&raw[4..20], &REQUEST_AUTH);
    assert_eq!(
        verify_request_message_authenticator(&raw, SECRET),
        MaStatus::Valid
    );
    let mut bad = raw.clone();
    bad[5] ^= 1;
    assert_eq!(
        verify_request_message_authenticator(&bad, SECRET),
        MaStatus::Invalid
    );
    let plain = encode_access_request(&req, SECRET, false).expect("encodes");
    assert_eq!(plain, req.encode().expect("encodes"));
    assert_eq!(
        verify_request_message_authenticator(&plain, SECRET),
        MaStatus::Absent
    );
}

#[test]
fn encoders_report_oversized_packets() {
    let mut reply = Packet::new(Code::AccessAccept, 1, [0; 16]);
    reply.push(dict::REPLY_MESSAGE, vec![b'x'; 300]);
    assert_eq!(
        encode_response(&reply, &REQUEST_AUTH, SECRET).unwrap_err(),
        EncodeError::AttributeTooLong { typ: 18, len: 300 }
    );
    let mut reply = Packet::new(Code::AccessAccept, 1, [0; 16]);
    for _ in 0..15 {
        reply.push(dict::REPLY_MESSAGE, vec![b'x'; 253]);
    }
    reply.push(dict::CLASS, vec![0; 240]);
    // 4087 bytes fit alone, but not with the 18-byte Message-Authenticator.
    assert_eq!(reply.encode().map(|b| b.len()), Ok(4087));
    assert_eq!(
        encode_response(&reply, &REQUEST_AUTH, SECRET).unwrap_err(),
        EncodeError::PacketTooLong(4087 + 18)
    );
}
