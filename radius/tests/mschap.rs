//! MS-CHAPv2 and MPPE against the RFC 2759 9.2 and RFC 3079 3.5.3 vectors.

use mikrobill_radius::mschap::{self, MsChap2Response};

fn h<const N: usize>(s: &str) -> [u8; N] {
    hex::decode(s.replace(' ', ""))
        .expect("hex")
        .try_into()
        .expect("length")
}

const USER: &[u8] = b"User";
const PASSWORD: &str = "clientPass";

fn auth_challenge() -> [u8; 16] {
    h("5B5D7C7D7B3F2F3E3C2C602132262628")
}

fn peer_challenge() -> [u8; 16] {
    h("21402324255E262A28295F2B3A337C7E")
}

fn rfc_nt_response() -> [u8; 24] {
    h("82309ECD8D708B5EA08FAA3981CD83544233114A3D85D6DF")
}

fn rfc_response() -> MsChap2Response {
    MsChap2Response {
        ident: 7,
        flags: 0,
        peer_challenge: peer_challenge(),
        nt_response: rfc_nt_response(),
    }
}

#[test]
fn rfc2759_intermediate_values() {
    let hash = mschap::nt_password_hash(PASSWORD);
    assert_eq!(hash, h::<16>("44EBBA8D5312B8D611474411F56989AE"));
    assert_eq!(
        mschap::hash_nt_password_hash(&hash),
        h::<16>("41C00C584BD2D91C4017A2A12FA59F3F")
    );
    assert_eq!(
        mschap::challenge_hash(&peer_challenge(), &auth_challenge(), USER),
        h::<8>("D02E4386BCE91226")
    );
}

#[test]
fn rfc2759_nt_response() {
    let nt = mschap::generate_nt_response(&auth_challenge(), &peer_challenge(), USER, PASSWORD);
    assert_eq!(nt, rfc_nt_response());
}

#[test]
fn rfc2759_authenticator_response() {
    let ok = mschap::verify(&auth_challenge(), &rfc_response(), USER, PASSWORD).expect("valid");
    assert_eq!(
        ok.authenticator_response,
        "S=407A5589115FD0D6209F510FE9C04566932CDA56"
    );
}

#[test]
fn rfc3079_128_bit_keys() {
    let hash_hash = mschap::hash_nt_password_hash(&mschap::nt_password_hash(PASSWORD));
    let master = mschap::master_key(&hash_hash, &rfc_nt_response());
    assert_eq!(master, h::<16>("FDECE3717A8C838CB388E527AE3CDD31"));
    // RFC 3079 3.5.3 SendStartKey128 is derived with IsSend = IsServer = TRUE.
    let server_send = h::<16>("8B7CDC149B993A1BA118CB153F56DCCB");
    assert_eq!(
        mschap::asymmetric_start_key(&master, true, true),
        server_send
    );
    // The client receives with the key the server sends with, and the other way round.
    assert_eq!(
        mschap::asymmetric_start_key(&master, false, false),
        server_send
    );
    let server_recv = mschap::asymmetric_start_key(&master, false, true);
    assert_eq!(
        mschap::asymmetric_start_key(&master, true, false),
        server_recv
    );
    assert_ne!(server_recv, server_send);
    // Not printed in RFC 3079; the value other MS-CHAPv2 implementations' tests agree on.
    assert_eq!(server_recv, h::<16>("D5F0E9521E3EA9589645E86051C82226"));

    let ok = mschap::verify(&auth_challenge(), &rfc_response(), USER, PASSWORD).expect("valid");
    assert_eq!(ok.master_send_key, server_send);
    assert_eq!(ok.master_recv_key, server_recv);
}

#[test]
fn wrong_password_or_response_is_refused() {
    assert!(mschap::verify(&auth_challenge(), &rfc_response(), USER, "clientpass").is_none());
    let mut tampered = rfc_response();
    tampered.nt_response[23] ^= 1;
    assert!(mschap::verify(&auth_challenge(), &tampered, USER, PASSWORD).is_none());
    assert!(mschap::verify(&auth_challenge()[..15], &rfc_response(), USER, PASSWORD).is_none());
    assert!(mschap::verify(&peer_challenge(), &rfc_response(), USER, PASSWORD).is_none());
}

#[test]
fn domain_prefix_is_stripped() {
    assert_eq!(mschap::strip_domain(b"CORP\\User"), b"User");
    assert_eq!(mschap::strip_domain(b"A\\B\\User"), b"User");
    assert_eq!(mschap::strip_domain(b"User"), b"User");
    assert_eq!(mschap::strip_domain(b"CORP\\"), b"");
    let ok = mschap::verify(&auth_challenge(), &rfc_response(), b"CORP\\User", PASSWORD)
        .expect("domain-qualified user name verifies");
    assert_eq!(
        ok.authenticator_response,
        "S=407A5589115FD0D6209F510FE9C04566932CDA56"
    );
}

#[test]
fn response_attribute_round_trip() {
    let r = rfc_response();
    let wire = r.encode();
    assert_eq!(wire.len(), 50);
    assert_eq!(&wire[18..26], &[0; 8]);
    assert_eq!(MsChap2Response::parse(&wire), Some(r));
    assert_eq!(MsChap2Response::parse(&wire[..49]), None);
    assert_eq!(
        MsChap2Response::parse(&[wire.as_slice(), &[0]].concat()),
        None
    );
}

#[test]
fn success_attribute_layout() {
    let ok = mschap::verify(&auth_challenge(), &rfc_response(), USER, PASSWORD).expect("valid");
    let attr = mschap::success_attribute(7, &ok);
    assert_eq!(attr.len(), 43);
    assert_eq!(attr[0], 7);
    assert_eq!(&attr[1..], b"S=407A5589115FD0D6209F510FE9C04566932CDA56");
}

#[test]
fn success_debug_hides_keys() {
    let ok = mschap::verify(&auth_challenge(), &rfc_response(), USER, PASSWORD).expect("valid");
    let shown = format!("{ok:?}");
    assert!(shown.contains("S=407A"));
    assert!(!shown.contains("master_send_key"));
}

#[test]
fn mppe_key_attribute_round_trip() {
    let key = h::<16>("8B7CDC149B993A1BA118CB153F56DCCB");
    let secret = b"testing123";
    let ra = auth_challenge();
    let value = mschap::mppe_key_attribute(&key, secret, &ra, 0x1234);
    assert_eq!(value.len(), 34);
    assert_eq!(&value[..2], &[0x92, 0x34], "salt gets its high bit set");
    assert_eq!(
        mschap::decrypt_mppe_key_attribute(&value, secret, &ra),
        Some(key.to_vec())
    );
    assert_ne!(
        mschap::decrypt_mppe_key_attribute(&value, b"wrong", &ra),
        Some(key.to_vec())
    );
    assert_ne!(
        mschap::mppe_key_attribute(&key, secret, &ra, 0x1235),
        value,
        "a different salt changes the ciphertext"
    );
    assert_eq!(
        mschap::decrypt_mppe_key_attribute(&value[..33], secret, &ra),
        None
    );
    assert_eq!(
        mschap::decrypt_mppe_key_attribute(&value[..2], secret, &ra),
        None
    );
    assert_eq!(mschap::decrypt_mppe_key_attribute(&[], secret, &ra), None);
}
