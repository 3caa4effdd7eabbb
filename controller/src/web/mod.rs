//! Pieces shared by the server-rendered HTML front ends (the admin UI and the customer
//! portal): language choice, money formatting, cookies and anti-forgery tokens. Pages render
//! with askama templates from `controller/templates/`, compiled into the binary, so the build
//! stays `cargo build`.

pub mod cookies;
pub mod csrf;
pub mod lang;
pub mod money;
pub mod portal;

pub use lang::Lang;
pub use money::format_money;
