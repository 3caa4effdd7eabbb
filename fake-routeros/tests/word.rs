//! The word length prefix against the vectors of the RouterOS API documentation.

use mikrobill_fake_routeros::word::{
    WordError, decode_length, encode_length, encode_word, prefix_len,
};

fn encoded(len: u32) -> Vec<u8> {
    let mut out = Vec::new();
    encode_length(len, &mut out);
    out
}

#[test]
fn documented_vectors() {
    assert_eq!(encoded(0x00), [0x00]);
    assert_eq!(encoded(0x7F), [0x7F]);
    assert_eq!(encoded(0x80), [0x80, 0x80]);
    assert_eq!(encoded(0x3FFF), [0xBF, 0xFF]);
    assert_eq!(encoded(0x4000), [0xC0, 0x40, 0x00]);
    assert_eq!(encoded(0x20_0000), [0xE0, 0x20, 0x00, 0x00]);
    assert_eq!(encoded(0x1000_0000), [0xF0, 0x10, 0x00, 0x00, 0x00]);
}

#[test]
fn round_trip_across_every_boundary() {
    let boundaries = [
        0,
        1,
        0x7F,
        0x80,
        0x3FFF,
        0x4000,
        0x1F_FFFF,
        0x20_0000,
        0xFFF_FFFF,
        0x1000_0000,
        u32::MAX,
    ];
    let expected_sizes = [1, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5];
    for (len, size) in boundaries.into_iter().zip(expected_sizes) {
        let bytes = encoded(len);
        assert_eq!(bytes.len(), size, "prefix size of {len:#X}");
        assert_eq!(prefix_len(bytes[0]), Ok(size), "first byte of {len:#X}");
        assert_eq!(decode_length(&bytes), Ok(len), "round trip of {len:#X}");
    }
}

#[test]
fn control_bytes_are_rejected() {
    for byte in 0xF8..=0xFF {
        assert_eq!(prefix_len(byte), Err(WordError::ControlByte(byte)));
        assert_eq!(
            decode_length(&[byte, 0, 0, 0, 0]),
            Err(WordError::ControlByte(byte))
        );
    }
}

#[test]
fn word_carries_its_bytes() {
    let mut out = Vec::new();
    encode_word(b"/login", &mut out);
    assert_eq!(out, b"\x06/login");
    let long = vec![b'x'; 0x80];
    out.clear();
    encode_word(&long, &mut out);
    assert_eq!(&out[..2], [0x80, 0x80]);
    assert_eq!(out.len(), 2 + 0x80);
}
