//! Billing: tax and billing-cycle math (pure), invoices, payments and payment gateways.

pub mod cycle;
pub mod gateway;
pub mod invoices;
pub mod payments;
pub mod tax;
