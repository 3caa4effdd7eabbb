//! Decodes arbitrary bytes; whatever decodes must encode and decode back to itself, and
//! the raw-byte checks must not panic either.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mikrobill_radius::{
    MaStatus, Packet, verify_request_authenticator, verify_request_message_authenticator,
    verify_response_message_authenticator,
};

fuzz_target!(|data: &[u8]| {
    let _: MaStatus = verify_request_message_authenticator(data, b"fuzz");
    let _: MaStatus = verify_response_message_authenticator(data, &[0; 16], b"fuzz");
    let _ = verify_request_authenticator(data, b"fuzz");
    if let Ok(packet) = Packet::decode(data) {
        let bytes = packet.encode().expect("a decoded packet encodes");
        let again = Packet::decode(&bytes).expect("an encoded packet decodes");
        assert_eq!(again, packet);
    }
});
