//! Pieces shared by the server-rendered HTML front ends (the admin UI in [`admin`] and the
//! customer portal in [`portal`]): the language of a request, cookies, CSRF checks,
//! HTML responses with their security headers, pagination links and SVG charts. Pages render
//! with askama templates from `controller-http/templates/`, compiled into the binary, so the build
//! stays `cargo build`; static assets are embedded with `include_str!`.

pub mod admin;
pub mod assets;
pub mod chart;
pub mod cookies;
pub mod csrf;
pub mod html;
pub mod pager;
pub mod portal;

pub use mikrobill_core::locale::{Lang, format_money};
