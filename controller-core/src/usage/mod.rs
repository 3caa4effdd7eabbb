//! The usage ledger: what every account used, per local day and site, folded from accounting
//! in the transaction that ingests it (see [`fold`] for why replays and reordering count
//! nothing twice). Reports, the portal and budgets read it instead of the raw records.

pub mod customers;
pub mod fold;
pub mod online;
pub mod store;
