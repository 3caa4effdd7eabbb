//! Login rate limiting per (account, address) and per address, with a slowdown per account,
//! stored in the database so every controller replica counts the same failures.

use crate::db::{Db, DbError, now_ms};
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

/// Counts a login attempt under `keys` before the password is checked, and decides whether
/// it may go ahead. Counting first, in one write transaction, is what holds the limits against
/// parallel guesses: each attempt sees the count its own attempt made, so no more than the
/// limit ever reach the password check. A refused attempt is not counted; a failed one stays
/// counted ([`login_failed`]); a successful one is given back ([`login_succeeded`]).
pub async fn gate(db: &Db, keys: &LoginKeys) -> Result<Gate, DbError> {
    Ok(
        match take(db, &keys.locking(), Some(&keys.account)).await? {
            Taken::Refused(wait) => Gate::Locked(wait),
            // The attempt under way is not one of the failures that slow the account down.
            Taken::Counted(account) => Gate::Open(slowdown(account - 1)),
        },
    )
}

/// A login that [`gate`] let through failed: its attempt stays counted, and the keys it
/// brought to their limit lock.
pub async fn login_failed(db: &Db, keys: &LoginKeys) -> Result<(), DbError> {
    lock_reached(db, &keys.locking()).await
}

/// A login succeeded: the account's and the pair's failures are cleared, and the address
/// gets back the attempt [`gate`] counted (it keeps its failures: it may be guessing other
/// accounts).
pub async fn login_succeeded(db: &Db, keys: &LoginKeys) -> Result<(), DbError> {
    clear(db, &keys.account).await?;
    clear(db, &keys.pair).await?;
    give_back(db, &[(keys.address.clone(), ADDRESS_MAX_FAILURES)]).await
}

/// Counts an attempt at something guarded by `keys` alone (a code lookup, a code request)
/// before it is tried. `Some(wait)` refuses it, uncounted, while a key is locked or already
/// at its limit; then [`lock_reached`] after a miss, or [`give_back`] after a hit.
pub async fn gate_keys(db: &Db, keys: &[(String, i64)]) -> Result<Option<Duration>, DbError> {
    Ok(match take(db, keys, None).await? {
        Taken::Refused(wait) => Some(wait),
        Taken::Counted(_) => None,
    })
}

/// After a miss: locks every key whose count has reached its limit, for the window.
pub async fn lock_reached(db: &Db, keys: &[(String, i64)]) -> Result<(), DbError> {
    let now = now_ms();
    for (key, max) in keys {
        sqlx::query(
            "UPDATE login_throttle SET locked_until = $1 WHERE key = $2 AND failures >= $3 \
             AND (locked_until IS NULL OR locked_until <= $4)",
        )
        .bind(now + WINDOW_MS)
        .bind(key)
        .bind(*max)
        .bind(now)
        .execute(&db.pool)
        .await?;
    }
    Ok(())
}

/// After a hit: gives back the attempt [`gate_keys`] counted.
pub async fn give_back(db: &Db, keys: &[(String, i64)]) -> Result<(), DbError> {
    for (key, _) in keys {
        sqlx::query(
            "UPDATE login_throttle SET failures = failures - 1 WHERE key = $1 AND failures > 0",
        )
        .bind(key)
        .execute(&db.pool)
        .await?;
    }
    Ok(())
}

/// What [`take`] did with an attempt.
enum Taken {
    /// Refused, uncounted: a key is locked, or this attempt would go beyond its limit.
    Refused(Duration),
    /// Counted; the count under the extra key (0 without one).
    Counted(i64),
}

/// Whether an attempt that brought the locking keys to `counts` (paired with their limits)
/// goes beyond any of them.
fn over_limit(counts: &[(i64, i64)]) -> bool {
    counts.iter().any(|(count, max)| count > max)
}

/// Counts one attempt under every key in one write transaction (`BEGIN IMMEDIATE` on
/// SQLite: parallel attempts queue for the lock instead of reading the same count).
async fn take(db: &Db, locking: &[(String, i64)], extra: Option<&str>) -> Result<Taken, DbError> {
    let now = now_ms();
    let mut tx = db.begin().await?;
    let mut locked = None::<i64>;
    for (key, _) in locking {
        let until: Option<Option<i64>> =
            sqlx::query_scalar("SELECT locked_until FROM login_throttle WHERE key = $1")
                .bind(key)
                .fetch_optional(&mut *tx)
                .await?;
        if let Some(Some(until)) = until
            && until > now
        {
            locked = Some(locked.unwrap_or(0).max(until - now));
        }
    }
    if let Some(ms) = locked {
        tx.rollback().await?;
        return Ok(Taken::Refused(Duration::from_millis(ms as u64)));
    }
    let mut counts = Vec::with_capacity(locking.len());
    for (key, max) in locking {
        counts.push((count_attempt(&mut tx, key, now).await?, *max));
    }
    if over_limit(&counts) {
        // Parallel attempts got here before the one that reached the limit failed and locked
        // the key: refused for the window, and not counted.
        tx.rollback().await?;
        return Ok(Taken::Refused(Duration::from_millis(WINDOW_MS as u64)));
    }
    let extra = match extra {
        Some(key) => count_attempt(&mut tx, key, now).await?,
        None => 0,
    };
    tx.commit().await?;
    Ok(Taken::Counted(extra))
}

/// Counts one attempt under `key` inside `tx` (a window that has ended starts over) and
/// returns the count.
async fn count_attempt(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    key: &str,
    now: i64,
) -> Result<i64, DbError> {
    // No RETURNING: SQLite finishes an INSERT ... RETURNING only once its rows are read to
    // the end, and a half-read one keeps the statement open; a plain read after it cannot.
    sqlx::query(
        "INSERT INTO login_throttle (key, failures, window_start, locked_until) VALUES ($1, 1, $2, NULL) \
         ON CONFLICT (key) DO UPDATE SET \
           failures = CASE WHEN login_throttle.window_start <= $3 THEN 1 ELSE login_throttle.failures + 1 END, \
           window_start = CASE WHEN login_throttle.window_start <= $3 THEN $2 ELSE login_throttle.window_start END",
    )
    .bind(key)
    .bind(now)
    .bind(now - WINDOW_MS)
    .execute(&mut **tx)
    .await?;
    Ok(
        sqlx::query_scalar("SELECT failures FROM login_throttle WHERE key = $1")
            .bind(key)
            .fetch_one(&mut **tx)
            .await?,
    )
}

/// Forgets one key's count and lock.
async fn clear(db: &Db, key: &str) -> Result<(), DbError> {
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
    fn an_attempt_beyond_any_limit_is_refused() {
        assert!(!over_limit(&[]));
        assert!(!over_limit(&[(5, 5), (20, 20)]));
        assert!(over_limit(&[(6, 5), (1, 20)]));
        assert!(over_limit(&[(1, 5), (21, 20)]));
    }

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
