//! Retransmission cache: a request repeated by the NAS (same source, identifier and
//! authenticator) gets the reply already sent, or is dropped while the first copy is still
//! being processed, so nothing is decided or stored twice.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long replies are kept for retransmissions (RouterOS retries within its timeout).
pub const KEEP: Duration = Duration::from_secs(30);

type Key = (SocketAddr, u8, [u8; 16]);

enum Entry {
    InFlight(Instant),
    Done(Instant, Vec<u8>),
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

/// The cache, shared by the receive loops of one socket.
#[derive(Default)]
pub struct ReplyCache {
    map: Mutex<HashMap<Key, Entry>>,
}

impl ReplyCache {
    /// Registers an arriving request.
    pub fn check(&self, from: SocketAddr, identifier: u8, authenticator: [u8; 16]) -> Seen {
        let now = Instant::now();
        let mut map = self.map.lock().expect("reply cache lock");
        if map.len() > 100_000 {
            map.retain(|_, e| match e {
                Entry::InFlight(t) | Entry::Done(t, _) => now.duration_since(*t) < KEEP,
            });
        }
        match map.get(&(from, identifier, authenticator)) {
            Some(Entry::InFlight(t)) if now.duration_since(*t) < KEEP => Seen::InFlight,
            Some(Entry::Done(t, reply)) if now.duration_since(*t) < KEEP => {
                Seen::Answered(reply.clone())
            }
            _ => {
                map.insert((from, identifier, authenticator), Entry::InFlight(now));
                Seen::New
            }
        }
    }

    /// Stores the reply sent for a request.
    pub fn finish(
        &self,
        from: SocketAddr,
        identifier: u8,
        authenticator: [u8; 16],
        reply: Vec<u8>,
    ) {
        self.map.lock().expect("reply cache lock").insert(
            (from, identifier, authenticator),
            Entry::Done(Instant::now(), reply),
        );
    }

    /// Forgets a request that was not answered, so a retransmission is processed afresh.
    pub fn abandon(&self, from: SocketAddr, identifier: u8, authenticator: [u8; 16]) {
        self.map
            .lock()
            .expect("reply cache lock")
            .remove(&(from, identifier, authenticator));
    }

    /// Removes entries older than [`KEEP`].
    pub fn expire(&self) {
        let now = Instant::now();
        self.map
            .lock()
            .expect("reply cache lock")
            .retain(|_, e| match e {
                Entry::InFlight(t) | Entry::Done(t, _) => now.duration_since(*t) < KEEP,
            });
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
}
