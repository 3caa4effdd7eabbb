//! The router's RADIUS server: authentication and accounting answered from the local cache
//! and outbox, never waiting on the controller link.
//!
//! The codec and the authentication crypto live in the sans-I/O `mikrobill-radius` crate;
//! this module is the I/O and the decisions: `server` (listeners, retransmission cache,
//! counters), `access` (credentials and replies), `policy` (the pure decision), `fleet`
//! (use and open sessions across sites), `mac_lock` (the bound device), `sessions`
//! (local session table and usage), `accounting` (request to record), `coa` (Disconnect and
//! CoA client), `fair_usage` and `throttle` (running sessions slowed to their plan's
//! fair-usage rate), `clients` (NAS secrets), `stats` (counters, latency, recent rejects).

pub(crate) mod access;
pub mod accounting;
pub mod clients;
pub mod coa;
pub mod dedup;
pub mod fair_usage;
pub mod fleet;
pub mod mac_lock;
pub mod policy;
pub mod server;
pub mod sessions;
pub mod stats;
pub mod throttle;

pub use clients::{Clients, NasClient};
pub use server::{DEFAULT_INTERIM, RadiusConfig, RadiusServer};
pub use sessions::Sessions;
pub use stats::RadiusStats;
