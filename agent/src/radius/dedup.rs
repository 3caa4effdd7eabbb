//! Retransmission cache: a request repeated by the NAS (same source, identifier and
//! authenticator) gets the reply already sent, or is dropped while the first copy is still
//! being processed, so nothing is decided or stored twice.
//!
//! Entries are keyed by source and identifier, with the authenticator stored beside them
//! (RFC 5080 2.2.2, as FreeRADIUS does): a request with a known source and identifier but a
//! new authenticator is a new request that replaces the old entry, because a NAS reuses an
//! identifier only after it gave up on the request that had it. This bounds the map to 256
//! entries per NAS socket however fast requests arrive; keyed by the authenticator as well,
//! it held every request of the last 30 s, and past its size limit each arrival swept it
//! whole (under the lock every listener shares), which collapsed the server under load.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long replies are kept for retransmissions (RouterOS retries within its timeout).
pub const KEEP: Duration = Duration::from_secs(30);

/// Size at which expired entries are swept on arrival (the housekeeping task also sweeps).
/// Only NASes that use many source ports get near it.
const SWEEP_AT: usize = 100_000;

type Key = (SocketAddr, u8);

enum State {
    InFlight,
    Done(Vec<u8>),
}

struct Entry {
    authenticator: [u8; 16],
    at: Instant,
    state: State,
}

/// What to do with an arriving request.
#[derive(Debug, PartialEq, Eq)]
pub enum Seen {
    /// First copy: process it, then call [`ReplyCache::finish`].
    New,
    /// Still being processed: drop this copy.
    InFlight,
    /// Already answered: send this reply again.
    Answered(Vec<u8>),
}

struct Inner {
    map: HashMap<Key, Entry>,
    /// The size that triggers the next sweep: at least [`SWEEP_AT`], and twice what the
    /// last sweep kept, so sweeps stay rare even when most entries are still fresh.
    sweep_at: usize,
}

impl Default for Inner {
    fn default() -> Self {
        Inner {
            map: HashMap::new(),
            sweep_at: SWEEP_AT,
        }
    }
}

impl Inner {
    fn sweep(&mut self, now: Instant) {
        self.map.retain(|_, e| now.duration_since(e.at) < KEEP);
        self.sweep_at = SWEEP_AT.max(self.map.len() * 2);
    }
}

/// The cache, shared by the receive loops of one socket.
#[derive(Default)]
pub struct ReplyCache {
    inner: Mutex<Inner>,
}

impl ReplyCache {
    /// Registers an arriving request.
    pub fn check(&self, from: SocketAddr, identifier: u8, authenticator: [u8; 16]) -> Seen {
        let now = Instant::now();
        let mut inner = self.inner.lock().expect("reply cache lock");
        if inner.map.len() >= inner.sweep_at {
            inner.sweep(now);
        }
        if let Some(e) = inner.map.get(&(from, identifier))
            && e.authenticator == authenticator
            && now.duration_since(e.at) < KEEP
        {
            return match &e.state {
                State::InFlight => Seen::InFlight,
                State::Done(reply) => Seen::Answered(reply.clone()),
            };
        }
        inner.map.insert(
            (from, identifier),
            Entry {
                authenticator,
                at: now,
                state: State::InFlight,
            },
        );
        Seen::New
    }

    /// Stores the reply sent for a request (unless a newer request took its identifier).
    pub fn finish(
        &self,
        from: SocketAddr,
        identifier: u8,
        authenticator: [u8; 16],
        reply: Vec<u8>,
    ) {
        let mut inner = self.inner.lock().expect("reply cache lock");
        if let Some(e) = inner.map.get_mut(&(from, identifier))
            && e.authenticator == authenticator
        {
            e.at = Instant::now();
            e.state = State::Done(reply);
        }
    }

    /// Forgets a request that was not answered, so a retransmission is processed afresh.
    pub fn abandon(&self, from: SocketAddr, identifier: u8, authenticator: [u8; 16]) {
        let mut inner = self.inner.lock().expect("reply cache lock");
        if inner
            .map
            .get(&(from, identifier))
            .is_some_and(|e| e.authenticator == authenticator)
        {
            inner.map.remove(&(from, identifier));
        }
    }

    /// Removes entries older than [`KEEP`].
    pub fn expire(&self) {
        self.inner
            .lock()
            .expect("reply cache lock")
            .sweep(Instant::now());
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.inner.lock().expect("reply cache lock").map.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retransmissions_are_recognised() {
        let cache = ReplyCache::default();
        let from: SocketAddr = "10.0.0.1:4000".parse().unwrap();
        assert_eq!(cache.check(from, 7, [1; 16]), Seen::New);
        assert_eq!(cache.check(from, 7, [1; 16]), Seen::InFlight);
        cache.finish(from, 7, [1; 16], vec![9, 9]);
        assert_eq!(cache.check(from, 7, [1; 16]), Seen::Answered(vec![9, 9]));
        // A new authenticator, identifier or source is a new request.
        assert_eq!(cache.check(from, 7, [2; 16]), Seen::New);
        assert_eq!(cache.check(from, 8, [1; 16]), Seen::New);
        assert_eq!(
            cache.check("10.0.0.1:4001".parse().unwrap(), 7, [1; 16]),
            Seen::New
        );
        cache.abandon(from, 7, [2; 16]);
        assert_eq!(cache.check(from, 7, [2; 16]), Seen::New);
    }

    #[test]
    fn a_reused_identifier_replaces_the_old_request_and_the_map_stays_bounded() {
        let cache = ReplyCache::default();
        let from: SocketAddr = "10.0.0.1:4000".parse().unwrap();
        assert_eq!(cache.check(from, 1, [1; 16]), Seen::New);
        // The NAS gave up on [1] and reused identifier 1 while [1] was still being processed.
        assert_eq!(cache.check(from, 1, [2; 16]), Seen::New);
        // The late answer to [1] must not overwrite the entry of [2], nor its abandon remove it.
        cache.finish(from, 1, [1; 16], vec![1]);
        cache.abandon(from, 1, [1; 16]);
        assert_eq!(cache.check(from, 1, [2; 16]), Seen::InFlight);
        cache.finish(from, 1, [2; 16], vec![2]);
        assert_eq!(cache.check(from, 1, [2; 16]), Seen::Answered(vec![2]));
        // However many requests one socket sends, one entry per identifier.
        for n in 0..10_000u32 {
            let mut auth = [0; 16];
            auth[..4].copy_from_slice(&n.to_be_bytes());
            assert_eq!(cache.check(from, n as u8, auth), Seen::New);
            cache.finish(from, n as u8, auth, vec![0]);
        }
        assert_eq!(cache.len(), 256);
    }
}
