//! What every HTTP handler can reach: the database, the token cache, the payment gateways,
//! the CA fingerprint for enrollment tokens, the cookie policy and the rate limiter.

use crate::server::rate_limit;
use mikrobill_core::auth::tokens::TokenCache;
use mikrobill_core::db::Db;
use std::sync::Arc;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    /// The database.
    pub db: Db,
    /// Recently verified bearer tokens.
    pub tokens: Arc<TokenCache>,
    /// Payment gateways by name, for webhooks.
    pub gateways: Arc<mikrobill_core::payments::gateway::Gateways>,
    /// The issuing CA's fingerprint, written into enrollment tokens; it changes when a CA
    /// rotation activates a new CA (the edge's reload sends it).
    pub ca_fingerprint: tokio::sync::watch::Receiver<[u8; 32]>,
    /// Browsers reach us through a TLS-terminating proxy: cookies get `Secure`.
    pub secure_cookies: bool,
    /// Token buckets of API callers.
    pub rate_limiter: Arc<rate_limit::RateLimiter>,
    /// Bearer token that opens `/metrics` on this listener; without one it is not served here.
    pub metrics_token: Option<Arc<str>>,
    /// The data directory holding the CA files (`/api/v1/ca` writes a new CA there).
    pub data_dir: Option<Arc<std::path::Path>>,
}

impl AppState {
    /// State over `db` with the given gateways and CA.
    pub fn new(
        db: Db,
        gateways: mikrobill_core::payments::gateway::Gateways,
        ca_fingerprint: tokio::sync::watch::Receiver<[u8; 32]>,
    ) -> AppState {
        AppState {
            db,
            tokens: Arc::new(TokenCache::default()),
            gateways: Arc::new(gateways),
            ca_fingerprint,
            secure_cookies: false,
            rate_limiter: Arc::new(rate_limit::RateLimiter::new(
                rate_limit::RateLimits::default(),
            )),
            metrics_token: None,
            data_dir: None,
        }
    }
}

impl AppState {
    /// The fingerprint a new enrollment token pins: the CA issuing now.
    pub fn enrollment_fingerprint(&self) -> [u8; 32] {
        *self.ca_fingerprint.borrow()
    }
}
