//! MS-CHAPv2 (RFC 2759), its MPPE keys (RFC 3079) and their RADIUS attributes (RFC 2548).

use des::Des;
use des::cipher::{BlockEncrypt, KeyInit};
use md4::Md4;
use md5::Md5;
use sha1::{Digest, Sha1};
use subtle::ConstantTimeEq;

/// RFC 2759 8.7 Magic1.
const AUTH_MAGIC1: &[u8; 39] = b"Magic server to client signing constant";
/// RFC 2759 8.7 Magic2.
const AUTH_MAGIC2: &[u8; 41] = b"Pad to make it do more than one iteration";
/// RFC 3079 3.4 Magic1 of GetMasterKey.
const MASTER_MAGIC: &[u8; 27] = b"This is the MPPE Master Key";
/// RFC 3079 3.4 Magic2: the client's send key, the server's receive key.
const CLIENT_SEND_MAGIC: &[u8; 84] =
    b"On the client side, this is the send key; on the server side, it is the receive key.";
/// RFC 3079 3.4 Magic3: the client's receive key, the server's send key.
const SERVER_SEND_MAGIC: &[u8; 84] =
    b"On the client side, this is the receive key; on the server side, it is the send key.";
const SHS_PAD1: [u8; 40] = [0x00; 40];
const SHS_PAD2: [u8; 40] = [0xf2; 40];

/// The MS-CHAP2-Response vendor attribute (RFC 2548 2.3.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MsChap2Response {
    /// PPP CHAP identifier, echoed in MS-CHAP2-Success.
    pub ident: u8,
    /// Reserved flags (zero).
    pub flags: u8,
    /// The client's 16-byte challenge.
    pub peer_challenge: [u8; 16],
    /// The 24-byte NT-Response.
    pub nt_response: [u8; 24],
}

impl MsChap2Response {
    /// Length of the attribute value.
    pub const LEN: usize = 50;

    /// Parses the 50-byte value: ident(1) flags(1) peer_challenge(16) reserved(8)
    /// nt_response(24). `None` for any other length.
    pub fn parse(attr: &[u8]) -> Option<MsChap2Response> {
        let attr: &[u8; Self::LEN] = attr.try_into().ok()?;
        let mut peer_challenge = [0; 16];
        peer_challenge.copy_from_slice(&attr[2..18]);
        let mut nt_response = [0; 24];
        nt_response.copy_from_slice(&attr[26..50]);
        Some(MsChap2Response {
            ident: attr[0],
            flags: attr[1],
            peer_challenge,
            nt_response,
        })
    }

    /// The 50-byte attribute value, reserved octets zero.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(Self::LEN);
        out.push(self.ident);
        out.push(self.flags);
        out.extend_from_slice(&self.peer_challenge);
        out.extend_from_slice(&[0; 8]);
        out.extend_from_slice(&self.nt_response);
        out
    }
}

/// What an Access-Accept for a verified MS-CHAPv2 exchange needs.
#[derive(Clone, PartialEq, Eq)]
pub struct MsChap2Success {
    /// "S=" followed by 40 uppercase hex digits (RFC 2759 8.7).
    pub authenticator_response: String,
    /// Server send key: goes into MS-MPPE-Send-Key.
    pub master_send_key: [u8; 16],
    /// Server receive key: goes into MS-MPPE-Recv-Key.
    pub master_recv_key: [u8; 16],
}

impl std::fmt::Debug for MsChap2Success {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The keys encrypt the subscriber's traffic; keep them out of logs.
        f.debug_struct("MsChap2Success")
            .field("authenticator_response", &self.authenticator_response)
            .finish_non_exhaustive()
    }
}

/// NT password hash: MD4 of the UTF-16LE password (RFC 2759 8.3).
pub fn nt_password_hash(password: &str) -> [u8; 16] {
    let mut h = Md4::new();
    for unit in password.encode_utf16() {
        h.update(unit.to_le_bytes());
    }
    h.finalize().into()
}

/// MD4 of the NT password hash (RFC 2759 8.4).
pub fn hash_nt_password_hash(password_hash: &[u8; 16]) -> [u8; 16] {
    Md4::digest(password_hash).into()
}

/// The user name the challenge hash uses: without a "DOMAIN\" prefix (RFC 2759 4,
/// stripping up to the last backslash as pppd does).
pub fn strip_domain(username: &[u8]) -> &[u8] {
    match username.iter().rposition(|&b| b == b'\\') {
        Some(i) => &username[i + 1..],
        None => username,
    }
}

/// RFC 2759 8.2 ChallengeHash, with the domain stripped from `username`.
pub fn challenge_hash(
    peer_challenge: &[u8; 16],
    authenticator_challenge: &[u8],
    username: &[u8],
) -> [u8; 8] {
    let digest = Sha1::new()
        .chain_update(peer_challenge)
        .chain_update(authenticator_challenge)
        .chain_update(strip_domain(username))
        .finalize();
    let mut out = [0; 8];
    out.copy_from_slice(&digest[..8]);
    out
}

/// DES-encrypts one block with a 7-byte key spread over 8 bytes (RFC 2759 8.6); the
/// parity bits are left clear because DES ignores them.
fn des_encrypt(clear: &[u8; 8], key7: &[u8]) -> [u8; 8] {
    let bits = key7.iter().fold(0u64, |acc, &b| (acc << 8) | u64::from(b));
    let mut key = [0u8; 8];
    for (i, k) in key.iter_mut().enumerate() {
        *k = (((bits >> (49 - 7 * i)) & 0x7f) as u8) << 1;
    }
    let cipher = Des::new(&key.into());
    let mut block = (*clear).into();
    cipher.encrypt_block(&mut block);
    block.into()
}

/// RFC 2759 8.5 ChallengeResponse.
fn challenge_response(challenge: &[u8; 8], password_hash: &[u8; 16]) -> [u8; 24] {
    let mut z = [0u8; 21];
    z[..16].copy_from_slice(password_hash);
    let mut out = [0; 24];
    for (chunk, key) in out.chunks_exact_mut(8).zip(z.chunks_exact(7)) {
        chunk.copy_from_slice(&des_encrypt(challenge, key));
    }
    out
}

fn nt_response_from_hash(
    authenticator_challenge: &[u8],
    peer_challenge: &[u8; 16],
    username: &[u8],
    password_hash: &[u8; 16],
) -> [u8; 24] {
    let challenge = challenge_hash(peer_challenge, authenticator_challenge, username);
    challenge_response(&challenge, password_hash)
}

/// NT-Response a client would send (RFC 2759 8.1), for tests and load generators.
pub fn generate_nt_response(
    authenticator_challenge: &[u8],
    peer_challenge: &[u8; 16],
    username: &[u8],
    password: &str,
) -> [u8; 24] {
    nt_response_from_hash(
        authenticator_challenge,
        peer_challenge,
        username,
        &nt_password_hash(password),
    )
}

/// RFC 2759 8.7 GenerateAuthenticatorResponse: "S=" and 40 uppercase hex digits.
pub fn authenticator_response(
    password_hash: &[u8; 16],
    nt_response: &[u8; 24],
    peer_challenge: &[u8; 16],
    authenticator_challenge: &[u8],
    username: &[u8],
) -> String {
    let digest = Sha1::new()
        .chain_update(hash_nt_password_hash(password_hash))
        .chain_update(nt_response)
        .chain_update(AUTH_MAGIC1)
        .finalize();
    let challenge = challenge_hash(peer_challenge, authenticator_challenge, username);
    let digest = Sha1::new()
        .chain_update(digest)
        .chain_update(challenge)
        .chain_update(AUTH_MAGIC2)
        .finalize();
    let mut out = String::with_capacity(42);
    out.push_str("S=");
    for b in digest {
        out.push_str(&format!("{b:02X}"));
    }
    out
}

/// RFC 3079 3.4 GetMasterKey.
pub fn master_key(password_hash_hash: &[u8; 16], nt_response: &[u8; 24]) -> [u8; 16] {
    let digest = Sha1::new()
        .chain_update(password_hash_hash)
        .chain_update(nt_response)
        .chain_update(MASTER_MAGIC)
        .finalize();
    let mut out = [0; 16];
    out.copy_from_slice(&digest[..16]);
    out
}

/// RFC 3079 3.4 GetAsymmetricStartKey for a 128-bit key.
pub fn asymmetric_start_key(master_key: &[u8; 16], is_send: bool, is_server: bool) -> [u8; 16] {
    // The server's send key is the client's receive key and vice versa.
    let magic = if is_send == is_server {
        SERVER_SEND_MAGIC
    } else {
        CLIENT_SEND_MAGIC
    };
    let digest = Sha1::new()
        .chain_update(master_key)
        .chain_update(SHS_PAD1)
        .chain_update(magic)
        .chain_update(SHS_PAD2)
        .finalize();
    let mut out = [0; 16];
    out.copy_from_slice(&digest[..16]);
    out
}

/// Verifies the NT-Response with the clear-text password (UTF-16LE NT hash) in constant
/// time; on success returns the authenticator response and the server's MPPE keys
/// (RFC 3079 3.4/3.5, roles as FreeRADIUS's rlm_mschap assigns them).
///
/// `None` when the response is wrong or the authenticator challenge is not 16 bytes.
pub fn verify(
    authenticator_challenge: &[u8],
    response: &MsChap2Response,
    username: &[u8],
    password: &str,
) -> Option<MsChap2Success> {
    if authenticator_challenge.len() != 16 {
        return None;
    }
    let password_hash = nt_password_hash(password);
    let expected = nt_response_from_hash(
        authenticator_challenge,
        &response.peer_challenge,
        username,
        &password_hash,
    );
    if !bool::from(expected.ct_eq(&response.nt_response)) {
        return None;
    }
    let master = master_key(
        &hash_nt_password_hash(&password_hash),
        &response.nt_response,
    );
    Some(MsChap2Success {
        authenticator_response: authenticator_response(
            &password_hash,
            &response.nt_response,
            &response.peer_challenge,
            authenticator_challenge,
            username,
        ),
        master_send_key: asymmetric_start_key(&master, true, true),
        master_recv_key: asymmetric_start_key(&master, false, true),
    })
}

/// The MS-CHAP2-Success VSA value: ident byte followed by the 42-character "S=..." string.
pub fn success_attribute(ident: u8, success: &MsChap2Success) -> Vec<u8> {
    let mut out = Vec::with_capacity(1 + success.authenticator_response.len());
    out.push(ident);
    out.extend_from_slice(success.authenticator_response.as_bytes());
    out
}

/// MD5(secret + previous): the RFC 2548 2.4.2 key stream block.
fn mppe_pad(secret: &[u8], previous: &[u8]) -> [u8; 16] {
    Md5::new()
        .chain_update(secret)
        .chain_update(previous)
        .finalize()
        .into()
}

/// RFC 2548 2.4.2/2.4.3 encrypted MS-MPPE-Send-Key / Recv-Key VSA value (salt with the
/// high bit set, key length byte, padding to 16) for the given 16-byte key.
///
/// The high bit of `salt` is forced on; each key in one packet needs its own salt.
pub fn mppe_key_attribute(
    key: &[u8; 16],
    secret: &[u8],
    request_authenticator: &[u8; 16],
    salt: u16,
) -> Vec<u8> {
    let salt = (salt | 0x8000).to_be_bytes();
    let mut plain = [0u8; 32];
    plain[0] = 16;
    plain[1..17].copy_from_slice(key);

    let mut out = Vec::with_capacity(2 + plain.len());
    out.extend_from_slice(&salt);
    let mut previous = [&request_authenticator[..], &salt].concat();
    for block in plain.chunks_exact(16) {
        let pad = mppe_pad(secret, &previous);
        let cipher: Vec<u8> = block.iter().zip(pad).map(|(b, p)| b ^ p).collect();
        out.extend_from_slice(&cipher);
        previous = cipher;
    }
    out
}

/// Decrypts an MS-MPPE-Send-Key / Recv-Key value (for tests and clients); `None` when
/// the value is not salt plus whole 16-byte blocks or its key length byte overruns it.
pub fn decrypt_mppe_key_attribute(
    value: &[u8],
    secret: &[u8],
    request_authenticator: &[u8; 16],
) -> Option<Vec<u8>> {
    let (salt, cipher) = value.split_first_chunk::<2>()?;
    if cipher.is_empty() || !cipher.len().is_multiple_of(16) {
        return None;
    }
    let mut plain = Vec::with_capacity(cipher.len());
    let first = [&request_authenticator[..], salt].concat();
    let mut previous: &[u8] = &first;
    for block in cipher.chunks_exact(16) {
        let pad = mppe_pad(secret, previous);
        plain.extend(block.iter().zip(pad).map(|(b, p)| b ^ p));
        previous = block;
    }
    let (&key_len, rest) = plain.split_first()?;
    rest.get(..usize::from(key_len)).map(<[u8]>::to_vec)
}
