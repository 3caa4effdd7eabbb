//! MikroBill controller core: storage and the business itself, with no HTTP and no QUIC.
//!
//! The lowest layer of the controller (`mikrobill-http` and the `mikrobill-controller`
//! binary build on it; it knows neither). Domain modules own their SQL: `sites`,
//! `site_groups`, `plans`, `vouchers`, `customers`, `subscriptions`, `billing` (invoices,
//! payments, gateways), `accounting`, `sync_log`, `admins`, `portal` (the customer portal's
//! domain), `commands`, `settings`, `revenue` (every amount of money taken, in one ledger),
//! `stats`, `importer` (moving in from PHPNuxBill). Around them: `db` (one pool over SQLite or
//! PostgreSQL, migrations, data steps), `error` (the domain error), `audit`, `events` (the
//! outbox and its consumers, webhooks), `notify` (messages to customers and operators),
//! `jobs` (scheduled jobs under `lease`s), `auth` and `admin_login` (who may do what),
//! `pki` (the CA), and pure helpers below everything: `tax`, `locale`, `secrets`,
//! `delivery`.

#![warn(missing_docs, unreachable_pub)]

pub mod accounting;
pub mod admin_login;
pub mod admin_totp;
pub mod admins;
pub mod agent_certs;
pub mod audit;
pub mod auth;
pub mod backup;
pub mod billing;
pub mod ca_rotation;
pub mod commands;
pub mod customers;
pub mod db;
pub mod delivery;
pub mod error;
pub mod events;
pub mod exports;
pub mod importer;
pub mod jobs;
pub mod lease;
pub mod locale;
pub mod logo;
pub mod notify;
pub mod payments;
pub mod pki;
pub mod plans;
pub mod portal;
pub mod reports;
pub mod revenue;
pub mod secrets;
pub mod settings;
pub mod site_bulk;
pub mod site_drift;
pub mod site_groups;
pub mod sites;
pub mod stats;
pub mod subscriptions;
pub mod sync_compaction;
pub mod sync_log;
pub mod tax;
pub mod usage;
pub mod vouchers;
