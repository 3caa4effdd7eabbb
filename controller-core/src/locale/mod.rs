//! The languages the controller speaks (Indonesian and English), money and data amounts as
//! people read them in each, and instants at the operator's offset: shared by messages,
//! settings, exports and both HTML front ends, so it depends on nothing but serde and time.

pub mod bytes;
pub mod dates;
pub mod lang;
pub mod money;

pub use bytes::format_bytes;
pub use lang::Lang;
pub use money::format_money;
