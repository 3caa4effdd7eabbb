//! MikroBill controller: the central service.
//!
//! Domain modules own their SQL (`sites`, `site_groups`, `plans`, `vouchers`, `accounting`,
//! `sync_log`, `admins`); `edge` is the QUIC server agents talk to, `api` the HTTP side,
//! `pki` the CA, `cli` and `serve` wire them into the binary.

pub mod accounting;
pub mod admin_login;
pub mod admins;
pub mod api;
pub mod audit;
pub mod auth;
pub mod billing;
pub mod cli;
pub mod commands;
pub mod config;
pub mod customers;
pub mod db;
pub mod delivery;
pub mod demo;
pub mod edge;
pub mod error;
pub mod events;
pub mod http;
pub mod jobs;
pub mod lease;
pub mod locale;
pub mod notify;
pub mod pki;
pub mod plans;
pub mod portal;
pub mod routes;
pub mod secrets;
pub mod serve;
pub mod settings;
pub mod site_groups;
pub mod sites;
pub mod stats;
pub mod subscriptions;
pub mod sync_log;
pub mod tax;
pub mod vouchers;
pub mod web;
