//! Packet authenticators, Message-Authenticator, User-Password hiding and CHAP.
//!
//! Message-Authenticator conventions (what goes in the authenticator field while the
//! HMAC-MD5 is computed; the attribute's own value is always 16 zero octets then):
//!
//! | packet | authenticator field during the HMAC | source |
//! |---|---|---|
//! | Access-Request | its own random Request Authenticator | RFC 3579 3.2 |
//! | Access-Accept / -Reject / -Challenge | the request's authenticator | RFC 3579 3.2 |
//! | Accounting-Request, Disconnect-Request, CoA-Request | 16 zero octets | RFC 5176 3.4 (MA computed before the Request Authenticator); FreeRADIUS 3 and pyrad 2.6 do the same for Accounting-Request |
//! | Disconnect-/CoA-ACK and -NAK | the request's authenticator | RFC 5176 3.4 |
//! | Accounting-Response | 16 zero octets | no RFC defines it; FreeRADIUS 3 (signing and checking) and pyrad 2.6 both zero it |
//!
//! When checking a received Accounting-Response or Disconnect-/CoA-ACK/NAK both the zero
//! and the request-authenticator variants are accepted, because deployed peers disagree
//! (FreeRADIUS 3 signs ACK/NAKs with zeros but checks them with the request
//! authenticator). Both variants need the shared secret, and the Response Authenticator,
//! which the caller checks too, binds the reply to its request either way.

use hmac::{Hmac, Mac};
use md5::{Digest, Md5};
use subtle::ConstantTimeEq;

use crate::dict::{CHAP_CHALLENGE, MESSAGE_AUTHENTICATOR};
use crate::packet::{
    Attribute, Code, EncodeError, HEADER_LEN, Packet, checked_length, walk_attributes,
};

type HmacMd5 = Hmac<Md5>;

const ZERO_AUTH: [u8; 16] = [0; 16];
/// Offset of the Message-Authenticator value when it is the first attribute, where the
/// encoders put it (BlastRADIUS mitigations ask for it first).
const FIRST_MA_VALUE: std::ops::Range<usize> = HEADER_LEN + 2..HEADER_LEN + 18;

/// Outcome of a Message-Authenticator check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MaStatus {
    /// The packet has no Message-Authenticator.
    Absent,
    /// Present and correct.
    Valid,
    /// Present but wrong, duplicated, of the wrong length, or the packet is malformed.
    Invalid,
}

/// Why a hidden User-Password could not be decrypted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PasswordError {
    /// Zero-length attribute.
    #[error("hidden User-Password is empty; it must be 16 to 128 bytes")]
    Empty,
    /// Not a whole number of 16-byte blocks.
    #[error("hidden User-Password is {0} bytes, not a multiple of 16")]
    NotBlockAligned(usize),
    /// Longer than RFC 2865 allows.
    #[error("hidden User-Password is {0} bytes, more than the 128 allowed")]
    TooLong(usize),
}

fn md5(parts: &[&[u8]]) -> [u8; 16] {
    let mut h = Md5::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
}

fn hmac_md5(secret: &[u8], parts: &[&[u8]]) -> [u8; 16] {
    let mut mac = <HmacMd5 as Mac>::new_from_slice(secret).expect("HMAC takes keys of any length");
    for p in parts {
        mac.update(p);
    }
    mac.finalize().into_bytes().into()
}

fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

/// Where the Message-Authenticator value sits in a raw packet.
enum MaLocation {
    Absent,
    At(usize),
    /// Malformed packet, duplicate attribute or wrong attribute length.
    Bad,
}

/// Cuts `raw` to its length field and finds its Message-Authenticator.
fn locate_ma(raw: &[u8]) -> (&[u8], MaLocation) {
    let Ok(length) = checked_length(raw) else {
        return (raw, MaLocation::Bad);
    };
    let packet = &raw[..length];
    let mut found = MaLocation::Absent;
    let walked = walk_attributes(packet, |offset, typ, value| {
        if typ != MESSAGE_AUTHENTICATOR {
            return;
        }
        found = match found {
            // RFC 3579 3.2 allows one; a second one makes the packet invalid.
            MaLocation::Absent if value.len() == 16 => MaLocation::At(offset + 2),
            _ => MaLocation::Bad,
        };
    });
    if walked.is_err() {
        return (packet, MaLocation::Bad);
    }
    (packet, found)
}

/// HMAC-MD5 of `packet` with its authenticator field replaced by `vector` and the
/// Message-Authenticator value at `ma` zeroed, without copying the packet.
fn compute_ma(packet: &[u8], ma: usize, vector: &[u8; 16], secret: &[u8]) -> [u8; 16] {
    hmac_md5(
        secret,
        &[
            &packet[..4],
            vector,
            &packet[HEADER_LEN..ma],
            &ZERO_AUTH,
            &packet[ma + 16..],
        ],
    )
}

fn check_ma(raw: &[u8], secret: &[u8], vectors: impl Fn(&[u8]) -> Vec<[u8; 16]>) -> MaStatus {
    let (packet, location) = locate_ma(raw);
    let ma = match location {
        MaLocation::Absent => return MaStatus::Absent,
        MaLocation::Bad => return MaStatus::Invalid,
        MaLocation::At(ma) => ma,
    };
    let received = &packet[ma..ma + 16];
    let valid = vectors(packet)
        .iter()
        .any(|v| ct_eq(&compute_ma(packet, ma, v, secret), received));
    if valid {
        MaStatus::Valid
    } else {
        MaStatus::Invalid
    }
}

/// Checks the Message-Authenticator (RFC 3579 3.2 / RFC 5176 3.4) of a raw request as
/// received.
///
/// Access-Request: the HMAC covers the packet as sent. Accounting-, Disconnect- and
/// CoA-Request: the authenticator field counts as 16 zero octets, as RFC 5176 says for
/// the latter two and FreeRADIUS and pyrad do for all three. Reply codes and unknown
/// codes carrying the attribute are `Invalid`; malformed packets are `Invalid`.
pub fn verify_request_message_authenticator(raw: &[u8], secret: &[u8]) -> MaStatus {
    check_ma(raw, secret, |packet| match Code::from_u8(packet[0]) {
        Some(Code::AccessRequest) => {
            let mut own = [0; 16];
            own.copy_from_slice(&packet[4..HEADER_LEN]);
            vec![own]
        }
        Some(Code::AccountingRequest | Code::DisconnectRequest | Code::CoaRequest) => {
            vec![ZERO_AUTH]
        }
        _ => Vec::new(),
    })
}

/// Checks a response's Message-Authenticator, computed with the authenticator field set
/// to the request's authenticator (RFC 3579 3.2, RFC 5176 3.4).
///
/// For Accounting-Response and Disconnect-/CoA-ACK/NAK, a value computed over 16 zero
/// octets is accepted too (see the module documentation). Request codes are `Invalid`.
pub fn verify_response_message_authenticator(
    raw: &[u8],
    request_authenticator: &[u8; 16],
    secret: &[u8],
) -> MaStatus {
    check_ma(raw, secret, |packet| match Code::from_u8(packet[0]) {
        Some(Code::AccessAccept | Code::AccessReject | Code::AccessChallenge) => {
            vec![*request_authenticator]
        }
        Some(
            Code::AccountingResponse
            | Code::DisconnectAck
            | Code::DisconnectNak
            | Code::CoaAck
            | Code::CoaNak,
        ) => vec![*request_authenticator, ZERO_AUTH],
        _ => Vec::new(),
    })
}

/// Request Authenticator check for Accounting-Request, Disconnect-Request and
/// CoA-Request: MD5(code+id+len+16 zero octets+attributes+secret).
pub fn verify_request_authenticator(raw: &[u8], secret: &[u8]) -> bool {
    authenticator_matches(raw, &ZERO_AUTH, secret)
}

/// Response Authenticator check (for clients): MD5(code+id+len+RequestAuth+attributes+secret).
pub fn verify_response_authenticator(
    raw: &[u8],
    request_authenticator: &[u8; 16],
    secret: &[u8],
) -> bool {
    authenticator_matches(raw, request_authenticator, secret)
}

fn authenticator_matches(raw: &[u8], vector: &[u8; 16], secret: &[u8]) -> bool {
    let Ok(length) = checked_length(raw) else {
        return false;
    };
    let packet = &raw[..length];
    let expected = md5(&[&packet[..4], vector, &packet[HEADER_LEN..], secret]);
    ct_eq(&expected, &packet[4..HEADER_LEN])
}

/// A copy of `packet` whose only Message-Authenticator is a zeroed first attribute, or
/// that has none when `with_ma` is false (a stale one would be wrong anyway).
fn prepare_ma(packet: &Packet, with_ma: bool) -> Packet {
    let mut p = packet.clone();
    p.remove_all(MESSAGE_AUTHENTICATOR);
    if with_ma {
        p.attributes.insert(
            0,
            Attribute {
                typ: MESSAGE_AUTHENTICATOR,
                value: ZERO_AUTH.to_vec(),
            },
        );
    }
    p
}

/// Fills the first-attribute Message-Authenticator of `bytes`, whose authenticator field
/// already holds the value the HMAC must see.
fn sign_first_ma(bytes: &mut [u8], secret: &[u8]) {
    let mac = hmac_md5(secret, &[bytes]);
    bytes[FIRST_MA_VALUE].copy_from_slice(&mac);
}

/// Writes MD5(packet with `vector` in the authenticator field + secret) into the
/// authenticator field.
fn sign_authenticator(bytes: &mut [u8], vector: &[u8; 16], secret: &[u8]) {
    bytes[4..HEADER_LEN].copy_from_slice(vector);
    let auth = md5(&[bytes, secret]);
    bytes[4..HEADER_LEN].copy_from_slice(&auth);
}

/// Encodes a reply: adds a Message-Authenticator as the first attribute (replacing any
/// existing one) computed per RFC 3579 (authenticator field = request authenticator,
/// attribute zeroed during the HMAC), then writes the Response Authenticator. Every
/// reply the agent sends goes through this (RouterOS 7.15+ drops replies without
/// Message-Authenticator).
///
/// `reply.authenticator` is ignored. Accounting-Response is the one exception to the
/// request-authenticator rule: its HMAC sees 16 zero octets, as FreeRADIUS and pyrad
/// compute and check it (no RFC defines it; see the module documentation).
pub fn encode_response(
    reply: &Packet,
    request_authenticator: &[u8; 16],
    secret: &[u8],
) -> Result<Vec<u8>, EncodeError> {
    let mut p = prepare_ma(reply, true);
    p.authenticator = if reply.code == Code::AccountingResponse {
        ZERO_AUTH
    } else {
        *request_authenticator
    };
    let mut bytes = p.encode()?;
    sign_first_ma(&mut bytes, secret);
    sign_authenticator(&mut bytes, request_authenticator, secret);
    Ok(bytes)
}

/// Encodes an Accounting-Request / Disconnect-Request / CoA-Request as a client: adds
/// Message-Authenticator (first) when `with_message_authenticator`, computes the Request
/// Authenticator. `req.authenticator` is ignored; existing Message-Authenticators are
/// dropped.
pub fn encode_request(
    req: &Packet,
    secret: &[u8],
    with_message_authenticator: bool,
) -> Result<Vec<u8>, EncodeError> {
    let mut p = prepare_ma(req, with_message_authenticator);
    p.authenticator = ZERO_AUTH;
    let mut bytes = p.encode()?;
    if with_message_authenticator {
        sign_first_ma(&mut bytes, secret);
    }
    sign_authenticator(&mut bytes, &ZERO_AUTH, secret);
    Ok(bytes)
}

/// Encodes an Access-Request as a client (authenticator = the packet's own random
/// authenticator), adding Message-Authenticator (first) when asked; existing
/// Message-Authenticators are dropped.
pub fn encode_access_request(
    req: &Packet,
    secret: &[u8],
    with_message_authenticator: bool,
) -> Result<Vec<u8>, EncodeError> {
    let p = prepare_ma(req, with_message_authenticator);
    let mut bytes = p.encode()?;
    if with_message_authenticator {
        sign_first_ma(&mut bytes, secret);
    }
    Ok(bytes)
}

/// XORs `block` with MD5(secret + previous) and returns the ciphertext block for the
/// next round: the RFC 2865 5.2 chaining shared by encryption and decryption.
fn xor_md5(block: &mut [u8], secret: &[u8], previous: &[u8]) {
    let pad = md5(&[secret, previous]);
    for (b, p) in block.iter_mut().zip(pad) {
        *b ^= p;
    }
}

/// RFC 2865 5.2 User-Password hiding. Decryption strips trailing NUL padding; the hidden
/// value must be a multiple of 16 in 16..=128 bytes.
pub fn decrypt_user_password(
    hidden: &[u8],
    secret: &[u8],
    request_authenticator: &[u8; 16],
) -> Result<Vec<u8>, PasswordError> {
    if hidden.is_empty() {
        return Err(PasswordError::Empty);
    }
    if !hidden.len().is_multiple_of(16) {
        return Err(PasswordError::NotBlockAligned(hidden.len()));
    }
    if hidden.len() > 128 {
        return Err(PasswordError::TooLong(hidden.len()));
    }
    let mut out = hidden.to_vec();
    let mut previous: &[u8] = request_authenticator;
    for (plain, cipher) in out.chunks_exact_mut(16).zip(hidden.chunks_exact(16)) {
        xor_md5(plain, secret, previous);
        previous = cipher;
    }
    let len = out.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
    out.truncate(len);
    Ok(out)
}

/// RFC 2865 5.2 User-Password hiding, padding with NULs to a multiple of 16 (at least 16).
///
/// Passwords over 128 bytes are hidden whole rather than cut, though RFC 2865 servers
/// (including [`decrypt_user_password`]) refuse them.
pub fn encrypt_user_password(
    password: &[u8],
    secret: &[u8],
    request_authenticator: &[u8; 16],
) -> Vec<u8> {
    let len = password.len().div_ceil(16).max(1) * 16;
    let mut out = vec![0; len];
    out[..password.len()].copy_from_slice(password);
    let mut previous = *request_authenticator;
    for block in out.chunks_exact_mut(16) {
        xor_md5(block, secret, &previous);
        previous.copy_from_slice(block);
    }
    out
}

/// The CHAP challenge of an Access-Request: CHAP-Challenge when present, else the
/// Request Authenticator (RFC 2865 5.3).
pub fn chap_challenge(request: &Packet) -> &[u8] {
    request
        .get(CHAP_CHALLENGE)
        .unwrap_or(&request.authenticator)
}

/// CHAP (RFC 1994 / RFC 2865 5.3): `chap_password` is the 17-byte attribute (ident +
/// 16-byte response); `challenge` is CHAP-Challenge, or the Request Authenticator when
/// that attribute is absent (see [`chap_challenge`]). Constant-time comparison.
pub fn verify_chap(chap_password: &[u8], challenge: &[u8], password: &[u8]) -> bool {
    let Some((&ident, response)) = chap_password.split_first() else {
        return false;
    };
    response.len() == 16 && ct_eq(&chap_response(ident, password, challenge), response)
}

/// The CHAP response MD5(ident + password + challenge).
pub fn chap_response(ident: u8, password: &[u8], challenge: &[u8]) -> [u8; 16] {
    md5(&[&[ident], password, challenge])
}
