//! PPPoE subscriptions: a customer's account on a site, billed per cycle, isolated when
//! overdue and re-activated when paid. Every change to what the router's RADIUS server must
//! know is appended to the sync log for the subscription's site in the same transaction.
//!
//! `status` is the pure transition table; `record` the stored row; `account` what the router
//! learns; `create`, `update`, `plan_change`, `lifecycle` and `invoicing` the operations.

mod account;
mod create;
mod invoicing;
mod lifecycle;
mod plan_change;
mod record;
pub mod status;
mod update;
mod validation;

pub use create::{SubscriptionInput, create, create_in};
pub use invoicing::invoice_run;
pub(crate) use lifecycle::isolate_in;
pub use lifecycle::{
    isolate, isolation_sweep, reactivate, reactivate_if_settled, settle_from_credit, terminate,
};
pub use plan_change::change_plan;
pub use record::{Subscription, SubscriptionFilter, fetch, get, list};
pub use status::{IsolationReason, SubscriptionStatus};
pub use update::{SubscriptionPatch, update};
pub use validation::parse_date;
