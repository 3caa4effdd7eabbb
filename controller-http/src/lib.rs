//! MikroBill controller HTTP: the admin REST API (`api`, under `/api/v1`, with its OpenAPI
//! document), the server-rendered admin UI and customer portal (`web`), the server's own
//! parts below both (`server`: state, the accept loop with its limits, client addresses,
//! rate limits, problem documents) and `routes`, the one router that mounts them all.
//!
//! Built on `mikrobill-core`, which it calls for every decision and every row; the
//! `mikrobill-controller` binary starts it.

#![warn(missing_docs, unreachable_pub)]

pub mod api;
pub mod csv;
pub mod hotspot_pages;
pub mod report_csv;
pub mod routes;
pub mod server;
pub mod web;
