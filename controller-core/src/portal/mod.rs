//! The customer portal's domain: subscribers' portal passwords, their browser sessions, what
//! they may read (their own subscriptions, usage, invoices, payments), gateway payment links
//! for their invoices, and the anonymous voucher lookup. The pages live in `web::portal`.
//!
//! Logging in is one of several ways to prove who a subscriber is ([`credentials::Login`]); a
//! one-time code sent through a notification channel can be added as another without
//! touching sessions.

pub mod account;
pub mod codes;
pub mod credentials;
pub mod orders;
pub mod payment_links;
pub mod sessions;
pub mod usage;
