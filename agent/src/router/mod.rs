//! The MikroTik router beside the agent, driven over the RouterOS API.
//!
//! `client` is the only code that touches mikrotik-rs; `supervisor` owns the one connection
//! (reconnects with backoff, times every call out, and trips a circuit breaker so a dead
//! router fails calls fast instead of piling them up) and hands out the cloneable [`Router`];
//! `state` is what the router reports about itself; `bootstrap` points the router's RADIUS at
//! the agent; `import` reads the router's own accounts and adopts or retires them; `profiles` turns plans into router profiles; `api_mode` pushes hotspot users and
//! PPP secrets for sites without RADIUS; `reconcile` is the create/update/remove of the items
//! we own; `runner` ties them to the agent's cache; `hotspot` writes the site's login pages
//! into a directory on the router; `drift` decides what was changed on the router by hand
//! (`drift_run` runs a reconciliation with it, `drift_log` keeps the report for the
//! controller). Nothing here is on the RADIUS path.

mod api_mode;
mod bootstrap;
mod client;
mod drift;
mod drift_log;
mod drift_run;
mod hotspot;
mod import;
mod owned;
mod profiles;
mod reconcile;
mod runner;
mod state;
mod supervisor;
mod sync_all;
mod values;

pub use api_mode::{HOTSPOT_USER_COMMENT, PPP_SECRET_COMMENT, sync_accounts};
pub use bootstrap::{RADIUS_COMMENT, bootstrap};
pub use drift::Baseline;
pub use drift_log::DriftLog;
pub use drift_run::{Aaa, reconcile_reported};
pub use hotspot::{
    FILE_ADD_SINCE, HOTSPOT_DIR, MAX_FILE_BYTES, check_files, install_hotspot_files, receives_files,
};
pub use import::{TakeOverSummary, read_accounts, take_over};
pub use owned::Owned;
pub use profiles::{ISOLATION_COMMENT, ProfileSpec, desired_profiles, profile_name, sync_profiles};
pub use runner::run;
pub use state::RouterState;
pub use supervisor::Router;
pub use sync_all::reconcile_all;
pub use values::{format_duration, parse_duration};

use serde::Deserialize;
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::Duration;

/// Prefix of the `comment` that marks router items the agent made and may change or remove.
pub const MARKER: &str = "mikrobill:";

/// RouterOS API port (plain TCP).
pub const DEFAULT_API_PORT: u16 = 8728;

/// One row of a RouterOS reply: property name to value (`.id` included for list menus).
pub type Row = BTreeMap<String, String>;

/// A password or shared secret: kept out of `Debug` and logs.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The value, for the one place that must send it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

/// How subscribers are authorised on the router.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// The router asks the agent's RADIUS server (the default).
    #[default]
    Radius,
    /// No RADIUS: hotspot users and PPP secrets are pushed to the router from the cache.
    Api,
}

impl std::str::FromStr for Mode {
    type Err = String;

    fn from_str(s: &str) -> Result<Mode, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "radius" => Ok(Mode::Radius),
            "api" => Ok(Mode::Api),
            other => Err(format!(
                "router mode {other:?} is neither \"radius\" nor \"api\""
            )),
        }
    }
}

/// What the router's RADIUS settings should say about the agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RadiusSetup {
    /// The agent's address as the router reaches it; `None` takes the local address of the
    /// route towards the router.
    pub agent_address: Option<IpAddr>,
    /// The NAS secret shared with the agent's RADIUS server.
    pub secret: Option<Secret>,
    /// `src-address` the router sends RADIUS from; `None` leaves the router's choice alone.
    pub src_address: Option<IpAddr>,
    /// How long the router waits for the agent's answer.
    pub timeout: Duration,
    /// The router's CoA/Disconnect port (`/radius/incoming`).
    pub coa_port: u16,
}

impl Default for RadiusSetup {
    fn default() -> Self {
        RadiusSetup {
            agent_address: None,
            secret: None,
            src_address: None,
            // The agent answers from a local cache; 3 s leaves room for a busy router.
            timeout: Duration::from_secs(3),
            coa_port: crate::radius::clients::DEFAULT_COA_PORT,
        }
    }
}

/// Everything the agent needs to manage its router.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouterConfig {
    /// API address, `host:port`.
    pub address: String,
    /// API user (group policy `api,read,write`).
    pub username: String,
    /// API password.
    pub password: Secret,
    /// RADIUS or API mode.
    pub mode: Mode,
    /// Run the RADIUS bootstrap when the agent starts (RADIUS mode).
    pub bootstrap_on_start: bool,
    /// Limit for TCP connect plus login.
    pub connect_timeout: Duration,
    /// Limit for one API call, all its replies included.
    pub call_timeout: Duration,
    /// How often the router state is read.
    pub refresh_interval: Duration,
    /// How often profiles (and API-mode accounts) are reconciled besides after sync.
    pub reconcile_interval: Duration,
    /// Longest pause between reconnect attempts.
    pub reconnect_max: Duration,
    /// Consecutive failures that open the circuit breaker.
    pub breaker_threshold: u32,
    /// How long an open breaker fails calls before letting one through.
    pub breaker_cooldown: Duration,
    /// The router's RADIUS settings.
    pub radius: RadiusSetup,
    /// `rate-limit` of the isolation profile, if any.
    pub isolation_rate_limit: Option<String>,
}

impl RouterConfig {
    /// Defaults for a router at `address` (`host` or `host:port`).
    pub fn new(address: &str, username: &str, password: Secret) -> RouterConfig {
        RouterConfig {
            address: with_default_port(address),
            username: username.to_owned(),
            password,
            mode: Mode::Radius,
            bootstrap_on_start: false,
            connect_timeout: Duration::from_secs(5),
            call_timeout: Duration::from_secs(10),
            refresh_interval: Duration::from_secs(30),
            reconcile_interval: Duration::from_secs(300),
            reconnect_max: Duration::from_secs(60),
            breaker_threshold: 3,
            breaker_cooldown: Duration::from_secs(30),
            radius: RadiusSetup::default(),
            isolation_rate_limit: None,
        }
    }
}

/// `host` → `host:8728`; a bare IPv6 address gets brackets.
pub fn with_default_port(address: &str) -> String {
    let address = address.trim();
    if let Ok(ip) = address.parse::<IpAddr>() {
        return std::net::SocketAddr::new(ip, DEFAULT_API_PORT).to_string();
    }
    if address.starts_with('[') && address.ends_with(']') {
        return format!("{address}:{DEFAULT_API_PORT}");
    }
    if address
        .rsplit_once(':')
        .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
    {
        return address.to_owned();
    }
    format!("{address}:{DEFAULT_API_PORT}")
}

/// Why a router operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RouterError {
    /// No TCP connection (refused, unreachable, closed before login, or too slow).
    #[error("cannot connect to the router at {addr}: {message}")]
    Connect {
        /// The API address.
        addr: String,
        /// What went wrong.
        message: String,
    },
    /// The router refused the API user's credentials.
    #[error("the router refused the login of API user {username:?}: {message}")]
    Login {
        /// The API user.
        username: String,
        /// The router's reason.
        message: String,
    },
    /// A call got no complete answer in time; the connection is dropped.
    #[error("{path}: no answer from the router within {after:?}")]
    Timeout {
        /// The command.
        path: String,
        /// The limit that passed.
        after: Duration,
    },
    /// The connection ended during a call.
    #[error("{path}: the connection to the router was lost")]
    ConnectionLost {
        /// The command.
        path: String,
    },
    /// The router refused a command (`!trap`).
    #[error("{path}: the router refused: {message}")]
    Trap {
        /// The command.
        path: String,
        /// The router's message.
        message: String,
    },
    /// The router ended the session (`!fatal`).
    #[error("the router closed the API session: {0}")]
    Fatal(String),
    /// The circuit breaker is open or too many calls wait: failing fast.
    #[error("the router is unavailable: {0}")]
    Unavailable(String),
    /// A reply that does not make sense (e.g. an added item that cannot be read back).
    #[error("{path}: unexpected reply: {message}")]
    Unexpected {
        /// The command.
        path: String,
        /// What was wrong.
        message: String,
    },
    /// The supervisor has stopped.
    #[error("the router supervisor has stopped")]
    Stopped,
    /// Local settings make the operation impossible.
    #[error("{0}")]
    Config(String),
    /// The agent's own database failed (ownership records, cache).
    #[error("the agent's local database failed: {0}")]
    Storage(String),
}

impl RouterError {
    /// Whether the connection is unusable after this error (it counts for the breaker).
    pub fn is_connection_failure(&self) -> bool {
        matches!(
            self,
            RouterError::Connect { .. }
                | RouterError::Login { .. }
                | RouterError::Timeout { .. }
                | RouterError::ConnectionLost { .. }
                | RouterError::Fatal(_)
        )
    }
}

/// What a change did to an item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Created.
    Added,
    /// Properties set or unset.
    Updated,
    /// Deleted.
    Removed,
}

/// One change made on the router, for the operator to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// The menu, e.g. `/radius`.
    pub menu: String,
    /// Which item: its name, address or id.
    pub item: String,
    /// What happened.
    pub action: Action,
    /// The properties written (empty value = unset); secrets are hidden.
    pub fields: Vec<(String, String)>,
}

impl Change {
    pub(crate) fn new(
        menu: &str,
        item: impl Into<String>,
        action: Action,
        fields: &[(String, String)],
    ) -> Change {
        Change {
            menu: menu.to_owned(),
            item: item.into(),
            action,
            fields: fields
                .iter()
                .map(|(k, v)| {
                    let shown = if matches!(k.as_str(), "secret" | "password") {
                        "<hidden>".to_owned()
                    } else {
                        v.clone()
                    };
                    (k.clone(), shown)
                })
                .collect(),
        }
    }
}

impl std::fmt::Display for Change {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let verb = match self.action {
            Action::Added => "added",
            Action::Updated => "updated",
            Action::Removed => "removed",
        };
        write!(f, "{} {}: {verb}", self.menu, self.item)?;
        if !self.fields.is_empty() {
            let fields: Vec<String> = self
                .fields
                .iter()
                .map(|(k, v)| {
                    if v.is_empty() {
                        format!("{k} unset")
                    } else {
                        format!("{k}={v}")
                    }
                })
                .collect();
            write!(f, " ({})", fields.join(", "))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_port_and_ipv6() {
        assert_eq!(with_default_port("172.17.0.1"), "172.17.0.1:8728");
        assert_eq!(with_default_port("router.lan"), "router.lan:8728");
        assert_eq!(with_default_port("router.lan:8000"), "router.lan:8000");
        assert_eq!(with_default_port("fe80::1"), "[fe80::1]:8728");
        assert_eq!(with_default_port("[fe80::1]"), "[fe80::1]:8728");
        assert_eq!(with_default_port("[fe80::1]:9"), "[fe80::1]:9");
    }

    #[test]
    fn secrets_stay_out_of_debug_and_changes() {
        let config = RouterConfig::new("r", "api", Secret::new("hunter2"));
        assert!(!format!("{config:?}").contains("hunter2"));
        let change = Change::new(
            "/radius",
            "10.0.0.2",
            Action::Added,
            &[
                ("secret".into(), "hunter2".into()),
                ("timeout".into(), "3s".into()),
            ],
        );
        let shown = change.to_string();
        assert!(!shown.contains("hunter2"), "{shown}");
        assert_eq!(
            shown,
            "/radius 10.0.0.2: added (secret=<hidden>, timeout=3s)"
        );
    }

    #[test]
    fn modes_parse() {
        assert_eq!("API".parse::<Mode>(), Ok(Mode::Api));
        assert_eq!("radius".parse::<Mode>(), Ok(Mode::Radius));
        assert!("ldap".parse::<Mode>().is_err());
    }
}
