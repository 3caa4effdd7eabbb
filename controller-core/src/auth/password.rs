//! Argon2id password hashing, off the async runtime (a hash takes tens of milliseconds).

use argon2::{Argon2, PasswordHash, PasswordHasher, PasswordVerifier};

/// Shortest password accepted for an admin account.
pub const MIN_PASSWORD_LEN: usize = 10;

/// Errors of password handling.
#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    /// The password is too weak to store.
    #[error("password must be at least {MIN_PASSWORD_LEN} characters")]
    TooShort,
    /// Hashing failed (out of memory or a broken stored hash).
    #[error("password hashing failed: {0}")]
    Hash(String),
}

/// Checks a new password against the policy.
pub fn check_policy(password: &str) -> Result<(), PasswordError> {
    if password.chars().count() < MIN_PASSWORD_LEN {
        return Err(PasswordError::TooShort);
    }
    Ok(())
}

/// Hashes a password to a PHC string (Argon2id, default parameters, random salt).
pub async fn hash(password: &str) -> Result<String, PasswordError> {
    let password = password.to_owned();
    tokio::task::spawn_blocking(move || {
        Argon2::default()
            .hash_password(password.as_bytes())
            .map(|h| h.to_string())
            .map_err(|e| PasswordError::Hash(e.to_string()))
    })
    .await
    .map_err(|e| PasswordError::Hash(e.to_string()))?
}

/// Verifies `password` against a stored PHC string; `None` still spends the same time so a
/// missing account cannot be told from a wrong password by timing.
pub async fn verify(password: &str, stored: Option<String>) -> bool {
    let password = password.to_owned();
    tokio::task::spawn_blocking(move || {
        let stored = stored.unwrap_or_else(|| DUMMY_HASH.with(|h| h.clone()));
        match PasswordHash::new(&stored) {
            Ok(parsed) => Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok(),
            Err(_) => false,
        }
    })
    .await
    .unwrap_or(false)
}

thread_local! {
    // A real hash of a random string: verifying against it costs what a real check costs.
    static DUMMY_HASH: String = Argon2::default()
        .hash_password(uuid::Uuid::new_v4().to_string().as_bytes())
        .map(|h| h.to_string())
        .unwrap_or_default();
}

/// A random password for generated accounts (first admin): 20 unambiguous characters.
pub fn generate() -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"23456789abcdefghjkmnpqrstuvwxyzABCDEFGHJKMNPQRSTUVWXYZ";
    let mut rng = rand::rng();
    (0..20)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hash_and_verify() {
        let h = hash("correct horse battery").await.unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify("correct horse battery", Some(h.clone())).await);
        assert!(!verify("wrong horse battery", Some(h)).await);
        assert!(!verify("anything", None).await);
        assert!(!verify("anything", Some("not a hash".into())).await);
    }

    #[test]
    fn policy_and_generation() {
        assert!(check_policy("short").is_err());
        assert!(check_policy(&generate()).is_ok());
    }
}
