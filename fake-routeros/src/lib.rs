//! A fake MikroTik router for tests: it serves the RouterOS binary API (plain TCP, as on
//! port 8728) from in-memory tables, with knobs to make it slow, flaky or down.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use mikrobill_fake_routeros::{FakeRouter, FakeRouterConfig};
//!
//! let router = FakeRouter::start(FakeRouterConfig::default()).await?;
//! let session = router.add_row("/ppp/active", &[("name", "alice"), ("service", "pppoe")]);
//! // ... the code under test, pointed at router.addr(), kicks alice ...
//! assert!(router.rows("/ppp/active").iter().all(|r| r[".id"] != session));
//! router.stop().await;
//! # Ok(())
//! # }
//! ```

#![warn(missing_docs, unreachable_pub)]

mod faults;
mod files;
mod model;
pub mod query;
pub mod sentence;
mod server;
pub mod word;

pub use faults::Faults;
pub use server::{FakeRouter, FakeRouterConfig};
