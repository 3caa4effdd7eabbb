//! Login rate limiting per account and per client address, stored in the database so every
//! controller replica counts the same failures.

use crate::db::{Db, DbError, now_ms};
use sqlx::Row;

/// Failures of one account within the window before it is locked.
pub const ACCOUNT_MAX_FAILURES: i64 = 5;
/// Failures from one address within the window before it is locked.
pub const ADDRESS_MAX_FAILURES: i64 = 20;
/// The counting window, and how long a lock lasts.
pub const WINDOW_MS: i64 = 15 * 60 * 1000;

/// How a client address is counted: an IPv4 address alone, an IPv6 address by its /64
/// (one subscriber line gets a whole /64, so rotating within it must not reset the count).
pub fn address_key(ip: Option<std::net::IpAddr>) -> String {
    match ip.map(|ip| ip.to_canonical()) {
        None => "unknown".into(),
        Some(std::net::IpAddr::V4(v4)) => v4.to_string(),
        Some(std::net::IpAddr::V6(v6)) => {
            let s = v6.segments();
            let prefix = std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0);
            format!("{prefix}/64")
        }
    }
}

/// The keys a login attempt is counted under.
pub fn keys(username: &str, address: &str) -> [(String, i64); 2] {
    [
        (
            format!("user:{}", username.to_lowercase()),
            ACCOUNT_MAX_FAILURES,
        ),
        (format!("addr:{address}"), ADDRESS_MAX_FAILURES),
    ]
}

/// If any key is locked, the milliseconds until the lock ends.
pub async fn locked_for(db: &Db, keys: &[(String, i64)]) -> Result<Option<i64>, DbError> {
    let now = now_ms();
    let mut longest = None;
    for (key, _) in keys {
        let row = sqlx::query("SELECT locked_until FROM login_throttle WHERE key = $1")
            .bind(key)
            .fetch_optional(&db.pool)
            .await?;
        if let Some(row) = row
            && let Some(until) = row.try_get::<Option<i64>, _>("locked_until")?
            && until > now
        {
            longest = Some(longest.unwrap_or(0).max(until - now));
        }
    }
    Ok(longest)
}

/// Counts a failed attempt under every key, locking those that reach their limit.
pub async fn record_failure(db: &Db, keys: &[(String, i64)]) -> Result<(), DbError> {
    let now = now_ms();
    for (key, max) in keys {
        // A window that has ended starts over; the lock is set by the attempt that reaches max.
        sqlx::query(
            "INSERT INTO login_throttle (key, failures, window_start, locked_until) VALUES ($1, 1, $2, NULL) \
             ON CONFLICT (key) DO UPDATE SET \
               failures = CASE WHEN login_throttle.window_start <= $3 THEN 1 ELSE login_throttle.failures + 1 END, \
               window_start = CASE WHEN login_throttle.window_start <= $3 THEN $2 ELSE login_throttle.window_start END",
        )
        .bind(key)
        .bind(now)
        .bind(now - WINDOW_MS)
        .execute(&db.pool)
        .await?;
        sqlx::query(
            "UPDATE login_throttle SET locked_until = $1 WHERE key = $2 AND failures >= $3",
        )
        .bind(now + WINDOW_MS)
        .bind(key)
        .bind(*max)
        .execute(&db.pool)
        .await?;
    }
    Ok(())
}

/// Clears the account's failures after a successful login (the address keeps its count).
pub async fn record_success(db: &Db, username: &str) -> Result<(), DbError> {
    sqlx::query("DELETE FROM login_throttle WHERE key = $1")
        .bind(format!("user:{}", username.to_lowercase()))
        .execute(&db.pool)
        .await?;
    Ok(())
}

/// Clears one key's failures after a successful login (for logins other than admins').
pub async fn clear(db: &Db, key: &str) -> Result<(), DbError> {
    sqlx::query("DELETE FROM login_throttle WHERE key = $1")
        .bind(key)
        .execute(&db.pool)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_clients_count_by_their_64() {
        let a = address_key(Some("2001:db8:1:2:aaaa::1".parse().unwrap()));
        let b = address_key(Some("2001:db8:1:2:bbbb::9".parse().unwrap()));
        assert_eq!(a, b);
        assert_eq!(a, "2001:db8:1:2::/64");
        assert_ne!(a, address_key(Some("2001:db8:1:3::1".parse().unwrap())));
        assert_eq!(
            address_key(Some("::ffff:10.0.0.7".parse().unwrap())),
            "10.0.0.7"
        );
        assert_eq!(address_key(None), "unknown");
    }
}
