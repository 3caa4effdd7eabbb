//! Billing: billing-cycle math and the definition of overdue (both pure), and invoices. Payments and gateways, which settle
//! invoices and re-activate subscriptions, are in the `payments` module, above both. Tax and the
//! bounds of money amounts are in [`crate::tax`], which everything holding money uses.

pub mod allocation;
pub mod credit;
pub mod cycle;
pub mod invoices;
pub mod overdue;
pub mod settlement;
