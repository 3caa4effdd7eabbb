//! Anti-forgery tokens for HTML forms: every POST form carries a token that a page on
//! another site cannot know, compared in constant time.

/// A fresh random token (128 bits, hex), for forms shown before a login.
pub fn new_token() -> String {
    use rand::RngCore;
    let mut bytes = [0u8; 16];
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// Whether a submitted token matches the expected one; an empty expectation never matches.
pub fn token_matches(expected: &str, submitted: &str) -> bool {
    let (a, b) = (expected.as_bytes(), submitted.as_bytes());
    !a.is_empty()
        && a.len() == b.len()
        && std::hint::black_box(a.iter().zip(b).fold(0_u8, |acc, (x, y)| acc | (x ^ y))) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matching() {
        let t = new_token();
        assert_eq!(t.len(), 32);
        assert_ne!(t, new_token());
        assert!(token_matches(&t, &t.clone()));
        assert!(!token_matches(&t, &t[..31]));
        assert!(!token_matches(&t, ""));
        assert!(!token_matches("", ""));
    }
}
