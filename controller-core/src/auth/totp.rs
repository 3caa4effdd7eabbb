//! Time-based one-time passwords (RFC 6238 over RFC 4226): HMAC-SHA-1, six digits, 30 s
//! steps, a code accepted one step early or late, and never for a step already used. Pure:
//! the time is passed in, storage (the secret, the last used step) is `admin_totp`'s.

use hmac::{Hmac, Mac};
use rand::RngCore;
use sha1::Sha1;

/// Seconds one code is valid for.
pub const STEP_SECS: i64 = 30;
/// Digits of a code.
pub const DIGITS: u32 = 6;
/// Steps accepted either side of the current one (clock drift, a code typed at the edge).
pub const SKEW_STEPS: i64 = 1;
/// Bytes of a new secret (160 bits, the size RFC 4226 recommends for SHA-1).
pub const SECRET_BYTES: usize = 20;

/// An authenticator secret. `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Vec<u8>);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

impl Secret {
    /// A new random secret.
    pub fn generate() -> Secret {
        let mut bytes = vec![0u8; SECRET_BYTES];
        rand::rng().fill_bytes(&mut bytes);
        Secret(bytes)
    }

    /// Wraps raw key bytes (test vectors, stored secrets).
    pub fn from_bytes(bytes: Vec<u8>) -> Secret {
        Secret(bytes)
    }

    /// Reads the base32 form (RFC 4648, case, spaces and padding ignored, as apps show it).
    pub fn from_base32(text: &str) -> Option<Secret> {
        let clean: String = text
            .chars()
            .filter(|c| !c.is_whitespace() && *c != '=')
            .map(|c| c.to_ascii_uppercase())
            .collect();
        let bytes = data_encoding::BASE32_NOPAD.decode(clean.as_bytes()).ok()?;
        (!bytes.is_empty()).then_some(Secret(bytes))
    }

    /// The base32 form authenticator apps take, without padding.
    pub fn to_base32(&self) -> String {
        data_encoding::BASE32_NOPAD.encode(&self.0)
    }

    /// The base32 form in groups of four, for typing it by hand.
    pub fn grouped(&self) -> String {
        let b32 = self.to_base32();
        b32.as_bytes()
            .chunks(4)
            .map(|c| std::str::from_utf8(c).unwrap_or_default())
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// The step a moment (unix ms) falls in.
pub fn step_at(now_ms: i64) -> i64 {
    now_ms.div_euclid(1000).div_euclid(STEP_SECS)
}

/// The RFC 4226 HOTP value of `counter` with `digits` digits.
pub fn hotp(secret: &Secret, counter: u64, digits: u32) -> u32 {
    let mut mac = <Hmac<Sha1> as Mac>::new_from_slice(&secret.0).expect("HMAC takes any key");
    mac.update(&counter.to_be_bytes());
    let digest = mac.finalize().into_bytes();
    let offset = (digest[19] & 0x0f) as usize;
    let binary = u32::from_be_bytes([
        digest[offset] & 0x7f,
        digest[offset + 1],
        digest[offset + 2],
        digest[offset + 3],
    ]);
    binary % 10u32.pow(digits)
}

/// The six-digit code of a step, zero-padded as apps show it.
pub fn code_at_step(secret: &Secret, step: i64) -> String {
    format!(
        "{:0width$}",
        hotp(secret, step.max(0) as u64, DIGITS),
        width = DIGITS as usize
    )
}

/// The code an app shows at `now_ms`.
pub fn code_at(secret: &Secret, now_ms: i64) -> String {
    code_at_step(secret, step_at(now_ms))
}

/// Whether two codes are equal, in time that does not depend on where they differ.
fn same_code(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The step `code` was made for, if it is a well-formed code for a step within
/// [`SKEW_STEPS`] of `now_ms` and after `last_used` (the newest step already accepted: a code
/// never works twice, nor does an older one once a newer was used).
pub fn matching_step(
    secret: &Secret,
    code: &str,
    now_ms: i64,
    last_used: Option<i64>,
) -> Option<i64> {
    let typed: String = code.chars().filter(|c| !c.is_whitespace()).collect();
    if typed.len() != DIGITS as usize || !typed.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let now = step_at(now_ms);
    let mut found = None;
    // Every candidate is computed, so the time taken does not tell which step matched.
    for step in (now - SKEW_STEPS)..=(now + SKEW_STEPS) {
        let fresh = last_used.is_none_or(|used| step > used);
        if same_code(code_at_step(secret, step).as_bytes(), typed.as_bytes()) && fresh {
            found = Some(step);
        }
    }
    found
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
fn encode_component(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The `otpauth://` URI authenticator apps read (from a QR code or pasted): the issuer and
/// account label they show, the secret and the parameters used here.
pub fn otpauth_uri(secret: &Secret, issuer: &str, account: &str) -> String {
    let issuer = encode_component(issuer);
    format!(
        "otpauth://totp/{issuer}:{}?secret={}&issuer={issuer}&algorithm=SHA1&digits={DIGITS}&period={STEP_SECS}",
        encode_component(account),
        secret.to_base32(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn rfc_secret() -> Secret {
        Secret::from_bytes(b"12345678901234567890".to_vec())
    }

    #[test]
    fn rfc6238_sha1_vectors() {
        // RFC 6238 appendix B, SHA-1 column (eight digits; six are the same number's tail).
        let vectors: [(i64, u32); 6] = [
            (59, 94287082),
            (1111111109, 7081804),
            (1111111111, 14050471),
            (1234567890, 89005924),
            (2000000000, 69279037),
            (20000000000, 65353130),
        ];
        let s = rfc_secret();
        for (t, want) in vectors {
            let step = step_at(t * 1000);
            assert_eq!(hotp(&s, step as u64, 8), want, "t={t}");
            assert_eq!(code_at(&s, t * 1000), format!("{:06}", want % 1_000_000));
        }
    }

    #[test]
    fn rfc4226_hotp_vectors() {
        let want = [
            755224, 287082, 359152, 969429, 338314, 254676, 287922, 162583, 399871, 520489,
        ];
        for (counter, w) in want.into_iter().enumerate() {
            assert_eq!(hotp(&rfc_secret(), counter as u64, 6), w);
        }
    }

    #[test]
    fn base32_round_trips_and_reads_what_apps_show() {
        let s = rfc_secret();
        assert_eq!(s.to_base32(), "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ");
        assert_eq!(s.grouped(), "GEZD GNBV GY3T QOJQ GEZD GNBV GY3T QOJQ");
        assert_eq!(
            Secret::from_base32(&s.grouped().to_lowercase()),
            Some(s.clone())
        );
        assert_eq!(Secret::from_base32("not base32!"), None);
        assert_eq!(Secret::from_base32(""), None);
        assert_eq!(format!("{s:?}"), "Secret([redacted])");
        let fresh = Secret::generate();
        assert_eq!(fresh.to_base32().len(), 32);
        assert_ne!(fresh, Secret::generate());
    }

    #[test]
    fn the_uri_names_issuer_account_and_parameters() {
        let uri = otpauth_uri(&rfc_secret(), "MikroBill Net", "ops@example");
        assert_eq!(
            uri,
            "otpauth://totp/MikroBill%20Net:ops%40example?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ\
             &issuer=MikroBill%20Net&algorithm=SHA1&digits=6&period=30"
        );
    }

    #[test]
    fn malformed_codes_never_match() {
        let s = rfc_secret();
        let now = 59_000;
        let good = code_at(&s, now);
        assert_eq!(matching_step(&s, &good, now, None), Some(step_at(now)));
        assert_eq!(
            matching_step(&s, &format!("{} {}", &good[..3], &good[3..]), now, None),
            Some(step_at(now))
        );
        for bad in ["", "12345", "1234567", "abcdef", "+12345", "２８７０８２"] {
            assert_eq!(matching_step(&s, bad, now, None), None, "{bad:?}");
        }
    }

    proptest! {
        #[test]
        fn a_code_verifies_within_one_step_and_never_twice(
            key in proptest::collection::vec(any::<u8>(), 10..40),
            step in 1i64..100_000_000,
            offset in -4i64..=4,
            within in 0i64..30_000,
        ) {
            let s = Secret::from_bytes(key);
            let code = code_at_step(&s, step);
            let now = (step + offset) * STEP_SECS * 1000 + within;
            let got = matching_step(&s, &code, now, None);
            if offset.abs() <= SKEW_STEPS {
                // Another step in the window may share the code by chance (1 in a million);
                // what matters is that some step within the window is accepted.
                let m = got.expect("a code within one step verifies");
                prop_assert!((m - step_at(now)).abs() <= SKEW_STEPS);
                // Once used, neither it nor any code of that step or before verifies again.
                prop_assert_eq!(matching_step(&s, &code, now, Some(m)), None);
                prop_assert_eq!(matching_step(&s, &code_at_step(&s, step - 1), now, Some(m.max(step))), None);
            } else if let Some(m) = got {
                // A far-off code only matches when a nearby step happens to share its digits.
                prop_assert!((m - step_at(now)).abs() <= SKEW_STEPS);
                prop_assert_eq!(code_at_step(&s, m), code);
            }
        }
    }
}
