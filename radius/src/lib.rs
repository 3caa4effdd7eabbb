//! Sans-I/O RADIUS for MikroBill: the packet codec (RFC 2865/2866/5176), packet and
//! Message-Authenticator signing and checking (RFC 2869/3579), User-Password hiding,
//! CHAP and MS-CHAPv2 with MPPE keys (RFC 2759/3079/2548).
//!
//! Nothing here touches a socket: callers hand in received bytes and send what comes back.

#![forbid(unsafe_code)]
#![warn(missing_docs, unreachable_pub)]

pub mod auth;
pub mod dict;
pub mod mschap;
pub mod packet;

pub use auth::*;
pub use dict::*;
pub use mschap::{MsChap2Response, MsChap2Success};
pub use packet::*;
