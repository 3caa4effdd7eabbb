//! The HTTP server's own parts, below both front ends (the REST API in `api` and the pages in
//! `web`): the state every handler reaches, the accept loop with its timeouts and caps, the
//! client address behind trusted proxies, rate limits, and RFC 9457 problem documents. The
//! whole router is assembled in `routes`, above all of them.

pub mod body;
pub mod client_ip;
pub mod listener;
pub mod nul_guard;
pub mod problem;
pub mod rate_limit;
pub mod state;
pub mod trace;

pub use state::AppState;
