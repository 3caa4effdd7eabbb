//! Knobs that make the fake router misbehave the way real ones do: slow, dropping the
//! connection, refusing a command, or down.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::watch;

#[derive(Debug, Default)]
struct State {
    delay: Duration,
    drop_after: Option<usize>,
    traps: BTreeMap<String, String>,
}

/// Whether the router is down, and how many times it went down: a connection closes when
/// the count moves past the one it started with, so a quick down-then-up still kicks it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Outage {
    pub refusing: bool,
    pub kicks: u64,
}

#[derive(Debug)]
struct Inner {
    state: Mutex<State>,
    // A watch channel so that open connections notice the router going down at once,
    // not at their next command.
    outage: watch::Sender<Outage>,
}

/// A cloneable handle on one fake router's fault knobs; changes apply immediately.
#[derive(Debug, Clone)]
pub struct Faults {
    inner: Arc<Inner>,
}

impl Default for Faults {
    fn default() -> Self {
        Faults {
            inner: Arc::new(Inner {
                state: Mutex::default(),
                outage: watch::Sender::new(Outage::default()),
            }),
        }
    }
}

impl Faults {
    fn state(&self) -> MutexGuard<'_, State> {
        // A panicking test thread must not wedge the router for the other tests.
        self.inner
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Waits `d` before sending each batch of reply sentences (zero turns it off).
    pub fn set_delay(&self, d: Duration) {
        self.state().delay = d;
    }

    /// Closes the connection that receives the `n`-th command from now, without replying
    /// to it; counts every sentence on every connection, login included (0 acts as 1).
    pub fn drop_after(&self, n_commands: usize) {
        self.state().drop_after = Some(n_commands.max(1));
    }

    /// Answers every `command_path` (e.g. `/ppp/active/remove`) with `!trap =message=...`
    /// and does nothing, until [`Faults::clear`].
    pub fn trap_on(&self, command_path: &str, message: &str) {
        self.state()
            .traps
            .insert(command_path.to_owned(), message.to_owned());
    }

    /// Turns every knob off, `set_refuse` included.
    pub fn clear(&self) {
        *self.state() = State::default();
        self.set_refuse(false);
    }

    /// While true, new connections are accepted and closed at once, and setting it closes
    /// every open connection: the router is down.
    pub fn set_refuse(&self, refuse: bool) {
        self.inner.outage.send_modify(|o| {
            if refuse && !o.refusing {
                o.kicks += 1;
            }
            o.refusing = refuse;
        });
    }

    pub(crate) fn delay(&self) -> Duration {
        self.state().delay
    }

    /// Counts one received command; true when it is the one to drop the connection on.
    pub(crate) fn take_drop(&self) -> bool {
        let mut state = self.state();
        match state.drop_after {
            Some(1) => {
                state.drop_after = None;
                true
            }
            Some(n) => {
                state.drop_after = Some(n - 1);
                false
            }
            None => false,
        }
    }

    pub(crate) fn trap_for(&self, command_path: &str) -> Option<String> {
        self.state().traps.get(command_path).cloned()
    }

    pub(crate) fn outage(&self) -> Outage {
        *self.inner.outage.borrow()
    }

    pub(crate) fn watch_outage(&self) -> watch::Receiver<Outage> {
        self.inner.outage.subscribe()
    }
}
