//! The length prefix of an API word: one to five bytes, big-endian, the high bits of the
//! first byte telling how many follow.

use thiserror::Error;

/// Why a length prefix cannot be decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum WordError {
    /// A first byte of 0xF8 or above: RouterOS reserves these as control bytes and treats
    /// them as fatal, so a peer that sends one is broken.
    #[error("control byte {0:#04X} where a word length was expected")]
    ControlByte(u8),
    /// 0xF1 to 0xF7: the five-byte form is introduced by exactly 0xF0.
    #[error("reserved length prefix byte {0:#04X}")]
    Reserved(u8),
}

/// How many bytes the whole length prefix takes, judged from its first byte.
pub fn prefix_len(first: u8) -> Result<usize, WordError> {
    match first {
        0x00..=0x7F => Ok(1),
        0x80..=0xBF => Ok(2),
        0xC0..=0xDF => Ok(3),
        0xE0..=0xEF => Ok(4),
        0xF0 => Ok(5),
        0xF1..=0xF7 => Err(WordError::Reserved(first)),
        0xF8..=0xFF => Err(WordError::ControlByte(first)),
    }
}

/// Appends the length prefix of a word of `len` bytes to `out`.
pub fn encode_length(len: u32, out: &mut Vec<u8>) {
    let bytes = len.to_be_bytes();
    match len {
        0..=0x7F => out.push(bytes[3]),
        0x80..=0x3FFF => out.extend_from_slice(&(len | 0x8000).to_be_bytes()[2..]),
        0x4000..=0x1F_FFFF => out.extend_from_slice(&(len | 0xC0_0000).to_be_bytes()[1..]),
        0x20_0000..=0xFFF_FFFF => out.extend_from_slice(&(len | 0xE000_0000).to_be_bytes()),
        _ => {
            out.push(0xF0);
            out.extend_from_slice(&bytes);
        }
    }
}

/// Decodes a complete length prefix (exactly [`prefix_len`] bytes).
///
/// # Panics
/// If `prefix` is shorter than its first byte announces: callers read that many bytes first.
pub fn decode_length(prefix: &[u8]) -> Result<u32, WordError> {
    let n = prefix_len(prefix[0])?;
    let prefix = &prefix[..n];
    let mut value: u32 = 0;
    for &byte in prefix {
        value = (value << 8) | u32::from(byte);
    }
    // The marker bits sit in the first byte only; the five-byte form's marker byte was
    // shifted out of the u32 entirely.
    let mask: u32 = match n {
        1 => 0x7F,
        2 => 0x3FFF,
        3 => 0x1F_FFFF,
        4 => 0xFFF_FFFF,
        _ => u32::MAX,
    };
    Ok(value & mask)
}

/// Appends one word (length prefix and bytes) to `out`.
///
/// # Panics
/// If the word is 4 GiB or longer, which the API cannot express.
pub fn encode_word(word: &[u8], out: &mut Vec<u8>) {
    let len = u32::try_from(word.len()).expect("an API word is shorter than 4 GiB");
    encode_length(len, out);
    out.extend_from_slice(word);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn five_byte_form_ignores_marker() {
        assert_eq!(decode_length(&[0xF0, 0xFF, 0xFF, 0xFF, 0xFF]), Ok(u32::MAX));
    }

    #[test]
    fn reserved_prefix_rejected() {
        assert_eq!(prefix_len(0xF3), Err(WordError::Reserved(0xF3)));
    }
}
