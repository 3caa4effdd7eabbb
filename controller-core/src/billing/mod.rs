//! Billing: billing-cycle math (pure), invoices, payments and payment gateways. Tax and the
//! bounds of money amounts are in [`crate::tax`], which everything holding money uses.

pub mod cycle;
pub mod gateway;
pub mod invoices;
pub mod payments;
