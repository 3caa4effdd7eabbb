//! Live agent sessions on this controller process.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// One open session.
#[derive(Clone)]
pub(crate) struct LiveSession {
    pub session_id: String,
    pub serial_hex: String,
    pub conn: quinn::Connection,
}

/// Sessions by site id; at most one per site.
#[derive(Clone, Default)]
pub(crate) struct Registry {
    inner: Arc<Mutex<HashMap<String, LiveSession>>>,
}

impl Registry {
    /// Registers a session, closing any older session of the same site.
    pub(crate) fn register(&self, site_id: &str, session: LiveSession) {
        let old = self
            .inner
            .lock()
            .expect("registry lock")
            .insert(site_id.to_string(), session);
        if let Some(old) = old {
            old.conn.close(
                mikrobill_protocol::close_code::REPLACED.into(),
                b"replaced by a newer session",
            );
        }
    }

    /// Removes a session if it is still the current one for its site.
    pub(crate) fn unregister(&self, site_id: &str, session_id: &str) {
        let mut map = self.inner.lock().expect("registry lock");
        if map.get(site_id).is_some_and(|s| s.session_id == session_id) {
            map.remove(site_id);
        }
    }

    /// A copy of all sessions.
    pub(crate) fn sessions(&self) -> Vec<(String, LiveSession)> {
        self.inner
            .lock()
            .expect("registry lock")
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }
}
