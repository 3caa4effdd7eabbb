//! The local session table and per-account usage, kept in sled beside the cache so that
//! time and data limits and the shared-users limit hold while the controller is away.
//!
//! Sessions are keyed `username \0 nas \0 session-id`, so one prefix scan yields an account's
//! open sessions. A stopped session stays as a tombstone for a day so a late or repeated
//! Stop is never counted twice. Each session remembers where its NAS sent accounting from,
//! so a controller command can reach it with CoA or Disconnect.

use super::fair_usage::{self, Attempt};
use super::policy::{FixedAtLogin, Usage};
use mikrobill_protocol::accounting::{AccountingRecord, AcctStatus};
use serde::{Deserialize, Serialize};
use sled::Transactional;
use sled::transaction::{ConflictableTransactionError, TransactionError, TransactionalTree};
use std::cell::RefCell;
use std::net::{IpAddr, Ipv4Addr};

/// An open session not updated for this long no longer counts against shared users (for
/// logins, [`super::policy::stale_after_ms`] of the session's interim interval decides).
pub const STALE_AFTER_MS: i64 = 30 * 60 * 1000;
/// How long a stopped session's tombstone is kept.
const TOMBSTONE_MS: i64 = 24 * 3600 * 1000;
/// Most events [`Sessions::apply_all`] puts in one sled transaction. A transaction holds
/// sled's process-wide lock exclusively, stalling every reader (the auth path's cache
/// lookups too) until it commits: this bounds that stall to a few milliseconds however
/// large a burst of accounting is, while keeping most of the saving per event.
const EVENTS_PER_TRANSACTION: usize = 256;

/// Errors of the session table.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// sled failed.
    #[error("session storage failed: {0}")]
    Storage(#[from] sled::Error),
    /// A stored value is damaged.
    #[error("session entry is damaged: {0}")]
    Decode(#[from] postcard::Error),
}

impl From<TransactionError<SessionError>> for SessionError {
    fn from(e: TransactionError<SessionError>) -> Self {
        match e {
            TransactionError::Abort(e) => e,
            TransactionError::Storage(e) => SessionError::Storage(e),
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
struct SessionState {
    nas: String,
    session_id: String,
    started_ms: i64,
    last_ms: i64,
    time_secs: u64,
    bytes: u64,
    closed: bool,
    // Appended fields: entries written before them decode through the older layouts below.
    nas_ip: Option<Ipv4Addr>,
    nas_addr: Option<IpAddr>,
    /// Calling-Station-Id (the subscriber device's MAC), when the NAS reported one.
    calling_station: Option<String>,
}

/// The layout entries had before the calling station was kept.
#[derive(Deserialize)]
#[cfg_attr(test, derive(Serialize))]
struct SessionStateV2 {
    nas: String,
    session_id: String,
    started_ms: i64,
    last_ms: i64,
    time_secs: u64,
    bytes: u64,
    closed: bool,
    nas_ip: Option<Ipv4Addr>,
    nas_addr: Option<IpAddr>,
}

/// The layout entries had before the NAS's addresses were kept.
#[derive(Deserialize)]
struct LegacySessionState {
    nas: String,
    session_id: String,
    started_ms: i64,
    last_ms: i64,
    time_secs: u64,
    bytes: u64,
    closed: bool,
}

/// Decodes an entry of either layout. postcard fails on a short input, so an old entry
/// never decodes as the new layout by accident.
fn decode_state(bytes: &[u8]) -> Result<SessionState, postcard::Error> {
    if let Ok(s) = postcard::from_bytes::<SessionState>(bytes) {
        return Ok(s);
    }
    match postcard::from_bytes::<SessionStateV2>(bytes) {
        Ok(v2) => Ok(SessionState {
            nas: v2.nas,
            session_id: v2.session_id,
            started_ms: v2.started_ms,
            last_ms: v2.last_ms,
            time_secs: v2.time_secs,
            bytes: v2.bytes,
            closed: v2.closed,
            nas_ip: v2.nas_ip,
            nas_addr: v2.nas_addr,
            calling_station: None,
        }),
        Err(new_error) => match postcard::from_bytes::<LegacySessionState>(bytes) {
            Ok(old) => Ok(SessionState {
                nas: old.nas,
                session_id: old.session_id,
                started_ms: old.started_ms,
                last_ms: old.last_ms,
                time_secs: old.time_secs,
                bytes: old.bytes,
                closed: old.closed,
                nas_ip: None,
                nas_addr: None,
                calling_station: None,
            }),
            Err(_) => Err(new_error),
        },
    }
}

/// A session not stopped yet, with what it takes to address it at its NAS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenSession {
    /// The NAS-Identifier (or the client's configured name).
    pub nas_identifier: String,
    /// Acct-Session-Id.
    pub session_id: String,
    /// NAS-IP-Address as the NAS reported it (else its source address).
    pub nas_ip: Option<Ipv4Addr>,
    /// The address the NAS sent accounting from; `None` for sessions recorded before the
    /// agent kept it.
    pub nas_addr: Option<IpAddr>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
struct StoredUsage {
    activated_at_ms: Option<i64>,
    closed_time_secs: u64,
    closed_bytes: u64,
}

/// Usage of one account after an accounting event, for quota checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AccountUsage {
    /// Totals over closed and open sessions.
    pub usage: Usage,
    /// Sessions open now.
    pub open_sessions: u32,
}

/// The table.
pub struct Sessions {
    sessions: sled::Tree,
    usage: sled::Tree,
    /// Per account, what its last accepted login fixed for the session (see
    /// [`FixedAtLogin`]), so a plan change knows whether CoA can reach it.
    granted: sled::Tree,
    /// Per MAC-locked voucher, the device this site bound it to (the first it let in).
    macs: sled::Tree,
    /// Per session (its key), the fair-usage CoA sent to it ([`fair_usage::Attempt`]).
    throttles: sled::Tree,
}

fn session_key(username: &str, nas: &str, session_id: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(username.len() + nas.len() + session_id.len() + 2);
    k.extend_from_slice(username.as_bytes());
    k.push(0);
    k.extend_from_slice(nas.as_bytes());
    k.push(0);
    k.extend_from_slice(session_id.as_bytes());
    k
}

fn prefix(username: &str) -> Vec<u8> {
    let mut k = username.as_bytes().to_vec();
    k.push(0);
    k
}

fn enc<T: Serialize>(v: &T) -> Vec<u8> {
    postcard::to_stdvec(v).expect("session values encode")
}

fn is_nas_wide(rec: &AccountingRecord) -> bool {
    matches!(
        rec.status,
        AcctStatus::AccountingOn | AcctStatus::AccountingOff
    )
}

fn damaged(e: postcard::Error) -> ConflictableTransactionError<SessionError> {
    ConflictableTransactionError::Abort(SessionError::from(e))
}

/// Folds one Start, Interim-Update or Stop into an open transaction. Damaged entries abort
/// before anything is written.
fn fold(
    sessions: &TransactionalTree,
    usage: &TransactionalTree,
    rec: &AccountingRecord,
    from: Option<IpAddr>,
    now_ms: i64,
) -> Result<(), ConflictableTransactionError<SessionError>> {
    let key = session_key(&rec.username, &rec.nas_identifier, &rec.session_id);
    let bytes = rec.input_octets.saturating_add(rec.output_octets);
    let existing: Option<SessionState> = match sessions.get(&key)? {
        Some(v) => Some(decode_state(&v).map_err(damaged)?),
        None => None,
    };
    if existing.as_ref().is_some_and(|s| s.closed) {
        return Ok(());
    }
    let mut s = existing.unwrap_or_else(|| SessionState {
        nas: rec.nas_identifier.clone(),
        session_id: rec.session_id.clone(),
        started_ms: now_ms,
        ..SessionState::default()
    });
    // Counters only grow within a session; an older update arriving late changes nothing.
    s.time_secs = s.time_secs.max(rec.session_time_secs);
    s.bytes = s.bytes.max(bytes);
    s.last_ms = now_ms;
    if rec.nas_ip.is_some() {
        s.nas_ip = rec.nas_ip;
    }
    if from.is_some() {
        s.nas_addr = from;
    }
    if rec.calling_station_id.is_some() {
        s.calling_station = rec.calling_station_id.clone();
    }
    if rec.status == AcctStatus::Stop {
        let mut u: StoredUsage = match usage.get(rec.username.as_bytes())? {
            Some(v) => postcard::from_bytes(&v).map_err(damaged)?,
            None => StoredUsage::default(),
        };
        u.closed_time_secs += s.time_secs;
        u.closed_bytes += s.bytes;
        usage.insert(rec.username.as_bytes(), enc(&u))?;
        s.closed = true;
    }
    sessions.insert(key.as_slice(), enc(&s))?;
    Ok(())
}

impl Sessions {
    /// Opens the trees in `db`.
    pub fn open(db: &sled::Db) -> Result<Sessions, SessionError> {
        Ok(Sessions {
            sessions: db.open_tree("sessions")?,
            usage: db.open_tree("usage")?,
            granted: db.open_tree("granted")?,
            macs: db.open_tree("mac_bindings")?,
            throttles: db.open_tree("throttles")?,
        })
    }

    /// Claims the fair-usage CoA that `session` of `username` should get now to run at
    /// `rate` ([`fair_usage::next`]), recorded before it is sent: `None` when nothing is due,
    /// or another task claimed it first.
    pub fn claim_throttle(
        &self,
        username: &str,
        session: &OpenSession,
        rate: &str,
        now_ms: i64,
    ) -> Result<Option<Attempt>, SessionError> {
        let key = session_key(username, &session.nas_identifier, &session.session_id);
        let stored = self.throttles.get(&key)?;
        let prev: Option<Attempt> = stored.as_deref().map(postcard::from_bytes).transpose()?;
        let Some(next) = fair_usage::next(prev.as_ref(), rate, now_ms) else {
            return Ok(None);
        };
        let won = self
            .throttles
            .compare_and_swap(&key, stored, Some(enc(&next)))?
            .is_ok();
        Ok(won.then_some(next))
    }

    /// Records that the NAS answered `attempt` for `session`: nothing more is sent for its
    /// rate. A newer attempt recorded meanwhile is left alone.
    pub fn settle_throttle(
        &self,
        username: &str,
        session: &OpenSession,
        attempt: &Attempt,
    ) -> Result<(), SessionError> {
        let key = session_key(username, &session.nas_identifier, &session.session_id);
        let settled = Attempt {
            settled: true,
            ..attempt.clone()
        };
        let _ = self
            .throttles
            .compare_and_swap(&key, Some(enc(attempt)), Some(enc(&settled)))?;
        Ok(())
    }

    /// The fair-usage CoA recorded for `session` of `username`, if any.
    pub fn throttle(
        &self,
        username: &str,
        session: &OpenSession,
    ) -> Result<Option<Attempt>, SessionError> {
        let key = session_key(username, &session.nas_identifier, &session.session_id);
        Ok(match self.throttles.get(key)? {
            Some(v) => Some(postcard::from_bytes(&v)?),
            None => None,
        })
    }

    /// Accounts with at least one session not stopped yet, each once.
    pub fn open_accounts(&self) -> Result<Vec<String>, SessionError> {
        let mut accounts: Vec<String> = Vec::new();
        for item in self.sessions.iter() {
            let (k, v) = item?;
            if decode_state(&v)?.closed {
                continue;
            }
            let username = String::from_utf8_lossy(k.split(|b| *b == 0).next().unwrap_or_default());
            if accounts.last().map(String::as_str) != Some(&username) {
                accounts.push(username.into_owned());
            }
        }
        Ok(accounts)
    }

    /// Remembers what an accepted login fixed for its session; written only when it changed,
    /// so the login path does not write on every accept.
    pub fn record_grant(&self, username: &str, fixed: &FixedAtLogin) -> Result<(), SessionError> {
        if self.granted(username)?.as_ref() != Some(fixed) {
            self.granted.insert(username.as_bytes(), enc(fixed))?;
        }
        Ok(())
    }

    /// The device this site bound a MAC-locked voucher to, if it bound one.
    pub fn bound_mac(&self, username: &str) -> Result<Option<String>, SessionError> {
        Ok(self
            .macs
            .get(username.as_bytes())?
            .map(|v| String::from_utf8_lossy(&v).into_owned()))
    }

    /// Binds a voucher to `mac` unless it is bound already: the first device stays.
    pub fn bind_mac(&self, username: &str, mac: &str) -> Result<(), SessionError> {
        // Of two first logins at once, the binding stored first stays.
        let _ = self.macs.compare_and_swap(
            username.as_bytes(),
            None as Option<&[u8]>,
            Some(mac.as_bytes()),
        )?;
        Ok(())
    }

    /// What the account's last accepted login fixed, if this agent accepted one.
    pub fn granted(&self, username: &str) -> Result<Option<FixedAtLogin>, SessionError> {
        Ok(match self.granted.get(username.as_bytes())? {
            Some(v) => Some(postcard::from_bytes(&v)?),
            None => None,
        })
    }

    fn stored_usage(&self, username: &str) -> Result<StoredUsage, SessionError> {
        Ok(match self.usage.get(username.as_bytes())? {
            Some(v) => postcard::from_bytes(&v)?,
            None => StoredUsage::default(),
        })
    }

    /// Totals and open sessions of an account as of `now_ms`.
    pub fn account(&self, username: &str, now_ms: i64) -> Result<AccountUsage, SessionError> {
        self.account_at_login(username, now_ms, STALE_AFTER_MS, None)
    }

    /// [`Sessions::account`] for a login: a session silent for `stale_after_ms` does not hold
    /// a seat, and neither does one of the device logging in (`calling_station`): a CPE that
    /// lost power and dials again replaces the session it never stopped.
    pub fn account_at_login(
        &self,
        username: &str,
        now_ms: i64,
        stale_after_ms: i64,
        calling_station: Option<&str>,
    ) -> Result<AccountUsage, SessionError> {
        let stored = self.stored_usage(username)?;
        let mut usage = Usage {
            activated_at_ms: stored.activated_at_ms,
            time_secs: stored.closed_time_secs,
            bytes: stored.closed_bytes,
        };
        let mut open = 0u32;
        for item in self.sessions.scan_prefix(prefix(username)) {
            let (_, v) = item?;
            let s = decode_state(&v)?;
            if s.closed {
                continue;
            }
            usage.time_secs += s.time_secs;
            usage.bytes += s.bytes;
            let same_device = calling_station.is_some_and(|mac| {
                s.calling_station
                    .as_deref()
                    .is_some_and(|own| own.eq_ignore_ascii_case(mac))
            });
            if now_ms - s.last_ms < stale_after_ms && !same_device {
                open += 1;
            }
        }
        Ok(AccountUsage {
            usage,
            open_sessions: open,
        })
    }

    /// Records a voucher's first use (kept if one is already recorded).
    pub fn record_activation(&self, username: &str, now_ms: i64) -> Result<(), SessionError> {
        let mut stored = self.stored_usage(username)?;
        if stored.activated_at_ms.is_none() {
            stored.activated_at_ms = Some(now_ms);
            self.usage.insert(username.as_bytes(), enc(&stored))?;
        }
        Ok(())
    }

    /// The account's sessions not stopped yet, stale ones included: a session whose
    /// updates stopped coming may still be running on its NAS.
    pub fn open_sessions(&self, username: &str) -> Result<Vec<OpenSession>, SessionError> {
        let mut open = Vec::new();
        for item in self.sessions.scan_prefix(prefix(username)) {
            let (_, v) = item?;
            let s = decode_state(&v)?;
            if !s.closed {
                open.push(OpenSession {
                    nas_identifier: s.nas,
                    session_id: s.session_id,
                    nas_ip: s.nas_ip,
                    nas_addr: s.nas_addr,
                });
            }
        }
        Ok(open)
    }

    /// Folds an accounting event, sent by the NAS at `from` when known, into the table;
    /// repeated or out-of-order events are harmless.
    pub fn apply(
        &self,
        rec: &AccountingRecord,
        from: Option<IpAddr>,
        now_ms: i64,
    ) -> Result<(), SessionError> {
        if is_nas_wide(rec) {
            return self.close_nas(&rec.nas_identifier);
        }
        (&self.sessions, &self.usage)
            .transaction(|(sessions, usage)| fold(sessions, usage, rec, from, now_ms))?;
        Ok(())
    }

    /// Folds many accounting events, in order, with the outcome of [`Sessions::apply`] on
    /// each in turn: an event whose stored entry is damaged is skipped and its error
    /// returned, the others are applied.
    ///
    /// Consecutive session events share one sled transaction (up to
    /// [`EVENTS_PER_TRANSACTION`]). Each sled transaction seals sled's log buffer and has it
    /// written out, so one per event was most of the cost of accounting under load.
    pub fn apply_all(
        &self,
        events: &[(AccountingRecord, Option<IpAddr>, i64)],
    ) -> Vec<SessionError> {
        let mut errors = Vec::new();
        let mut rest = events;
        while let Some((first, _, _)) = rest.first() {
            if is_nas_wide(first) {
                if let Err(e) = self.close_nas(&first.nas_identifier) {
                    errors.push(e);
                }
                rest = &rest[1..];
                continue;
            }
            let end = rest
                .iter()
                .take(EVENTS_PER_TRANSACTION)
                .position(|(rec, _, _)| is_nas_wide(rec))
                .unwrap_or(rest.len().min(EVENTS_PER_TRANSACTION));
            let (run, after) = rest.split_at(end);
            // The closure reruns from scratch on a conflict: it starts its list afresh.
            let skipped = RefCell::new(Vec::new());
            let result = (&self.sessions, &self.usage).transaction(|(sessions, usage)| {
                let mut skipped = skipped.borrow_mut();
                skipped.clear();
                for (rec, from, now_ms) in run {
                    match fold(sessions, usage, rec, *from, *now_ms) {
                        Ok(()) => {}
                        // Raised before the event wrote anything: skip just this one.
                        Err(ConflictableTransactionError::Abort(e)) => skipped.push(e),
                        Err(other) => return Err(other),
                    }
                }
                Ok(())
            });
            match result {
                Ok(()) => errors.extend(skipped.into_inner()),
                Err(e) => errors.push(e.into()),
            }
            rest = after;
        }
        errors
    }

    /// A NAS restarted: its sessions are gone; their last counters become closed usage.
    fn close_nas(&self, nas: &str) -> Result<(), SessionError> {
        for item in self.sessions.iter() {
            let (k, v) = item?;
            let mut s = decode_state(&v)?;
            if s.closed || s.nas != nas {
                continue;
            }
            let username = String::from_utf8_lossy(k.split(|b| *b == 0).next().unwrap_or_default())
                .into_owned();
            let mut u = self.stored_usage(&username)?;
            u.closed_time_secs += s.time_secs;
            u.closed_bytes += s.bytes;
            s.closed = true;
            self.usage.insert(username.as_bytes(), enc(&u))?;
            self.sessions.insert(k, enc(&s))?;
        }
        Ok(())
    }

    /// Drops tombstones older than a day.
    pub fn prune(&self, now_ms: i64) -> Result<usize, SessionError> {
        let mut removed = 0;
        for item in self.sessions.iter() {
            let (k, v) = item?;
            let s = decode_state(&v)?;
            if s.closed && now_ms - s.last_ms > TOMBSTONE_MS {
                self.throttles.remove(&k)?;
                self.sessions.remove(k)?;
                removed += 1;
            }
        }
        Ok(removed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mikrobill_protocol::accounting::RecordId;

    fn rec(status: AcctStatus, session: &str, time: u64, bytes: u64) -> AccountingRecord {
        AccountingRecord {
            id: RecordId::derive("nas", session, status, time),
            nas_identifier: "nas".into(),
            nas_ip: None,
            session_id: session.into(),
            username: "v1".into(),
            status,
            event_time_ms: 0,
            session_time_secs: time,
            input_octets: bytes / 2,
            output_octets: bytes - bytes / 2,
            input_packets: 0,
            output_packets: 0,
            terminate_cause: None,
            framed_ip: None,
            calling_station_id: None,
        }
    }

    fn open() -> (tempfile::TempDir, Sessions) {
        let dir = tempfile::tempdir().unwrap();
        let db = sled::Config::new()
            .path(dir.path())
            .cache_capacity(1 << 20)
            .open()
            .unwrap();
        (dir, Sessions::open(&db).unwrap())
    }

    #[test]
    fn sessions_accumulate_and_a_repeated_stop_counts_once() {
        let (_d, s) = open();
        s.apply(&rec(AcctStatus::Start, "a", 0, 0), None, 1_000)
            .unwrap();
        s.apply(&rec(AcctStatus::InterimUpdate, "a", 300, 1000), None, 2_000)
            .unwrap();
        assert_eq!(
            s.account("v1", 2_000).unwrap(),
            AccountUsage {
                usage: Usage {
                    activated_at_ms: None,
                    time_secs: 300,
                    bytes: 1000
                },
                open_sessions: 1
            }
        );
        // A late, older interim changes nothing.
        s.apply(&rec(AcctStatus::InterimUpdate, "a", 200, 500), None, 2_500)
            .unwrap();
        s.apply(&rec(AcctStatus::Stop, "a", 400, 1500), None, 3_000)
            .unwrap();
        s.apply(&rec(AcctStatus::Stop, "a", 400, 1500), None, 3_100)
            .unwrap();
        let after = s.account("v1", 3_200).unwrap();
        assert_eq!(
            (
                after.usage.time_secs,
                after.usage.bytes,
                after.open_sessions
            ),
            (400, 1500, 0)
        );
        // A second session adds on top; stale sessions stop counting as open.
        s.apply(&rec(AcctStatus::InterimUpdate, "b", 100, 100), None, 4_000)
            .unwrap();
        let now = s.account("v1", 4_000).unwrap();
        assert_eq!((now.usage.time_secs, now.open_sessions), (500, 1));
        assert_eq!(
            s.account("v1", 4_000 + STALE_AFTER_MS)
                .unwrap()
                .open_sessions,
            0
        );
    }

    #[test]
    fn a_fair_usage_coa_is_claimed_once_and_survives_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let reopen = || {
            let db = sled::Config::new()
                .path(dir.path())
                .cache_capacity(1 << 20)
                .open()
                .unwrap();
            Sessions::open(&db).unwrap()
        };
        let s = reopen();
        s.apply(&rec(AcctStatus::Start, "a", 0, 0), None, 1_000)
            .unwrap();
        assert_eq!(s.open_accounts().unwrap(), vec!["v1".to_string()]);
        let session = s.open_sessions("v1").unwrap().remove(0);
        let sent = s
            .claim_throttle("v1", &session, "1M/1M", 2_000)
            .unwrap()
            .expect("the first check sends");
        assert_eq!(
            s.claim_throttle("v1", &session, "1M/1M", 2_001).unwrap(),
            None
        );
        s.settle_throttle("v1", &session, &sent).unwrap();
        drop(s);
        // After a restart the answered CoA is still known: nothing is sent again.
        let s = reopen();
        assert!(s.throttle("v1", &session).unwrap().unwrap().settled);
        assert_eq!(
            s.claim_throttle("v1", &session, "1M/1M", 10_000_000)
                .unwrap(),
            None
        );
        // Pruned with the session's tombstone.
        s.apply(&rec(AcctStatus::Stop, "a", 10, 10), None, 3_000)
            .unwrap();
        assert!(s.open_accounts().unwrap().is_empty());
        s.prune(3_000 + TOMBSTONE_MS + 1).unwrap();
        assert_eq!(s.throttle("v1", &session).unwrap(), None);
    }

    #[test]
    fn accounting_on_closes_the_nas_sessions_and_activation_is_kept() {
        let (_d, s) = open();
        s.record_activation("v1", 10).unwrap();
        s.record_activation("v1", 99).unwrap();
        s.apply(&rec(AcctStatus::InterimUpdate, "a", 60, 10), None, 100)
            .unwrap();
        let mut on = rec(AcctStatus::AccountingOn, "", 0, 0);
        on.username = String::new();
        s.apply(&on, None, 200).unwrap();
        let u = s.account("v1", 300).unwrap();
        assert_eq!(u.open_sessions, 0);
        assert_eq!(
            u.usage,
            Usage {
                activated_at_ms: Some(10),
                time_secs: 60,
                bytes: 10
            }
        );
        assert_eq!(s.prune(300 + TOMBSTONE_MS + 1).unwrap(), 1);
        assert_eq!(
            s.account("v1", 300).unwrap().usage.time_secs,
            60,
            "closed usage survives pruning"
        );
    }

    #[test]
    fn a_group_folds_like_one_event_at_a_time_and_skips_only_damaged_entries() {
        let events = vec![
            (rec(AcctStatus::Start, "a", 0, 0), 1_000),
            (rec(AcctStatus::InterimUpdate, "a", 300, 1000), 2_000),
            (rec(AcctStatus::InterimUpdate, "b", 100, 100), 2_100),
            // Within the group: a Stop after the interim it follows, and its repeat.
            (rec(AcctStatus::Stop, "a", 400, 1500), 3_000),
            (rec(AcctStatus::Stop, "a", 400, 1500), 3_100),
            (
                {
                    let mut on = rec(AcctStatus::AccountingOn, "", 0, 0);
                    on.username = String::new();
                    on
                },
                3_200,
            ),
            (rec(AcctStatus::InterimUpdate, "c", 50, 5), 3_300),
            (rec(AcctStatus::InterimUpdate, "d", 60, 6), 3_400),
        ];
        let (_d1, one) = open();
        for (e, now) in &events {
            one.apply(e, None, *now).unwrap();
        }
        let (_d2, group) = open();
        // A damaged entry for session "c": its event is skipped, the later ones applied.
        // Accounting-On walks every session and reports it too, as `apply` would.
        group
            .sessions
            .insert(session_key("v1", "nas", "c"), vec![0xff; 3])
            .unwrap();
        let from_unknown: Vec<_> = events
            .iter()
            .map(|(e, now)| (e.clone(), None, *now))
            .collect();
        let errors = group.apply_all(&from_unknown);
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert!(errors.iter().all(|e| matches!(e, SessionError::Decode(_))));
        group
            .sessions
            .remove(session_key("v1", "nas", "c"))
            .unwrap();
        group.apply(&events[6].0, None, events[6].1).unwrap();
        assert_eq!(
            one.account("v1", 3_500).unwrap(),
            group.account("v1", 3_500).unwrap()
        );
        assert_eq!(
            one.account("v1", 3_500).unwrap().usage,
            Usage {
                activated_at_ms: None,
                time_secs: 400 + 100 + 50 + 60,
                bytes: 1500 + 100 + 5 + 6,
            }
        );
        assert_eq!(group.account("v1", 3_500).unwrap().open_sessions, 2);
    }

    #[test]
    fn a_device_dialing_again_replaces_its_own_silent_session() {
        let (_d, s) = open();
        let mut start = rec(AcctStatus::Start, "a", 0, 0);
        start.calling_station_id = Some("AA:BB:CC:00:00:01".into());
        s.apply(&start, None, 1_000).unwrap();
        let seats = |now, stale, mac: Option<&str>| {
            s.account_at_login("v1", now, stale, mac)
                .unwrap()
                .open_sessions
        };
        // Another device is refused a seat while the session may still be running...
        assert_eq!(seats(2_000, 660_000, Some("AA:BB:CC:00:00:02")), 1);
        assert_eq!(seats(2_000, 660_000, None), 1);
        // ...the same device (its MAC in any case) takes it back at once...
        assert_eq!(seats(2_000, 660_000, Some("aa:bb:cc:00:00:01")), 0);
        // ...and after two missed interim updates nobody waits for it.
        assert_eq!(seats(1_000 + 660_000, 660_000, None), 0);
        // The half-hour fallback for everything else is unchanged.
        assert_eq!(s.account("v1", 1_000 + 660_000).unwrap().open_sessions, 1);
    }

    #[test]
    fn entries_written_before_the_calling_station_was_kept_still_decode() {
        let (_d, s) = open();
        let v2 = SessionStateV2 {
            nas: "nas".into(),
            session_id: "c".into(),
            started_ms: 1,
            last_ms: 2,
            time_secs: 30,
            bytes: 7,
            closed: false,
            nas_ip: Some([10, 0, 0, 1].into()),
            nas_addr: Some([172, 17, 0, 1].into()),
        };
        s.sessions
            .insert(session_key("v2", "nas", "c"), enc(&v2))
            .unwrap();
        let open = s.open_sessions("v2").unwrap();
        assert_eq!(open[0].nas_ip, Some([10, 0, 0, 1].into()));
        assert_eq!(open[0].nas_addr, Some([172, 17, 0, 1].into()));
        assert_eq!(s.account("v2", 3).unwrap().usage.time_secs, 30);
    }

    #[test]
    fn open_sessions_know_their_nas_and_old_entries_still_decode() {
        let (_d, s) = open();
        let router: IpAddr = [172, 17, 0, 1].into();
        let mut start = rec(AcctStatus::Start, "a", 0, 0);
        start.nas_ip = Some([10, 0, 0, 1].into());
        s.apply(&start, Some(router), 1_000).unwrap();
        s.apply(&rec(AcctStatus::InterimUpdate, "a", 60, 10), None, 2_000)
            .unwrap();
        s.apply(&rec(AcctStatus::Start, "b", 0, 0), Some(router), 2_000)
            .unwrap();
        s.apply(&rec(AcctStatus::Stop, "b", 5, 0), Some(router), 3_000)
            .unwrap();
        assert_eq!(
            s.open_sessions("v1").unwrap(),
            vec![OpenSession {
                nas_identifier: "nas".into(),
                session_id: "a".into(),
                nas_ip: Some([10, 0, 0, 1].into()),
                nas_addr: Some(router),
            }],
            "addresses kept by events without them; stopped sessions left out"
        );

        #[derive(Serialize)]
        struct Old {
            nas: String,
            session_id: String,
            started_ms: i64,
            last_ms: i64,
            time_secs: u64,
            bytes: u64,
            closed: bool,
        }
        let old = Old {
            nas: "nas".into(),
            session_id: "c".into(),
            started_ms: 1,
            last_ms: 2,
            time_secs: 30,
            bytes: 7,
            closed: false,
        };
        s.sessions
            .insert(session_key("old", "nas", "c"), enc(&old))
            .unwrap();
        let sessions = s.open_sessions("old").unwrap();
        assert_eq!(sessions.len(), 1);
        assert_eq!((sessions[0].nas_ip, sessions[0].nas_addr), (None, None));
        assert_eq!(s.account("old", 3).unwrap().usage.time_secs, 30);
        s.apply(
            &AccountingRecord {
                username: "old".into(),
                ..rec(AcctStatus::InterimUpdate, "c", 60, 10)
            },
            Some(router),
            4,
        )
        .unwrap();
        assert_eq!(s.open_sessions("old").unwrap()[0].nas_addr, Some(router));
    }

    #[test]
    fn groups_larger_than_one_transaction_apply_in_full() {
        let (_d, s) = open();
        let n = EVENTS_PER_TRANSACTION * 2 + 3;
        let events: Vec<_> = (0..n)
            .map(|i| {
                (
                    rec(AcctStatus::Stop, &format!("s{i}"), 10, 100),
                    None,
                    1_000,
                )
            })
            .collect();
        assert!(s.apply_all(&events).is_empty());
        let u = s.account("v1", 2_000).unwrap();
        assert_eq!(
            (u.usage.time_secs, u.usage.bytes, u.open_sessions),
            (10 * n as u64, 100 * n as u64, 0)
        );
    }
}
