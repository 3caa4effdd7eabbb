//! Login rate limiting per (account, address) and per address, with a slowdown per account,
//! stored in the database so every controller replica counts the same failures.

use crate::db::{Db, DbError, now_ms};
use sqlx::Row;
use std::time::Duration;

/// The longest account name a throttle key holds.
const MAX_KEY_ACCOUNT_CHARS: usize = 200;

/// Failures of one account from one address within the window before that address is
/// locked out of that account.
pub const PAIR_MAX_FAILURES: i64 = 5;
/// Failures from one address within the window before it is locked.
pub const ADDRESS_MAX_FAILURES: i64 = 20;
/// Failures of one account from anywhere before its logins are slowed down.
pub const ACCOUNT_FREE_FAILURES: i64 = 5;
/// The longest an account's login is held back.
pub const MAX_SLOWDOWN: Duration = Duration::from_secs(10);
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

/// The keys one login attempt is counted under. The account key only ever slows logins
/// down: an attacker elsewhere must not be able to lock its owner out. The pair and the
/// address keys lock, so one address cannot keep guessing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginKeys {
    /// The account, from any address.
    pub account: String,
    /// The account from this address.
    pub pair: String,
    /// This address, whatever account it names.
    pub address: String,
}

impl LoginKeys {
    /// Keys of an admin login (API and web UI count together).
    pub fn admin(username: &str, address: &str) -> LoginKeys {
        LoginKeys::scoped("admin", &username.to_lowercase(), address)
    }

    /// Keys of a customer's portal login.
    pub fn portal(account: &str, address: &str) -> LoginKeys {
        LoginKeys::scoped("portal", &account.to_lowercase(), address)
    }

    fn scoped(scope: &str, account: &str, address: &str) -> LoginKeys {
        // A typed name of any length must fit the key column's index (PostgreSQL refuses
        // index rows over ~2.7 kB): names that long are no account's, so a prefix counts them.
        let account: String = account.chars().take(MAX_KEY_ACCOUNT_CHARS).collect();
        LoginKeys {
            account: format!("{scope}-acct:{account}"),
            pair: format!("{scope}-pair:{account}@{address}"),
            address: format!("{scope}-addr:{address}"),
        }
    }

    /// The keys that lock, with their limits.
    fn locking(&self) -> [(String, i64); 2] {
        [
            (self.pair.clone(), PAIR_MAX_FAILURES),
            (self.address.clone(), ADDRESS_MAX_FAILURES),
        ]
    }
}

/// Whether a login attempt may go ahead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gate {
    /// This address is locked out (of the account, or altogether) for this long.
    Locked(Duration),
    /// The attempt goes ahead after this delay (zero unless the account is under attack).
    Open(Duration),
}

/// How long a login to an account with `failures` recent failures is held back: nothing at
/// first, then doubling from a quarter second up to [`MAX_SLOWDOWN`].
pub fn slowdown(failures: i64) -> Duration {
    if failures < ACCOUNT_FREE_FAILURES {
        return Duration::ZERO;
    }
    let doublings = (failures - ACCOUNT_FREE_FAILURES).min(16) as u32;
    (Duration::from_millis(250) * 2u32.pow(doublings)).min(MAX_SLOWDOWN)
}

/// Decides whether a login attempt under `keys` may go ahead.
pub async fn gate(db: &Db, keys: &LoginKeys) -> Result<Gate, DbError> {
    if let Some(ms) = locked_for(db, &keys.locking()).await? {
        return Ok(Gate::Locked(Duration::from_millis(ms.max(0) as u64)));
    }
    Ok(Gate::Open(slowdown(failures(db, &keys.account).await?)))
}

/// Counts a failed login under all its keys.
pub async fn login_failed(db: &Db, keys: &LoginKeys) -> Result<(), DbError> {
    let mut all = keys.locking().to_vec();
    all.push((keys.account.clone(), i64::MAX));
    record_failure(db, &all).await
}

/// Clears the account's and the pair's failures after a successful login (the address
/// keeps its count: it may be guessing other accounts).
pub async fn login_succeeded(db: &Db, keys: &LoginKeys) -> Result<(), DbError> {
    clear(db, &keys.account).await?;
    clear(db, &keys.pair).await
}

/// Failures counted under `key` in the current window.
async fn failures(db: &Db, key: &str) -> Result<i64, DbError> {
    let row = sqlx::query("SELECT failures, window_start FROM login_throttle WHERE key = $1")
        .bind(key)
        .fetch_optional(&db.pool)
        .await?;
    Ok(match row {
        Some(row) if row.try_get::<i64, _>("window_start")? > now_ms() - WINDOW_MS => {
            row.try_get("failures")?
        }
        _ => 0,
    })
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
    fn keys_stay_short_whatever_is_typed() {
        let long = "a".repeat(10_000);
        let keys = LoginKeys::admin(&long, "203.0.113.7");
        assert!(keys.pair.len() < 300 && keys.account.len() < 300);
        assert_ne!(LoginKeys::admin("admin", "x").account, keys.account);
    }

    #[test]
    fn an_account_under_attack_is_slowed_never_locked() {
        assert_eq!(slowdown(0), Duration::ZERO);
        assert_eq!(slowdown(ACCOUNT_FREE_FAILURES - 1), Duration::ZERO);
        assert_eq!(slowdown(ACCOUNT_FREE_FAILURES), Duration::from_millis(250));
        assert_eq!(slowdown(ACCOUNT_FREE_FAILURES + 2), Duration::from_secs(1));
        let mut last = Duration::ZERO;
        for f in 0..10_000 {
            let d = slowdown(f);
            assert!(d >= last && d <= MAX_SLOWDOWN, "{f}: {d:?}");
            last = d;
        }
        assert_eq!(slowdown(i64::MAX), MAX_SLOWDOWN);
    }

    #[test]
    fn keys_keep_scopes_and_addresses_apart() {
        let a = LoginKeys::admin("Root", "10.0.0.1");
        let b = LoginKeys::admin("root", "10.0.0.2");
        assert_eq!(a.account, b.account);
        assert_ne!(a.pair, b.pair);
        assert_ne!(a.address, b.address);
        let p = LoginKeys::portal("root", "10.0.0.1");
        assert_ne!(a.account, p.account);
        assert_ne!(a.address, p.address);
    }

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
