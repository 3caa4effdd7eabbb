//! The languages the controller speaks (Indonesian and English) and money as people read it
//! in each: shared by messages, settings and both HTML front ends, so it depends on nothing
//! but serde.

pub mod lang;
pub mod money;

pub use lang::Lang;
pub use money::format_money;
