//! MikroBill controller: the binary's own parts. `cli` (commands), `config` (command line,
//! environment and file), `serve` (starts storage, the HTTP listener from `mikrobill-http`,
//! the QUIC `edge` agents talk to, and the job scheduler from `mikrobill-core`), `backup`
//! (backup and restore commands, scheduled backups), `import` (moving in from PHPNuxBill), `demo` (a newcomer's setup in one
//! command).

#![warn(missing_docs, unreachable_pub)]

pub mod backup;
pub mod cli;
pub mod config;
pub mod demo;
pub mod edge;
pub mod import;
pub mod serve;
